//! The generic registry: create, get, list, watch, update, delete for any
//! resource of the catalogue, on JSON objects, over the storage trait.
//! Per-kind differences belong in strategies, not here.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use rkube_storage::{EventKind, RangeRequest, Revision, Storage, StorageError};
use serde_json::{Value, json};

use crate::meta::{self, meta_mut};
use crate::status::{ApiError, FieldError};

/// How a create or update is made: as a dry run or not, and by which field
/// manager (whose ownership is recorded in `managedFields`; `None` when the
/// caller computed them, as an apply does).
#[derive(Debug, Clone, Copy, Default)]
pub struct Write<'a> {
    pub dry_run: bool,
    pub manager: Option<&'a str>,
    /// The subresource the write is recorded under when it is not the one
    /// written (`scale` writes the main resource).
    pub record_as: Option<&'a str>,
}

/// What the registry needs to know of a resource.
#[derive(Clone, Debug)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub storage_prefix: String,
    pub has_status: bool,
    /// The verbs the resource serves (empty: all).
    pub verbs: Vec<String>,
    /// What a CustomResourceDefinition says of a custom resource (schema,
    /// subresources, printer columns); `None` for built-ins.
    pub custom: Option<Arc<crate::crd::CustomResource>>,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/{}/{ns}/{name}", self.storage_prefix),
            _ => format!("/{}/{name}", self.storage_prefix),
        }
    }

    /// The storage key prefix of every object in a namespace, or of every
    /// object of the resource with `None` (the watch cache's prefix).
    pub fn key_prefix(&self, namespace: Option<&str>) -> String {
        self.prefix(namespace)
    }

    fn prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/{}/{ns}/", self.storage_prefix),
            _ => format!("/{}/", self.storage_prefix),
        }
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(&self.group, &self.plural, name)
    }
}

/// Events live for an hour, as upstream's `--event-ttl`.
const EVENT_TTL: Duration = Duration::from_secs(3600);

pub use crate::selectable::Filter;

#[derive(Default, Clone)]
pub struct ListOptions {
    pub limit: usize,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

#[derive(Default, Clone)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub propagation_policy: Option<String>,
    pub dry_run: bool,
}

pub struct WatchEvent {
    pub kind: &'static str,
    pub object: Value,
}

pub struct Registry {
    pub store: Arc<dyn Storage>,
    pub service_ranges: crate::allocation::ServiceRanges,
}

fn is_service(r: &Resource) -> bool {
    r.group.is_empty() && r.plural == "services"
}

fn storage_err(r: &Resource, name: &str, e: StorageError) -> ApiError {
    match e {
        StorageError::AlreadyExists { .. } => ApiError::already_exists(&r.group, &r.plural, name),
        StorageError::NotFound { .. } => r.not_found(name),
        StorageError::Conflict { .. } => ApiError::modified(&r.group, &r.plural, name),
        StorageError::Compacted {
            requested,
            compacted,
        } => ApiError::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StorageError::FutureRevision { requested, current } => ApiError::new(
            504,
            "Timeout",
            format!("Too large resource version: {requested}, current: {current}"),
        ),
        StorageError::TooLarge { .. } => ApiError::too_large(),
        StorageError::Unavailable(m) => ApiError::unavailable(m),
        StorageError::Internal(m) => ApiError::internal(m),
    }
}

/// A stored object as stored, with its resourceVersion.
fn parse(bytes: &[u8], rv: Revision) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::internal(format!("decoding stored object: {e}")))?;
    meta::set_resource_version(&mut obj, rv);
    Ok(obj)
}

/// A stored object as `r` serves it.
async fn decode(r: &Resource, bytes: &[u8], rv: Revision) -> Result<Value, ApiError> {
    crate::conversion::from_storage(r, parse(bytes, rv)?).await
}

/// The bytes to store, and the stored form they hold.
async fn encode(r: &Resource, obj: &Value) -> Result<(Bytes, Value), ApiError> {
    let mut obj = crate::conversion::to_storage(r, obj.clone()).await?;
    // The revision is the resourceVersion; never store it in the value.
    meta_mut(&mut obj).remove("resourceVersion");
    serde_json::to_vec(&obj)
        .map(|b| (Bytes::from(b), obj))
        .map_err(|e| ApiError::internal(format!("encoding object: {e}")))
}

/// The object a write answers with: as written, or read back from what
/// was stored where a conversion webhook is involved.
async fn written(r: &Resource, obj: Value, stored: Value, rv: Revision) -> Result<Value, ApiError> {
    let mut obj = if crate::conversion::round_trips(r) {
        crate::conversion::from_storage(r, stored).await?
    } else {
        obj
    };
    meta::set_resource_version(&mut obj, rv);
    Ok(obj)
}

fn parse_rv(rv: &str) -> Result<Revision, ApiError> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

/// Upstream's continue token: base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"key"}`.
fn encode_continue(rv: Revision, start: &str) -> String {
    let token = json!({ "v": "meta.k8s.io/v1", "rv": rv, "start": start });
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(Revision, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v
        .get("rv")
        .and_then(Value::as_i64)
        // -1: an inconsistent continuation, at the latest revision.
        .filter(|r| *r > 0 || *r == -1)
        .ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((rv, start.to_owned()))
}

impl Registry {
    pub fn new(store: Arc<dyn Storage>) -> Self {
        Registry {
            store,
            service_ranges: Default::default(),
        }
    }

    fn ttl(r: &Resource) -> Option<Duration> {
        (r.plural == "events").then_some(EVENT_TTL)
    }

    /// Checks the namespace a namespaced create goes to exists and is not
    /// being deleted.
    async fn check_namespace(&self, r: &Resource, ns: &str) -> Result<(), ApiError> {
        let got = self
            .store
            .get(&format!("/namespaces/{ns}"), None)
            .await
            .map_err(|e| storage_err(r, ns, e))?;
        let Some(kv) = got.kv else {
            return Err(ApiError::not_found("", "namespaces", ns));
        };
        let obj = parse(&kv.value, kv.mod_revision)?;
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::forbidden(
                &r.group,
                &r.plural,
                meta::name(&obj).unwrap_or(ns),
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            ));
        }
        Ok(())
    }

    pub async fn create(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        mut obj: Value,
        w: Write<'_>,
    ) -> Result<Value, ApiError> {
        let dry_run = w.dry_run;
        check_type(r, &mut obj)?;
        let m = meta_mut(&mut obj);
        let generated = m
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
            .map(str::to_owned);
        let has_name = m
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !has_name {
            match &generated {
                Some(prefix) => {
                    m.insert(
                        "name".into(),
                        json!(format!("{prefix}{}", meta::random_suffix())),
                    );
                }
                None => {
                    return Err(ApiError::invalid(
                        &r.group,
                        &r.kind,
                        "",
                        &[FieldError::required(
                            "metadata.name",
                            "name or generateName is required",
                        )],
                    ));
                }
            }
        }
        if r.namespaced {
            let ns = namespace
                .ok_or_else(|| ApiError::bad_request("the namespace of the object is required"))?;
            match m.get("namespace").and_then(Value::as_str) {
                Some(given) if !given.is_empty() && given != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
        m.remove("resourceVersion");
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("selfLink");
        let name = meta::name(&obj).unwrap_or_default().to_owned();
        crate::strategy::prepare_create(r, &mut obj);
        crate::strategy::validate_create(r, &obj)?;
        if let Some(manager) = w.manager {
            crate::fieldmanager::track_update(r, None, &mut obj, manager, "")?;
        }
        if let Some(ns) = namespace.filter(|_| r.namespaced) {
            self.check_namespace(r, ns).await?;
        }
        // Last before the write: quota admission charges the quota.
        crate::admission::admit_create(self, r, namespace, &mut obj, dry_run).await?;
        let key = r.key(namespace, &name);
        if dry_run {
            if self
                .store
                .get(&key, None)
                .await
                .map_err(|e| storage_err(r, &name, e))?
                .kv
                .is_some()
            {
                return Err(ApiError::already_exists(&r.group, &r.plural, &name));
            }
            return Ok(obj);
        }
        let reserved = if is_service(r) {
            let ns = namespace.unwrap_or_default();
            Some(
                crate::allocation::allocate(
                    self.store.as_ref(),
                    &self.service_ranges,
                    &mut obj,
                    ns,
                )
                .await?,
            )
        } else {
            None
        };
        let (bytes, stored) = encode(r, &obj).await?;
        let created = self.store.create(&key, bytes, Self::ttl(r)).await;
        let kv = match created {
            Ok(kv) => kv,
            Err(e) => {
                if let Some(reserved) = reserved {
                    reserved.release(self.store.as_ref()).await;
                }
                return Err(storage_err(r, &name, e));
            }
        };
        written(r, obj, stored, kv.mod_revision).await
    }

    pub async fn get(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let got = self
            .store
            .get(&r.key(namespace, name), None)
            .await
            .map_err(|e| storage_err(r, name, e))?;
        let kv = got.kv.ok_or_else(|| r.not_found(name))?;
        decode(r, &kv.value, kv.mod_revision).await
    }

    /// Lists objects, filling each page up to the limit with objects that
    /// pass the filter, as upstream does.
    pub async fn list(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        opts: &ListOptions,
        filter: Option<Filter>,
    ) -> Result<Value, ApiError> {
        let prefix = r.prefix(namespace);
        let (mut revision, mut start) = match &opts.continue_token {
            Some(token) if !token.is_empty() => {
                let (rv, start) = decode_continue(token)?;
                (
                    Some(rv).filter(|rv| *rv > 0),
                    Some(format!("{prefix}{start}")),
                )
            }
            _ => (None, None),
        };
        if revision.is_none()
            && let Some(rv) = opts.resource_version.as_deref().filter(|rv| !rv.is_empty())
        {
            let rv = parse_rv(rv)?;
            match opts.resource_version_match.as_deref() {
                // A resourceVersion with a limit and no match is Exact, as upstream's legacy rule.
                Some("Exact") => revision = Some(rv),
                None | Some("") if opts.limit > 0 && rv > 0 => revision = Some(rv),
                Some("NotOlderThan") | None | Some("") => {
                    let current = self
                        .store
                        .current_revision()
                        .await
                        .map_err(|e| storage_err(r, "", e))?;
                    if rv > current {
                        return Err(storage_err(
                            r,
                            "",
                            StorageError::FutureRevision {
                                requested: rv,
                                current,
                            },
                        ));
                    }
                }
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
                    )));
                }
            }
        }
        let mut items = Vec::new();
        let mut next_start = None;
        let mut remaining = None;
        loop {
            let want = if opts.limit == 0 {
                0
            } else {
                opts.limit - items.len()
            };
            let page = self
                .store
                .range(RangeRequest {
                    prefix: prefix.clone(),
                    start: start.clone(),
                    limit: if opts.limit == 0 { 0 } else { want.max(if filter.is_some() { 500 } else { want }) },
                    revision,
                })
                .await
                .map_err(|e| match e {
                    StorageError::Compacted { .. } if opts.continue_token.is_some() => ApiError {
                        // Upstream's inconsistent continue token: the same
                        // start key at the latest revision.
                        continue_token: start
                            .as_deref()
                            .map(|s| encode_continue(-1, s.strip_prefix(prefix.as_str()).unwrap_or(s))),
                        ..ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                        )
                    },
                    e => storage_err(r, "", e),
                })?;
            revision = Some(page.revision);
            let total = page.kvs.len();
            let mut taken = 0;
            let objs = page
                .kvs
                .iter()
                .map(|kv| parse(&kv.value, kv.mod_revision))
                .collect::<Result<Vec<_>, _>>()?;
            // A page is converted at once: one review for a webhook.
            for obj in crate::conversion::from_storage_all(r, objs).await? {
                taken += 1;
                if filter.as_ref().is_none_or(|f| f(&obj)) {
                    items.push(obj);
                    if opts.limit != 0 && items.len() == opts.limit {
                        break;
                    }
                }
            }
            let more_in_page = taken < total;
            let more = page.more || more_in_page;
            if opts.limit != 0 && items.len() == opts.limit && more {
                let last = &page.kvs[taken - 1].key;
                next_start = Some(format!(
                    "{}\u{0}",
                    last.strip_prefix(&prefix).unwrap_or(last)
                ));
                if filter.is_none() {
                    remaining = Some(page.count - taken as i64);
                }
                break;
            }
            if !page.more {
                break;
            }
            let last = &page.kvs[total - 1].key;
            start = Some(format!("{last}\u{0}"));
        }
        let mut metadata = json!({ "resourceVersion": revision.unwrap_or(0).to_string() });
        if let Some(start) = next_start {
            metadata["continue"] = json!(encode_continue(revision.unwrap_or(0), &start));
            if let Some(n) = remaining.filter(|n| *n > 0) {
                metadata["remainingItemCount"] = json!(n);
            }
        }
        Ok(json!({
            "kind": r.list_kind,
            "apiVersion": r.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// Replaces an object (or its status), with compare-and-swap on the
    /// given resourceVersion, or on the stored one when none is given.
    pub async fn update(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        mut obj: Value,
        subresource: Option<&str>,
        w: Write<'_>,
    ) -> Result<Value, ApiError> {
        let dry_run = w.dry_run;
        check_type(r, &mut obj)?;
        match meta::name(&obj) {
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            None => {
                meta_mut(&mut obj).insert("name".into(), json!(name));
            }
            _ => {}
        }
        if r.namespaced
            && let (Some(given), Some(ns)) = (meta::namespace(&obj), namespace)
            && given != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let key = r.key(namespace, name);
        let got = self
            .store
            .get(&key, None)
            .await
            .map_err(|e| storage_err(r, name, e))?;
        let kv = got.kv.ok_or_else(|| r.not_found(name))?;
        let expected = match meta::meta_str(&obj, "resourceVersion").filter(|s| !s.is_empty()) {
            Some(rv) => {
                let rv = parse_rv(rv)?;
                if rv != kv.mod_revision {
                    return Err(ApiError::modified(&r.group, &r.plural, name));
                }
                rv
            }
            None => kv.mod_revision,
        };
        let mut old = decode(r, &kv.value, kv.mod_revision).await?;
        // An unconditional update is checked as one at the stored revision.
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(expected.to_string()));
        let mut new =
            crate::strategy::prepare_update(r, &old, obj, subresource.filter(|s| *s != "binding"));
        // A binding is the server's own write of `spec.nodeName`, which pod
        // updates may otherwise not change.
        if subresource != Some("binding") {
            crate::strategy::validate_update(r, &new, &old, subresource)?;
        }
        if let Some(manager) = w.manager {
            let sub = w.record_as.or(subresource).unwrap_or_default();
            crate::fieldmanager::track_update(r, Some(&old), &mut new, manager, sub)?;
        }
        // Unchanged: no write, as upstream (compared without the
        // resourceVersions, set aside rather than copying both objects).
        let old_rv = meta_mut(&mut old).remove("resourceVersion");
        let new_rv = meta_mut(&mut new).remove("resourceVersion");
        let unchanged = old == new;
        if let Some(rv) = old_rv {
            meta_mut(&mut old).insert("resourceVersion".into(), rv);
        }
        if let Some(rv) = new_rv {
            meta_mut(&mut new).insert("resourceVersion".into(), rv);
        }
        if unchanged {
            return Ok(old);
        }
        // The last finalizer removed from an object being deleted deletes it;
        // a pod still in its grace period stays for the kubelet (upstream's
        // shouldDeleteDuringUpdate: only at grace period 0).
        if new.pointer("/metadata/deletionTimestamp").is_some()
            && new
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                == 0
            && meta::finalizers(&new).is_empty()
            && !crate::strategy::spec_finalizers(r, &new)
        {
            if !dry_run {
                self.store
                    .delete(&key, Some(expected))
                    .await
                    .map_err(|e| storage_err(r, name, e))?;
                if is_service(r) {
                    crate::allocation::release(self.store.as_ref(), &old).await;
                }
            }
            return Ok(new);
        }
        if dry_run {
            return Ok(new);
        }
        let reserved = if is_service(r) && subresource.is_none() {
            Some(
                crate::allocation::update(
                    self.store.as_ref(),
                    &self.service_ranges,
                    &old,
                    &mut new,
                )
                .await?,
            )
        } else {
            None
        };
        let (bytes, stored) = encode(r, &new).await?;
        let updated = self.store.update(&key, bytes, expected, Self::ttl(r)).await;
        let kv = match updated {
            Ok(kv) => kv,
            Err(e) => {
                if let Some(reserved) = reserved {
                    reserved.release(self.store.as_ref()).await;
                }
                return Err(storage_err(r, name, e));
            }
        };
        if reserved.is_some() {
            crate::allocation::release_dropped(self.store.as_ref(), &old, &new).await;
        }
        written(r, new, stored, kv.mod_revision).await
    }

    /// Deletes an object: at once, or by marking it when finalizers (or a
    /// pod's grace period) must run first.
    pub async fn delete(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let key = r.key(namespace, name);
        loop {
            let got = self
                .store
                .get(&key, None)
                .await
                .map_err(|e| storage_err(r, name, e))?;
            let kv = got.kv.ok_or_else(|| r.not_found(name))?;
            let mut obj = decode(r, &kv.value, kv.mod_revision).await?;
            if let Some(uid) = &opts.precondition_uid
                && meta::meta_str(&obj, "uid") != Some(uid.as_str())
            {
                return Err(ApiError::conflict(
                    &r.group,
                    &r.plural,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta::meta_str(&obj, "uid").unwrap_or_default()
                    ),
                ));
            }
            if let Some(rv) = &opts.precondition_rv
                && parse_rv(rv)? != kv.mod_revision
            {
                return Err(ApiError::conflict(
                    &r.group,
                    &r.plural,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        kv.mod_revision
                    ),
                ));
            }
            let mut finalizers = meta::finalizers(&obj);
            crate::strategy::deletion_finalizers(r, &obj, &mut finalizers);
            match opts.propagation_policy.as_deref() {
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                    finalizers.push("foregroundDeletion".into())
                }
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                    finalizers.push("orphan".into())
                }
                _ => {}
            }
            let graceful = crate::strategy::grace_period(r, &obj, opts.grace_period_seconds);
            let held = crate::strategy::spec_finalizers(r, &obj);
            if finalizers.is_empty() && !held && graceful.is_none()
                || obj.pointer("/metadata/deletionTimestamp").is_some()
                    && finalizers.is_empty()
                    && graceful == Some(0)
            {
                if opts.dry_run {
                    return Ok(obj);
                }
                match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(_) => {
                        if is_service(r) {
                            crate::allocation::release(self.store.as_ref(), &obj).await;
                        }
                        return Ok(obj);
                    }
                    Err(StorageError::Conflict { .. }) => continue,
                    Err(e) => return Err(storage_err(r, name, e)),
                }
            }
            if obj.pointer("/metadata/deletionTimestamp").is_some() && graceful.is_none() {
                // Already being deleted: nothing more to mark.
                return Ok(obj);
            }
            let m = meta_mut(&mut obj);
            m.insert("finalizers".into(), json!(finalizers));
            if finalizers.is_empty() {
                m.remove("finalizers");
            }
            let grace = graceful.unwrap_or(0);
            let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
            m.entry("deletionTimestamp")
                .or_insert_with(|| json!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            crate::strategy::prepare_delete(r, &mut obj);
            if opts.dry_run {
                return Ok(obj);
            }
            let (bytes, stored) = encode(r, &obj).await?;
            match self
                .store
                .update(&key, bytes, kv.mod_revision, Self::ttl(r))
                .await
            {
                Ok(kv) => return written(r, obj, stored, kv.mod_revision).await,
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(storage_err(r, name, e)),
            }
        }
    }

    /// Watch events from `resourceVersion` (exclusive); with none (or "0"),
    /// the current objects first as ADDED events.
    pub async fn watch(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        resource_version: Option<&str>,
        filter: Option<Filter>,
    ) -> Result<impl Stream<Item = Result<WatchEvent, ApiError>> + Send + use<>, ApiError> {
        let prefix = r.prefix(namespace);
        let mut initial = Vec::new();
        let start = match resource_version.filter(|rv| !rv.is_empty() && *rv != "0") {
            Some(rv) => parse_rv(rv)? + 1,
            None => {
                let list = self
                    .store
                    .range(RangeRequest {
                        prefix: prefix.clone(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| storage_err(r, "", e))?;
                let objs = list
                    .kvs
                    .iter()
                    .map(|kv| parse(&kv.value, kv.mod_revision))
                    .collect::<Result<Vec<_>, _>>()?;
                for obj in crate::conversion::from_storage_all(r, objs).await? {
                    if filter.as_ref().is_none_or(|f| f(&obj)) {
                        initial.push(Ok(WatchEvent {
                            kind: "ADDED",
                            object: obj,
                        }));
                    }
                }
                list.revision + 1
            }
        };
        let events = self
            .store
            .watch(&prefix, start)
            .await
            .map_err(|e| storage_err(r, "", e))?;
        let r = r.clone();
        let live = events.filter_map(move |event| {
            let filter = filter.clone();
            let r = r.clone();
            async move {
                let event = match event {
                    Ok(e) => e,
                    Err(e) => return Some(Err(storage_err(&r, "", e))),
                };
                let rev = event.kv.mod_revision;
                let has_cur = match event.kind {
                    EventKind::Put => true,
                    EventKind::Delete => false,
                    EventKind::Progress => return None,
                };
                // The new and previous objects, converted together.
                let parsed = has_cur
                    .then(|| parse(&event.kv.value, rev))
                    .into_iter()
                    .chain(event.prev.as_ref().map(|p| parse(&p.value, rev)))
                    .collect::<Result<Vec<_>, _>>();
                let converted = match parsed {
                    Ok(objs) => crate::conversion::from_storage_all(&r, objs).await,
                    Err(e) => Err(e),
                };
                let mut objs = match converted {
                    Ok(objs) => objs.into_iter(),
                    Err(e) => return Some(Err(e)),
                };
                let cur = if has_cur { objs.next() } else { None };
                let prev = objs.next();
                let pass = |o: &Value| filter.as_ref().is_none_or(|f| f(o));
                let prev_passes = prev.as_ref().is_some_and(pass);
                let cur_passes = cur.as_ref().is_some_and(pass);
                let (kind, show_prev) =
                    crate::selectable::transition(cur.is_none(), prev_passes, cur_passes)?;
                let object = if show_prev || cur.is_none() {
                    prev?
                } else {
                    cur?
                };
                Some(Ok(WatchEvent { kind, object }))
            }
        });
        Ok(futures::stream::iter(initial).chain(live))
    }
}

/// Checks the body's kind and apiVersion against the URL, filling them in
/// when absent.
fn check_type(r: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    let api_version = r.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if !v.is_empty() && v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
        _ => obj["apiVersion"] = json!(api_version),
    }
    match obj.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != r.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                r.kind
            )));
        }
        _ => obj["kind"] = json!(r.kind),
    }
    Ok(())
}
