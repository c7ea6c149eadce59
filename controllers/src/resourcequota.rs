//! Resource quota controller (upstream `resourcequota-controller`): keeps
//! every ResourceQuota's `status.hard` equal to its spec and `status.used`
//! equal to what its namespace holds. Quota admission in the API server
//! charges `used` as objects are created; this controller recounts from the
//! objects themselves, so deletions and terminal pods give capacity back
//! (replenishment) and a charge whose write failed is returned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Client, Resource, ResourceExt};
use rkube_quota::{ResourceList, covers, parse_list, to_json, tracks, usage};
use serde_json::Value;

/// Upstream's `--resource-quota-sync-period` default: a full recount even
/// when nothing was seen to change (counts of kinds nobody watches here).
const SYNC_PERIOD: Duration = Duration::from_secs(300);

/// Kinds whose usage needs no discovery (`(group, version, plural, kind)`).
const KNOWN: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "pods", "Pod"),
    ("", "v1", "services", "Service"),
    ("", "v1", "configmaps", "ConfigMap"),
    ("", "v1", "secrets", "Secret"),
    ("", "v1", "replicationcontrollers", "ReplicationController"),
    ("", "v1", "resourcequotas", "ResourceQuota"),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube api: {0}")]
    Kube(#[from] kube::Error),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
}

struct Ctx {
    client: Client,
    /// `count/<plural>.<group>` resources found through discovery.
    discovered: Mutex<HashMap<(String, String), Option<ApiResource>>>,
}

/// The kinds a quota's hard limits count.
async fn kinds_of(ctx: &Ctx, hard: &ResourceList) -> Vec<ApiResource> {
    let mut out: Vec<ApiResource> = Vec::new();
    let mut push = |ar: ApiResource| {
        if !out
            .iter()
            .any(|o| o.group == ar.group && o.plural == ar.plural)
        {
            out.push(ar);
        }
    };
    for name in hard.keys() {
        for (group, version, plural, kind) in KNOWN {
            if tracks(group, plural, name) {
                push(api_resource(group, version, plural, kind));
            }
        }
        let Some(rest) = name.strip_prefix("count/") else {
            continue;
        };
        let (plural, group) = rest.split_once('.').unwrap_or((rest, ""));
        if KNOWN.iter().any(|k| k.0 == group && k.2 == plural) {
            continue;
        }
        if let Some(ar) = discover(ctx, group, plural).await {
            push(ar);
        }
    }
    out
}

fn api_resource(group: &str, version: &str, plural: &str, kind: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    }
}

async fn discover(ctx: &Ctx, group: &str, plural: &str) -> Option<ApiResource> {
    let key = (group.to_owned(), plural.to_owned());
    if let Some(found) = ctx.discovered.lock().ok()?.get(&key) {
        return found.clone();
    }
    let found = match kube::discovery::group(&ctx.client, group).await {
        Ok(g) => g
            .recommended_resources()
            .into_iter()
            .map(|(ar, _)| ar)
            .find(|ar| ar.plural == plural),
        Err(e) => {
            tracing::debug!(group, error = %e, "quota: discovery failed");
            return None;
        }
    };
    if let Ok(mut cache) = ctx.discovered.lock() {
        cache.insert(key, found.clone());
    }
    found
}

/// What the quota's namespace uses of each of its hard resources.
async fn recount(
    ctx: &Ctx,
    quota: &Value,
    ns: &str,
    hard: &ResourceList,
) -> Result<ResourceList, Error> {
    let mut used: ResourceList = hard
        .keys()
        .map(|k| (k.clone(), Default::default()))
        .collect();
    let now = chrono::Utc::now();
    for ar in kinds_of(ctx, hard).await {
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
        let list = api.list(&ListParams::default()).await?;
        for item in list.items {
            let obj = serde_json::to_value(&item)?;
            if !covers(quota, hard, &ar.group, &ar.plural, &obj) {
                continue;
            }
            for (k, q) in usage(&ar.group, &ar.plural, &obj, now) {
                if let Some(total) = used.get_mut(&k) {
                    *total = total.add(q);
                }
            }
        }
    }
    Ok(used)
}

async fn reconcile(quota: Arc<ResourceQuota>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if quota.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = quota.namespace().unwrap_or_default();
    let value = serde_json::to_value(quota.as_ref())?;
    let hard = parse_list(value.pointer("/spec/hard"));
    let used = recount(&ctx, &value, &ns, &hard).await?;
    let status_hard = parse_list(value.pointer("/status/hard"));
    let status_used = parse_list(value.pointer("/status/used"));
    if status_hard == hard && status_used == used {
        return Ok(Action::requeue(SYNC_PERIOD));
    }
    let mut updated = value;
    updated["status"] = serde_json::json!({ "hard": to_json(&hard), "used": to_json(&used) });
    let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &ns);
    api.replace_status(
        &quota.name_any(),
        &PostParams::default(),
        &serde_json::from_value(updated)?,
    )
    .await?;
    Ok(Action::requeue(SYNC_PERIOD))
}

fn error_policy(quota: Arc<ResourceQuota>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    // Conflicts are the usual case (admission charged the quota meanwhile).
    match err {
        Error::Kube(e) if crate::api_code(e) == Some(409) => {
            tracing::debug!(quota = %quota.name_any(), error = %err, "quota changed meanwhile; retrying");
        }
        _ => tracing::warn!(quota = %quota.name_any(), error = %err, "quota sync failed; retrying"),
    }
    Action::requeue(Duration::from_millis(200))
}

/// Whether `status` is behind `spec`: other hard limits, or a limited
/// resource without usage.
fn needs_recount(q: &ResourceQuota) -> bool {
    let hard = q.spec.as_ref().and_then(|s| s.hard.as_ref());
    let status = q.status.as_ref();
    let status_hard = status.and_then(|s| s.hard.as_ref());
    let used = status.and_then(|s| s.used.as_ref());
    hard != status_hard
        || hard
            .into_iter()
            .flatten()
            .any(|(k, _)| !used.is_some_and(|u| u.contains_key(k)))
}

/// Every quota in the namespace of a changed object.
fn quotas_in<K: Resource>(quotas: &Store<ResourceQuota>, obj: &K) -> Vec<ObjectRef<ResourceQuota>> {
    let Some(ns) = obj.meta().namespace.as_deref() else {
        return Vec::new();
    };
    quotas
        .state()
        .iter()
        .filter(|q| q.metadata.namespace.as_deref() == Some(ns))
        .map(|q| ObjectRef::from_obj(q.as_ref()))
        .collect()
}

/// Runs the resource quota controller until cancelled.
pub async fn run(
    client: Client,
    informers: crate::informer::Informers,
    queue: Arc<crate::metrics::Queue>,
) {
    let (quotas, changes) = informers.subscribe::<ResourceQuota>();
    let (_, pod_changes) = informers.subscribe::<Pod>();
    informers.synced().await;
    let q1 = queue.clone();
    // As upstream, a quota is recounted when its spec changes or its status
    // lacks usage, not when admission charges it: a recount started then
    // could miss the object being created and undo the charge.
    let changes = changes
        .filter(|q| std::future::ready(needs_recount(q)))
        .inspect(move |q| q1.add(&crate::metrics::key(q.as_ref())));
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        discovered: Mutex::default(),
    });
    macro_rules! watch_kind {
        ($controller:expr, $kind:ty) => {{
            let (store, queue) = (quotas.clone(), queue.clone());
            $controller.watches(
                Api::<$kind>::all(client.clone()),
                watcher::Config::default(),
                move |obj: $kind| {
                    let refs = quotas_in(&store, &obj);
                    refs.iter().for_each(|r| queue.add_ref(r));
                    refs
                },
            )
        }};
    }
    let pod_quotas = quotas.clone();
    let controller = Controller::for_shared_stream(changes, quotas.clone())
        .watches_shared_stream(pod_changes, move |pod: Arc<Pod>| {
            quotas_in(&pod_quotas, pod.as_ref())
        });
    let controller = watch_kind!(controller, Service);
    let controller = watch_kind!(controller, ConfigMap);
    let controller = watch_kind!(controller, Secret);
    let controller = watch_kind!(controller, ReplicationController);
    let controller = watch_kind!(controller, PersistentVolumeClaim);
    let controller = watch_kind!(controller, ReplicaSet);
    controller
        .run(
            crate::metrics::instrument(queue, reconcile),
            error_policy,
            ctx,
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "resource quota controller error");
            }
        })
        .await;
}
