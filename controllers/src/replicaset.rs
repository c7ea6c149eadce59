//! ReplicaSet and ReplicationController controllers (upstream
//! `pkg/controller/replicaset`, which serves both kinds): adopt and release
//! pods by selector, create or delete pods to match `spec.replicas` with
//! slow-start batches, expectations so that a sync does not act again
//! before the watch shows its previous writes, and `status`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::api_code;
use crate::informer::{Informers, Watched};
use crate::podutil::{self, Selector};

/// Upstream's `BurstReplicas`: at most this many creations or deletions per
/// sync.
pub const BURST_REPLICAS: usize = 500;
/// Upstream's expectations TTL: a sync proceeds anyway after this long.
const EXPECTATIONS_TTL: Duration = Duration::from_secs(300);

/// The fields the controller needs from a ReplicaSet or a
/// ReplicationController.
pub trait ReplicaKind:
    Watched + serde::Serialize + Resource<Scope = k8s_openapi::NamespaceResourceScope>
{
    /// The owning controller's name in logs.
    const CONTROLLER: &'static str;
    fn selector(&self) -> Selector;
    fn replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// The current status as JSON (upstream field names).
    fn status_json(&self) -> Value;
}

impl ReplicaKind for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset-controller";
    fn selector(&self) -> Selector {
        self.spec
            .as_ref()
            .map(|s| Selector::from_label_selector(&s.selector))
            .unwrap_or_default()
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
}

impl ReplicaKind for ReplicationController {
    const CONTROLLER: &'static str = "replicationcontroller-controller";
    fn selector(&self) -> Selector {
        let spec = self.spec.as_ref();
        // An RC without a selector selects its template's labels (upstream
        // defaulting).
        match spec
            .and_then(|s| s.selector.as_ref())
            .filter(|m| !m.is_empty())
        {
            Some(m) => Selector::from_map(m),
            None => spec
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.as_ref())
                .map(Selector::from_map)
                .unwrap_or_default(),
        }
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube api: {0}")]
    Kube(#[from] kube::Error),
}

/// What a sync wrote and waits to see in the pod store.
#[derive(Default)]
struct Expectation {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Option<Instant>,
}

/// Upstream's `ControllerExpectations`, kept as the names created and UIDs
/// deleted: satisfied once the store holds every created pod and none of
/// the deleted ones (or shows them terminating).
#[derive(Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Expectation>>,
}

impl Expectations {
    fn satisfied(&self, key: &str, pods: &[Arc<Pod>]) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(exp) = inner.get_mut(key) else {
            return true;
        };
        if exp.since.is_some_and(|s| s.elapsed() > EXPECTATIONS_TTL) {
            inner.remove(key);
            return true;
        }
        exp.creates.retain(|name| {
            !pods
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(name))
        });
        exp.deletes.retain(|uid| {
            pods.iter().any(|p| {
                p.metadata.uid.as_deref() == Some(uid) && p.metadata.deletion_timestamp.is_none()
            })
        });
        let done = exp.creates.is_empty() && exp.deletes.is_empty();
        if done {
            inner.remove(key);
        }
        done
    }

    fn expect(&self, key: &str, creates: Vec<String>, deletes: Vec<String>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let exp = inner.entry(key.to_string()).or_default();
        exp.creates.extend(creates);
        exp.deletes.extend(deletes);
        exp.since = Some(Instant::now());
    }
}

struct Ctx {
    client: Client,
    pods: Store<Pod>,
    expectations: Expectations,
}

/// The pod a controller creates from its template (upstream
/// `GetPodFromTemplate`): the template's labels, annotations, finalizers and
/// spec, `generateName: <owner>-`, and a controller reference.
pub fn pod_from_template<K: ReplicaKind>(owner: &K, template: &PodTemplateSpec) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    let name = owner.meta().name.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: owner.meta().namespace.clone(),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![podutil::new_controller_ref(
                &K::api_version(&()),
                &K::kind(&()),
                &name,
                owner.meta().uid.as_deref().unwrap_or_default(),
            )]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The status fields computed from the owner's active pods (upstream
/// `calculateStatus`), with the ReplicaFailure condition set from a failed
/// create/delete or cleared after a successful sync.
pub fn calculate_status<K: ReplicaKind>(
    owner: &K,
    pods: &[Arc<Pod>],
    failure: Option<(&str, String)>,
    now: Timestamp,
) -> Value {
    let template_labels = owner
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            template_labels
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| podutil::is_ready(p)).count();
    let available = pods
        .iter()
        .filter(|p| podutil::is_available(p, owner.min_ready_seconds(), now))
        .count();
    let old = owner.status_json();
    let mut conditions: Vec<Value> = old
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match failure {
        Some((reason, message)) => {
            let existing = conditions
                .iter()
                .position(|c| c.get("type").and_then(Value::as_str) == Some("ReplicaFailure"));
            let cond = json!({
                "type": "ReplicaFailure",
                "status": "True",
                "reason": reason,
                "message": message,
                "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            });
            match existing {
                Some(i) if conditions[i].get("status") == Some(&json!("True")) => {
                    conditions[i]["reason"] = json!(reason);
                    conditions[i]["message"] = cond["message"].clone();
                }
                Some(i) => conditions[i] = cond,
                None => conditions.push(cond),
            }
        }
        None => {
            conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some("ReplicaFailure"))
        }
    }
    let mut status = json!({
        "replicas": pods.len(),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": owner.meta().generation.unwrap_or(0),
    });
    if !conditions.is_empty() {
        status["conditions"] = json!(conditions);
    }
    status
}

/// Whether the written status differs from the current one (zero counts
/// are omitted by the server, so compare with zeros filled in).
fn status_differs(current: &Value, desired: &Value) -> bool {
    let get = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(json!(0));
    [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ]
    .iter()
    .any(|k| get(current, k) != get(desired, k))
        || current.get("conditions").cloned().unwrap_or(json!([]))
            != desired.get("conditions").cloned().unwrap_or(json!([]))
}

fn key_of<K: ReplicaKind>(owner: &K) -> String {
    format!(
        "{}/{}",
        owner.meta().namespace.as_deref().unwrap_or_default(),
        owner.meta().name.as_deref().unwrap_or_default()
    )
}

async fn reconcile<K: ReplicaKind>(owner: Arc<K>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = owner.namespace().unwrap_or_default();
    let name = owner.name_any();
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let key = key_of(owner.as_ref());
    let selector = owner.selector();
    let all_pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
        .collect();
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let deleting = owner.meta().deletion_timestamp.is_some();

    // Adopt orphans that match, release owned pods that no longer match
    // (upstream `ClaimPods`).
    let mut owned: Vec<Arc<Pod>> = Vec::new();
    for pod in &all_pods {
        let matches = !selector.is_empty() && selector.matches(pod.metadata.labels.as_ref());
        match podutil::controller_ref(&pod.metadata) {
            Some(r) if r.uid == uid => {
                if matches || pod.metadata.deletion_timestamp.is_some() {
                    owned.push(pod.clone());
                } else if !deleting {
                    release(&pod_api, pod, &uid).await?;
                }
            }
            Some(_) => {}
            None => {
                if matches
                    && !deleting
                    && pod.metadata.deletion_timestamp.is_none()
                    && podutil::is_active(pod)
                    && let Some(p) = adopt(&pod_api, owner.as_ref(), pod).await?
                {
                    owned.push(Arc::new(p));
                }
            }
        }
    }
    let active: Vec<Arc<Pod>> = owned
        .into_iter()
        .filter(|p| podutil::is_active(p))
        .collect();

    let mut failure = None;
    if !deleting && ctx.expectations.satisfied(&key, &all_pods) {
        failure = manage_replicas(owner.as_ref(), &active, &ctx, &pod_api, &key).await;
    }

    let now = Timestamp::now();
    let mut desired = calculate_status(owner.as_ref(), &active, failure, now);
    if status_differs(&owner.status_json(), &desired) {
        if desired.get("conditions").is_none() {
            // A merge patch only removes what it names as null.
            desired["conditions"] = Value::Null;
        }
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": desired })),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if api_code(&e) == Some(404) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    // Pods waiting out minReadySeconds become available without an event.
    let min_ready = owner.min_ready_seconds();
    if min_ready > 0
        && active
            .iter()
            .any(|p| podutil::is_ready(p) && !podutil::is_available(p, min_ready, now))
    {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    Ok(Action::await_change())
}

/// Creates or deletes pods to match `spec.replicas`; a failure is returned
/// as the ReplicaFailure condition's reason and message.
async fn manage_replicas<K: ReplicaKind>(
    owner: &K,
    active: &[Arc<Pod>],
    ctx: &Ctx,
    pod_api: &Api<Pod>,
    key: &str,
) -> Option<(&'static str, String)> {
    let want = usize::try_from(owner.replicas().max(0)).unwrap_or(0);
    if active.len() < want {
        let template = owner.template()?;
        let pod = pod_from_template(owner, template);
        let count = (want - active.len()).min(BURST_REPLICAS);
        for batch in podutil::slow_start_batches(count) {
            let pp = PostParams::default();
            let results =
                futures::future::join_all((0..batch).map(|_| pod_api.create(&pp, &pod))).await;
            let mut created = Vec::new();
            let mut error = None;
            for r in results {
                match r {
                    Ok(p) => created.push(p.name_any()),
                    Err(e) => error = Some(e),
                }
            }
            ctx.expectations.expect(key, created, vec![]);
            if let Some(e) = error {
                tracing::warn!(controller = K::CONTROLLER, owner = key, error = %e, "creating pods failed");
                return Some(("FailedCreate", api_message(&e)));
            }
        }
    } else if active.len() > want {
        let mut victims: Vec<Arc<Pod>> = active.to_vec();
        victims.sort_by(|a, b| podutil::deletion_order(a, b));
        victims.truncate((active.len() - want).min(BURST_REPLICAS));
        let uids: Vec<String> = victims
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        ctx.expectations.expect(key, vec![], uids);
        let dp = DeleteParams::default();
        let results = futures::future::join_all(
            victims
                .iter()
                .map(|p| pod_api.delete(p.metadata.name.as_deref().unwrap_or_default(), &dp)),
        )
        .await;
        for r in results {
            match r {
                Ok(_) => {}
                Err(e) if api_code(&e) == Some(404) => {}
                Err(e) => {
                    tracing::warn!(controller = K::CONTROLLER, owner = key, error = %e, "deleting pods failed");
                    return Some(("FailedDelete", api_message(&e)));
                }
            }
        }
    }
    None
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Adds the owner's controller reference to an orphan, guarded by its
/// resourceVersion and UID; `None` when the pod changed meanwhile.
async fn adopt<K: ReplicaKind>(api: &Api<Pod>, owner: &K, pod: &Pod) -> Result<Option<Pod>, Error> {
    let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
    refs.push(podutil::new_controller_ref(
        &K::api_version(&()),
        &K::kind(&()),
        owner.meta().name.as_deref().unwrap_or_default(),
        owner.meta().uid.as_deref().unwrap_or_default(),
    ));
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": pod.metadata.resource_version,
    }});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(p) => Ok(Some(p)),
        Err(e) if matches!(api_code(&e), Some(404 | 409 | 422)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes the owner's reference from a pod it no longer selects.
async fn release(api: &Api<Pod>, pod: &Pod, owner_uid: &str) -> Result<(), Error> {
    let refs: Vec<_> = pod
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.uid != owner_uid)
        .collect();
    let patch = json!({"metadata": {
        "ownerReferences": if refs.is_empty() { Value::Null } else { json!(refs) },
        "resourceVersion": pod.metadata.resource_version,
    }});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if matches!(api_code(&e), Some(404 | 409 | 422)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The owners to sync after a pod changed: its controller, or for an
/// orphan every owner in its namespace whose selector matches it.
fn owners_of_pod<K: ReplicaKind>(pod: &Pod, owners: &Store<K>) -> Vec<ObjectRef<K>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    if let Some(r) = podutil::controller_ref(&pod.metadata) {
        if r.kind == K::kind(&()) && r.api_version == K::api_version(&()) {
            return vec![ObjectRef::new(&r.name).within(ns)];
        }
        return vec![];
    }
    owners
        .state()
        .iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(ns))
        .filter(|o| {
            let s = o.selector();
            !s.is_empty() && s.matches(pod.metadata.labels.as_ref())
        })
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

fn error_policy<K: ReplicaKind>(owner: Arc<K>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(controller = K::CONTROLLER, owner = %key_of(owner.as_ref()), error = %err, "sync failed");
    Action::requeue(Duration::from_secs(1))
}

/// Runs the controller for `K` (ReplicaSet or ReplicationController) with
/// `concurrency` parallel syncs until cancelled.
pub async fn run<K: ReplicaKind>(
    client: Client,
    informers: Informers,
    concurrency: u16,
    queue: Arc<crate::metrics::Queue>,
) {
    let (owners, owner_changes) = informers.subscribe::<K>();
    let (pods, pod_changes) = informers.subscribe::<Pod>();
    informers.synced().await;
    let ctx = Arc::new(Ctx {
        client,
        pods,
        expectations: Expectations::default(),
    });
    let mapper_owners = owners.clone();
    let (q1, q2) = (queue.clone(), queue.clone());
    let owner_changes = owner_changes.inspect(move |o| q1.add(&crate::metrics::key(o.as_ref())));
    Controller::for_shared_stream(owner_changes, owners)
        .watches_shared_stream(pod_changes, move |pod: Arc<Pod>| {
            let refs = owners_of_pod(&pod, &mapper_owners);
            refs.iter().for_each(|r| q2.add_ref(r));
            refs
        })
        .with_config(Config::default().concurrency(concurrency))
        .run(
            crate::metrics::instrument(queue, reconcile::<K>),
            error_policy::<K>,
            ctx,
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(controller = K::CONTROLLER, error = %e, "controller event");
            }
        })
        .await;
}
