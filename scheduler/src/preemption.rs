//! DefaultPreemption's choice (upstream's `Evaluator.Preempt`, without
//! PodDisruptionBudgets): on each node where the pod failed for reasons
//! preemption can fix, remove every lower-priority pod, check that the pod
//! fits, reprieve victims from the highest priority down while it still
//! fits, then pick the node whose victims matter least.

use std::sync::Arc;

use crate::framework::{Code, CycleState, Diagnosis, Framework, Status};
use crate::nodeinfo::{NodeInfo, PodInfo};

pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// `Ok(candidate)` or `Err(message)` for the FailedScheduling event
/// (without upstream's "preemption: " prefix and the final period, which
/// the fit error's message adds).
pub fn preempt(
    fw: &Framework,
    state: &CycleState,
    pod: &PodInfo,
    nodes: &[NodeInfo],
    num_all: usize,
    diagnosis: &Diagnosis,
) -> Result<Candidate, String> {
    if pod.spec().preemption_policy.as_deref() == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never".into());
    }
    if let Some(nominated) = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        && let Some(n) = nodes.iter().find(|n| n.name == nominated)
        && n.pods
            .iter()
            .any(|p| p.is_terminating() && p.priority < pod.priority)
    {
        return Err("not eligible due to a terminating pod on the nominated node".into());
    }
    let mut statuses: Vec<Status> = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        if node.node.is_none() {
            continue;
        }
        let failed = diagnosis
            .node_statuses
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, s)| s);
        if failed.is_some_and(|s| s.code == Code::UnschedulableAndUnresolvable) {
            statuses.push(Status::unresolvable(NOT_HELPFUL));
            continue;
        }
        match victims_on(fw, state, pod, node) {
            Ok(victims) => candidates.push(Candidate {
                node: node.name.clone(),
                victims,
            }),
            Err(s) => statuses.push(s),
        }
    }
    if candidates.is_empty() {
        let mut d = Diagnosis {
            num_all_nodes: num_all,
            ..Default::default()
        };
        d.node_statuses = statuses.into_iter().map(|s| (0, s)).collect();
        let msg = d.message();
        return Err(msg.trim_end_matches('.').to_owned());
    }
    Ok(pick(candidates))
}

fn victims_on(
    fw: &Framework,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
) -> Result<Vec<Arc<PodInfo>>, Status> {
    let mut sim = node.clone();
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS));
    }
    for v in &potential {
        sim.remove_pod(&v.uid);
    }
    let s = fw.run_filters(state, pod, &sim);
    if !s.is_success() {
        return Err(s);
    }
    // Reprieve the most important pods first.
    potential.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| start_time(a).cmp(&start_time(b)))
    });
    let mut victims = Vec::new();
    for v in potential {
        sim.add_pod(v.clone());
        if !fw.run_filters(state, pod, &sim).is_success() {
            sim.remove_pod(&v.uid);
            victims.push(v);
        }
    }
    Ok(victims)
}

fn start_time(p: &PodInfo) -> Option<k8s_openapi::jiff::Timestamp> {
    p.pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
}

/// upstream's `pickOneNodeForPreemption` (no PDBs): lowest highest-victim
/// priority, smallest priority sum, fewest victims, latest start.
fn pick(mut candidates: Vec<Candidate>) -> Candidate {
    let key = |c: &Candidate| {
        let highest = c
            .victims
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i32::MIN);
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
            .sum();
        (highest, sum, c.victims.len())
    };
    candidates.sort_by_key(key);
    let best = key(&candidates[0]);
    let mut tied: Vec<Candidate> = candidates
        .into_iter()
        .take_while(|c| key(c) == best)
        .collect();
    // Latest start time of the highest-priority victims wins.
    tied.sort_by_key(|c| {
        std::cmp::Reverse(
            c.victims
                .iter()
                .filter(|v| v.priority == best.0)
                .filter_map(|v| start_time(v))
                .min(),
        )
    });
    tied.swap_remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Configuration;
    use crate::framework::{ClusterView, Outcome, Rng};
    use crate::plugins::testing::node;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod(name: &str, cpu: &str, priority: i32) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p), priority))
    }

    #[test]
    fn evicts_the_fewest_least_important_pods() {
        let fw = Configuration::default().frameworks().unwrap().remove(0);
        let mut cache = crate::cache::Cache::new();
        for (name, pods) in [
            ("a", vec![pod("a1", "1", 10), pod("a2", "1", 1)]),
            ("b", vec![pod("b1", "2", 5)]),
        ] {
            let n = node(
                json!({"metadata": {"name": name}, "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "10"}}}),
            );
            cache.upsert_node(n.node.clone().unwrap());
            for p in pods {
                cache.assume(p, name);
            }
        }
        let high = pod("high", "1", 100);
        let mut state = CycleState::default();
        let view = ClusterView { cache: &cache };
        let Outcome::Unschedulable(d) =
            fw.schedule(&mut state, &high, &view, &mut 0, &mut Rng::new(1))
        else {
            panic!("expected no fit");
        };
        assert_eq!(d.message(), "0/2 nodes are available: 2 Insufficient cpu.");
        let c = preempt(&fw, &state, &high, cache.nodes(), 2, &d)
            .ok()
            .unwrap();
        // Node a loses only its priority-1 pod; node b would lose priority 5.
        assert_eq!(c.node, "a");
        assert_eq!(
            c.victims
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>(),
            ["a2"]
        );
        let low = pod("low", "1", 0);
        let mut state = CycleState::default();
        let Outcome::Unschedulable(d) =
            fw.schedule(&mut state, &low, &view, &mut 0, &mut Rng::new(1))
        else {
            panic!()
        };
        assert_eq!(
            preempt(&fw, &state, &low, cache.nodes(), 2, &d)
                .err()
                .unwrap(),
            "0/2 nodes are available: 2 No preemption victims found for incoming pod"
        );
    }
}
