//! `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1): profiles,
//! plugin enable/disable per extension point, score weights, plugin args,
//! `percentageOfNodesToScore`.

use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

use crate::framework::{Framework, Plugin, Point};
use crate::plugins::fit::{BalancedAllocation, NodeResourcesFit, Strategy};
use crate::plugins::image_locality::ImageLocality;
use crate::plugins::node_affinity::NodeAffinity;
use crate::plugins::node_basics::{NodeName, NodeUnschedulable, PrioritySort, SchedulingGates};
use crate::plugins::node_ports::NodePorts;
use crate::plugins::taint_toleration::TaintToleration;

pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// upstream v1.36's default multiPoint plugins and score weights, in order,
/// restricted to the ones rkube implements.
const DEFAULT_PLUGINS: &[(&str, i64)] = &[
    ("SchedulingGates", 0),
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
];

/// upstream plugins rkube does not implement yet: enabling them fails.
const NOT_IMPLEMENTED: &[&str] = &[
    "VolumeRestrictions",
    "NodeVolumeLimits",
    "VolumeBinding",
    "VolumeZone",
    "DynamicResources",
];

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Configuration {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pub profiles: Vec<Profile>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub scheduler_name: Option<String>,
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pub plugins: Plugins,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Plugins {
    #[serde(default)]
    pub multi_point: PluginSet,
    #[serde(default)]
    pub pre_enqueue: PluginSet,
    #[serde(default)]
    pub queue_sort: PluginSet,
    #[serde(default)]
    pub pre_filter: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub post_filter: PluginSet,
    #[serde(default)]
    pub pre_score: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
    #[serde(default)]
    pub reserve: PluginSet,
    #[serde(default)]
    pub permit: PluginSet,
    #[serde(default)]
    pub pre_bind: PluginSet,
    #[serde(default)]
    pub bind: PluginSet,
    #[serde(default)]
    pub post_bind: PluginSet,
}

#[derive(Deserialize, Default, Debug)]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

#[derive(Deserialize, Default, Debug, Clone)]
pub struct PluginRef {
    pub name: String,
    pub weight: Option<i64>,
}

#[derive(Deserialize, Default, Debug)]
pub struct PluginConfig {
    pub name: String,
    #[serde(default)]
    pub args: Value,
}

impl Configuration {
    pub fn parse(text: &str) -> anyhow::Result<Configuration> {
        let value: Value =
            serde_yaml::from_str(text).context("parsing the scheduler configuration")?;
        let config: Configuration =
            serde_json::from_value(value).context("decoding the scheduler configuration")?;
        if config.kind != "KubeSchedulerConfiguration" {
            bail!(
                "expected kind KubeSchedulerConfiguration, got {:?}",
                config.kind
            );
        }
        if config.api_version != "kubescheduler.config.k8s.io/v1" {
            bail!(
                "unsupported apiVersion {:?}; expected kubescheduler.config.k8s.io/v1",
                config.api_version
            );
        }
        Ok(config)
    }

    /// One framework per profile (the default profile when none are given).
    pub fn frameworks(&self) -> anyhow::Result<Vec<Framework>> {
        let default = [Profile::default()];
        let profiles: &[Profile] = if self.profiles.is_empty() {
            &default
        } else {
            &self.profiles
        };
        let mut out: Vec<Framework> = Vec::new();
        for p in profiles {
            let fw = build(
                p,
                p.percentage_of_nodes_to_score
                    .or(self.percentage_of_nodes_to_score),
            )?;
            if out.iter().any(|f| f.scheduler_name == fw.scheduler_name) {
                bail!(
                    "duplicate profile with schedulerName {:?}",
                    fw.scheduler_name
                );
            }
            out.push(fw);
        }
        Ok(out)
    }
}

fn plugin_args<'a>(profile: &'a Profile, name: &str) -> Option<&'a Value> {
    profile
        .plugin_config
        .iter()
        .find(|c| c.name == name)
        .map(|c| &c.args)
}

fn fit_from_args(args: Option<&Value>) -> anyhow::Result<NodeResourcesFit> {
    let mut fit = NodeResourcesFit::default();
    let Some(strategy) = args.and_then(|a| a.get("scoringStrategy")) else {
        return Ok(fit);
    };
    if let Some(resources) = strategy.get("resources").and_then(Value::as_array) {
        fit.resources = resources
            .iter()
            .filter_map(|r| {
                Some((
                    r.get("name")?.as_str()?.to_owned(),
                    r.get("weight").and_then(Value::as_i64).unwrap_or(1),
                ))
            })
            .collect();
    }
    fit.strategy = match strategy
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("LeastAllocated")
    {
        "LeastAllocated" => Strategy::LeastAllocated,
        "MostAllocated" => Strategy::MostAllocated,
        "RequestedToCapacityRatio" => {
            let shape = strategy
                .pointer("/requestedToCapacityRatio/shape")
                .and_then(Value::as_array)
                .context("RequestedToCapacityRatio needs requestedToCapacityRatio.shape")?;
            Strategy::RequestedToCapacityRatio(
                shape
                    .iter()
                    .map(|p| {
                        (
                            p.get("utilization").and_then(Value::as_i64).unwrap_or(0),
                            p.get("score").and_then(Value::as_i64).unwrap_or(0),
                        )
                    })
                    .collect(),
            )
        }
        other => bail!("NodeResourcesFit: unknown scoring strategy {other:?}"),
    };
    Ok(fit)
}

fn instantiate(name: &str, profile: &Profile) -> anyhow::Result<Option<Arc<dyn Plugin>>> {
    Ok(Some(match name {
        "SchedulingGates" => Arc::new(SchedulingGates),
        "PrioritySort" => Arc::new(PrioritySort),
        "NodeUnschedulable" => Arc::new(NodeUnschedulable),
        "NodeName" => Arc::new(NodeName),
        "TaintToleration" => Arc::new(TaintToleration),
        "NodeAffinity" => Arc::new(NodeAffinity),
        "NodePorts" => Arc::new(NodePorts),
        "NodeResourcesFit" => Arc::new(fit_from_args(plugin_args(profile, name))?),
        "NodeResourcesBalancedAllocation" => Arc::new(BalancedAllocation::default()),
        "ImageLocality" => Arc::new(ImageLocality),
        "PodTopologySpread" => Arc::new(crate::plugins::pod_topology_spread::PodTopologySpread),
        "InterPodAffinity" => Arc::new(crate::plugins::inter_pod_affinity::InterPodAffinity),
        // Handled by the scheduler itself (they need the API).
        "DefaultPreemption" | "DefaultBinder" => return Ok(None),
        n if NOT_IMPLEMENTED.contains(&n) => bail!("plugin {n:?} is not implemented by rkube yet"),
        n => bail!("unknown plugin {n:?}"),
    }))
}

/// A plugin enabled at one extension point: instance, name, weight.
type Enabled = (Arc<dyn Plugin>, String, i64);

fn build(profile: &Profile, percentage: Option<i32>) -> anyhow::Result<Framework> {
    let plugins = &profile.plugins;
    let disabled_all = |set: &PluginSet| set.disabled.iter().any(|d| d.name == "*");
    // multiPoint: the defaults, then the profile's changes.
    let mut multi: Vec<(String, i64)> = if disabled_all(&plugins.multi_point) {
        Vec::new()
    } else {
        DEFAULT_PLUGINS
            .iter()
            .filter(|(n, _)| !plugins.multi_point.disabled.iter().any(|d| d.name == *n))
            .map(|(n, w)| (n.to_string(), *w))
            .collect()
    };
    for e in &plugins.multi_point.enabled {
        multi.retain(|(n, _)| *n != e.name);
        multi.push((e.name.clone(), e.weight.unwrap_or(1)));
    }
    let mut instances: Vec<(String, Option<Arc<dyn Plugin>>)> = Vec::new();
    let mut get = |name: &str| -> anyhow::Result<Option<Arc<dyn Plugin>>> {
        if let Some((_, p)) = instances.iter().find(|(n, _)| n == name) {
            return Ok(p.clone());
        }
        let p = instantiate(name, profile)?;
        instances.push((name.to_owned(), p.clone()));
        Ok(p)
    };
    let mut per_point = |point: Point, set: &PluginSet| -> anyhow::Result<Vec<Enabled>> {
        let mut list = Vec::new();
        if !disabled_all(set) {
            for (name, weight) in &multi {
                if set.disabled.iter().any(|d| d.name == *name) {
                    continue;
                }
                if let Some(p) = get(name)?
                    && p.points().contains(&point)
                {
                    list.push((p, name.clone(), *weight));
                }
            }
        }
        for e in &set.enabled {
            list.retain(|(_, n, _)| *n != e.name);
            match get(&e.name)? {
                Some(p) if p.points().contains(&point) => {
                    list.push((p, e.name.clone(), e.weight.unwrap_or(1)))
                }
                Some(_) => bail!("plugin {:?} does not extend {point:?}", e.name),
                None => {}
            }
        }
        Ok(list)
    };
    let strip = |v: Vec<Enabled>| v.into_iter().map(|(p, _, _)| p).collect::<Vec<_>>();
    let score = per_point(Point::Score, &plugins.score)?;
    let has = |set: &PluginSet, name: &str| {
        let on = multi.iter().any(|(n, _)| n == name)
            && !disabled_all(set)
            && !set.disabled.iter().any(|d| d.name == name);
        on || set.enabled.iter().any(|e| e.name == name)
    };
    let fw = Framework {
        scheduler_name: profile
            .scheduler_name
            .clone()
            .unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.into()),
        percentage_of_nodes_to_score: percentage,
        pre_enqueue: strip(per_point(Point::PreEnqueue, &plugins.pre_enqueue)?),
        pre_filter: strip(per_point(Point::PreFilter, &plugins.pre_filter)?),
        filter: strip(per_point(Point::Filter, &plugins.filter)?),
        pre_score: strip(per_point(Point::PreScore, &plugins.pre_score)?),
        score: score.into_iter().map(|(p, _, w)| (p, w)).collect(),
        reserve: strip(per_point(Point::Reserve, &plugins.reserve)?),
        permit: strip(per_point(Point::Permit, &plugins.permit)?),
        post_filter: has(&plugins.post_filter, "DefaultPreemption"),
        bind: has(&plugins.bind, "DefaultBinder"),
    };
    if !fw.bind {
        bail!("profile {:?} has no bind plugin", fw.scheduler_name);
    }
    Ok(fw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_has_upstreams_weights() {
        let fws = Configuration::default().frameworks().unwrap();
        assert_eq!(fws.len(), 1);
        let fw = &fws[0];
        assert_eq!(fw.scheduler_name, "default-scheduler");
        let weights: Vec<(&str, i64)> = fw.score.iter().map(|(p, w)| (p.name(), *w)).collect();
        assert_eq!(
            weights,
            [
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
                ("NodeResourcesBalancedAllocation", 1),
                ("ImageLocality", 1)
            ]
        );
        assert!(fw.post_filter && fw.bind);
    }

    #[test]
    fn profiles_enable_disable_and_weigh_plugins() {
        let c = Configuration::parse(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
profiles:
- schedulerName: default-scheduler
- schedulerName: packer
  plugins:
    score:
      disabled: [{name: "*"}]
      enabled: [{name: NodeResourcesFit, weight: 5}]
    filter:
      disabled: [{name: TaintToleration}]
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy: {type: MostAllocated, resources: [{name: cpu, weight: 1}]}
"#,
        )
        .unwrap();
        let fws = c.frameworks().unwrap();
        assert_eq!(fws[1].scheduler_name, "packer");
        assert_eq!(fws[1].percentage_of_nodes_to_score, Some(30));
        assert_eq!(fws[1].score.len(), 1);
        assert_eq!(fws[1].score[0].1, 5);
        assert!(!fws[1].filter.iter().any(|p| p.name() == "TaintToleration"));
        assert!(fws[0].filter.iter().any(|p| p.name() == "TaintToleration"));
    }

    #[test]
    fn unimplemented_plugins_fail_loudly() {
        let c = Configuration::parse(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- plugins:\n    filter:\n      enabled: [{name: VolumeBinding}]\n",
        )
        .unwrap();
        assert!(c.frameworks().is_err());
    }
}
