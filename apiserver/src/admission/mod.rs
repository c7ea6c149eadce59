//! The admission chain on create, in upstream's plugin order: LimitRanger,
//! ServiceAccount,
//! DefaultTolerationSeconds, Priority, RuntimeClass, then ResourceQuota last (it charges the quota,
//! so nothing may reject the object after it). Runs after field ownership
//! is recorded, as upstream's admission runs after the field manager.

mod limitranger;
mod priority;
mod quota;
mod runtimeclass;
mod serviceaccount;
mod tolerations;

use rkube_storage::{RangeRequest, Revision};
use serde_json::Value;

use crate::registry::{Registry, Resource};
use crate::status::ApiError;

pub async fn admit_create(
    reg: &Registry,
    r: &Resource,
    namespace: Option<&str>,
    obj: &mut Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    if r.group == "scheduling.k8s.io" && r.plural == "priorityclasses" {
        priority::admit_class(reg, r, obj).await?;
    }
    let Some(ns) = namespace.filter(|_| r.namespaced) else {
        return Ok(());
    };
    if r.group.is_empty() && r.plural == "pods" {
        limitranger::admit_pod(reg, r, ns, obj).await?;
        serviceaccount::admit_pod(reg, ns, obj).await?;
        tolerations::default_toleration_seconds(obj);
        priority::admit_pod(reg, r, obj).await?;
        runtimeclass::admit_pod(reg, r, obj).await?;
    }
    quota::admit(reg, r, ns, obj, dry_run).await
}

/// One stored object read for admission: key, mod revision, value.
struct Stored {
    key: String,
    revision: Revision,
    value: Value,
}

/// Every object under `/<prefix>/<ns>/`, in name order.
async fn list_namespaced(reg: &Registry, prefix: &str, ns: &str) -> Result<Vec<Stored>, ApiError> {
    list_under(reg, prefix, &format!("/{prefix}/{ns}/")).await
}

/// Every cluster-scoped object under `/<prefix>/`.
async fn list_cluster(reg: &Registry, prefix: &str) -> Result<Vec<Stored>, ApiError> {
    list_under(reg, prefix, &format!("/{prefix}/")).await
}

async fn list_under(reg: &Registry, prefix: &str, key: &str) -> Result<Vec<Stored>, ApiError> {
    let got = reg
        .store
        .range(RangeRequest {
            prefix: key.to_owned(),
            ..Default::default()
        })
        .await
        .map_err(|e| ApiError::internal(format!("reading {prefix}: {e}")))?;
    got.kvs
        .into_iter()
        .map(|kv| {
            let value = serde_json::from_slice(&kv.value)
                .map_err(|e| ApiError::internal(format!("decoding stored {prefix}: {e}")))?;
            Ok(Stored {
                key: kv.key,
                revision: kv.mod_revision,
                value,
            })
        })
        .collect()
}

fn forbidden(r: &Resource, obj: &Value, why: &str) -> ApiError {
    let name = crate::meta::name(obj).unwrap_or_default();
    ApiError::forbidden(&r.group, &r.plural, name, why)
}

/// Upstream's `utilerrors.NewAggregate(..).Error()`: one message alone,
/// several in brackets.
fn aggregate(msgs: &[String]) -> String {
    if msgs.len() == 1 {
        msgs[0].clone()
    } else {
        format!("[{}]", msgs.join(", "))
    }
}
