//! Deployment controller (upstream `pkg/controller/deployment`): one
//! ReplicaSet per pod template (named `<deployment>-<pod-template-hash>`),
//! RollingUpdate within maxSurge/maxUnavailable or Recreate, revision
//! annotations (so `kubectl rollout undo|history` work), pause, proportional
//! scaling, revisionHistoryLimit cleanup and the Progressing/Available
//! conditions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::api_code;
use crate::informer::Informers;
use crate::podutil::{self, Selector};

pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube api: {0}")]
    Kube(#[from] kube::Error),
}

struct Ctx {
    client: Client,
    rss: Store<ReplicaSet>,
    pods: Store<Pod>,
}

/// Resolves an int-or-percent against `total` (upstream
/// `GetScaledValueFromIntOrPercent`).
pub fn scaled(v: &IntOrString, total: i32, round_up: bool) -> i32 {
    match v {
        IntOrString::Int(i) => *i,
        IntOrString::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let n = pct * i64::from(total);
            let r = if round_up { (n + 99) / 100 } else { n / 100 };
            i32::try_from(r).unwrap_or(i32::MAX)
        }
    }
}

/// Upstream `ResolveFenceposts`: maxSurge rounds up, maxUnavailable down;
/// both zero means maxUnavailable 1.
pub fn surge_and_unavailable(d: &Deployment) -> (i32, i32) {
    let replicas = replicas(d);
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::String("25%".into());
    let surge = scaled(
        ru.and_then(|r| r.max_surge.as_ref()).unwrap_or(&default),
        replicas,
        true,
    );
    let unavailable = scaled(
        ru.and_then(|r| r.max_unavailable.as_ref())
            .unwrap_or(&default),
        replicas,
        false,
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn revision(meta_annotations: Option<&BTreeMap<String, String>>) -> i64 {
    meta_annotations
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The pod template hash (FNV-32a of the template and the collision count,
/// encoded with upstream's safe alphabet).
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut h: u32 = 0x811c9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x01000193);
        }
    };
    feed(
        serde_json::to_string(template)
            .unwrap_or_default()
            .as_bytes(),
    );
    if let Some(c) = collision_count {
        feed(&c.to_le_bytes());
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// A template without the pod-template-hash label, for comparison.
fn without_hash(t: &PodTemplateSpec) -> Value {
    let mut t = t.clone();
    if let Some(m) = t.metadata.as_mut()
        && let Some(l) = m.labels.as_mut()
    {
        l.remove(POD_TEMPLATE_HASH);
        if l.is_empty() {
            m.labels = None;
        }
    }
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// Upstream `EqualIgnoreHash`.
pub fn same_template(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

/// The rolling update's new scale for the new ReplicaSet (upstream
/// `NewRSNewReplicas`).
pub fn new_rs_replicas(deploy_replicas: i32, surge: i32, all_pods: i32, new_rs: i32) -> i32 {
    if new_rs >= deploy_replicas {
        return deploy_replicas;
    }
    let max_total = deploy_replicas + surge;
    if all_pods >= max_total {
        return new_rs;
    }
    let up = (max_total - all_pods).min(deploy_replicas - new_rs);
    new_rs + up.max(0)
}

/// How many old pods a rolling update may take down now (upstream
/// `reconcileOldReplicaSets`): old ReplicaSets' scales and available counts
/// as `(replicas, available)`. Returns the new scales.
pub fn scale_down_old(
    deploy_replicas: i32,
    unavailable: i32,
    new_rs: (i32, i32),
    old: &[(i32, i32)],
) -> Vec<i32> {
    let all_pods: i32 = new_rs.0 + old.iter().map(|o| o.0).sum::<i32>();
    let min_available = deploy_replicas - unavailable;
    let new_unavailable = new_rs.0 - new_rs.1;
    let mut max_scaled_down = all_pods - min_available - new_unavailable;
    let mut out: Vec<i32> = old.iter().map(|o| o.0).collect();
    if max_scaled_down <= 0 {
        return out;
    }
    // First the old pods that are not available anyway.
    for (i, (r, a)) in old.iter().enumerate() {
        if max_scaled_down <= 0 {
            break;
        }
        let unhealthy = (r - a).max(0).min(max_scaled_down);
        out[i] -= unhealthy;
        max_scaled_down -= unhealthy;
    }
    // Then available ones, keeping minAvailable.
    let available: i32 = new_rs.1 + old.iter().map(|o| o.1).sum::<i32>();
    let mut budget = (available - min_available).max(0);
    for o in out.iter_mut() {
        if budget <= 0 {
            break;
        }
        let down = (*o).min(budget);
        *o -= down;
        budget -= down;
    }
    out
}

/// Proportional scaling (upstream `scale` and `GetProportion`): brings the
/// ReplicaSets' total to `allowed` (the Deployment's replicas plus maxSurge,
/// 0 when scaled to zero). `sets` are (spec.replicas, max-replicas
/// annotation) sorted by size, newer first on ties when scaling up, older
/// first when scaling down. Each takes `round(size * allowed / annotated) -
/// size` within what is left to add; the leftover goes to the first
/// (largest). `fallback` stands in for a missing annotation (upstream uses
/// the Deployment's status.replicas).
pub fn proportional(sets: &[(i32, Option<i32>)], allowed: i32, fallback: i32) -> Vec<i32> {
    let total: i32 = sets.iter().map(|(n, _)| n).sum();
    let to_add = allowed - total;
    let mut added = 0;
    let mut out: Vec<i32> = sets
        .iter()
        .map(|&(size, annotated)| {
            if size == 0 || to_add == 0 || to_add == added {
                return size;
            }
            let fraction = if allowed == 0 {
                -size
            } else {
                let annotated = annotated.filter(|a| *a > 0).unwrap_or(fallback).max(1);
                let new_size =
                    (f64::from(size) * f64::from(allowed) / f64::from(annotated)).round();
                new_size as i32 - size
            };
            let left = to_add - added;
            let p = if to_add > 0 {
                fraction.min(left)
            } else {
                fraction.max(left)
            };
            added += p;
            size + p
        })
        .collect();
    if let Some(first) = out.first_mut() {
        *first = (*first + to_add - added).max(0);
    }
    out
}

fn now_str(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

async fn scale_rs(
    api: &Api<ReplicaSet>,
    rs: &ReplicaSet,
    n: i32,
    d: &Deployment,
    surge: i32,
) -> Result<(), Error> {
    let ann = json!({
        DESIRED_REPLICAS_ANNOTATION: replicas(d).to_string(),
        MAX_REPLICAS_ANNOTATION: (replicas(d) + surge).to_string(),
    });
    if rs_replicas(rs) == n
        && rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DESIRED_REPLICAS_ANNOTATION))
            == Some(&replicas(d).to_string())
    {
        return Ok(());
    }
    let patch = json!({
        "metadata": {"annotations": ann, "resourceVersion": rs.metadata.resource_version},
        "spec": {"replicas": n},
    });
    api.patch(
        &rs.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await?;
    Ok(())
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = d.namespace().unwrap_or_default();
    let name = d.name_any();
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let spec = d.spec.clone().unwrap_or_default();
    let selector = Selector::from_label_selector(&spec.selector);
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let now = Timestamp::now();

    // Claim ReplicaSets: owned ones, and matching orphans.
    let mut owned: Vec<ReplicaSet> = Vec::new();
    for rs in ctx.rss.state() {
        if rs.metadata.namespace.as_deref() != Some(ns.as_str()) {
            continue;
        }
        let labels = rs.metadata.labels.as_ref();
        match podutil::controller_ref(&rs.metadata) {
            Some(r) if r.uid == uid => owned.push(rs.as_ref().clone()),
            Some(_) => {}
            None if !selector.is_empty()
                && selector.matches(labels)
                && rs.metadata.deletion_timestamp.is_none() =>
            {
                let mut refs = rs.metadata.owner_references.clone().unwrap_or_default();
                refs.push(podutil::new_controller_ref(
                    "apps/v1",
                    "Deployment",
                    &name,
                    &uid,
                ));
                let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": rs.metadata.resource_version}});
                match rs_api
                    .patch(
                        &rs.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(patch),
                    )
                    .await
                {
                    Ok(adopted) => owned.push(adopted),
                    Err(e) if matches!(api_code(&e), Some(404 | 409)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            None => {}
        }
    }
    let template = spec.template.clone();
    let max_revision = owned
        .iter()
        .map(|r| revision(r.metadata.annotations.as_ref()))
        .max()
        .unwrap_or(0);
    let (mut new_rs, mut old): (Vec<ReplicaSet>, Vec<ReplicaSet>) =
        owned.into_iter().partition(|r| {
            r.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| same_template(t, &template))
        });
    // Oldest first among duplicates; the rest count as old.
    new_rs.sort_by_key(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0));
    if new_rs.len() > 1 {
        old.extend(new_rs.drain(1..));
    }
    let mut new_rs = new_rs.pop();
    old.sort_by_key(|r| revision(r.metadata.annotations.as_ref()));
    let paused = spec.paused == Some(true);
    let (surge, unavailable) = surge_and_unavailable(&d);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let (surge, unavailable) = if recreate {
        (0, 0)
    } else {
        (surge, unavailable)
    };
    let mut progress_reason: Option<(&str, String)> = None;

    // The new ReplicaSet: create it, or bring its revision up to date.
    if new_rs.is_none() && !paused {
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash(&template, collision);
        let mut t = template.clone();
        t.metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut sel = spec.selector.clone();
        sel.match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
        // Without old pods, the new ReplicaSet starts at full scale;
        // otherwise the rolling step below scales it.
        let start = if old.iter().all(|r| rs_replicas(r) == 0) && !recreate {
            replicas(&d)
        } else {
            0
        };
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {
                "name": format!("{name}-{hash}"),
                "namespace": ns,
                "labels": labels,
                "annotations": {
                    REVISION_ANNOTATION: (max_revision + 1).to_string(),
                    DESIRED_REPLICAS_ANNOTATION: replicas(&d).to_string(),
                    MAX_REPLICAS_ANNOTATION: (replicas(&d) + surge).to_string(),
                },
                "ownerReferences": [podutil::new_controller_ref("apps/v1", "Deployment", &name, &uid)],
            },
            "spec": {
                "replicas": start,
                "minReadySeconds": spec.min_ready_seconds.unwrap_or(0),
                "selector": sel,
                "template": t,
            },
        }))
        .unwrap_or_default();
        match rs_api.create(&PostParams::default(), &rs).await {
            Ok(created) => {
                progress_reason = Some((
                    "NewReplicaSetCreated",
                    format!("Created new replica set \"{}\"", created.name_any()),
                ));
                new_rs = Some(created);
            }
            Err(e) if api_code(&e) == Some(409) => {
                // A ReplicaSet of that name with another template: bump the
                // collision count for a new hash (upstream).
                let dapi: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
                let patch = json!({"status": {"collisionCount": collision.unwrap_or(0) + 1}});
                dapi.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                return Ok(Action::requeue(Duration::from_millis(100)));
            }
            Err(e) => return Err(e.into()),
        }
    } else if let Some(rs) = &new_rs
        && revision(rs.metadata.annotations.as_ref()) < max_revision
        && !paused
    {
        // A rollback to an older template: it becomes the newest revision.
        let patch = json!({"metadata": {"annotations": {REVISION_ANNOTATION: (max_revision + 1).to_string()}}});
        let updated = rs_api
            .patch(
                &rs.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
        new_rs = Some(updated);
    }
    let want = replicas(&d);
    let active_old: Vec<&ReplicaSet> = old.iter().filter(|r| rs_replicas(r) > 0).collect();

    // Scaling events (replicas changed) with several active ReplicaSets,
    // and paused deployments: proportional scaling only.
    let scaling_event = new_rs
        .iter()
        .chain(old.iter())
        .filter(|r| rs_replicas(r) > 0)
        .any(|r| {
            r.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DESIRED_REPLICAS_ANNOTATION))
                .is_some_and(|v| v != &want.to_string())
        });
    if paused || (scaling_event && !active_old.is_empty()) {
        let mut all: Vec<&ReplicaSet> = new_rs
            .iter()
            .chain(old.iter())
            .filter(|r| rs_replicas(r) > 0)
            .collect();
        let total: i32 = all.iter().map(|r| rs_replicas(r)).sum();
        // Upstream's allowedSize: replicas plus maxSurge, paused or not.
        let allowed = if want > 0 { want + surge } else { 0 };
        // Larger first; on ties newer first when growing, older first when
        // shrinking (ReplicaSetsBySizeNewer / BySizeOlder).
        let created = |r: &ReplicaSet| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if allowed >= total {
            all.sort_by(|a, b| {
                rs_replicas(b)
                    .cmp(&rs_replicas(a))
                    .then_with(|| created(b).cmp(&created(a)))
            });
        } else {
            all.sort_by(|a, b| {
                rs_replicas(b)
                    .cmp(&rs_replicas(a))
                    .then_with(|| created(a).cmp(&created(b)))
            });
        }
        let sets: Vec<(i32, Option<i32>)> = all
            .iter()
            .map(|r| {
                let annotated = r
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(MAX_REPLICAS_ANNOTATION))
                    .and_then(|v| v.parse().ok());
                (rs_replicas(r), annotated)
            })
            .collect();
        let fallback = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(total);
        // One active ReplicaSet takes the replicas as they are (upstream's
        // FindActiveOrLatest); only a rollout in progress gets the surge.
        let scales = if sets.len() == 1 {
            vec![want]
        } else {
            proportional(&sets, allowed, fallback)
        };
        for (rs, n) in all.iter().zip(scales) {
            scale_rs(&rs_api, rs, n, &d, surge).await?;
        }
    } else if let Some(nrs) = &new_rs {
        if recreate {
            for rs in &active_old {
                scale_rs(&rs_api, rs, 0, &d, surge).await?;
            }
            let old_pods_left = ctx.pods.state().iter().any(|p| {
                p.metadata.namespace.as_deref() == Some(ns.as_str())
                    && podutil::controller_ref(&p.metadata).is_some_and(|r| {
                        old.iter()
                            .any(|o| o.metadata.uid.as_deref() == Some(r.uid.as_str()))
                    })
                    && !matches!(
                        p.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    )
            });
            if !old_pods_left && active_old.is_empty() {
                scale_rs(&rs_api, nrs, want, &d, surge).await?;
            }
        } else {
            let all_pods: i32 = rs_replicas(nrs) + old.iter().map(rs_replicas).sum::<i32>();
            let up = new_rs_replicas(want, surge, all_pods, rs_replicas(nrs)).min(want);
            if up != rs_replicas(nrs) {
                // One step per sync, as upstream: scale down once the
                // watch shows the scale-up.
                scale_rs(&rs_api, nrs, up, &d, surge).await?;
            } else {
                scale_rs(&rs_api, nrs, up, &d, surge).await?;
                // A status lagging a scale-down must not count pods that
                // are going away as available.
                let avail = |r: &ReplicaSet| rs_available(r).min(rs_replicas(r));
                let olds: Vec<(i32, i32)> =
                    old.iter().map(|r| (rs_replicas(r), avail(r))).collect();
                let scales =
                    scale_down_old(want, unavailable, (rs_replicas(nrs), avail(nrs)), &olds);
                for (rs, n) in old.iter().zip(scales) {
                    if n != rs_replicas(rs) {
                        scale_rs(&rs_api, rs, n, &d, surge).await?;
                    }
                }
            }
        }
    }

    // revisionHistoryLimit: delete the oldest scaled-down ReplicaSets.
    let limit = usize::try_from(spec.revision_history_limit.unwrap_or(10).max(0)).unwrap_or(10);
    let dead: Vec<&ReplicaSet> = old
        .iter()
        .filter(|r| {
            rs_replicas(r) == 0
                && r.status.as_ref().is_none_or(|s| s.replicas == 0)
                && r.metadata.deletion_timestamp.is_none()
        })
        .collect();
    if dead.len() > limit && !paused {
        for rs in &dead[..dead.len() - limit] {
            match rs_api
                .delete(&rs.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if api_code(&e) == Some(404) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    // The deployment's revision annotation follows the new ReplicaSet.
    let dapi: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    if let Some(nrs) = &new_rs {
        let rev = revision(nrs.metadata.annotations.as_ref()).max(max_revision);
        let rev = if revision(nrs.metadata.annotations.as_ref()) > 0 {
            revision(nrs.metadata.annotations.as_ref())
        } else {
            rev
        };
        if revision(d.metadata.annotations.as_ref()) != rev {
            let patch =
                json!({"metadata": {"annotations": {REVISION_ANNOTATION: rev.to_string()}}});
            dapi.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
        }
    }

    // Status from the ReplicaSets as last seen.
    let all: Vec<&ReplicaSet> = new_rs.iter().chain(old.iter()).collect();
    let st = |f: &dyn Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> i32| -> i32 {
        all.iter().filter_map(|r| r.status.as_ref()).map(f).sum()
    };
    let total = st(&|s| s.replicas);
    let ready = st(&|s| s.ready_replicas.unwrap_or(0));
    let available = st(&|s| s.available_replicas.unwrap_or(0));
    let updated = new_rs
        .as_ref()
        .and_then(|r| r.status.as_ref())
        .map(|s| s.replicas)
        .unwrap_or(0);
    let new_name = new_rs.as_ref().map(|r| r.name_any()).unwrap_or_default();
    let complete = new_rs.as_ref().is_some_and(|r| {
        updated == want && rs_replicas(r) == want && total == want && available >= want
    });
    let old_conds = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let prev = |t: &str| old_conds.iter().find(|c| c.type_ == t);
    let mut conds: Vec<Value> = Vec::new();
    let min_available = want - unavailable;
    let avail = if available >= min_available {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let keep_time = |t: &str, status: &str| {
        prev(t)
            .filter(|c| c.status == status)
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|x| now_str(x.0))
            .unwrap_or_else(|| now_str(now))
    };
    conds.push(
        json!({"type": "Available", "status": avail.0, "reason": avail.1, "message": avail.2,
        "lastUpdateTime": now_str(now), "lastTransitionTime": keep_time("Available", avail.0)}),
    );
    let deadline = spec.progress_deadline_seconds.unwrap_or(600);
    let prev_progress = prev("Progressing");
    let progressing = if paused {
        (
            "Unknown",
            "DeploymentPaused".to_string(),
            "Deployment is paused".to_string(),
        )
    } else if complete {
        (
            "True",
            "NewReplicaSetAvailable".to_string(),
            format!("ReplicaSet \"{new_name}\" has successfully progressed."),
        )
    } else if let Some((reason, msg)) = progress_reason {
        ("True", reason.to_string(), msg)
    } else {
        // Timed out when nothing progressed within the deadline.
        let last = prev_progress
            .and_then(|c| c.last_update_time.as_ref())
            .map(|t| t.0);
        let timed_out = last.is_some_and(|t| {
            t.checked_add(SignedDuration::from_secs(i64::from(deadline)))
                .is_ok_and(|x| x < now)
        }) && prev_progress
            .is_some_and(|c| c.reason.as_deref() != Some("NewReplicaSetAvailable"));
        if timed_out
            || prev_progress
                .is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
        {
            (
                "False",
                "ProgressDeadlineExceeded".to_string(),
                format!("ReplicaSet \"{new_name}\" has timed out progressing."),
            )
        } else {
            (
                "True",
                "ReplicaSetUpdated".to_string(),
                format!("ReplicaSet \"{new_name}\" is progressing."),
            )
        }
    };
    // lastUpdateTime moves only when progress is made (upstream), so the
    // deadline counts from the last progress.
    let progressed = prev_progress.is_none_or(|c| {
        c.reason.as_deref() != Some(progressing.1.as_str())
            || c.message.as_deref() != Some(progressing.2.as_str())
    }) || d.status.as_ref().is_none_or(|s| {
        s.updated_replicas.unwrap_or(0) != updated || s.available_replicas.unwrap_or(0) != available
    });
    let last_update = if progressed || progressing.1 != "ReplicaSetUpdated" {
        now_str(now)
    } else {
        prev_progress
            .and_then(|c| c.last_update_time.as_ref())
            .map(|t| now_str(t.0))
            .unwrap_or_else(|| now_str(now))
    };
    conds.push(json!({"type": "Progressing", "status": progressing.0, "reason": progressing.1, "message": progressing.2,
        "lastUpdateTime": last_update, "lastTransitionTime": keep_time("Progressing", progressing.0)}));
    // Keep conditions' timestamps when nothing else changed.
    let same = |c: &Value| {
        let t = c["type"].as_str().unwrap_or_default();
        prev(t).is_some_and(|p| {
            p.status == c["status"].as_str().unwrap_or_default()
                && p.reason.as_deref() == c["reason"].as_str()
                && p.message.as_deref() == c["message"].as_str()
        })
    };
    let conds_changed = !conds.iter().all(same);
    let conds: Vec<Value> = if conds_changed || progressed {
        // Conditions of other types (set by users or other controllers)
        // stay, as upstream's SetDeploymentCondition replaces only its own.
        let managed = ["Available", "Progressing", "ReplicaFailure"];
        old_conds
            .iter()
            .filter(|c| !managed.contains(&c.type_.as_str()))
            .filter_map(|c| serde_json::to_value(c).ok())
            .chain(conds)
            .collect()
    } else {
        serde_json::to_value(&old_conds)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    };
    let status = json!({
        "observedGeneration": d.metadata.generation.unwrap_or(0),
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (want - available).max(0),
        "conditions": conds,
        "collisionCount": d.status.as_ref().and_then(|s| s.collision_count),
    });
    let cur = serde_json::to_value(&d.status).unwrap_or(Value::Null);
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
    let changed = [
        "observedGeneration",
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
    ]
    .iter()
    .any(|k| num(&cur, k) != num(&status, k))
        || conds_changed;
    if changed {
        match dapi
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if api_code(&e) == Some(404) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    if !complete && !paused && progressing.1 != "ProgressDeadlineExceeded" {
        // Recheck the progress deadline (and minReadySeconds) later.
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    Ok(Action::await_change())
}

fn error_policy(d: Arc<Deployment>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(deployment = %d.name_any(), error = %err, "deployment sync failed");
    Action::requeue(Duration::from_secs(1))
}

/// Runs the Deployment controller until cancelled.
pub async fn run(
    client: Client,
    informers: Informers,
    concurrency: u16,
    queue: std::sync::Arc<crate::metrics::Queue>,
) {
    let (deployments, changes) = informers.subscribe::<Deployment>();
    let (rss, rs_changes) = informers.subscribe::<ReplicaSet>();
    let (pods, pod_changes) = informers.subscribe::<Pod>();
    informers.synced().await;
    let rs_store = rss.clone();
    let ctx = Arc::new(Ctx { client, rss, pods });
    let (q1, q2, q3) = (queue.clone(), queue.clone(), queue.clone());
    let changes = changes.inspect(move |d| q1.add(&crate::metrics::key(d.as_ref())));
    Controller::for_shared_stream(changes, deployments)
        .watches_shared_stream(rs_changes, move |rs: Arc<ReplicaSet>| {
            let r = owner_deployment(&rs.metadata);
            r.iter().for_each(|r| q2.add_ref(r));
            r
        })
        // Recreate waits for the old pods to be gone.
        .watches_shared_stream(pod_changes, move |pod: Arc<Pod>| {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let r = podutil::controller_ref(&pod.metadata)
                .filter(|r| r.kind == "ReplicaSet")
                .and_then(|r| rs_store.get(&ObjectRef::new(&r.name).within(&ns)))
                .and_then(|rs| owner_deployment(&rs.metadata));
            r.iter().for_each(|r| q3.add_ref(r));
            r
        })
        .with_config(Config::default().concurrency(concurrency))
        .run(
            crate::metrics::instrument(queue, reconcile),
            error_policy,
            ctx,
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "deployment controller event");
            }
        })
        .await;
}

fn owner_deployment(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<ObjectRef<Deployment>> {
    let r = podutil::controller_ref(meta)?;
    (r.kind == "Deployment" && r.api_version.starts_with("apps/"))
        .then(|| ObjectRef::new(&r.name).within(meta.namespace.as_deref().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounding() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(scaled(&pct("25%"), 3, true), 1);
        assert_eq!(scaled(&pct("25%"), 3, false), 0);
        assert_eq!(scaled(&pct("25%"), 10, true), 3);
        assert_eq!(scaled(&pct("25%"), 10, false), 2);
        assert_eq!(scaled(&IntOrString::Int(2), 10, false), 2);
    }

    #[test]
    fn rolling_steps() {
        // 10 replicas, surge 3, all old pods: new RS goes to 3.
        assert_eq!(new_rs_replicas(10, 3, 10, 0), 3);
        // At the surge limit: no change.
        assert_eq!(new_rs_replicas(10, 3, 13, 3), 3);
        // Old RS 10 all available, new RS 3 none available, maxUnavailable 2:
        // may take down 2.
        assert_eq!(scale_down_old(10, 2, (3, 0), &[(10, 10)]), vec![8]);
        // Unavailable old pods go first, without counting against the
        // budget beyond allPods - minAvailable - newUnavailable.
        assert_eq!(scale_down_old(10, 2, (3, 3), &[(10, 5)]), vec![5]);
        // Nothing to take down when min availability is at stake.
        assert_eq!(scale_down_old(3, 0, (1, 0), &[(3, 3)]), vec![3]);
    }

    #[test]
    fn proportions() {
        // Upstream's proportional scaling conformance case: 10 replicas,
        // maxSurge 3, stuck at 8 old + 5 new, scaled to 30.
        assert_eq!(
            proportional(&[(8, Some(13)), (5, Some(13))], 33, 13),
            vec![20, 13]
        );
        assert_eq!(
            proportional(&[(5, Some(10)), (5, Some(10))], 20, 10),
            vec![10, 10]
        );
        assert_eq!(
            proportional(&[(8, Some(10)), (2, Some(10))], 5, 10),
            vec![4, 1]
        );
        assert_eq!(
            proportional(&[(3, None), (2, None)], 6, 5)
                .iter()
                .sum::<i32>(),
            6
        );
        // Scaled to zero: everything goes.
        assert_eq!(
            proportional(&[(3, Some(4)), (1, Some(4))], 0, 4),
            vec![0, 0]
        );
    }

    #[test]
    fn hash_is_stable_and_template_equality_ignores_it() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }))
        .unwrap();
        let h = template_hash(&t, None);
        assert_eq!(h, template_hash(&t, None));
        assert_ne!(h, template_hash(&t, Some(1)));
        let mut labeled = t.clone();
        labeled
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH.into(), h);
        assert!(same_template(&t, &labeled));
    }
}
