//! Root CA publisher: ensures a `kube-root-ca.crt` ConfigMap holding the
//! cluster CA bundle exists, unmodified, in every namespace (upstream
//! `root-ca-certificate-publisher-controller`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};

use crate::api_code;

/// Name of the published ConfigMap.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// Data key holding the CA bundle.
pub const CA_CRT_KEY: &str = "ca.crt";
/// Annotation upstream sets on the ConfigMap.
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Upstream's description text.
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Reconcile error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("kube api: {0}")]
    Kube(#[from] kube::Error),
}

struct Ctx {
    client: Client,
    root_ca_pem: String,
}

fn desired_data(root_ca_pem: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(CA_CRT_KEY.to_string(), root_ca_pem.to_string())])
}

/// The ConfigMap the controller creates in `namespace`.
pub fn desired_config_map(namespace: &str, root_ca_pem: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(ROOT_CA_CONFIGMAP.to_string()),
            namespace: Some(namespace.to_string()),
            annotations: Some(BTreeMap::from([(
                DESCRIPTION_ANNOTATION.to_string(),
                DESCRIPTION.to_string(),
            )])),
            ..Default::default()
        },
        data: Some(desired_data(root_ca_pem)),
        ..Default::default()
    }
}

/// If `existing` differs from what should be published, returns the updated
/// object to PUT (keeping its metadata, resourceVersion included); otherwise
/// `None`. As upstream, data is replaced wholesale and the description
/// annotation is (re)set.
pub fn config_map_update(existing: &ConfigMap, root_ca_pem: &str) -> Option<ConfigMap> {
    let data = desired_data(root_ca_pem);
    let annotated = existing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
        .is_some_and(|d| d == DESCRIPTION);
    let data_ok = existing.data.as_ref() == Some(&data) && existing.binary_data.is_none();
    if annotated && data_ok {
        return None;
    }
    let mut cm = existing.clone();
    cm.data = Some(data);
    cm.binary_data = None;
    cm.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(DESCRIPTION_ANNOTATION.to_string(), DESCRIPTION.to_string());
    Some(cm)
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    // Creating objects in a terminating namespace is refused anyway.
    if ns.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
    match api.get_opt(ROOT_CA_CONFIGMAP).await? {
        None => match api
            .create(
                &PostParams::default(),
                &desired_config_map(&name, &ctx.root_ca_pem),
            )
            .await
        {
            Ok(_) => tracing::info!(namespace = %name, "published {ROOT_CA_CONFIGMAP}"),
            Err(e) if matches!(api_code(&e), Some(403 | 404)) => {
                tracing::debug!(namespace = %name, error = %e, "not publishing root CA");
            }
            Err(e) => return Err(e.into()),
        },
        Some(existing) => {
            if let Some(cm) = config_map_update(&existing, &ctx.root_ca_pem) {
                api.replace(ROOT_CA_CONFIGMAP, &PostParams::default(), &cm)
                    .await?;
                tracing::info!(namespace = %name, "updated {ROOT_CA_CONFIGMAP}");
            }
        }
    }
    Ok(Action::await_change())
}

fn error_policy(ns: Arc<Namespace>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(namespace = %ns.name_any(), error = %err, "root CA publish failed");
    Action::requeue(Duration::from_secs(5))
}

fn map_config_map(cm: ConfigMap) -> Option<ObjectRef<Namespace>> {
    if cm.metadata.name.as_deref() != Some(ROOT_CA_CONFIGMAP) {
        return None;
    }
    cm.metadata
        .namespace
        .as_deref()
        .map(ObjectRef::<Namespace>::new)
}

/// Runs the root CA publisher until cancelled.
pub async fn run(
    client: Client,
    informers: crate::informer::Informers,
    root_ca_pem: String,
    queue: Arc<crate::metrics::Queue>,
) {
    // The namespaces come from the process's shared watch.
    let (namespaces, changes) = informers.subscribe::<Namespace>();
    informers.synced().await;
    let cms: Api<ConfigMap> = Api::all(client.clone());
    let (q1, q2) = (queue.clone(), queue.clone());
    let changes = changes.inspect(move |n| q1.add(&crate::metrics::key(n.as_ref())));
    Controller::for_shared_stream(changes, namespaces)
        .watches(
            cms,
            // Only the published ConfigMaps, not every ConfigMap in the cluster.
            watcher::Config::default().fields(&format!("metadata.name={ROOT_CA_CONFIGMAP}")),
            move |cm| {
                let r = map_config_map(cm);
                r.iter().for_each(|r| q2.add_ref(r));
                r
            },
        )
        .run(
            crate::metrics::instrument(queue, reconcile),
            error_policy,
            Arc::new(Ctx {
                client,
                root_ca_pem,
            }),
        )
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(namespace = %obj.name, "synced root CA"),
                Err(e) => tracing::warn!(error = %e, "root CA publisher error"),
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn desired_cm() {
        let v = serde_json::to_value(desired_config_map("ns1", PEM)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "kube-root-ca.crt",
                    "namespace": "ns1",
                    "annotations": {"kubernetes.io/description": DESCRIPTION},
                },
                "data": {"ca.crt": PEM},
            })
        );
    }

    #[test]
    fn up_to_date_needs_no_update() {
        let mut cm = desired_config_map("ns1", PEM);
        cm.metadata.resource_version = Some("7".into());
        assert!(config_map_update(&cm, PEM).is_none());
    }

    #[test]
    fn changed_data_is_reset() {
        let mut cm = desired_config_map("ns1", "old");
        cm.metadata.resource_version = Some("7".into());
        cm.data
            .get_or_insert_with(BTreeMap::new)
            .insert("extra".into(), "x".into());
        let up = config_map_update(&cm, PEM).unwrap();
        assert_eq!(up.data, Some(desired_data(PEM)));
        assert_eq!(up.metadata.resource_version.as_deref(), Some("7"));
    }

    #[test]
    fn missing_annotation_is_restored() {
        let mut cm = desired_config_map("ns1", PEM);
        cm.metadata.annotations = Some(BTreeMap::from([("keep".into(), "me".into())]));
        let up = config_map_update(&cm, PEM).unwrap();
        let ann = up.metadata.annotations.unwrap();
        assert_eq!(ann.get("keep").map(String::as_str), Some("me"));
        assert_eq!(
            ann.get(DESCRIPTION_ANNOTATION).map(String::as_str),
            Some(DESCRIPTION)
        );
    }

    #[test]
    fn mapping() {
        let mut cm = desired_config_map("ns1", PEM);
        assert_eq!(map_config_map(cm.clone()), Some(ObjectRef::new("ns1")));
        cm.metadata.name = Some("other".into());
        assert_eq!(map_config_map(cm), None);
    }
}
