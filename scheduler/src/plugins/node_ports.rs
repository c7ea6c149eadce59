//! NodePorts: a host port (ip, protocol, port) may be used once per node;
//! 0.0.0.0 conflicts with every address.

use crate::framework::{ClusterView, CycleState, Plugin, Point, Status};
use crate::nodeinfo::{NodeInfo, PodInfo};

pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }
    fn points(&self) -> &'static [Point] {
        &[Point::PreFilter, Point::Filter]
    }
    fn pre_filter(&self, _: &mut CycleState, pod: &PodInfo, _: &ClusterView) -> Status {
        if pod.host_ports.is_empty() {
            Status::skip()
        } else {
            Status::success()
        }
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let conflict = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if conflict {
            Status::unschedulable("node(s) didn't have free ports for the requested pod ports")
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    fn with_port(ip: &str, port: i32) -> PodInfo {
        pod(
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": port, "hostIP": ip}]}]}}),
        )
    }

    #[test]
    fn same_port_and_protocol_conflicts_when_either_ip_is_wildcard() {
        let s = CycleState::default();
        let mut n = node(json!({"metadata": {"name": "n"}}));
        n.add_pod(Arc::new(with_port("127.0.0.1", 54321)));
        assert!(
            !NodePorts
                .filter(&s, &with_port("0.0.0.0", 54321), &n)
                .is_success()
        );
        assert!(
            !NodePorts
                .filter(&s, &with_port("127.0.0.1", 54321), &n)
                .is_success()
        );
        assert!(
            NodePorts
                .filter(&s, &with_port("127.0.0.2", 54321), &n)
                .is_success()
        );
        assert!(
            NodePorts
                .filter(&s, &with_port("0.0.0.0", 54322), &n)
                .is_success()
        );
        let r = NodePorts.filter(&s, &with_port("", 54321), &n);
        assert_eq!(
            r.reasons,
            ["node(s) didn't have free ports for the requested pod ports"]
        );
    }
}
