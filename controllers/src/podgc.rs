//! Pod garbage collector (upstream `pod-garbage-collector`): every 20 s,
//! deletes terminated pods beyond `--terminated-pod-gc-threshold` (oldest
//! first), pods bound to nodes that no longer exist (after a 40 s
//! quarantine, as upstream), and unscheduled pods already being deleted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::api_code;
use crate::informer::Informers;

/// Upstream's `gcCheckPeriod`.
const CHECK_PERIOD: Duration = Duration::from_secs(20);
/// Upstream's `quarantineTime` for pods on missing nodes.
const QUARANTINE: Duration = Duration::from_secs(40);

fn terminated(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The terminated pods to delete: the oldest beyond `threshold` (0 turns
/// this off, as upstream).
pub fn terminated_over_threshold(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    if threshold == 0 {
        return vec![];
    }
    let mut done: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| terminated(p) && p.metadata.deletion_timestamp.is_none())
        .cloned()
        .collect();
    if done.len() <= threshold {
        return vec![];
    }
    done.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let excess = done.len() - threshold;
    done.truncate(excess);
    done
}

/// Pods bound to a node not in `nodes`.
pub fn on_missing_nodes(pods: &[Arc<Pod>], nodes: &HashSet<String>) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty() && !nodes.contains(n))
        })
        .cloned()
        .collect()
}

async fn force_delete(client: &Client, pod: &Pod, mark_failed: bool) {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    if mark_failed && !terminated(pod) {
        // As upstream: the pod is marked Failed with a DisruptionTarget
        // condition before it is deleted.
        let patch = json!({"status": {"phase": "Failed", "conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists",
        }]}});
        let _ = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await;
    }
    match api
        .delete(
            &pod.name_any(),
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
    {
        Ok(_) => tracing::info!(pod = %pod.name_any(), "pod garbage collected"),
        Err(e) if api_code(&e) == Some(404) => {}
        Err(e) => {
            tracing::warn!(pod = %pod.name_any(), error = %e, "pod garbage collection failed")
        }
    }
}

async fn pass(
    client: &Client,
    pods: &Store<Pod>,
    nodes: &Store<Node>,
    threshold: usize,
    missing_since: &mut HashMap<String, Instant>,
) {
    let all = pods.state();
    for p in terminated_over_threshold(&all, threshold) {
        force_delete(client, &p, false).await;
    }
    let node_names: HashSet<String> = nodes.state().iter().map(|n| n.name_any()).collect();
    let orphans = on_missing_nodes(&all, &node_names);
    let mut still = HashMap::new();
    let node_api: Api<Node> = Api::all(client.clone());
    for p in orphans {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let since = *missing_since.get(&node).unwrap_or(&Instant::now());
        still.insert(node.clone(), since);
        // Confirm with a live read before deleting anything.
        if since.elapsed() >= QUARANTINE && matches!(node_api.get_opt(&node).await, Ok(None)) {
            force_delete(client, &p, true).await;
        }
    }
    *missing_since = still;
    // Unscheduled pods being deleted have nothing to wait for.
    for p in all.iter().filter(|p| {
        p.metadata.deletion_timestamp.is_some()
            && p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_none_or(str::is_empty)
            && p.metadata
                .finalizers
                .as_deref()
                .unwrap_or_default()
                .is_empty()
    }) {
        force_delete(client, p, false).await;
    }
}

/// Runs the pod garbage collector until cancelled.
pub async fn run(client: Client, informers: Informers, threshold: usize) {
    let pods = informers.store::<Pod>();
    let nodes = informers.store::<Node>();
    informers.synced().await;
    let mut missing_since = HashMap::new();
    loop {
        pass(&client, &pods, &nodes, threshold, &mut missing_since).await;
        tokio::time::sleep(CHECK_PERIOD).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, created: i64, node: Option<&str>) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "creationTimestamp": format!("2026-01-01T00:00:{created:02}Z")},
                "spec": {"containers": [], "nodeName": node},
                "status": {"phase": phase},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn oldest_terminated_over_threshold() {
        let pods = vec![
            pod("new", "Succeeded", 30, None),
            pod("old", "Failed", 10, None),
            pod("running", "Running", 1, None),
            pod("mid", "Succeeded", 20, None),
        ];
        let names = |v: Vec<Arc<Pod>>| v.iter().map(|p| p.name_any()).collect::<Vec<_>>();
        assert_eq!(names(terminated_over_threshold(&pods, 1)), ["old", "mid"]);
        assert!(terminated_over_threshold(&pods, 3).is_empty());
        assert!(terminated_over_threshold(&pods, 0).is_empty());
    }

    #[test]
    fn pods_on_missing_nodes() {
        let pods = vec![
            pod("a", "Running", 1, Some("n1")),
            pod("b", "Running", 1, Some("gone")),
            pod("c", "Pending", 1, None),
        ];
        let nodes = HashSet::from(["n1".to_string()]);
        let got = on_missing_nodes(&pods, &nodes);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name_any(), "b");
    }
}
