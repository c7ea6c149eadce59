//! Namespace lifecycle controller (upstream `namespace-controller`): when a
//! Namespace is being deleted, delete every namespaced object in it, wait
//! until they are gone, then remove the `kubernetes` finalizer through the
//! `finalize` subresource so the API server can delete the namespace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition, NamespaceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{ApiCapabilities, Discovery, Scope, verbs};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};

use crate::api_code;

/// The finalizer this controller is responsible for.
pub const FINALIZER_KUBERNETES: &str = "kubernetes";

/// Condition types, in upstream order.
pub const CONDITION_TYPES: [&str; 5] = [
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
];

/// Reconcile error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("kube api: {0}")]
    Kube(#[from] kube::Error),
    /// Discovery of namespaced resources failed.
    #[error("discovery failed: {0}")]
    Discovery(String),
    /// Some resources could not be deleted.
    #[error("failed to delete namespace content: {0}")]
    Content(String),
}

/// A namespaced resource whose objects the controller deletes.
#[derive(Debug, Clone)]
pub struct DeletableResource {
    /// The resource (group, version, plural, kind).
    pub resource: ApiResource,
    /// Whether the resource supports `deletecollection` (otherwise objects
    /// are listed and deleted one by one).
    pub delete_collection: bool,
}

impl DeletableResource {
    /// Upstream `GroupResource.String()`: `plural` or `plural.group`.
    pub fn group_resource(&self) -> String {
        group_resource(&self.resource)
    }
}

fn group_resource(ar: &ApiResource) -> String {
    if ar.group.is_empty() {
        ar.plural.clone()
    } else {
        format!("{}.{}", ar.plural, ar.group)
    }
}

/// Chooses, from discovered `(resource, capabilities)` pairs, the namespaced
/// top-level resources that can be listed and deleted (via `deletecollection`
/// or `delete`). The result is sorted by group/resource and deduplicated.
pub fn select_deletable(
    discovered: impl IntoIterator<Item = (ApiResource, ApiCapabilities)>,
) -> Vec<DeletableResource> {
    let mut out: BTreeMap<String, DeletableResource> = BTreeMap::new();
    for (ar, caps) in discovered {
        if caps.scope != Scope::Namespaced || ar.plural.contains('/') {
            continue;
        }
        if !caps.supports_operation(verbs::LIST) {
            continue;
        }
        let delete_collection = caps.supports_operation(verbs::DELETE_COLLECTION);
        if !delete_collection && !caps.supports_operation(verbs::DELETE) {
            continue;
        }
        let r = DeletableResource {
            resource: ar,
            delete_collection,
        };
        out.entry(r.group_resource()).or_insert(r);
    }
    out.into_values().collect()
}

/// The discovered resources (preferred version of every group) to delete.
pub fn deletable_resources(discovery: &Discovery) -> Vec<DeletableResource> {
    select_deletable(discovery.groups().flat_map(|g| g.recommended_resources()))
}

/// Whether the namespace still carries the `kubernetes` finalizer.
pub fn has_kubernetes_finalizer(ns: &Namespace) -> bool {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER_KUBERNETES))
}

/// The body for `PUT /api/v1/namespaces/{name}/finalize`: the namespace
/// (metadata, resourceVersion included) with `kubernetes` removed from
/// `spec.finalizers`.
pub fn finalize_body(ns: &Namespace) -> Namespace {
    let mut out = ns.clone();
    if let Some(spec) = out.spec.as_mut()
        && let Some(f) = spec.finalizers.as_mut()
    {
        f.retain(|f| f != FINALIZER_KUBERNETES);
    }
    out
}

/// Outcome of one content deletion pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletionReport {
    /// Discovery error, if discovery failed.
    pub discovery_error: Option<String>,
    /// Per-resource deletion/list errors.
    pub deletion_errors: Vec<String>,
    /// Objects remaining, by group/resource.
    pub remaining: BTreeMap<String, usize>,
    /// Remaining objects carrying each finalizer.
    pub finalizers_remaining: BTreeMap<String, usize>,
    /// Upstream's estimate (seconds) before pods finish terminating.
    pub estimate_secs: u64,
}

impl DeletionReport {
    /// Whether the namespace is empty and can be finalized.
    pub fn is_done(&self) -> bool {
        self.discovery_error.is_none()
            && self.deletion_errors.is_empty()
            && self.remaining.is_empty()
    }
}

fn condition(
    type_: &str,
    failing: Option<String>,
    ok_reason: &str,
    ok_msg: &str,
    fail_reason: &str,
) -> NamespaceCondition {
    match failing {
        Some(message) => NamespaceCondition {
            type_: type_.to_string(),
            status: "True".to_string(),
            reason: Some(fail_reason.to_string()),
            message: Some(message),
            last_transition_time: None,
        },
        None => NamespaceCondition {
            type_: type_.to_string(),
            status: "False".to_string(),
            reason: Some(ok_reason.to_string()),
            message: Some(ok_msg.to_string()),
            last_transition_time: None,
        },
    }
}

/// The five deletion conditions upstream maintains, from a report (without
/// `lastTransitionTime`; see [`merge_conditions`]).
pub fn desired_conditions(report: &DeletionReport) -> Vec<NamespaceCondition> {
    let remaining = (!report.remaining.is_empty()).then(|| {
        let parts: Vec<String> = report
            .remaining
            .iter()
            .map(|(gr, n)| format!("{gr} has {n} resource instances"))
            .collect();
        format!("Some resources are remaining: {}", parts.join(", "))
    });
    let finalizers = (!report.finalizers_remaining.is_empty()).then(|| {
        let parts: Vec<String> = report
            .finalizers_remaining
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        format!(
            "Some content in the namespace has finalizers remaining: {}",
            parts.join(", ")
        )
    });
    let content = (!report.deletion_errors.is_empty()).then(|| {
        format!(
            "Failed to delete all resource types, {} remaining: {}",
            report.deletion_errors.len(),
            report.deletion_errors.join(", ")
        )
    });
    vec![
        condition(
            CONDITION_TYPES[0],
            report
                .discovery_error
                .as_ref()
                .map(|e| format!("Discovery failed for some groups: {e}")),
            "ResourcesDiscovered",
            "All resources successfully discovered",
            "DiscoveryFailed",
        ),
        condition(
            CONDITION_TYPES[1],
            None,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
            "GroupVersionParsingFailed",
        ),
        condition(
            CONDITION_TYPES[2],
            content,
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
            "ContentDeletionFailed",
        ),
        condition(
            CONDITION_TYPES[3],
            remaining,
            "ContentRemoved",
            "All content successfully removed",
            "SomeResourcesRemain",
        ),
        condition(
            CONDITION_TYPES[4],
            finalizers,
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished",
            "SomeFinalizersRemain",
        ),
    ]
}

/// Merges desired conditions into existing ones: an unchanged condition
/// (same status, reason, message) keeps its `lastTransitionTime`; a changed
/// or new one gets `now`. Conditions of other types are kept after ours.
/// Returns `None` when nothing changed.
pub fn merge_conditions(
    existing: &[NamespaceCondition],
    desired: Vec<NamespaceCondition>,
    now: &Time,
) -> Option<Vec<NamespaceCondition>> {
    let mut changed = false;
    let mut out = Vec::with_capacity(desired.len());
    for mut d in desired {
        match existing.iter().find(|c| c.type_ == d.type_) {
            Some(c) if c.status == d.status && c.reason == d.reason && c.message == d.message => {
                out.push(c.clone());
            }
            _ => {
                changed = true;
                d.last_transition_time = Some(now.clone());
                out.push(d);
            }
        }
    }
    out.extend(
        existing
            .iter()
            .filter(|c| !CONDITION_TYPES.contains(&c.type_.as_str()))
            .cloned(),
    );
    changed.then_some(out)
}

struct Ctx {
    client: Client,
}

/// Deletes everything of `r` in `namespace`, then records what remains.
async fn delete_resource(
    client: &Client,
    namespace: &str,
    r: &DeletableResource,
    report: &mut DeletionReport,
) {
    let gr = r.group_resource();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &r.resource);
    let dp = DeleteParams::background();
    let mut one_by_one = !r.delete_collection;
    if r.delete_collection {
        match api.delete_collection(&dp, &ListParams::default()).await {
            Ok(_) => {}
            Err(e) if api_code(&e) == Some(404) => return,
            Err(e) if api_code(&e) == Some(405) => one_by_one = true,
            Err(e) => {
                report.deletion_errors.push(format!("{gr}: {e}"));
                return;
            }
        }
    }
    let list = match api.list(&ListParams::default()).await {
        Ok(l) => l,
        Err(e) if api_code(&e) == Some(404) => return,
        Err(e) => {
            report.deletion_errors.push(format!("{gr}: {e}"));
            return;
        }
    };
    let mut remaining = 0usize;
    for obj in &list.items {
        if one_by_one && obj.metadata.deletion_timestamp.is_none() {
            match api.delete(&obj.name_any(), &dp).await {
                // Right(Status): deleted immediately; Left(obj): deletion pending.
                Ok(res) if res.is_right() => continue,
                Ok(_) => {}
                Err(e) if api_code(&e) == Some(404) => continue,
                Err(e) => {
                    report.deletion_errors.push(format!("{gr}: {e}"));
                }
            }
        }
        remaining += 1;
        for f in obj.finalizers() {
            *report.finalizers_remaining.entry(f.clone()).or_default() += 1;
        }
        if r.resource.group.is_empty() && r.resource.plural == "pods" {
            let grace = obj
                .metadata
                .deletion_grace_period_seconds
                .map_or(0, |g| u64::try_from(g).unwrap_or(0));
            report.estimate_secs = report.estimate_secs.max(grace);
        }
    }
    if remaining > 0 {
        report.remaining.insert(gr, remaining);
    }
}

async fn delete_all_content(client: &Client, namespace: &str) -> DeletionReport {
    let mut report = DeletionReport::default();
    let discovery = match Discovery::new(client.clone()).run().await {
        Ok(d) => d,
        Err(e) => {
            report.discovery_error = Some(e.to_string());
            return report;
        }
    };
    for r in deletable_resources(&discovery) {
        delete_resource(client, namespace, &r, &mut report).await;
    }
    report
}

async fn update_status(api: &Api<Namespace>, ns: &Namespace, report: &DeletionReport) {
    let existing = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let phase_ok = ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    let conditions = merge_conditions(&existing, desired_conditions(report), &now);
    if phase_ok && conditions.is_none() {
        return;
    }
    let mut updated = ns.clone();
    let status = updated.status.get_or_insert_with(NamespaceStatus::default);
    status.phase = Some("Terminating".to_string());
    if let Some(c) = conditions {
        status.conditions = Some(c);
    }
    if let Err(e) = api
        .replace_status(&ns.name_any(), &PostParams::default(), &updated)
        .await
    {
        tracing::debug!(namespace = %ns.name_any(), error = %e, "namespace status update failed");
    }
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if ns.metadata.deletion_timestamp.is_none() || !has_kubernetes_finalizer(&ns) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    // Work from a fresh copy: the cache may lag behind.
    let Some(ns) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    if ns.metadata.deletion_timestamp.is_none() || !has_kubernetes_finalizer(&ns) {
        return Ok(Action::await_change());
    }
    tracing::debug!(namespace = %name, "deleting namespace content");
    let report = delete_all_content(&ctx.client, &name).await;
    update_status(&api, &ns, &report).await;
    if let Some(e) = &report.discovery_error {
        return Err(Error::Discovery(e.clone()));
    }
    if !report.deletion_errors.is_empty() {
        return Err(Error::Content(report.deletion_errors.join(", ")));
    }
    if !report.remaining.is_empty() {
        let secs = report.estimate_secs / 2 + 1;
        tracing::debug!(namespace = %name, remaining = ?report.remaining, "content remaining; requeue in {secs}s");
        return Ok(Action::requeue(Duration::from_secs(secs)));
    }
    // Re-read: the status update bumped the resourceVersion.
    let Some(ns) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    match api
        .replace_subresource(
            "finalize",
            &name,
            &PostParams::default(),
            &finalize_body(&ns),
        )
        .await
    {
        Ok(_) => tracing::info!(namespace = %name, "namespace finalized"),
        Err(e) if api_code(&e) == Some(404) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::await_change())
}

fn error_policy(ns: Arc<Namespace>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(namespace = %ns.name_any(), error = %err, "namespace deletion failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the namespace controller until cancelled.
pub async fn run(
    client: Client,
    informers: crate::informer::Informers,
    queue: Arc<crate::metrics::Queue>,
) {
    // The namespaces come from the process's shared watch.
    let (namespaces, changes) = informers.subscribe::<Namespace>();
    informers.synced().await;
    let q = queue.clone();
    let changes = changes.inspect(move |n| q.add(&crate::metrics::key(n.as_ref())));
    Controller::for_shared_stream(changes, namespaces)
        .run(
            crate::metrics::instrument(queue, reconcile),
            error_policy,
            Arc::new(Ctx { client }),
        )
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(namespace = %obj.name, "namespace synced"),
                Err(e) => tracing::warn!(error = %e, "namespace controller error"),
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceSpec;
    use kube::api::{GroupVersionKind, ObjectMeta};

    fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    fn caps(scope: Scope, ops: &[&str]) -> ApiCapabilities {
        ApiCapabilities {
            scope,
            subresources: vec![],
            operations: ops.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn selects_namespaced_listable_deletable() {
        let all = [
            verbs::LIST,
            verbs::DELETE,
            verbs::DELETE_COLLECTION,
            verbs::GET,
        ];
        let discovered = vec![
            (ar("", "v1", "Pod", "pods"), caps(Scope::Namespaced, &all)),
            (ar("", "v1", "Node", "nodes"), caps(Scope::Cluster, &all)),
            // delete but no deletecollection: list + delete one by one
            (
                ar("example.com", "v1", "Widget", "widgets"),
                caps(Scope::Namespaced, &[verbs::LIST, verbs::DELETE]),
            ),
            // cannot be listed
            (
                ar("", "v1", "Binding", "bindings"),
                caps(Scope::Namespaced, &[verbs::CREATE]),
            ),
            // listable but not deletable
            (
                ar("example.com", "v1", "Report", "reports"),
                caps(Scope::Namespaced, &[verbs::LIST, verbs::GET]),
            ),
            // subresource-looking plural
            (
                ar("", "v1", "Pod", "pods/log"),
                caps(Scope::Namespaced, &all),
            ),
            (
                ar("apps", "v1", "Deployment", "deployments"),
                caps(Scope::Namespaced, &all),
            ),
            // duplicate group/resource is kept once
            (ar("", "v1", "Pod", "pods"), caps(Scope::Namespaced, &all)),
        ];
        let got: Vec<(String, bool)> = select_deletable(discovered)
            .into_iter()
            .map(|r| (r.group_resource(), r.delete_collection))
            .collect();
        assert_eq!(
            got,
            vec![
                ("deployments.apps".to_string(), true),
                ("pods".to_string(), true),
                ("widgets.example.com".to_string(), false),
            ]
        );
    }

    fn terminating_ns(finalizers: &[&str]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("doomed".into()),
                resource_version: Some("42".into()),
                uid: Some("u-1".into()),
                deletion_timestamp: Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            spec: Some(NamespaceSpec {
                finalizers: Some(finalizers.iter().map(|s| s.to_string()).collect()),
            }),
            status: Some(NamespaceStatus {
                phase: Some("Terminating".into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn finalize_body_removes_only_kubernetes() {
        let ns = terminating_ns(&["kubernetes", "example.com/keep"]);
        assert!(has_kubernetes_finalizer(&ns));
        let body = finalize_body(&ns);
        assert!(!has_kubernetes_finalizer(&body));
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(
            v["spec"]["finalizers"],
            serde_json::json!(["example.com/keep"])
        );
        assert_eq!(v["metadata"]["name"], "doomed");
        assert_eq!(v["metadata"]["resourceVersion"], "42");
        assert_eq!(v["metadata"]["uid"], "u-1");
    }

    #[test]
    fn finalize_body_without_spec() {
        let mut ns = terminating_ns(&[]);
        ns.spec = None;
        assert!(!has_kubernetes_finalizer(&ns));
        assert!(finalize_body(&ns).spec.is_none());
    }

    #[test]
    fn conditions_all_clear() {
        let report = DeletionReport::default();
        assert!(report.is_done());
        let conds = desired_conditions(&report);
        let types: Vec<&str> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, CONDITION_TYPES.to_vec());
        assert!(conds.iter().all(|c| c.status == "False"));
        assert_eq!(conds[3].reason.as_deref(), Some("ContentRemoved"));
    }

    #[test]
    fn conditions_with_remaining_content() {
        let report = DeletionReport {
            remaining: BTreeMap::from([("pods".into(), 2), ("widgets.example.com".into(), 1)]),
            finalizers_remaining: BTreeMap::from([("example.com/f".into(), 1)]),
            ..Default::default()
        };
        assert!(!report.is_done());
        let conds = desired_conditions(&report);
        assert_eq!(conds[3].status, "True");
        assert_eq!(conds[3].reason.as_deref(), Some("SomeResourcesRemain"));
        assert_eq!(
            conds[3].message.as_deref(),
            Some(
                "Some resources are remaining: pods has 2 resource instances, widgets.example.com has 1 resource instances"
            )
        );
        assert_eq!(conds[4].status, "True");
        assert_eq!(
            conds[4].message.as_deref(),
            Some(
                "Some content in the namespace has finalizers remaining: example.com/f in 1 resource instances"
            )
        );
        assert_eq!(conds[0].status, "False");
        assert_eq!(conds[2].status, "False");
    }

    #[test]
    fn conditions_with_failures() {
        let report = DeletionReport {
            discovery_error: Some("boom".into()),
            deletion_errors: vec!["pods: nope".into()],
            ..Default::default()
        };
        assert!(!report.is_done());
        let conds = desired_conditions(&report);
        assert_eq!(conds[0].reason.as_deref(), Some("DiscoveryFailed"));
        assert_eq!(conds[2].reason.as_deref(), Some("ContentDeletionFailed"));
        assert_eq!(
            conds[2].message.as_deref(),
            Some("Failed to delete all resource types, 1 remaining: pods: nope")
        );
    }

    #[test]
    fn merge_keeps_transition_time_of_unchanged() {
        let t0 = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(1000).unwrap());
        let first =
            merge_conditions(&[], desired_conditions(&DeletionReport::default()), &t0).unwrap();
        assert!(
            first
                .iter()
                .all(|c| c.last_transition_time == Some(t0.clone()))
        );
        // unchanged: no update needed
        assert!(
            merge_conditions(&first, desired_conditions(&DeletionReport::default()), &t1).is_none()
        );
        // one condition changes; only it gets the new time; foreign kept
        let mut existing = first.clone();
        existing.push(NamespaceCondition {
            type_: "Other".into(),
            status: "True".into(),
            ..Default::default()
        });
        let report = DeletionReport {
            remaining: BTreeMap::from([("pods".into(), 1)]),
            ..Default::default()
        };
        let merged = merge_conditions(&existing, desired_conditions(&report), &t1).unwrap();
        assert_eq!(merged.len(), 6);
        assert_eq!(merged[3].last_transition_time, Some(t1.clone()));
        assert_eq!(merged[0].last_transition_time, Some(t0.clone()));
        assert_eq!(merged[5].type_, "Other");
    }
}
