//! The default plugins, with upstream's names, reasons and scores.

pub mod fit;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_basics;
pub mod node_ports;
pub mod pod_topology_spread;
pub mod taint_toleration;

#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Node, Pod};

    use crate::cache::Cache;
    use crate::nodeinfo::{NodeInfo, PodInfo};

    pub fn pod(v: serde_json::Value) -> PodInfo {
        let mut v = v;
        if v.get("metadata").is_none() {
            v["metadata"] = serde_json::json!({"name": "p", "namespace": "default", "uid": "u-p"});
        }
        if v.pointer("/spec/containers").is_none() {
            v["spec"]["containers"] = serde_json::json!([{"name": "c"}]);
        }
        let p: Pod = serde_json::from_value(v).unwrap();
        PodInfo::new(Arc::new(p), 0)
    }

    pub fn node(v: serde_json::Value) -> NodeInfo {
        let n: Node = serde_json::from_value(v).unwrap();
        let mut info = NodeInfo::empty(n.metadata.name.as_deref().unwrap_or("n"));
        info.set_node(Arc::new(n));
        info
    }

    pub fn cache() -> Cache {
        Cache::new()
    }
}
