//! What the scheduler knows about a pod and a node, computed once when the
//! object arrives so that filtering thousands of nodes per pod does no
//! parsing and no cloning.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};

use crate::affinity::{AffinityTerm, WeightedAffinityTerm};
use crate::labels::{Labels, labels_of};
use crate::resources::{Resource, pod_requests};

/// A host port as upstream's `HostPortInfo` keys it; ip "" is 0.0.0.0.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// 0.0.0.0 conflicts with every address, as upstream's `CheckConflict`.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub requests: Resource,
    /// Requests with upstream's non-zero defaults, for scoring.
    pub non_zero_requests: Resource,
    /// `spec.priority`, or resolved from the PriorityClass when the API
    /// server left it unset.
    pub priority: i32,
    pub host_ports: Vec<HostPort>,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>, priority: i32) -> PodInfo {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let mut host_ports = Vec::new();
        if let Some(spec) = &pod.spec {
            let containers = spec.containers.iter().chain(
                spec.init_containers
                    .iter()
                    .flatten()
                    .filter(|c| c.restart_policy.as_deref() == Some("Always")),
            );
            for c in containers {
                for p in c.ports.iter().flatten() {
                    if p.host_port.unwrap_or(0) <= 0 {
                        continue;
                    }
                    host_ports.push(HostPort {
                        ip: p
                            .host_ip
                            .clone()
                            .filter(|ip| !ip.is_empty())
                            .unwrap_or_else(|| "0.0.0.0".into()),
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        port: p.host_port.unwrap_or(0),
                    });
                }
            }
        }
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        PodInfo {
            uid: meta.uid.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            priority,
            host_ports,
            required_affinity: AffinityTerm::required(
                pa.and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_deref()
                }),
                &namespace,
            ),
            required_anti_affinity: AffinityTerm::required(
                paa.and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_deref()
                }),
                &namespace,
            ),
            preferred_affinity: WeightedAffinityTerm::preferred(
                pa.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_deref()
                }),
                &namespace,
            ),
            preferred_anti_affinity: WeightedAffinityTerm::preferred(
                paa.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_deref()
                }),
                &namespace,
            ),
            namespace,
            pod,
        }
    }

    pub fn labels(&self) -> &Labels {
        labels_of(&self.pod.metadata)
    }

    pub fn has_affinity(&self) -> bool {
        !self.required_affinity.is_empty()
            || !self.required_anti_affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }

    pub fn spec(&self) -> &k8s_openapi::api::core::v1::PodSpec {
        static EMPTY: std::sync::OnceLock<k8s_openapi::api::core::v1::PodSpec> =
            std::sync::OnceLock::new();
        self.pod
            .spec
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
    }

    pub fn node_name(&self) -> &str {
        self.spec().node_name.as_deref().unwrap_or_default()
    }

    pub fn is_terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }
}

/// A node's image, with how many nodes have it (for ImageLocality's spread).
#[derive(Clone, Debug, Default)]
pub struct ImageState {
    pub size: i64,
    pub num_nodes: usize,
}

#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    /// `None` for a node only known from pods bound to it.
    pub node: Option<Arc<Node>>,
    pub name: String,
    pub allocatable: Resource,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub requested: Resource,
    pub non_zero_requested: Resource,
    pub pods: Vec<Arc<PodInfo>>,
    /// Pods here with any (anti-)affinity, and with required anti-affinity:
    /// what InterPodAffinity looks at.
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    pub used_ports: Vec<HostPort>,
    /// Normalized image name → size.
    pub images: HashMap<String, i64>,
}

/// `docker.io/library/nginx` and `nginx` and `nginx:latest` are one image
/// for ImageLocality: upstream appends `:latest` to untagged names.
pub fn normalized_image_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

impl NodeInfo {
    pub fn empty(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        let status = node.status.as_ref();
        self.allocatable = Resource::from_list(status.and_then(|s| s.allocatable.as_ref()));
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.images.clear();
        for image in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in image.names.iter().flatten() {
                self.images
                    .insert(normalized_image_name(name), image.size_bytes.unwrap_or(0));
            }
        }
        self.node = Some(node);
    }

    pub fn labels(&self) -> &Labels {
        static EMPTY: Labels = Labels::new();
        self.node
            .as_ref()
            .map(|n| labels_of(&n.metadata))
            .unwrap_or(&EMPTY)
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.requested.allowed_pod_number += 1;
        self.non_zero_requested.milli_cpu += pod.non_zero_requests.milli_cpu;
        self.non_zero_requested.memory += pod.non_zero_requests.memory;
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if pod.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.pods.push(pod);
    }

    /// Removes the pod with `uid`; `false` when it was not here.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.uid == uid) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.requested.allowed_pod_number -= 1;
        self.non_zero_requested.milli_cpu -= pod.non_zero_requests.milli_cpu;
        self.non_zero_requested.memory -= pod.non_zero_requests.memory;
        for port in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|p| p == port) {
                self.used_ports.swap_remove(j);
            }
        }
        if pod.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        true
    }
}
