//! Taint eviction controller (upstream `taint-eviction-controller`): pods
//! on a node with NoExecute taints they do not tolerate are deleted at
//! once; pods that tolerate them for `tolerationSeconds` are deleted that
//! long after the controller first saw them there (the smallest of their
//! matching tolerations'); tolerations without `tolerationSeconds` keep the
//! pod forever. Before deleting, a pod gets upstream's `DisruptionTarget`
//! condition.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::api_code;
use crate::events::Recorder;
use crate::informer::Informers;
use crate::metrics::{self, Queue};
use crate::nodelifecycle::NO_EXECUTE;

/// Upstream `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// When a pod must leave a node with these NoExecute taints: `None` to stay
/// (tolerated forever, or no taints), `Some(ZERO)` at once, else after the
/// smallest `tolerationSeconds` among the tolerations used (upstream's
/// `getMinTolerationTime`).
pub fn eviction_delay(tolerations: &[Toleration], taints: &[&Taint]) -> Option<Duration> {
    if taints.is_empty() {
        return None;
    }
    let mut min: Option<Duration> = None;
    for taint in taints {
        let used: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if used.is_empty() {
            return Some(Duration::ZERO);
        }
        for t in used {
            if let Some(secs) = t.toleration_seconds {
                let d = Duration::from_secs(secs.max(0) as u64);
                min = Some(min.map_or(d, |m| m.min(d)));
            }
        }
    }
    min
}

struct Evictor {
    client: Client,
    nodes: Store<Node>,
    pods: Store<Pod>,
    /// Pods waiting out a toleration: since when, keyed by uid.
    pending: HashMap<String, (Instant, Arc<Pod>)>,
    recorder: Recorder,
}

impl Evictor {
    /// One pass; returns how long until the next scheduled eviction.
    async fn pass(&mut self, queue: &Queue) -> Option<Duration> {
        let tainted: HashMap<String, Vec<Taint>> = self
            .nodes
            .state()
            .iter()
            .filter_map(|n| {
                let taints: Vec<Taint> = n
                    .spec
                    .as_ref()?
                    .taints
                    .as_deref()?
                    .iter()
                    .filter(|t| t.effect == NO_EXECUTE)
                    .cloned()
                    .collect();
                (!taints.is_empty()).then(|| (n.name_any(), taints))
            })
            .collect();
        let mut next: Option<Duration> = None;
        let mut still = HashMap::new();
        let mut evicted = HashSet::new();
        let pods = if tainted.is_empty() {
            vec![]
        } else {
            self.pods.state()
        };
        for pod in pods {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(taints) = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .and_then(|n| tainted.get(n))
            else {
                continue;
            };
            let tolerations = pod
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.clone())
                .unwrap_or_default();
            let taints: Vec<&Taint> = taints.iter().collect();
            let Some(delay) = eviction_delay(&tolerations, &taints) else {
                continue;
            };
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let since = self
                .pending
                .get(&uid)
                .map(|(since, _)| *since)
                .unwrap_or_else(Instant::now);
            let elapsed = since.elapsed();
            if elapsed >= delay {
                let key = metrics::key(pod.as_ref());
                queue.add(&key);
                let started = queue.start(&key);
                let ok = self.evict(&pod).await;
                queue.done(started, ok);
                if ok {
                    evicted.insert(uid);
                } else {
                    still.insert(uid, (since, pod.clone()));
                    next = Some(
                        next.map_or(Duration::from_secs(1), |n| n.min(Duration::from_secs(1))),
                    );
                }
            } else {
                still.insert(uid, (since, pod.clone()));
                let left = delay - elapsed;
                next = Some(next.map_or(left, |n| n.min(left)));
            }
        }
        // Pods no longer due for eviction (taint gone or now tolerated).
        for (uid, (_, pod)) in std::mem::replace(&mut self.pending, still) {
            if !self.pending.contains_key(&uid)
                && !evicted.contains(&uid)
                && self
                    .pods
                    .get(&kube::runtime::reflector::ObjectRef::from_obj(pod.as_ref()))
                    .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
            {
                self.recorder.record(
                    pod.as_ref(),
                    "Normal",
                    "TaintManagerEviction",
                    format!("Cancelling deletion of Pod {}", metrics::key(pod.as_ref())),
                );
            }
        }
        next
    }

    async fn evict(&self, pod: &Pod) -> bool {
        let name = pod.name_any();
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let patch = json!({"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
        }]}});
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            if api_code(&e) == Some(404) {
                return true;
            }
            tracing::warn!(pod = %name, error = %e, "adding the DisruptionTarget condition");
        }
        self.recorder.record(
            pod,
            "Normal",
            "TaintManagerEviction",
            format!("Marking for deletion Pod {}", metrics::key(pod)),
        );
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::info!(pod = %name, node = ?pod.spec.as_ref().and_then(|s| s.node_name.as_deref()), "evicting pod for a NoExecute taint");
                true
            }
            Err(e) if api_code(&e) == Some(404) => true,
            Err(e) => {
                tracing::warn!(pod = %name, error = %e, "evicting pod");
                false
            }
        }
    }
}

/// Runs the taint eviction controller until cancelled.
pub async fn run(client: Client, informers: Informers, queue: Arc<Queue>) {
    let (nodes, node_changes) = informers.subscribe::<Node>();
    let (pods, pod_changes) = informers.subscribe::<Pod>();
    informers.synced().await;
    let client_for_events = client.clone();
    let mut e = Evictor {
        client,
        nodes,
        pods,
        pending: HashMap::new(),
        recorder: Recorder::new(client_for_events, "taint-eviction-controller"),
    };
    let mut changes =
        futures::stream::select(node_changes.map(|_| ()), pod_changes.map(|_| ())).boxed();
    loop {
        let next = e.pass(&queue).await;
        // Wake on any change (batched) or when the next toleration ends.
        let wait = next.unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = changes.next() => {
                if changed.is_none() {
                    return;
                }
                while let Some(Some(())) = changes.next().now_or_never() {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: NO_EXECUTE.into(),
            ..Default::default()
        }
    }

    fn toleration(v: serde_json::Value) -> Toleration {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn toleration_matching() {
        let t = taint("node.kubernetes.io/unreachable");
        assert!(tolerates(&toleration(json!({"operator": "Exists"})), &t));
        assert!(tolerates(
            &toleration(
                json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"})
            ),
            &t
        ));
        assert!(!tolerates(
            &toleration(
                json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoSchedule"})
            ),
            &t
        ));
        assert!(!tolerates(
            &toleration(json!({"key": "other", "operator": "Exists"})),
            &t
        ));
        assert!(!tolerates(
            &toleration(json!({"key": "node.kubernetes.io/unreachable", "value": "x"})),
            &t
        ));
    }

    #[test]
    fn eviction_delays() {
        let t = taint("node.kubernetes.io/unreachable");
        let forever = toleration(json!({"operator": "Exists"}));
        let short = toleration(
            json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 5}),
        );
        let long = toleration(
            json!({"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
        );
        assert_eq!(eviction_delay(&[], &[&t]), Some(Duration::ZERO));
        assert_eq!(eviction_delay(std::slice::from_ref(&forever), &[&t]), None);
        assert_eq!(
            eviction_delay(&[short.clone(), long], &[&t]),
            Some(Duration::from_secs(5))
        );
        assert_eq!(eviction_delay(&[forever], &[]), None);
        // One untolerated taint evicts at once.
        assert_eq!(
            eviction_delay(&[short], &[&t, &taint("other")]),
            Some(Duration::ZERO)
        );
    }
}
