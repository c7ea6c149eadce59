//! The API server's own CRD controllers (upstream's naming, establishing
//! and finalizer controllers, in process): follows the CRDs in storage,
//! accepts names that don't conflict within the group, serves established
//! CRDs (catalogue entries for routing and discovery, OpenAPI definitions)
//! and runs the cleanup of deleted ones.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::strategy::set_condition;
use super::{CLEANUP_FINALIZER, GROUP, PLURAL, str_at, strings_at};
use crate::catalogue::BuiltinCatalogue;
use crate::registry::{Registry, Resource, Write};
use crate::server::{ApiServer, Catalogue};
use crate::status::ApiError;

/// Who the controller's writes are recorded as.
const MANAGER: &str = "kube-apiserver";

pub struct CrdController {
    server: Arc<ApiServer>,
    catalogue: Arc<BuiltinCatalogue>,
    crds: Mutex<BTreeMap<String, Value>>,
    /// The definitions last given to the OpenAPI documents.
    published: Mutex<Option<Map<String, Value>>>,
    /// CRDs (by uid) whose cleanup runs.
    cleaning: Mutex<HashSet<String>>,
}

fn crd_resource(catalogue: &dyn Catalogue) -> Result<Resource, ApiError> {
    catalogue
        .resource(GROUP, "v1", PLURAL)
        .ok_or_else(|| ApiError::internal("customresourcedefinitions are not served"))
}

/// The names other CRDs of the group hold: (plurals, singulars and short
/// names; kinds and list kinds).
fn names_in_use(others: &[&Value]) -> (HashSet<String>, HashSet<String>) {
    let mut resources = HashSet::new();
    let mut kinds = HashSet::new();
    for crd in others {
        let n = crd.pointer("/status/acceptedNames").unwrap_or(&Value::Null);
        for p in ["/plural", "/singular"] {
            let s = str_at(n, p);
            if !s.is_empty() {
                resources.insert(s.to_owned());
            }
        }
        resources.extend(strings_at(n, "/shortNames"));
        for p in ["/kind", "/listKind"] {
            let s = str_at(n, p);
            if !s.is_empty() {
                kinds.insert(s.to_owned());
            }
        }
    }
    (resources, kinds)
}

fn fresh_or_accepted(
    requested: &str,
    accepted: &str,
    used: &HashSet<String>,
) -> Result<(), String> {
    if requested == accepted || !used.contains(requested) {
        Ok(())
    } else {
        Err(format!("{requested:?} is already in use"))
    }
}

/// The status a CRD should have given the other CRDs of its group
/// (upstream's `calculateNamesAndConditions`, with establishing at once:
/// the catalogue is updated before the status says Established).
pub fn desired_status(crd: &Value, others: &[&Value]) -> Value {
    let (resources, kinds) = names_in_use(others);
    let requested = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let accepted = crd
        .pointer("/status/acceptedNames")
        .cloned()
        .unwrap_or(json!({}));
    let mut names = accepted.clone();
    if !names.is_object() {
        names = json!({});
    }
    let mut conflict: Option<(&str, String)> = None;
    for (field, reason, used) in [
        ("plural", "PluralConflict", &resources),
        ("singular", "SingularConflict", &resources),
    ] {
        let req = str_at(&requested, &format!("/{field}"));
        match fresh_or_accepted(req, str_at(&accepted, &format!("/{field}")), used) {
            Ok(()) => names[field] = json!(req),
            // As upstream, the last conflict found names the reason.
            Err(e) => conflict = Some((reason, e)),
        }
    }
    let req_short = strings_at(&requested, "/shortNames");
    let acc_short = strings_at(&accepted, "/shortNames");
    if req_short != acc_short {
        let errs: Vec<String> = req_short
            .iter()
            .filter(|s| !acc_short.contains(s))
            .filter_map(|s| fresh_or_accepted(s, "", &resources).err())
            .collect();
        if errs.is_empty() {
            if req_short.is_empty() {
                if let Some(o) = names.as_object_mut() {
                    o.remove("shortNames");
                }
            } else {
                names["shortNames"] = json!(req_short);
            }
        } else {
            let msg = if errs.len() == 1 {
                errs[0].clone()
            } else {
                format!("[{}]", errs.join(", "))
            };
            conflict = Some(("ShortNamesConflict", msg));
        }
    }
    for (field, reason) in [("kind", "KindConflict"), ("listKind", "ListKindConflict")] {
        let req = str_at(&requested, &format!("/{field}"));
        match fresh_or_accepted(req, str_at(&accepted, &format!("/{field}")), &kinds) {
            Ok(()) => names[field] = json!(req),
            // As upstream, the last conflict found names the reason.
            Err(e) => conflict = Some((reason, e)),
        }
    }
    match requested.get("categories") {
        Some(c) if c.as_array().is_some_and(|a| !a.is_empty()) => names["categories"] = c.clone(),
        _ => {
            if let Some(o) = names.as_object_mut() {
                o.remove("categories");
            }
        }
    }
    let mut out = crd.clone();
    out["status"]["acceptedNames"] = names;
    match conflict {
        Some((reason, message)) => {
            set_condition(&mut out, "NamesAccepted", "False", reason, &message);
            if !super::strategy::condition_true(crd, "Established") {
                set_condition(
                    &mut out,
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted",
                );
            }
        }
        None => {
            set_condition(
                &mut out,
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
            );
            set_condition(
                &mut out,
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            );
        }
    }
    out["status"].clone()
}

/// Status equality ignoring transition times (which `set_condition` keeps
/// anyway when nothing changed).
fn same_status(a: &Value, b: &Value) -> bool {
    fn strip(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(conds) = v.get_mut("conditions").and_then(Value::as_array_mut) {
            for c in conds {
                if let Some(o) = c.as_object_mut() {
                    o.remove("lastTransitionTime");
                }
            }
        }
        v
    }
    strip(a) == strip(b)
}

impl CrdController {
    pub fn new(server: Arc<ApiServer>, catalogue: Arc<BuiltinCatalogue>) -> Arc<Self> {
        Arc::new(CrdController {
            server,
            catalogue,
            crds: Mutex::new(BTreeMap::new()),
            published: Mutex::new(None),
            cleaning: Mutex::new(HashSet::new()),
        })
    }

    fn registry(&self) -> &Registry {
        &self.server.registry
    }

    /// Serves the CRDs established before this start, so that their
    /// resources answer from the first request.
    pub async fn preload(&self) -> Result<(), ApiError> {
        let r = crd_resource(self.server.catalogue.as_ref())?;
        let list = self
            .registry()
            .list(&r, None, &crate::registry::ListOptions::default(), None)
            .await?;
        for crd in list["items"].as_array().into_iter().flatten() {
            let name = crate::meta::name(crd).unwrap_or_default().to_owned();
            if let Ok(mut crds) = self.crds.lock() {
                crds.insert(name.clone(), crd.clone());
            }
            if super::strategy::condition_true(crd, "Established") {
                self.serve(&name, crd);
            }
        }
        self.publish_openapi();
        Ok(())
    }

    /// Follows the CRDs until the process ends, re-watching after errors.
    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(e) = self.clone().follow().await {
                tracing::warn!(error = %e.message, "CRD watch ended; restarting");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn follow(self: Arc<Self>) -> Result<(), ApiError> {
        let r = crd_resource(self.server.catalogue.as_ref())?;
        let events = self.registry().watch(&r, None, None, None).await?;
        if let Ok(mut crds) = self.crds.lock() {
            crds.clear();
        }
        let mut events = std::pin::pin!(events);
        while let Some(ev) = events.next().await {
            let ev = ev?;
            let name = crate::meta::name(&ev.object).unwrap_or_default().to_owned();
            let group = str_at(&ev.object, "/spec/group").to_owned();
            if let Ok(mut crds) = self.crds.lock() {
                if ev.kind == "DELETED" {
                    crds.remove(&name);
                } else {
                    crds.insert(name.clone(), ev.object.clone());
                }
            }
            if ev.kind == "DELETED" {
                self.catalogue.set_custom(&name, Vec::new());
                self.publish_openapi();
            }
            self.reconcile_group(&r, &group).await;
        }
        Ok(())
    }

    fn group_crds(&self, group: &str) -> Vec<Value> {
        self.crds
            .lock()
            .map(|c| {
                c.values()
                    .filter(|c| str_at(c, "/spec/group") == group)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Brings every CRD of a group to its desired status and serves the
    /// established ones.
    async fn reconcile_group(self: &Arc<Self>, r: &Resource, group: &str) {
        let crds = self.group_crds(group);
        for crd in &crds {
            let name = crate::meta::name(crd).unwrap_or_default().to_owned();
            let terminating = crd.pointer("/metadata/deletionTimestamp").is_some();
            let others: Vec<&Value> = crds
                .iter()
                .filter(|c| crate::meta::name(c) != Some(name.as_str()))
                .collect();
            let status = desired_status(crd, &others);
            let mut wanted = crd.clone();
            wanted["status"] = status.clone();
            // Serve first, so that Established means requests work.
            if super::strategy::condition_true(&wanted, "Established") {
                self.serve(&name, &wanted);
                // Published with the status about to be written, so the
                // documents are ready when clients see Established.
                if let Ok(mut crds) = self.crds.lock() {
                    crds.insert(name.clone(), wanted.clone());
                }
                self.publish_openapi();
            }
            if !terminating && !same_status(crd.get("status").unwrap_or(&Value::Null), &status) {
                let write = Write {
                    dry_run: false,
                    manager: Some(MANAGER),
                    record_as: None,
                };
                match self
                    .registry()
                    .update(r, None, &name, wanted, Some("status"), write)
                    .await
                {
                    Ok(_) => {}
                    // A newer version is on its way through the watch.
                    Err(e) if e.code == 409 || e.code == 404 => {}
                    Err(e) => {
                        tracing::warn!(crd = %name, error = %e.message, "updating CRD status")
                    }
                }
            }
            if terminating
                && crate::meta::finalizers(crd)
                    .iter()
                    .any(|f| f == CLEANUP_FINALIZER)
            {
                self.start_cleanup(r.clone(), crd.clone());
            }
        }
    }

    fn serve(&self, name: &str, crd: &Value) {
        for prefix in self
            .catalogue
            .set_custom(name, super::served(crd, &self.server.registry.store))
        {
            self.server.caches.forget(&format!("/{prefix}/"));
        }
    }

    /// Rebuilds the OpenAPI definitions of every established CRD.
    fn publish_openapi(&self) {
        let mut defs = Map::new();
        if let Ok(crds) = self.crds.lock() {
            for crd in crds.values() {
                if !super::strategy::condition_true(crd, "Established") {
                    continue;
                }
                let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
                for v in versions.into_iter().flatten() {
                    if v.get("served").and_then(Value::as_bool) == Some(true) {
                        super::openapi::add_definitions(&mut defs, crd, v);
                    }
                }
            }
        }
        if let Ok(mut last) = self.published.lock() {
            if last.as_ref() == Some(&defs) {
                return;
            }
            *last = Some(defs.clone());
        }
        self.catalogue.set_openapi_definitions(defs);
    }

    fn start_cleanup(self: &Arc<Self>, r: Resource, crd: Value) {
        let uid = crate::meta::meta_str(&crd, "uid")
            .unwrap_or_default()
            .to_owned();
        let fresh = self
            .cleaning
            .lock()
            .map(|mut c| c.insert(uid.clone()))
            .unwrap_or(false);
        if !fresh {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let name = crate::meta::name(&crd).unwrap_or_default().to_owned();
            if let Err(e) = super::cleanup::run(this.registry(), &r, &name).await {
                tracing::warn!(crd = %name, error = %e.message, "CRD cleanup failed");
            }
            if let Ok(mut c) = this.cleaning.lock() {
                c.remove(&uid);
            }
        });
    }
}
