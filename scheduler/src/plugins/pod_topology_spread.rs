//! PodTopologySpread: `DoNotSchedule` constraints filter on skew (matching
//! pods per domain, against the emptiest domain); `ScheduleAnyway` ones
//! score. Upstream's system default constraints need the owning Service /
//! ReplicaSet selectors, which rkube does not derive yet.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::TopologySpreadConstraint;

use crate::framework::{ClusterView, CycleState, MAX_NODE_SCORE, Plugin, Point, Status};
use crate::labels::Selector;
use crate::nodeinfo::{NodeInfo, PodInfo};
use crate::plugins::node_affinity;

pub const ERR_SKEW: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

struct Constraint {
    max_skew: i64,
    key: String,
    selector: Selector,
    min_domains: i64,
}

struct SpreadState {
    constraints: Vec<Constraint>,
    /// Per constraint: domain value → matching pods (looked up by the
    /// node's label value, without allocating per node).
    counts: Vec<HashMap<String, i64>>,
    /// Per constraint: the smallest count over its domains, and how many domains.
    min: Vec<(i64, i64)>,
    self_match: Vec<bool>,
}

fn constraints(pod: &PodInfo, when: &str) -> Vec<Constraint> {
    let labels = pod.labels();
    pod.spec()
        .topology_spread_constraints
        .iter()
        .flatten()
        .filter(|c: &&TopologySpreadConstraint| c.when_unsatisfiable == when)
        .map(|c| {
            let mut sel = c.label_selector.clone();
            // matchLabelKeys: the pod's own values join the selector.
            if let Some(keys) = &c.match_label_keys {
                let s = sel.get_or_insert_with(Default::default);
                for k in keys {
                    if let Some(v) = labels.get(k) {
                        s.match_labels
                            .get_or_insert_with(Default::default)
                            .insert(k.clone(), v.clone());
                    }
                }
            }
            Constraint {
                max_skew: i64::from(c.max_skew),
                key: c.topology_key.clone(),
                selector: Selector::from_label_selector(sel.as_ref()),
                min_domains: i64::from(c.min_domains.unwrap_or(1)),
            }
        })
        .collect()
}

/// Counts matching pods per domain over the nodes the pod could use
/// (nodeAffinityPolicy Honor, nodeTaintsPolicy Ignore: upstream's defaults).
fn count(pod: &PodInfo, cs: Vec<Constraint>, view: &ClusterView) -> SpreadState {
    let mut counts: Vec<HashMap<String, i64>> = cs.iter().map(|_| HashMap::new()).collect();
    for node in view.cache.nodes() {
        if node.node.is_none() || !node_affinity::required_matches(pod, node) {
            continue;
        }
        let labels = node.labels();
        if !cs.iter().all(|c| labels.contains_key(&c.key)) {
            continue;
        }
        for (i, c) in cs.iter().enumerate() {
            let n = node
                .pods
                .iter()
                .filter(|p| {
                    p.namespace == pod.namespace
                        && !p.is_terminating()
                        && c.selector.matches(p.labels())
                })
                .count() as i64;
            let Some(value) = labels.get(&c.key) else {
                continue;
            };
            match counts[i].get_mut(value.as_str()) {
                Some(m) => *m += n,
                None => {
                    counts[i].insert(value.clone(), n);
                }
            }
        }
    }
    let min = counts
        .iter()
        .map(|domains| {
            (
                domains.values().copied().min().unwrap_or(0),
                domains.len() as i64,
            )
        })
        .collect();
    let self_match = cs
        .iter()
        .map(|c| c.selector.matches(pod.labels()))
        .collect();
    SpreadState {
        constraints: cs,
        counts,
        min,
        self_match,
    }
}

pub struct PodTopologySpread;

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }
    fn points(&self) -> &'static [Point] {
        &[
            Point::PreFilter,
            Point::Filter,
            Point::PreScore,
            Point::Score,
        ]
    }
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, view: &ClusterView) -> Status {
        let cs = constraints(pod, "DoNotSchedule");
        if cs.is_empty() {
            return Status::skip();
        }
        state.write("PodTopologySpread/filter", count(pod, cs, view));
        Status::success()
    }
    fn filter(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<SpreadState>("PodTopologySpread/filter") else {
            return Status::success();
        };
        let labels = node.labels();
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = labels.get(&c.key) else {
                return Status::unresolvable(ERR_MISSING_LABEL);
            };
            let (mut min, domains) = s.min[i];
            if domains < c.min_domains {
                min = 0;
            }
            let matched = s.counts[i].get(value.as_str()).copied().unwrap_or(0);
            let skew = matched + i64::from(s.self_match[i]) - min;
            if skew > c.max_skew {
                return Status::unschedulable(ERR_SKEW);
            }
        }
        Status::success()
    }
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &[&NodeInfo],
        view: &ClusterView,
    ) -> Status {
        let cs = constraints(pod, "ScheduleAnyway");
        if cs.is_empty() {
            return Status::skip();
        }
        state.write("PodTopologySpread/score", count(pod, cs, view));
        Status::success()
    }
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo, _: &ClusterView) -> i64 {
        let Some(s) = state.read::<SpreadState>("PodTopologySpread/score") else {
            return 0;
        };
        let labels = node.labels();
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = labels.get(&c.key) else {
                return -1;
            };
            // Upstream weighs each constraint by log(domains + 2).
            let weight = ((s.min[i].1 + 2) as f64).ln();
            let matched = s.counts[i].get(value.as_str()).copied().unwrap_or(0);
            score += (matched as f64 + (c.max_skew - 1) as f64) * weight;
        }
        score.round() as i64
    }
    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        // Nodes without the keys (-1) score 0; fewer matching pods score higher.
        let valid = scores.iter().copied().filter(|s| *s >= 0);
        let (min, max) = valid.fold((i64::MAX, 0), |(lo, hi), s| (lo.min(s), hi.max(s)));
        for s in scores.iter_mut() {
            *s = if *s < 0 {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::Cache;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;

    fn pod(name: &str, spread: serde_json::Value) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c"}], "topologySpreadConstraints": spread}
        }))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p), 0))
    }

    #[test]
    fn do_not_schedule_keeps_skew_within_max() {
        let mut c = Cache::new();
        for (name, zone) in [("a", Some("z1")), ("b", Some("z2")), ("nolabel", None)] {
            let n: Node = serde_json::from_value(json!({"metadata": {"name": name, "labels": zone.map(|z| json!({"zone": z})).unwrap_or(json!({}))}})).unwrap();
            c.upsert_node(Arc::new(n));
        }
        let spread = json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}}}]);
        c.assume(pod("w1", spread.clone()), "a");
        let p = pod("w2", spread);
        let view = ClusterView { cache: &c };
        let mut state = CycleState::default();
        assert!(
            PodTopologySpread
                .pre_filter(&mut state, &p, &view)
                .is_success()
        );
        let verdicts: Vec<(String, Status)> = c
            .nodes()
            .iter()
            .map(|n| (n.name.clone(), PodTopologySpread.filter(&state, &p, n)))
            .collect();
        for (name, s) in verdicts {
            match name.as_str() {
                "a" => assert_eq!(s.reasons, [ERR_SKEW]),
                "b" => assert!(s.is_success()),
                _ => assert_eq!(s.reasons, [ERR_MISSING_LABEL]),
            }
        }
    }

    #[test]
    fn schedule_anyway_prefers_emptier_domains() {
        let mut c = Cache::new();
        for (name, zone) in [("a", "z1"), ("b", "z2")] {
            let n: Node = serde_json::from_value(
                json!({"metadata": {"name": name, "labels": {"zone": zone}}}),
            )
            .unwrap();
            c.upsert_node(Arc::new(n));
        }
        let spread = json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": "web"}}}]);
        c.assume(pod("w1", spread.clone()), "a");
        c.assume(pod("w2", spread.clone()), "a");
        let p = pod("w3", spread);
        let view = ClusterView { cache: &c };
        let mut state = CycleState::default();
        let nodes: Vec<&NodeInfo> = c.nodes().iter().collect();
        assert!(
            PodTopologySpread
                .pre_score(&mut state, &p, &nodes, &view)
                .is_success()
        );
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| PodTopologySpread.score(&state, &p, n, &view))
            .collect();
        PodTopologySpread.normalize(&state, &p, &mut scores);
        assert!(scores[1] > scores[0], "{scores:?}");
    }
}
