//! PrioritySort, SchedulingGates, NodeName, NodeUnschedulable.

use std::cmp::Ordering;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{CycleState, Plugin, Point, Status};
use crate::nodeinfo::{NodeInfo, PodInfo};

/// QueueSort: higher priority first, then earlier queued.
pub struct PrioritySort;

impl PrioritySort {
    pub const NAME: &'static str = "PrioritySort";
    pub fn less(
        a_priority: i32,
        a_time: std::time::Instant,
        b_priority: i32,
        b_time: std::time::Instant,
    ) -> Ordering {
        b_priority.cmp(&a_priority).then(a_time.cmp(&b_time))
    }
}

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn points(&self) -> &'static [Point] {
        &[Point::QueueSort]
    }
}

/// PreEnqueue: pods with `spec.schedulingGates` wait outside the active queue.
pub struct SchedulingGates;

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        "SchedulingGates"
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PreEnqueue]
    }
    fn pre_enqueue(&self, pod: &Pod) -> Status {
        let gates = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduling_gates.as_deref())
            .unwrap_or_default();
        if gates.is_empty() {
            return Status::success();
        }
        let names: Vec<&str> = gates.iter().map(|g| g.name.as_str()).collect();
        Status::unresolvable(format!(
            "waiting for scheduling gates: [{}]",
            names.join(" ")
        ))
    }
}

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }
    fn points(&self) -> &'static [Point] {
        &[Point::Filter]
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let want = pod.node_name();
        if want.is_empty() || want == node.name {
            Status::success()
        } else {
            Status::unresolvable("node(s) didn't match the requested node name")
        }
    }
}

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }
    fn points(&self) -> &'static [Point] {
        &[Point::Filter]
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable {
            return Status::success();
        }
        // Tolerating the unschedulable taint lets the pod in anyway.
        let tolerated = pod.spec().tolerations.iter().flatten().any(|t| {
            crate::plugins::taint_toleration::tolerates(
                t,
                "node.kubernetes.io/unschedulable",
                None,
                "NoSchedule",
            )
        });
        if tolerated {
            Status::success()
        } else {
            Status::unresolvable("node(s) were unschedulable")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn node_name_must_match() {
        let s = CycleState::default();
        let n = node(json!({"metadata": {"name": "n1"}}));
        assert!(
            NodeName
                .filter(&s, &pod(json!({"spec": {}})), &n)
                .is_success()
        );
        assert!(
            NodeName
                .filter(&s, &pod(json!({"spec": {"nodeName": "n1"}})), &n)
                .is_success()
        );
        let r = NodeName.filter(&s, &pod(json!({"spec": {"nodeName": "n2"}})), &n);
        assert_eq!(r.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(r.reasons, ["node(s) didn't match the requested node name"]);
    }

    #[test]
    fn unschedulable_nodes_unless_tolerated() {
        let s = CycleState::default();
        let n = node(json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}}));
        let r = NodeUnschedulable.filter(&s, &pod(json!({"spec": {}})), &n);
        assert_eq!(r.reasons, ["node(s) were unschedulable"]);
        let tolerant = pod(
            json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}),
        );
        assert!(NodeUnschedulable.filter(&s, &tolerant, &n).is_success());
    }

    #[test]
    fn gates_hold_pods_back() {
        let p = pod(json!({"spec": {"schedulingGates": [{"name": "a"}]}}));
        assert!(!SchedulingGates.pre_enqueue(&p.pod).is_success());
    }

    #[test]
    fn priority_sort_orders_by_priority_then_time() {
        let t0 = std::time::Instant::now();
        let t1 = t0 + std::time::Duration::from_secs(1);
        assert_eq!(PrioritySort::less(10, t1, 5, t0), Ordering::Less);
        assert_eq!(PrioritySort::less(5, t0, 5, t1), Ordering::Less);
    }
}
