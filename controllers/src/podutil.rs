//! Pod and ownership helpers shared by the workload controllers (upstream
//! `pkg/controller/controller_utils.go` and `pkg/api/v1/pod`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// A label selector in the form controllers use it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    pub match_labels: BTreeMap<String, String>,
    pub expressions: Vec<LabelSelectorRequirement>,
}

impl Selector {
    pub fn from_label_selector(s: &LabelSelector) -> Self {
        Selector {
            match_labels: s.match_labels.clone().unwrap_or_default(),
            expressions: s.match_expressions.clone().unwrap_or_default(),
        }
    }

    pub fn from_map(m: &BTreeMap<String, String>) -> Self {
        Selector {
            match_labels: m.clone(),
            expressions: vec![],
        }
    }

    /// Upstream refuses to let an empty selector select anything for
    /// workload controllers (it would select every pod in the namespace).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.expressions.is_empty()
    }

    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let empty = BTreeMap::new();
        let labels = labels.unwrap_or(&empty);
        if !self
            .match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            return false;
        }
        self.expressions.iter().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let got = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => got.is_some_and(|v| values.contains(v)),
                "NotIn" => got.is_none_or(|v| !values.contains(v)),
                "Exists" => got.is_some(),
                "DoesNotExist" => got.is_none(),
                // An unknown operator selects nothing, as upstream's parser
                // rejects it.
                _ => false,
            }
        })
    }
}

/// The controlling owner reference, if any.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|r| r.controller == Some(true))
}

/// The owner reference a controller puts on what it creates or adopts.
pub fn new_controller_ref(api_version: &str, kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        uid: uid.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Upstream `FilterActivePods`: not finished and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// The pod's Ready condition's transition time when it is Ready=True.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    pod.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Upstream `IsPodAvailable`: ready for at least `min_ready_seconds`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since
            .checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
            .is_ok_and(|t| t <= now),
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}

fn phase_rank(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

/// Upstream's `ActivePods` order: the pods to delete first come first —
/// unassigned before assigned, Pending before Unknown before Running,
/// not-ready before ready, ready for less time before longer, more
/// restarts before fewer, newer before older (then generated before
/// adopted).
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let assigned = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    assigned(a)
        .cmp(&assigned(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| {
            // Both ready: the more recently ready first.
            match (ready_since(a).flatten(), ready_since(b).flatten()) {
                (Some(x), Some(y)) => y.cmp(&x),
                _ => Ordering::Equal,
            }
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(b).cmp(&created(a))
        })
        .then_with(|| {
            // Timestamps have second granularity: when they tie, a pod the
            // controller generated goes before one it adopted (a user made
            // that one by name), so adoption right after creation keeps it.
            let generated = |p: &Pod| p.metadata.generate_name.is_some();
            generated(b).cmp(&generated(a))
        })
}

/// Upstream's slow start: creations go in batches of 1, 2, 4, … and stop at
/// the first batch with a failure. Returns the batch sizes for `count`.
pub fn slow_start_batches(count: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut remaining = count;
    let mut size = 1;
    while remaining > 0 {
        let batch = size.min(remaining);
        out.push(batch);
        remaining -= batch;
        size *= 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn pod(name: &str, node: bool, phase: &str, ready_at: Option<i64>, created: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(ts(created))),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.then(|| "n1".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_at.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(ts(t))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    fn order(mut pods: Vec<Pod>) -> Vec<String> {
        pods.sort_by(deletion_order);
        pods.into_iter().map(|p| p.metadata.name.unwrap()).collect()
    }

    #[test]
    fn deletion_ranking() {
        let pods = vec![
            pod("running-ready-old", true, "Running", Some(100), 10),
            pod("unassigned", false, "Pending", None, 10),
            pod("pending", true, "Pending", None, 10),
            pod("unknown", true, "Unknown", None, 10),
            pod("running-notready", true, "Running", None, 10),
            pod("running-ready-recent", true, "Running", Some(200), 10),
        ];
        assert_eq!(
            order(pods),
            [
                "unassigned",
                "pending",
                "unknown",
                "running-notready",
                "running-ready-recent",
                "running-ready-old"
            ]
        );
        let pods = vec![
            pod("old", true, "Running", None, 10),
            pod("new", true, "Running", None, 20),
        ];
        assert_eq!(order(pods), ["new", "old"]);
        let mut generated = pod("generated", true, "Running", None, 10);
        generated.metadata.generate_name = Some("rc-".into());
        let pods = vec![pod("adopted", true, "Running", None, 10), generated];
        assert_eq!(order(pods), ["generated", "adopted"]);
    }

    #[test]
    fn availability() {
        let p = pod("p", true, "Running", Some(100), 10);
        assert!(is_available(&p, 0, ts(100)));
        assert!(!is_available(&p, 10, ts(105)));
        assert!(is_available(&p, 10, ts(110)));
        assert!(!is_available(&pod("q", true, "Running", None, 1), 0, ts(1)));
    }

    #[test]
    fn slow_start() {
        assert_eq!(slow_start_batches(0), Vec::<usize>::new());
        assert_eq!(slow_start_batches(1), [1]);
        assert_eq!(slow_start_batches(10), [1, 2, 4, 3]);
        assert_eq!(slow_start_batches(15), [1, 2, 4, 8]);
    }

    #[test]
    fn selectors() {
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let s = Selector::from_map(&labels);
        assert!(s.matches(Some(&labels)));
        assert!(!s.matches(None));
        let s = Selector {
            match_labels: BTreeMap::new(),
            expressions: vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }],
        };
        assert!(s.matches(Some(&labels)));
        assert!(s.matches(None));
    }
}
