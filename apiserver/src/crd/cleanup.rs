//! The `customresourcecleanup.apiextensions.k8s.io` finalizer (upstream's
//! finalizer controller): a deleted CRD first deletes all its custom
//! resources (waiting for their own finalizers), then lets go of the CRD.

use std::time::Duration;

use serde_json::{Value, json};

use super::strategy::set_condition;
use super::{CLEANUP_FINALIZER, str_at};
use crate::registry::{DeleteOptions, ListOptions, Registry, Resource, Write};
use crate::status::ApiError;

const WRITE: Write<'static> = Write {
    dry_run: false,
    manager: Some("kube-apiserver"),
    record_as: None,
};

/// The resource the CRD's objects are stored under (any served version
/// reads them all: the storage prefix is the group and plural).
fn instances(crd: &Value) -> Resource {
    let group = str_at(crd, "/spec/group").to_owned();
    let accepted = crd.pointer("/status/acceptedNames").unwrap_or(&Value::Null);
    let pick = |field: &str| {
        Some(str_at(accepted, field))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| str_at(crd, &format!("/spec/names{field}")))
            .to_owned()
    };
    let plural = pick("/plural");
    let kind = pick("/kind");
    let version = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        })
        .map(|v| str_at(v, "/name").to_owned())
        .unwrap_or_default();
    Resource {
        storage_prefix: format!("{group}/{plural}"),
        group,
        version,
        list_kind: format!("{kind}List"),
        kind,
        plural,
        namespaced: str_at(crd, "/spec/scope") != "Cluster",
        has_status: false,
        verbs: Vec::new(),
        custom: None,
    }
}

async fn set_terminating(
    registry: &Registry,
    r: &Resource,
    name: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> Result<Value, ApiError> {
    loop {
        let mut crd = registry.get(r, None, name).await?;
        set_condition(&mut crd, "Terminating", status, reason, message);
        match registry
            .update(r, None, name, crd, Some("status"), WRITE)
            .await
        {
            Err(e) if e.code == 409 => continue,
            other => return other,
        }
    }
}

/// Deletes every instance, then removes the finalizer (which deletes the CRD).
pub async fn run(registry: &Registry, r: &Resource, name: &str) -> Result<(), ApiError> {
    let crd = match set_terminating(
        registry,
        r,
        name,
        "True",
        "InstanceDeletionInProgress",
        "CustomResource deletion is in progress",
    )
    .await
    {
        Ok(c) => c,
        Err(e) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    let res = instances(&crd);
    loop {
        let list = registry
            .list(&res, None, &ListOptions::default(), None)
            .await?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        for item in &items {
            let n = crate::meta::name(item).unwrap_or_default();
            let ns = crate::meta::namespace(item);
            match registry
                .delete(&res, ns, n, &DeleteOptions::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(crd = %name, object = %n, error = %e.message, "deleting a custom resource")
                }
            }
        }
        // Objects with finalizers of their own go when those are done.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    set_terminating(
        registry,
        r,
        name,
        "False",
        "InstanceDeletionCompleted",
        "removed all instances",
    )
    .await?;
    loop {
        let mut crd = match registry.get(r, None, name).await {
            Ok(c) => c,
            Err(e) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e),
        };
        let finalizers: Vec<String> = crate::meta::finalizers(&crd)
            .into_iter()
            .filter(|f| f != CLEANUP_FINALIZER)
            .collect();
        crate::meta::meta_mut(&mut crd).insert("finalizers".into(), json!(finalizers));
        match registry.update(r, None, name, crd, None, WRITE).await {
            Err(e) if e.code == 409 => continue,
            Err(e) if e.code == 404 => return Ok(()),
            other => return other.map(|_| ()),
        }
    }
}
