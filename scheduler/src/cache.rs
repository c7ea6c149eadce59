//! The scheduler's cache: every node with the pods bound (or assumed) to
//! it. A pod is *assumed* onto its node as soon as the scheduling cycle
//! picks it, so the next pod sees its resources before the bind lands; the
//! watch event of the bound pod then confirms it, and a failed bind forgets it.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::affinity::NamespaceLabels;
use crate::nodeinfo::{ImageState, NodeInfo, PodInfo};

#[derive(Debug)]
struct PodState {
    node: String,
    assumed: bool,
}

#[derive(Debug, Default)]
pub struct Cache {
    /// Node infos in a stable order; `index` finds them by name.
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    pods: HashMap<String, PodState>,
    /// Normalized image name → number of nodes with it.
    image_nodes: HashMap<String, usize>,
    /// Nodes that have a Node object (the ones pods may land on).
    node_count: usize,
    /// Pending pods nominated to a node by preemption (upstream's
    /// nominator): pods of lower priority must leave them the room.
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    nominated_node: HashMap<String, String>,
    pub namespaces: NamespaceLabels,
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// All entries, including nodes only known from their pods
    /// (`node == None`), which filters skip.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    pub fn node_count(&self) -> usize {
        self.node_count
    }

    pub fn get(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    pub fn image_state(&self, image: &str, size: i64) -> ImageState {
        ImageState {
            size,
            num_nodes: self.image_nodes.get(image).copied().unwrap_or(0),
        }
    }

    fn entry(&mut self, name: &str) -> &mut NodeInfo {
        let i = match self.index.get(name) {
            Some(i) => *i,
            None => {
                self.nodes.push(NodeInfo::empty(name));
                self.index.insert(name.to_owned(), self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        };
        &mut self.nodes[i]
    }

    fn remove_entry_if_empty(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        if self.nodes[i].node.is_some() || !self.nodes[i].pods.is_empty() {
            return;
        }
        self.index.remove(name);
        self.nodes.swap_remove(i);
        if i < self.nodes.len() {
            self.index.insert(self.nodes[i].name.clone(), i);
        }
    }

    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let info = self.entry(&name);
        let had = info.node.is_some();
        let old_images: Vec<String> = info.images.keys().cloned().collect();
        info.set_node(node);
        let new_images: Vec<String> = info.images.keys().cloned().collect();
        if !had {
            self.node_count += 1;
        }
        for image in old_images {
            if let Some(n) = self.image_nodes.get_mut(&image) {
                *n = n.saturating_sub(1);
            }
        }
        for image in new_images {
            *self.image_nodes.entry(image).or_default() += 1;
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        let info = &mut self.nodes[i];
        if info.node.take().is_some() {
            self.node_count -= 1;
        }
        let images: Vec<String> = info.images.drain().map(|(k, _)| k).collect();
        for image in images {
            if let Some(n) = self.image_nodes.get_mut(&image) {
                *n = n.saturating_sub(1);
            }
        }
        self.remove_entry_if_empty(name);
    }

    /// Puts the pod on `node` before its binding is written.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) {
        if self.pods.contains_key(&pod.uid) {
            return;
        }
        self.unnominate(&pod.uid);
        self.pods.insert(
            pod.uid.clone(),
            PodState {
                node: node.to_owned(),
                assumed: true,
            },
        );
        self.entry(node).add_pod(pod);
    }

    /// Undoes [`Self::assume`] after a failed bind.
    pub fn forget(&mut self, uid: &str) {
        if let Some(state) = self.pods.get(uid)
            && state.assumed
        {
            let node = state.node.clone();
            self.pods.remove(uid);
            if let Some(&i) = self.index.get(&node) {
                self.nodes[i].remove_pod(uid);
            }
            self.remove_entry_if_empty(&node);
        }
    }

    pub fn get_pod_node(&self, uid: &str) -> Option<&str> {
        self.pods.get(uid).map(|s| s.node.as_str())
    }

    pub fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).is_some_and(|s| s.assumed)
    }

    /// A bound pod as the watch reports it (added or updated): replaces
    /// the assumed or previous copy.
    pub fn upsert_pod(&mut self, pod: Arc<PodInfo>) {
        let node = pod.node_name().to_owned();
        self.remove_pod(&pod.uid);
        self.unnominate(&pod.uid);
        self.pods.insert(
            pod.uid.clone(),
            PodState {
                node: node.clone(),
                assumed: false,
            },
        );
        self.entry(&node).add_pod(pod);
    }

    pub fn remove_pod(&mut self, uid: &str) {
        self.unnominate(uid);
        if let Some(state) = self.pods.remove(uid) {
            if let Some(&i) = self.index.get(&state.node) {
                self.nodes[i].remove_pod(uid);
            }
            self.remove_entry_if_empty(&state.node);
        }
    }

    /// Records that `pod` waits for room on `node` (from preemption, or a
    /// `nominatedNodeName` seen on a pending pod).
    pub fn nominate(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.unnominate(&pod.uid);
        self.nominated_node.insert(pod.uid.clone(), node.to_owned());
        self.nominated.entry(node.to_owned()).or_default().push(pod);
    }

    pub fn unnominate(&mut self, uid: &str) {
        let Some(node) = self.nominated_node.remove(uid) else {
            return;
        };
        if let Some(list) = self.nominated.get_mut(&node) {
            list.retain(|p| p.uid != uid);
            if list.is_empty() {
                self.nominated.remove(&node);
            }
        }
    }

    /// The pods nominated to `node`.
    pub fn nominated_on(&self, node: &str) -> &[Arc<PodInfo>] {
        if self.nominated.is_empty() {
            // The usual case: no hashing per node on the hot path.
            return &[];
        }
        self.nominated.get(node).map_or(&[], Vec::as_slice)
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod(uid: &str, node: &str, cpu: &str) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": uid, "namespace": "default", "uid": uid},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p), 0))
    }

    #[test]
    fn assumed_pods_count_until_forgotten_or_confirmed() {
        let mut cache = Cache::new();
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
        cache.upsert_node(Arc::new(node));
        cache.assume(pod("a", "", "500m"), "n1");
        assert_eq!(cache.get("n1").unwrap().requested.milli_cpu, 500);
        assert!(cache.is_assumed("a"));
        cache.forget("a");
        assert_eq!(cache.get("n1").unwrap().requested.milli_cpu, 0);
        cache.assume(pod("a", "", "500m"), "n1");
        cache.upsert_pod(pod("a", "n1", "500m"));
        assert!(!cache.is_assumed("a"));
        assert_eq!(cache.get("n1").unwrap().requested.milli_cpu, 500);
        assert_eq!(cache.get("n1").unwrap().pods.len(), 1);
        cache.remove_pod("a");
        assert_eq!(cache.get("n1").unwrap().pods.len(), 0);
    }

    #[test]
    fn pods_may_arrive_before_their_node() {
        let mut cache = Cache::new();
        cache.upsert_pod(pod("a", "n2", "1"));
        assert_eq!(cache.node_count(), 0);
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n2"}})).unwrap();
        cache.upsert_node(Arc::new(node));
        assert_eq!(cache.node_count(), 1);
        assert_eq!(cache.get("n2").unwrap().requested.milli_cpu, 1000);
        cache.remove_node("n2");
        assert!(cache.get("n2").is_some(), "kept for its pod");
        cache.remove_pod("a");
        assert!(cache.get("n2").is_none());
    }
}
