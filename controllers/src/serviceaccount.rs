//! Service account controller: ensures a `default` ServiceAccount exists in
//! every active namespace (upstream `serviceaccount-controller`).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};

use crate::api_code;

/// Name of the ServiceAccount ensured in every namespace.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// Reconcile error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("kube api: {0}")]
    Kube(#[from] kube::Error),
}

struct Ctx {
    client: Client,
}

/// The ServiceAccount the controller creates in `namespace`.
pub fn desired_service_account(namespace: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT_SERVICE_ACCOUNT.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Whether the namespace is active (not terminating): upstream only creates
/// service accounts in namespaces whose phase is `Active`.
pub fn namespace_is_active(ns: &Namespace) -> bool {
    if ns.metadata.deletion_timestamp.is_some() {
        return false;
    }
    match ns.status.as_ref().and_then(|s| s.phase.as_deref()) {
        None | Some("Active") => true,
        Some(_) => false,
    }
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if !namespace_is_active(&ns) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    if api.get_opt(DEFAULT_SERVICE_ACCOUNT).await?.is_some() {
        return Ok(Action::await_change());
    }
    match api
        .create(&PostParams::default(), &desired_service_account(&name))
        .await
    {
        Ok(_) => {
            tracing::info!(namespace = %name, "created default service account");
            Ok(Action::await_change())
        }
        // Already exists, or the namespace is terminating / gone.
        Err(e) if matches!(api_code(&e), Some(403 | 404 | 409)) => {
            tracing::debug!(namespace = %name, error = %e, "not creating default service account");
            Ok(Action::await_change())
        }
        Err(e) => Err(e.into()),
    }
}

fn error_policy(ns: Arc<Namespace>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(namespace = %ns.name_any(), error = %err, "service account sync failed");
    Action::requeue(Duration::from_secs(5))
}

/// Maps a ServiceAccount event to the namespace to resync, if it is a
/// `default` service account.
fn map_service_account(sa: ServiceAccount) -> Option<ObjectRef<Namespace>> {
    if sa.metadata.name.as_deref() != Some(DEFAULT_SERVICE_ACCOUNT) {
        return None;
    }
    sa.metadata
        .namespace
        .as_deref()
        .map(ObjectRef::<Namespace>::new)
}

/// Runs the service account controller until cancelled.
pub async fn run(
    client: Client,
    informers: crate::informer::Informers,
    queue: Arc<crate::metrics::Queue>,
) {
    // The namespaces come from the process's shared watch.
    let (namespaces, changes) = informers.subscribe::<Namespace>();
    informers.synced().await;
    let sas: Api<ServiceAccount> = Api::all(client.clone());
    let (q1, q2) = (queue.clone(), queue.clone());
    let changes = changes.inspect(move |n| q1.add(&crate::metrics::key(n.as_ref())));
    Controller::for_shared_stream(changes, namespaces)
        .watches(
            sas,
            watcher::Config::default().fields(&format!("metadata.name={DEFAULT_SERVICE_ACCOUNT}")),
            move |sa| {
                let r = map_service_account(sa);
                r.iter().for_each(|r| q2.add_ref(r));
                r
            },
        )
        .run(
            crate::metrics::instrument(queue, reconcile),
            error_policy,
            Arc::new(Ctx { client }),
        )
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(namespace = %obj.name, "synced service accounts"),
                Err(e) => tracing::warn!(error = %e, "service account controller error"),
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ns(phase: Option<&str>, deleting: bool) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("ns1".into()),
                deletion_timestamp: deleting
                    .then_some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            status: phase.map(|p| NamespaceStatus {
                phase: Some(p.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn desired_sa() {
        let sa = desired_service_account("ns1");
        let v = serde_json::to_value(&sa).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": "ns1"},
            })
        );
    }

    #[test]
    fn active_namespaces() {
        assert!(namespace_is_active(&ns(None, false)));
        assert!(namespace_is_active(&ns(Some("Active"), false)));
        assert!(!namespace_is_active(&ns(Some("Terminating"), false)));
        assert!(!namespace_is_active(&ns(Some("Active"), true)));
    }

    #[test]
    fn mapping() {
        let mut sa = desired_service_account("ns1");
        assert_eq!(map_service_account(sa.clone()), Some(ObjectRef::new("ns1")));
        sa.metadata.name = Some("other".into());
        assert_eq!(map_service_account(sa), None);
    }
}
