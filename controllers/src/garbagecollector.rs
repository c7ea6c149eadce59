//! Garbage collector (upstream `pkg/controller/garbagecollector`): a graph
//! of ownerReferences over every resource that can be listed, watched and
//! deleted, fed by metadata-only watches. It deletes dependents whose owners
//! are all gone (background propagation), deletes the dependents of an owner
//! carrying the `foregroundDeletion` finalizer and removes that finalizer
//! once no dependent with `blockOwnerDeletion` remains, and for an owner
//! carrying the `orphan` finalizer removes its references from the
//! dependents, then the finalizer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, PartialObjectMeta, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::discovery::{Discovery, Scope, verbs};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::Notify;

use crate::api_code;

pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";
pub const FINALIZER_ORPHAN: &str = "orphan";

/// How often discovery is rerun to pick up new resources (CRDs).
const REDISCOVERY: Duration = Duration::from_secs(30);

/// A watched resource.
#[derive(Clone, Debug)]
struct Kind {
    ar: ApiResource,
    namespaced: bool,
}

/// One object in the graph.
#[derive(Clone, Debug)]
pub struct Node {
    kind: usize,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub owners: Vec<OwnerReference>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

#[derive(Default)]
struct Graph {
    kinds: Vec<Kind>,
    /// Kinds whose watch has delivered its first full list. The collector
    /// acts only when every kind is synced (upstream waits for its
    /// monitors' caches): a dependent not yet listed must not look absent.
    synced: HashSet<usize>,
    nodes: HashMap<String, Node>,
    queue: VecDeque<String>,
    queued: HashSet<String>,
    /// Counts the queue for `/metrics`.
    metrics: Option<Arc<crate::metrics::Queue>>,
}

impl Graph {
    fn enqueue(&mut self, uid: &str) {
        if self.queued.insert(uid.to_string()) {
            self.queue.push_back(uid.to_string());
            if let Some(m) = &self.metrics {
                m.add(uid);
            }
        }
    }

    fn dependents(&self, owner_uid: &str) -> Vec<Node> {
        self.nodes
            .values()
            .filter(|n| n.owners.iter().any(|o| o.uid == owner_uid))
            .cloned()
            .collect()
    }

    /// The watched resource for an owner reference (group and kind; any
    /// version).
    fn kind_for(&self, api_version: &str, kind: &str) -> Option<Kind> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        self.kinds
            .iter()
            .find(|k| k.ar.group == group && k.ar.kind == kind)
            .cloned()
    }

    fn apply(&mut self, kind: usize, meta: &PartialObjectMeta<DynamicObject>) {
        let m = &meta.metadata;
        let Some(uid) = m.uid.clone() else { return };
        let node = Node {
            kind,
            namespace: m.namespace.clone(),
            name: m.name.clone().unwrap_or_default(),
            uid: uid.clone(),
            owners: m.owner_references.clone().unwrap_or_default(),
            deleting: m.deletion_timestamp.is_some(),
            finalizers: m.finalizers.clone().unwrap_or_default(),
        };
        let previous = self.nodes.insert(uid.clone(), node.clone());
        let changed_deleting = previous
            .as_ref()
            .is_none_or(|p| p.deleting != node.deleting);
        if !node.owners.is_empty() || node.deleting {
            self.enqueue(&uid);
        }
        // Owners being deleted wait on their dependents' changes.
        let owners: Vec<String> = previous
            .iter()
            .flat_map(|p| p.owners.iter())
            .chain(node.owners.iter())
            .map(|o| o.uid.clone())
            .collect();
        for o in owners {
            if self.nodes.get(&o).is_some_and(|n| n.deleting) {
                self.enqueue(&o);
            }
        }
        // An owner starting to be deleted changes what its dependents do.
        if changed_deleting && node.deleting {
            for d in self.dependents(&uid) {
                self.enqueue(&d.uid);
            }
        }
    }

    fn remove(&mut self, uid: &str) {
        let Some(node) = self.nodes.remove(uid) else {
            return;
        };
        // Its dependents may now be dangling; its owners may be waiting for
        // it (foreground deletion).
        for d in self.dependents(uid) {
            self.enqueue(&d.uid);
        }
        for o in &node.owners {
            if self.nodes.contains_key(&o.uid) {
                self.enqueue(&o.uid);
            }
        }
    }
}

/// What the collector does for one object.
#[derive(Debug, PartialEq)]
pub enum Step {
    Nothing,
    /// Remove these owner references (owners gone, or an orphaning owner).
    RemoveOwnerRefs(Vec<String>),
    /// Delete the object with this propagation.
    Delete(&'static str),
    /// Remove a finalizer from the object (its dependents are handled).
    RemoveFinalizer(&'static str),
    /// Have these dependents collected (foreground deletion of the object).
    DeleteDependents(Vec<String>),
    /// Remove the object's reference from these dependents (orphaning).
    OrphanDependents(Vec<String>),
}

/// Owners as the collector sees them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OwnerState {
    /// Exists and is not being deleted in the foreground.
    Solid,
    /// Being deleted with `foregroundDeletion`: waits for its dependents.
    WaitingForDependents,
    /// Does not exist (or has another UID).
    Absent,
}

/// Upstream `attemptToDeleteItem` for an object with owners, given each
/// owner's state.
pub fn dependent_step(node: &Node, owners: &[(String, OwnerState)]) -> Step {
    if node.deleting || owners.is_empty() {
        return Step::Nothing;
    }
    let solid = owners.iter().any(|(_, s)| *s == OwnerState::Solid);
    if solid {
        let gone: Vec<String> = owners
            .iter()
            .filter(|(_, s)| *s != OwnerState::Solid)
            .map(|(u, _)| u.clone())
            .collect();
        if gone.is_empty() {
            return Step::Nothing;
        }
        return Step::RemoveOwnerRefs(gone);
    }
    if owners
        .iter()
        .any(|(_, s)| *s == OwnerState::WaitingForDependents)
    {
        // An owner deleted in the foreground: delete this one in the
        // foreground too, so that its own dependents go first.
        return Step::Delete("Foreground");
    }
    Step::Delete("Background")
}

/// The step for an object being deleted with one of the GC's finalizers.
pub fn owner_step(node: &Node, dependents: &[Node]) -> Step {
    if !node.deleting {
        return Step::Nothing;
    }
    if node.finalizers.iter().any(|f| f == FINALIZER_ORPHAN) {
        if dependents.is_empty() {
            return Step::RemoveFinalizer(FINALIZER_ORPHAN);
        }
        return Step::OrphanDependents(dependents.iter().map(|d| d.uid.clone()).collect());
    }
    if node.finalizers.iter().any(|f| f == FINALIZER_FOREGROUND) {
        let to_delete: Vec<String> = dependents
            .iter()
            .filter(|d| !d.deleting)
            .map(|d| d.uid.clone())
            .collect();
        if !to_delete.is_empty() {
            return Step::DeleteDependents(to_delete);
        }
        let blocking = dependents.iter().any(|d| {
            d.owners
                .iter()
                .any(|o| o.uid == node.uid && o.block_owner_deletion == Some(true))
        });
        if !blocking {
            return Step::RemoveFinalizer(FINALIZER_FOREGROUND);
        }
    }
    Step::Nothing
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube api: {0}")]
    Kube(#[from] kube::Error),
    #[error("the graph is behind the object's owner references")]
    Stale,
}

struct Collector {
    client: Client,
    graph: Mutex<Graph>,
    wake: Notify,
}

impl Collector {
    fn lock(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match (kind.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &kind.ar),
            _ => Api::all_with(self.client.clone(), &kind.ar),
        }
    }

    /// An owner's state: from the graph, or (not there yet or of a kind
    /// not watched) a live read, as upstream verifies absent owners.
    async fn owner_state(&self, dependent: &Node, owner: &OwnerReference) -> OwnerState {
        let (known, kind) = {
            let g = self.lock();
            (
                g.nodes.get(&owner.uid).cloned(),
                g.kind_for(&owner.api_version, &owner.kind),
            )
        };
        let state_of = |n: &Node| {
            if n.deleting && n.finalizers.iter().any(|f| f == FINALIZER_FOREGROUND) {
                OwnerState::WaitingForDependents
            } else {
                OwnerState::Solid
            }
        };
        if let Some(n) = known {
            return state_of(&n);
        }
        let Some(kind) = kind else {
            // A kind nobody serves: the owner cannot exist.
            return OwnerState::Absent;
        };
        // A namespaced dependent's owner is in its namespace; a
        // cluster-scoped dependent cannot have a namespaced owner.
        if kind.namespaced && dependent.namespace.is_none() {
            return OwnerState::Absent;
        }
        let api = self.api(&kind, dependent.namespace.as_deref());
        match api.get_metadata_opt(&owner.name).await {
            Ok(Some(m)) if m.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                if m.metadata.deletion_timestamp.is_some()
                    && m.metadata
                        .finalizers
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .any(|f| f == FINALIZER_FOREGROUND)
                {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Solid
                }
            }
            Ok(_) => OwnerState::Absent,
            // Unknown: treat as present, never delete on a failed read.
            Err(e) => {
                tracing::debug!(error = %e, "owner lookup failed");
                OwnerState::Solid
            }
        }
    }

    async fn process(&self, uid: &str) -> Result<(), Error> {
        let (node, kind, dependents) = {
            let g = self.lock();
            let Some(node) = g.nodes.get(uid).cloned() else {
                return Ok(());
            };
            let kind = g.kinds[node.kind].clone();
            let deps = g.dependents(uid);
            (node, kind, deps)
        };
        let step = if node.deleting {
            owner_step(&node, &dependents)
        } else {
            let mut owners = Vec::new();
            for o in &node.owners {
                owners.push((o.uid.clone(), self.owner_state(&node, o).await));
            }
            dependent_step(&node, &owners)
        };
        let api = self.api(&kind, node.namespace.as_deref());
        // Before deleting a dependent or dropping its references, read it
        // live as upstream's attemptToDelete does: an owner added just
        // now may not have reached the graph yet. A stale graph retries
        // once its watch has caught up.
        if matches!(step, Step::Delete(_) | Step::RemoveOwnerRefs(_)) {
            let live = match api.get_opt(&node.name).await {
                Ok(Some(o)) => o,
                Ok(None) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let uids = |refs: &[OwnerReference]| {
                let mut v: Vec<String> = refs.iter().map(|r| r.uid.clone()).collect();
                v.sort();
                v
            };
            let live_refs = live.metadata.owner_references.clone().unwrap_or_default();
            if live.metadata.uid.as_deref() != Some(node.uid.as_str())
                || uids(&live_refs) != uids(&node.owners)
            {
                tracing::debug!(object = %node.name, "graph behind the object's owners; retrying");
                return Err(Error::Stale);
            }
        }
        match step {
            Step::Nothing => {}
            Step::RemoveOwnerRefs(uids) => {
                let refs: Vec<&OwnerReference> = node
                    .owners
                    .iter()
                    .filter(|o| !uids.contains(&o.uid))
                    .collect();
                self.patch_refs(&api, &node, refs).await?;
            }
            Step::Delete(policy) => {
                tracing::info!(object = %node.name, kind = %kind.ar.kind, policy, "deleting object whose owners are gone");
                self.delete(&api, &node, policy).await?;
            }
            Step::RemoveFinalizer(f) => {
                let rest: Vec<&String> = node.finalizers.iter().filter(|x| *x != f).collect();
                let patch = json!({"metadata": {"finalizers": rest}});
                ignore_gone(
                    api.patch(&node.name, &PatchParams::default(), &Patch::Merge(patch))
                        .await,
                )?;
            }
            Step::DeleteDependents(uids) => {
                // Each dependent decides as upstream's attemptToDelete: it
                // is deleted (in the foreground) unless another owner
                // still holds it, which only drops this reference.
                let mut g = self.lock();
                for d in uids {
                    g.enqueue(&d);
                }
            }
            Step::OrphanDependents(uids) => {
                for d in dependents.iter().filter(|d| uids.contains(&d.uid)) {
                    let dkind = self.lock().kinds[d.kind].clone();
                    let dapi = self.api(&dkind, d.namespace.as_deref());
                    let refs: Vec<&OwnerReference> =
                        d.owners.iter().filter(|o| o.uid != node.uid).collect();
                    self.patch_refs(&dapi, d, refs).await?;
                }
                // Finalizer removal follows once the graph shows no
                // dependents.
                self.lock().enqueue(uid);
            }
        }
        Ok(())
    }

    async fn patch_refs(
        &self,
        api: &Api<DynamicObject>,
        node: &Node,
        refs: Vec<&OwnerReference>,
    ) -> Result<(), Error> {
        let patch = json!({"metadata": {"ownerReferences": if refs.is_empty() { json!(null) } else { json!(refs) }}});
        ignore_gone(
            api.patch(&node.name, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )
    }

    async fn delete(
        &self,
        api: &Api<DynamicObject>,
        node: &Node,
        policy: &str,
    ) -> Result<(), Error> {
        let dp = DeleteParams {
            propagation_policy: Some(if policy == "Foreground" {
                PropagationPolicy::Foreground
            } else {
                PropagationPolicy::Background
            }),
            preconditions: Some(Preconditions {
                uid: Some(node.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&node.name, &dp).await {
            Ok(_) => Ok(()),
            Err(e) if matches!(api_code(&e), Some(404 | 409)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn ignore_gone<T>(r: Result<T, kube::Error>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if matches!(api_code(&e), Some(404 | 409)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Resources the collector watches: listable, watchable and deletable.
fn gc_resources(discovery: &Discovery) -> Vec<Kind> {
    let mut out: Vec<Kind> = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if ar.plural.contains('/')
                || !caps.supports_operation(verbs::LIST)
                || !caps.supports_operation(verbs::WATCH)
                || !caps.supports_operation(verbs::DELETE)
            {
                continue;
            }
            // Events have no owners worth collecting and churn the most.
            if ar.kind == "Event" {
                continue;
            }
            out.push(Kind {
                namespaced: caps.scope == Scope::Namespaced,
                ar,
            });
        }
    }
    out
}

async fn watch_kind(collector: Arc<Collector>, index: usize, kind: Kind) {
    // Metadata-only lists and watches: the graph needs nothing else.
    let api: Api<PartialObjectMeta<DynamicObject>> =
        Api::all_with(collector.client.clone(), &kind.ar);
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut listing: HashSet<String> = HashSet::new();
    while let Some(ev) = events.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::debug!(kind = %kind.ar.kind, error = %e, "gc watch failed; retrying");
                continue;
            }
        };
        {
            let mut g = collector.lock();
            match &ev {
                Event::Apply(m) => g.apply(index, m),
                Event::Delete(m) => {
                    if let Some(uid) = &m.metadata.uid {
                        g.remove(uid);
                    }
                }
                Event::Init => listing.clear(),
                Event::InitApply(m) => {
                    if let Some(uid) = &m.metadata.uid {
                        listing.insert(uid.clone());
                    }
                    g.apply(index, m);
                }
                Event::InitDone => {
                    g.synced.insert(index);
                    // Objects of this kind deleted while the watch was down.
                    let gone: Vec<String> = g
                        .nodes
                        .values()
                        .filter(|n| n.kind == index && !listing.contains(&n.uid))
                        .map(|n| n.uid.clone())
                        .collect();
                    for uid in gone {
                        g.remove(&uid);
                    }
                }
            }
        }
        collector.wake.notify_one();
    }
}

/// Runs the garbage collector until cancelled.
pub async fn run(client: Client, queue: Arc<crate::metrics::Queue>) {
    let collector = Arc::new(Collector {
        client: client.clone(),
        graph: Mutex::new(Graph {
            metrics: Some(queue.clone()),
            ..Default::default()
        }),
        wake: Notify::new(),
    });
    let discoverer = {
        let collector = collector.clone();
        async move {
            loop {
                match Discovery::new(collector.client.clone()).run().await {
                    Ok(d) => {
                        for kind in gc_resources(&d) {
                            let index = {
                                let mut g = collector.lock();
                                if g.kinds.iter().any(|k| {
                                    k.ar.group == kind.ar.group && k.ar.kind == kind.ar.kind
                                }) {
                                    continue;
                                }
                                g.kinds.push(kind.clone());
                                g.kinds.len() - 1
                            };
                            tokio::spawn(watch_kind(collector.clone(), index, kind));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "garbage collector discovery failed"),
                }
                tokio::time::sleep(REDISCOVERY).await;
            }
        }
    };
    let worker = {
        let collector = collector.clone();
        async move {
            loop {
                let next = {
                    let mut g = collector.lock();
                    let next = if g.synced.len() < g.kinds.len() || g.kinds.is_empty() {
                        None
                    } else {
                        g.queue.pop_front()
                    };
                    if let Some(uid) = &next {
                        g.queued.remove(uid);
                    }
                    next
                };
                let Some(uid) = next else {
                    collector.wake.notified().await;
                    continue;
                };
                let started = queue.start(&uid);
                let result = collector.process(&uid).await;
                queue.done(started, result.is_ok());
                if let Err(e) = result {
                    if !matches!(e, Error::Stale) {
                        tracing::warn!(uid, error = %e, "garbage collection failed; retrying");
                    }
                    let c = collector.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        c.lock().enqueue(&uid);
                        c.wake.notify_one();
                    });
                }
            }
        }
    };
    futures::future::join(discoverer, worker).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(uid: &str, owners: &[(&str, bool)], deleting: bool, finalizers: &[&str]) -> Node {
        Node {
            kind: 0,
            namespace: Some("ns".into()),
            name: uid.into(),
            uid: uid.into(),
            owners: owners
                .iter()
                .map(|(u, block)| OwnerReference {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: u.to_string(),
                    uid: u.to_string(),
                    controller: None,
                    block_owner_deletion: Some(*block),
                })
                .collect(),
            deleting,
            finalizers: finalizers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn dependents_of_absent_owners_are_deleted() {
        let n = node("d", &[("o", false)], false, &[]);
        assert_eq!(
            dependent_step(&n, &[("o".into(), OwnerState::Absent)]),
            Step::Delete("Background")
        );
        assert_eq!(
            dependent_step(&n, &[("o".into(), OwnerState::Solid)]),
            Step::Nothing
        );
        assert_eq!(
            dependent_step(&n, &[("o".into(), OwnerState::WaitingForDependents)]),
            Step::Delete("Foreground")
        );
    }

    #[test]
    fn a_solid_owner_keeps_the_dependent() {
        let n = node("d", &[("a", false), ("b", false)], false, &[]);
        assert_eq!(
            dependent_step(
                &n,
                &[
                    ("a".into(), OwnerState::Absent),
                    ("b".into(), OwnerState::Solid)
                ]
            ),
            Step::RemoveOwnerRefs(vec!["a".into()])
        );
    }

    #[test]
    fn orphaning_and_foreground_owners() {
        let o = node("o", &[], true, &[FINALIZER_ORPHAN]);
        let d = node("d", &[("o", true)], false, &[]);
        assert_eq!(
            owner_step(&o, std::slice::from_ref(&d)),
            Step::OrphanDependents(vec!["d".into()])
        );
        assert_eq!(owner_step(&o, &[]), Step::RemoveFinalizer(FINALIZER_ORPHAN));
        let o = node("o", &[], true, &[FINALIZER_FOREGROUND]);
        assert_eq!(
            owner_step(&o, std::slice::from_ref(&d)),
            Step::DeleteDependents(vec!["d".into()])
        );
        // Deleting, and blocking: wait.
        let d_deleting = node("d", &[("o", true)], true, &[]);
        assert_eq!(owner_step(&o, &[d_deleting]), Step::Nothing);
        // Deleting without blockOwnerDeletion: no wait.
        let d_free = node("d", &[("o", false)], true, &[]);
        assert_eq!(
            owner_step(&o, &[d_free]),
            Step::RemoveFinalizer(FINALIZER_FOREGROUND)
        );
    }
}
