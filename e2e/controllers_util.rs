//! Helpers for the controller e2e tests: no kubelet runs here, so a pod
//! becomes Running and Ready by writing its status through the API.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

/// Upper bound for a controller to converge; tests fail past it.
pub const CONVERGE: Duration = Duration::from_secs(60);

/// Polls `check` until it returns `Some`, panicking after [`CONVERGE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Marks a pod Running and Ready=True through `pods/status` (what a kubelet
/// would report).
pub async fn mark_ready(pods: &Api<Pod>, name: &str) {
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            ],
        }})),
    )
    .await
    .or_else(|e| match e {
        // Deleted meanwhile: nothing to report.
        kube::Error::Api(s) if s.code == 404 => Ok(Pod::default()),
        e => Err(e),
    })
    .expect("write pod status");
}

/// The active (not terminating) pods matching a label selector.
pub async fn active_pods(pods: &Api<Pod>, selector: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(selector))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// Marks every active pod matching `selector` ready; returns how many.
pub async fn mark_all_ready(pods: &Api<Pod>, selector: &str) -> usize {
    let list = active_pods(pods, selector).await;
    for p in &list {
        mark_ready(pods, p.metadata.name.as_deref().unwrap_or_default()).await;
    }
    list.len()
}
