//! What one object counts against a ResourceQuota (upstream's quota
//! evaluators: pods, services, persistent volume claims, and object counts
//! for everything else).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::quantity::Quantity;

pub type ResourceList = BTreeMap<String, Quantity>;

/// Reads a `ResourceList` JSON map; entries that don't parse are skipped.
pub fn parse_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Quantity::parse(v.as_str()?)?)))
                .collect()
        })
        .unwrap_or_default()
}

pub fn to_json(l: &ResourceList) -> Value {
    Value::Object(
        l.iter()
            .map(|(k, v)| (k.clone(), json!(v.to_string())))
            .collect::<Map<_, _>>(),
    )
}

/// `a + b` for every resource in either.
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, v) in b {
        let sum = out.get(k).copied().unwrap_or_default().add(*v);
        out.insert(k.clone(), sum);
    }
    out
}

/// Upstream's `prettyPrint`: `k=v` sorted by name, comma-separated.
pub fn pretty(l: &ResourceList) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The usage counted under `count/<resource>[.<group>]`.
pub fn object_count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

/// Whether a quota on `resource` counts objects of `group`/`plural`
/// (upstream's evaluators' `MatchingResources`).
pub fn tracks(group: &str, plural: &str, resource: &str) -> bool {
    if resource == object_count_name(group, plural) {
        return true;
    }
    if !group.is_empty() {
        return false;
    }
    match plural {
        "pods" => {
            matches!(resource, "pods" | "cpu" | "memory" | "ephemeral-storage")
                || resource.starts_with("hugepages-")
                || (resource.starts_with("requests.") && resource != "requests.storage")
                || resource.starts_with("limits.")
        }
        "services" => matches!(
            resource,
            "services" | "services.nodeports" | "services.loadbalancers"
        ),
        "persistentvolumeclaims" => {
            matches!(resource, "persistentvolumeclaims" | "requests.storage")
                || resource.contains(".storageclass.storage.k8s.io/")
        }
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => {
            resource == plural
        }
        _ => false,
    }
}

fn one() -> Quantity {
    Quantity::from_int(1)
}

/// What `obj` (of `group`/`plural`) uses, by resource name.
pub fn usage(
    group: &str,
    plural: &str,
    obj: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert(object_count_name(group, plural), one());
    if !group.is_empty() {
        return out;
    }
    match plural {
        "pods" if counts_compute(obj, now) => out.extend(pod_compute(obj)),
        "services" => {
            out.insert("services".into(), one());
            let ty = obj
                .pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            if ty == "LoadBalancer" {
                out.insert("services.loadbalancers".into(), one());
            }
            let allocates = ty == "NodePort"
                || (ty == "LoadBalancer"
                    && obj
                        .pointer("/spec/allocateLoadBalancerNodePorts")
                        .and_then(Value::as_bool)
                        != Some(false));
            if allocates {
                let ports = obj
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map_or(0, |p| p.len());
                out.insert(
                    "services.nodeports".into(),
                    Quantity::from_int(i64::try_from(ports).unwrap_or(i64::MAX)),
                );
            }
        }
        "persistentvolumeclaims" => {
            out.insert("persistentvolumeclaims".into(), one());
            let class = obj
                .pointer("/spec/storageClassName")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty());
            if let Some(c) = class {
                out.insert(
                    format!("{c}.storageclass.storage.k8s.io/persistentvolumeclaims"),
                    one(),
                );
            }
            if let Some(size) = obj
                .pointer("/spec/resources/requests/storage")
                .and_then(Value::as_str)
                .and_then(Quantity::parse)
            {
                out.insert("requests.storage".into(), size);
                if let Some(c) = class {
                    out.insert(
                        format!("{c}.storageclass.storage.k8s.io/requests.storage"),
                        size,
                    );
                }
            }
        }
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => {
            out.insert(plural.to_owned(), one());
        }
        _ => {}
    }
    out
}

/// Upstream's `QuotaV1Pod`: terminal pods, and pods past their deletion
/// grace period, no longer count their compute resources.
fn counts_compute(pod: &Value, now: chrono::DateTime<chrono::Utc>) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    let deleted = pod
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let grace = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    if let (Some(at), Some(grace)) = (deleted, grace)
        && now > at.to_utc() + chrono::Duration::seconds(grace)
    {
        return false;
    }
    true
}

fn resources_of<'a>(c: &'a Value, which: &str) -> Option<&'a Value> {
    c.get("resources").and_then(|r| r.get(which))
}

/// `PodRequests`/`PodLimits`: containers and sidecars add up; a regular init
/// container runs alone beside the sidecars started before it; overhead on top.
fn pod_total(pod: &Value, which: &str) -> ResourceList {
    let list = |key: &str| {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut total = ResourceList::new();
    for c in list("containers") {
        total = add(&total, &parse_list(resources_of(&c, which)));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in list("initContainers") {
        let own = parse_list(resources_of(&c, which));
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            sidecars = add(&sidecars, &own);
            total = add(&total, &own);
        } else {
            for (k, v) in add(&sidecars, &own) {
                let e = init_max.entry(k).or_default();
                if v > *e {
                    *e = v;
                }
            }
        }
    }
    for (k, v) in init_max {
        let e = total.entry(k).or_default();
        if v > *e {
            *e = v;
        }
    }
    let mut overhead = parse_list(pod.pointer("/spec/overhead"));
    if which == "limits" {
        // Overhead raises only the limits that are set.
        overhead.retain(|k, _| total.contains_key(k));
    }
    add(&total, &overhead)
}

/// A resource name outside the `kubernetes.io` domains, such as
/// `example.com/dongle` (upstream's `IsExtendedResourceName`).
fn is_extended(name: &str) -> bool {
    match name.split_once('/') {
        Some((domain, _)) => {
            domain != "kubernetes.io"
                && !domain.ends_with(".kubernetes.io")
                && !name.starts_with("requests.")
        }
        None => false,
    }
}

/// Upstream's `podComputeUsageHelper`.
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), one());
    for r in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(r) {
            out.insert(r.into(), *q);
            out.insert(format!("requests.{r}"), *q);
        }
        if let Some(q) = limits.get(r) {
            out.insert(format!("limits.{r}"), *q);
        }
    }
    for (r, q) in requests {
        if r.starts_with("hugepages-") {
            out.insert(r.clone(), *q);
            out.insert(format!("requests.{r}"), *q);
        } else if is_extended(r) {
            out.insert(format!("requests.{r}"), *q);
        }
    }
    for (r, q) in limits {
        if r.starts_with("hugepages-") {
            out.insert(format!("limits.{r}"), *q);
        }
    }
    out
}

/// A pod's effective requests (upstream's `PodRequests`).
pub fn pod_requests(pod: &Value) -> ResourceList {
    pod_total(pod, "requests")
}

/// A pod's effective limits (upstream's `PodLimits`).
pub fn pod_limits(pod: &Value) -> ResourceList {
    pod_total(pod, "limits")
}

fn pod_compute(pod: &Value) -> ResourceList {
    compute_usage(&pod_total(pod, "requests"), &pod_total(pod, "limits"))
}

/// Resources whose quota obliges every container to state them (upstream's
/// backward-compatibility rule for cpu and memory).
const MUST_SPECIFY: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// Upstream's pod `Constraints`: with a quota on cpu or memory, each
/// container must request (or limit) it. The error reads
/// `must specify cpu for: c1,c2; memory for: c1`.
pub fn pod_constraints(required: &BTreeSet<String>, pod: &Value) -> Result<(), String> {
    let required: BTreeSet<&str> = required
        .iter()
        .map(String::as_str)
        .filter(|r| MUST_SPECIFY.contains(r))
        .collect();
    if required.is_empty() {
        return Ok(());
    }
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for key in ["containers", "initContainers"] {
        for c in pod
            .pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let have = compute_usage(
                &parse_list(resources_of(c, "requests")),
                &parse_list(resources_of(c, "limits")),
            );
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            for r in &required {
                if !have.contains_key(*r) {
                    missing.entry(r).or_default().insert(name.to_owned());
                }
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Err(format!("must specify {}", parts.join("; ")))
}

/// A pod is BestEffort when no container requests or limits cpu or memory.
pub fn is_best_effort(pod: &Value) -> bool {
    ["containers", "initContainers"].iter().all(|key| {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .all(|c| {
                ["requests", "limits"].iter().all(|w| {
                    let l = parse_list(resources_of(c, w));
                    !l.contains_key("cpu") && !l.contains_key("memory")
                })
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(l: &ResourceList) -> Vec<String> {
        l.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn pod_usage_counts_init_containers_sidecars_and_overhead() {
        let pod = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
                {"name": "b", "resources": {"requests": {"cpu": "100m", "example.com/gpu": "1"}}},
            ],
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
                {"name": "big", "resources": {"requests": {"cpu": "1"}}},
            ],
            "overhead": {"cpu": "10m"},
        }});
        let u = usage("", "pods", &pod, chrono::Utc::now());
        assert_eq!(
            names(&u),
            [
                "count/pods=1",
                "cpu=1060m",
                "limits.cpu=210m",
                "memory=64Mi",
                "pods=1",
                "requests.cpu=1060m",
                "requests.example.com/gpu=1",
                "requests.memory=64Mi",
            ]
        );
        let mut done = pod.clone();
        done["status"] = json!({"phase": "Succeeded"});
        assert_eq!(
            names(&usage("", "pods", &done, chrono::Utc::now())),
            ["count/pods=1"]
        );
    }

    #[test]
    fn other_kinds() {
        let now = chrono::Utc::now();
        let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 1}, {"port": 2}]}});
        assert_eq!(
            names(&usage("", "services", &svc, now)),
            ["count/services=1", "services=1", "services.nodeports=2"]
        );
        assert_eq!(
            names(&usage("apps", "replicasets", &json!({}), now)),
            ["count/replicasets.apps=1"]
        );
        assert!(tracks("", "pods", "requests.cpu"));
        assert!(!tracks("", "pods", "requests.storage"));
        assert!(tracks("", "configmaps", "configmaps"));
        assert!(tracks("apps", "deployments", "count/deployments.apps"));
    }

    #[test]
    fn constraints_name_containers_missing_requests() {
        let required: BTreeSet<String> = ["requests.cpu", "pods"].map(String::from).into();
        let pod = json!({"spec": {"containers": [
            {"name": "x", "resources": {"requests": {"cpu": "1"}}},
            {"name": "y"},
        ]}});
        assert_eq!(
            pod_constraints(&required, &pod),
            Err("must specify requests.cpu for: y".to_owned())
        );
    }
}
