//! NodeResourcesFit (filter and the LeastAllocated / MostAllocated /
//! RequestedToCapacityRatio scoring strategies) and
//! NodeResourcesBalancedAllocation.

use crate::framework::{ClusterView, CycleState, MAX_NODE_SCORE, Plugin, Point, Status};
use crate::nodeinfo::{NodeInfo, PodInfo};

#[derive(Clone, Debug, PartialEq)]
pub enum Strategy {
    LeastAllocated,
    MostAllocated,
    /// Shape points (utilization 0..=100, score 0..=10) as upstream's args.
    RequestedToCapacityRatio(Vec<(i64, i64)>),
}

#[derive(Clone, Debug)]
pub struct NodeResourcesFit {
    pub strategy: Strategy,
    /// (resource name, weight); upstream's default is cpu and memory, 1 each.
    pub resources: Vec<(String, i64)>,
}

impl Default for NodeResourcesFit {
    fn default() -> Self {
        NodeResourcesFit {
            strategy: Strategy::LeastAllocated,
            resources: vec![("cpu".into(), 1), ("memory".into(), 1)],
        }
    }
}

/// (reason, unresolvable) for each resource that does not fit.
pub fn insufficient(pod: &PodInfo, node: &NodeInfo) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let alloc = &node.allocatable;
    let used = &node.requested;
    if used.allowed_pod_number + 1 > alloc.allowed_pod_number {
        out.push(("Too many pods".to_string(), false));
    }
    let req = &pod.requests;
    let mut check = |name: &str, want: i64, have: i64, used: i64| {
        if want > 0 && want > have - used {
            out.push((format!("Insufficient {name}"), want > have));
        }
    };
    check("cpu", req.milli_cpu, alloc.milli_cpu, used.milli_cpu);
    check("memory", req.memory, alloc.memory, used.memory);
    check(
        "ephemeral-storage",
        req.ephemeral_storage,
        alloc.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (name, want) in &req.scalar {
        check(name, *want, alloc.get(name), used.get(name));
    }
    out
}

/// (requested incl. the pod, allocatable) for scoring one resource.
fn amounts(pod: &PodInfo, node: &NodeInfo, name: &str, non_zero: bool) -> (i64, i64) {
    let alloc = node.allocatable.get(name);
    let requested = match (name, non_zero) {
        ("cpu", true) => node.non_zero_requested.milli_cpu + pod.non_zero_requests.milli_cpu,
        ("memory", true) => node.non_zero_requested.memory + pod.non_zero_requests.memory,
        _ => node.requested.get(name) + pod.requests.get(name),
    };
    (requested, alloc)
}

fn broken_linear(shape: &[(i64, i64)], p: i64) -> i64 {
    for (i, &(u, s)) in shape.iter().enumerate() {
        if p <= u {
            if i == 0 {
                return shape[0].1;
            }
            let (u0, s0) = shape[i - 1];
            return s0 + (s - s0) * (p - u0) / (u - u0);
        }
        let _ = s;
    }
    shape.last().map(|s| s.1).unwrap_or(0)
}

impl NodeResourcesFit {
    pub fn resource_score(&self, requested: i64, capacity: i64) -> i64 {
        match &self.strategy {
            Strategy::LeastAllocated => {
                if capacity == 0 || requested > capacity {
                    0
                } else {
                    (capacity - requested) * MAX_NODE_SCORE / capacity
                }
            }
            Strategy::MostAllocated => {
                if capacity == 0 {
                    0
                } else {
                    requested.min(capacity) * MAX_NODE_SCORE / capacity
                }
            }
            Strategy::RequestedToCapacityRatio(shape) => {
                let scaled: Vec<(i64, i64)> = shape
                    .iter()
                    .map(|(u, s)| (*u, s * MAX_NODE_SCORE / 10))
                    .collect();
                if capacity == 0 {
                    return broken_linear(&scaled, 100);
                }
                broken_linear(&scaled, (requested * 100 / capacity).min(100))
            }
        }
    }
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }
    fn points(&self) -> &'static [Point] {
        &[
            Point::PreFilter,
            Point::Filter,
            Point::PreScore,
            Point::Score,
        ]
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let bad = insufficient(pod, node);
        if bad.is_empty() {
            return Status::success();
        }
        let unresolvable = bad.iter().any(|(_, u)| *u);
        let mut s = Status::unschedulable(String::new());
        if unresolvable {
            s.code = crate::framework::Code::UnschedulableAndUnresolvable;
        }
        s.reasons = bad.into_iter().map(|(r, _)| r).collect();
        s
    }
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &ClusterView) -> i64 {
        let (mut total, mut weights) = (0, 0);
        for (name, weight) in &self.resources {
            let (requested, alloc) = amounts(pod, node, name, true);
            if alloc == 0 {
                // Resources the node does not have are not scored.
                continue;
            }
            total += self.resource_score(requested, alloc) * weight;
            weights += weight;
        }
        if weights == 0 { 0 } else { total / weights }
    }
}

/// NodeResourcesBalancedAllocation: favours nodes whose cpu and memory
/// fractions stay close to each other once the pod is placed.
pub struct BalancedAllocation {
    pub resources: Vec<String>,
}

impl Default for BalancedAllocation {
    fn default() -> Self {
        BalancedAllocation {
            resources: vec!["cpu".into(), "memory".into()],
        }
    }
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PreScore, Point::Score]
    }
    fn pre_score(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &[&NodeInfo],
        _: &ClusterView,
    ) -> Status {
        // Best-effort pods are skipped, as upstream.
        if pod.requests.is_zero() {
            Status::skip()
        } else {
            Status::success()
        }
    }
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &ClusterView) -> i64 {
        let mut fractions = Vec::with_capacity(self.resources.len());
        for name in &self.resources {
            let (requested, alloc) = amounts(pod, node, name, false);
            if alloc == 0 {
                continue;
            }
            fractions.push((requested as f64 / alloc as f64).min(1.0));
        }
        let std = match fractions.len() {
            0 | 1 => 0.0,
            2 => (fractions[0] - fractions[1]).abs() / 2.0,
            n => {
                let mean = fractions.iter().sum::<f64>() / n as f64;
                (fractions.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / n as f64).sqrt()
            }
        };
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{cache, node, pod};
    use serde_json::json;

    fn n(cpu: &str, mem: &str, pods: &str) -> NodeInfo {
        node(
            json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": pods}}}),
        )
    }

    fn req(cpu: &str, mem: &str) -> PodInfo {
        pod(
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}}),
        )
    }

    #[test]
    fn filter_reports_each_insufficient_resource() {
        let s = CycleState::default();
        let mut node = n("2", "4Gi", "110");
        node.add_pod(Arc::new(req("1500m", "1Gi")));
        let fit = NodeResourcesFit::default();
        assert!(fit.filter(&s, &req("500m", "1Gi"), &node).is_success());
        let r = fit.filter(&s, &req("1", "4Gi"), &node);
        assert_eq!(r.code, Code::Unschedulable);
        assert_eq!(r.reasons, ["Insufficient cpu", "Insufficient memory"]);
        // More than the node has at all: no amount of preemption helps.
        let r = fit.filter(&s, &req("3", "1Mi"), &node);
        assert_eq!(r.code, Code::UnschedulableAndUnresolvable);
        let full = n("2", "4Gi", "1");
        let mut full = full;
        full.add_pod(Arc::new(req("0", "0")));
        assert_eq!(
            fit.filter(&s, &req("0", "0"), &full).reasons,
            ["Too many pods"]
        );
    }

    #[test]
    fn scoring_strategies() {
        let s = CycleState::default();
        let c = cache();
        let view = ClusterView { cache: &c };
        let node = n("4", "8Gi", "110");
        let p = req("1", "2Gi");
        assert_eq!(NodeResourcesFit::default().score(&s, &p, &node, &view), 75);
        let most = NodeResourcesFit {
            strategy: Strategy::MostAllocated,
            ..Default::default()
        };
        assert_eq!(most.score(&s, &p, &node, &view), 25);
        let ratio = NodeResourcesFit {
            strategy: Strategy::RequestedToCapacityRatio(vec![(0, 0), (100, 10)]),
            ..Default::default()
        };
        assert_eq!(ratio.score(&s, &p, &node, &view), 25);
        // Best-effort pods count upstream's defaults (100m, 200Mi).
        let be = pod(json!({"spec": {}}));
        let expected = ((4000 - 100) * 100 / 4000 + (8192 - 200) * 100 / 8192) / 2;
        assert_eq!(
            NodeResourcesFit::default().score(&s, &be, &node, &view),
            expected
        );
    }

    #[test]
    fn balanced_allocation_prefers_even_fractions() {
        let s = CycleState::default();
        let c = cache();
        let view = ClusterView { cache: &c };
        let node = n("4", "8Gi", "110");
        assert_eq!(
            BalancedAllocation::default().score(&s, &req("2", "4Gi"), &node, &view),
            100
        );
        assert_eq!(
            BalancedAllocation::default().score(&s, &req("4", "0"), &node, &view),
            50
        );
    }
}
