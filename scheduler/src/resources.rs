//! Resource amounts as the scheduler counts them: milli-cpu, bytes, pods and
//! extended ("scalar") resources, and a pod's effective requests as
//! upstream's `resourcehelper.PodRequests` computes them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity;

/// Upstream's defaults for containers without a request, used in scoring
/// only (`DefaultMilliCPURequest`, `DefaultMemoryRequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    /// Extended resources, hugepages, attachable volumes.
    pub scalar: BTreeMap<String, i64>,
}

/// Whether `name` is counted as a scalar resource (upstream's
/// `IsScalarResourceName`): extended, hugepages, attachable volumes.
pub fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/') && !name.starts_with("kubernetes.io/"))
}

impl Resource {
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in list.into_iter().flatten() {
            r.add_named(name, &q.0);
        }
        r
    }

    fn add_named(&mut self, name: &str, q: &str) {
        match name {
            "cpu" => self.milli_cpu += quantity::milli_value(q).unwrap_or(0),
            "memory" => self.memory += quantity::value(q).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage += quantity::value(q).unwrap_or(0),
            "pods" => self.allowed_pod_number += quantity::value(q).unwrap_or(0),
            other if is_scalar(other) => {
                *self.scalar.entry(other.to_owned()).or_default() += quantity::value(q).unwrap_or(0)
            }
            _ => {}
        }
    }

    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Per-resource maximum, as upstream's `maxResourceList`.
    pub fn max_with(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }
}

fn container_requests(c: &Container, non_zero: bool) -> Resource {
    let mut r = Resource::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
    // Upstream defaults requests to limits at admission; a pod created
    // without that defaulting still counts its limits as requests.
    if let Some(limits) = c.resources.as_ref().and_then(|r| r.limits.as_ref()) {
        let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        for (name, q) in limits {
            if requests.is_none_or(|req| !req.contains_key(name)) {
                r.add_named(name, &q.0);
            }
        }
    }
    if non_zero {
        let has = |name: &str| {
            let res = c.resources.as_ref();
            res.and_then(|r| r.requests.as_ref())
                .is_some_and(|m| m.contains_key(name))
                || res
                    .and_then(|r| r.limits.as_ref())
                    .is_some_and(|m| m.contains_key(name))
        };
        if !has("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// The pod's effective requests: containers summed, init containers as
/// the maximum over their sequence (sidecars, `restartPolicy: Always`,
/// stay running and add up), pod overhead added. With `non_zero`, missing
/// cpu/memory requests count as upstream's defaults (scoring only).
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = &pod.spec else {
        return Resource::default();
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, non_zero));
    }
    let mut restartable = Resource::default();
    let mut init = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let mut container = container_requests(c, non_zero);
        if c.restart_policy.as_deref() == Some("Always") {
            reqs.add(&container);
            restartable.add(&container);
            container = restartable.clone();
        } else {
            container.add(&restartable);
        }
        init.max_with(&container);
    }
    reqs.max_with(&init);
    // Pod-level resources replace the containers' sum for what they name.
    if let Some(pod_level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        let p = Resource::from_list(Some(pod_level));
        if pod_level.contains_key("cpu") {
            reqs.milli_cpu = p.milli_cpu;
        }
        if pod_level.contains_key("memory") {
            reqs.memory = p.memory;
        }
    }
    if let Some(overhead) = &spec.overhead {
        reqs.add(&Resource::from_list(Some(overhead)));
    }
    reqs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn init_containers_count_as_their_maximum_and_sidecars_add_up() {
        let p = pod(json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m"}}}
            ],
            "initContainers": [
                {"name": "i1", "resources": {"requests": {"cpu": "1", "memory": "100Mi"}}},
                {"name": "s1", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
                {"name": "i2", "resources": {"requests": {"cpu": "500m"}}}
            ],
            "overhead": {"cpu": "10m"}
        }}));
        let r = pod_requests(&p, false);
        // containers 300m + sidecar 50m = 350m; init max(1000, 50, 550) = 1000; + 10m overhead
        assert_eq!(r.milli_cpu, 1010);
        assert_eq!(r.memory, 1 << 30);
    }

    #[test]
    fn non_zero_defaults_apply_per_container() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "a"},
            {"name": "b", "resources": {"requests": {"cpu": "1"}}}
        ]}}));
        let r = pod_requests(&p, true);
        assert_eq!(r.milli_cpu, 1100);
        assert_eq!(r.memory, 2 * DEFAULT_MEMORY_REQUEST);
        assert!(pod_requests(&p, false).memory == 0);
    }

    #[test]
    fn extended_resources_are_scalars() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"example.com/gpu": "2"}, "limits": {"example.com/gpu": "2"}}}
        ]}}));
        assert_eq!(
            pod_requests(&p, false).scalar.get("example.com/gpu"),
            Some(&2)
        );
    }
}
