//! ResourceQuota admission: an object that would take a quota covering it
//! past its hard limits is refused (403 `exceeded quota: ...`); otherwise
//! its usage is charged to `status.used` (compare-and-swap, so concurrent
//! creates can't both take the last unit) before it is stored. The quota
//! controller recomputes `used` from what exists, which also returns the
//! charge of an object whose write then failed.

use std::collections::BTreeSet;

use bytes::Bytes;
use rkube_quota::{ResourceList, covers, parse_list, pod_constraints, pretty, to_json, usage};
use rkube_storage::StorageError;
use serde_json::Value;

use super::{Stored, forbidden, list_namespaced};
use crate::registry::{Registry, Resource};
use crate::status::ApiError;

/// Attempts when another writer charged the same quota meanwhile.
const ATTEMPTS: usize = 5;

pub async fn admit(
    reg: &Registry,
    r: &Resource,
    ns: &str,
    obj: &Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let object_usage = usage(&r.group, &r.plural, obj, chrono::Utc::now());
    for _ in 0..ATTEMPTS {
        let quotas = list_namespaced(reg, "resourcequotas", ns).await?;
        if quotas.is_empty() {
            return Ok(());
        }
        let mut charges = Vec::new();
        for q in &quotas {
            if let Some(used) = evaluate(r, obj, &object_usage, &q.value)? {
                charges.push((q, used));
            }
        }
        if dry_run || charges.is_empty() {
            return Ok(());
        }
        if charge(reg, &charges).await? {
            return Ok(());
        }
    }
    Err(ApiError::new(
        500,
        "InternalError",
        "Internal error occurred: resource quota evaluation timed out",
    ))
}

/// The quota's new `status.used` if it covers the object and has room;
/// `None` when it doesn't cover it.
fn evaluate(
    r: &Resource,
    obj: &Value,
    object_usage: &ResourceList,
    quota: &Value,
) -> Result<Option<ResourceList>, ApiError> {
    let name = crate::meta::name(quota).unwrap_or_default();
    let hard = parse_list(quota.pointer("/status/hard"));
    if !covers(quota, &hard, &r.group, &r.plural, obj) {
        return Ok(None);
    }
    if r.group.is_empty() && r.plural == "pods" {
        let limited: BTreeSet<String> = hard.keys().cloned().collect();
        pod_constraints(&limited, obj)
            .map_err(|e| forbidden(r, obj, &format!("failed quota: {name}: {e}")))?;
    }
    let used = parse_list(quota.pointer("/status/used"));
    let interesting: Vec<&String> = hard
        .keys()
        .filter(|k| object_usage.contains_key(*k))
        .collect();
    if interesting.is_empty() {
        return Ok(None);
    }
    let unknown: Vec<&str> = interesting
        .iter()
        .filter(|k| !used.contains_key(**k))
        .map(|k| k.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(forbidden(
            r,
            obj,
            &format!(
                "status unknown for quota: {name}, resources: {}",
                unknown.join(",")
            ),
        ));
    }
    let mut new_used = used.clone();
    let mut exceeded = Vec::new();
    for k in interesting {
        let total = used[k].add(object_usage[k]);
        if total > hard[k] {
            exceeded.push(k.clone());
        }
        new_used.insert(k.clone(), total);
    }
    if !exceeded.is_empty() {
        let mask = |l: &ResourceList| -> ResourceList {
            exceeded
                .iter()
                .filter_map(|k| Some((k.clone(), *l.get(k)?)))
                .collect()
        };
        return Err(forbidden(
            r,
            obj,
            &format!(
                "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                pretty(&mask(object_usage)),
                pretty(&mask(&used)),
                pretty(&mask(&hard))
            ),
        ));
    }
    Ok(Some(new_used))
}

/// Writes every charged quota's usage; `false` when one changed meanwhile
/// (the caller evaluates again). Quotas written before a conflict keep
/// their charge: the quota controller's recount returns it.
async fn charge(reg: &Registry, charges: &[(&Stored, ResourceList)]) -> Result<bool, ApiError> {
    for (q, used) in charges {
        let mut value = q.value.clone();
        value["status"]["used"] = to_json(used);
        let bytes = serde_json::to_vec(&value)
            .map_err(|e| ApiError::internal(format!("encoding quota: {e}")))?;
        match reg
            .store
            .update(&q.key, Bytes::from(bytes), q.revision, None)
            .await
        {
            Ok(_) => {}
            Err(StorageError::Conflict { .. }) => return Ok(false),
            Err(e) => return Err(ApiError::internal(format!("updating quota: {e}"))),
        }
    }
    Ok(true)
}
