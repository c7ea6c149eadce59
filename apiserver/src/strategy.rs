//! Per-kind strategies: only what really differs between resources
//! (upstream's `pkg/registry/*/strategy.go`): status handling, generation,
//! name rules, graceful deletion.

use serde_json::{Value, json};

use crate::meta::{self, meta_mut};
use crate::registry::Resource;
use crate::status::ApiError;

/// Kinds whose spec changes bump `metadata.generation`.
fn tracks_generation(r: &Resource) -> bool {
    r.custom.is_some() || r.has_status && r.plural != "namespaces" && r.plural != "nodes"
}

fn is_crd(r: &Resource) -> bool {
    crate::crd::is_crd(&r.group, &r.plural)
}

/// A custom resource's schema defaults.
fn custom_defaults(r: &Resource, obj: &mut Value) {
    if let Some(schema) = r.custom.as_ref().and_then(|c| c.schema.as_ref()) {
        schema.apply_defaults(obj);
    }
}

pub fn prepare_create(r: &Resource, obj: &mut Value) {
    if r.group == "batch" && r.plural == "jobs" {
        generate_job_selector(obj);
    }
    rkube_validation::default(&r.group, &r.plural, obj);
    if tracks_generation(r) {
        meta_mut(obj).insert("generation".into(), json!(1));
    } else {
        meta_mut(obj).remove("generation");
    }
    match r.plural.as_str() {
        "namespaces" if r.group.is_empty() => {
            obj["status"] = json!({ "phase": "Active" });
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({ "finalizers": ["kubernetes"] });
            }
        }
        "pods" if r.group.is_empty() => {
            obj["status"] = json!({ "phase": "Pending", "qosClass": qos_class(obj) });
        }
        _ if r.has_status => {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        _ => {}
    }
    if is_crd(r) {
        crate::crd::strategy::prepare_create(obj);
    }
    custom_defaults(r, obj);
}

/// A Job without `manualSelector` selects its pods by its uid, with the
/// labels upstream adds to the template.
fn generate_job_selector(obj: &mut Value) {
    if obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let uid = meta::meta_str(obj, "uid").unwrap_or_default().to_owned();
    let name = meta::name(obj).unwrap_or_default().to_owned();
    obj["spec"]["selector"] =
        json!({ "matchLabels": { "batch.kubernetes.io/controller-uid": uid } });
    let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels[k] = json!(v);
    }
}

/// A 422 naming the object when validation found errors.
fn invalid_if(
    r: &Resource,
    obj: &Value,
    errs: Vec<rkube_validation::FieldError>,
) -> Result<(), ApiError> {
    if errs.is_empty() {
        return Ok(());
    }
    let name = meta::name(obj).unwrap_or_default();
    Err(ApiError::invalid(&r.group, &r.kind, name, &errs))
}

pub fn validate_create(r: &Resource, obj: &Value) -> Result<(), ApiError> {
    let mut errs = rkube_validation::validate_create(&r.group, &r.plural, obj);
    if is_crd(r) {
        errs.extend(crate::crd::strategy::validate_create(obj));
    }
    if let Some(schema) = r.custom.as_ref().and_then(|c| c.schema.as_ref()) {
        errs.extend(schema.validate(obj, None));
    }
    invalid_if(r, obj, errs)
}

pub fn validate_update(
    r: &Resource,
    new: &Value,
    old: &Value,
    subresource: Option<&str>,
) -> Result<(), ApiError> {
    if subresource == Some("ephemeralcontainers") {
        let errs = rkube_validation::validate_ephemeral_containers_update(new, old);
        return invalid_if(r, new, errs);
    }
    let mut errs = rkube_validation::validate_update(&r.group, &r.plural, new, old);
    if is_crd(r) {
        errs.extend(crate::crd::strategy::validate_update(new, old));
    }
    if let Some(schema) = r.custom.as_ref().and_then(|c| c.schema.as_ref()) {
        errs.extend(schema.validate(new, Some(old)));
    }
    invalid_if(r, new, errs)
}

/// `old` with only `field` of `parent` ("" for the top level), and the
/// write's resourceVersion and managedFields, taken from `new`: for a
/// subresource that may change nothing else.
fn only_changing(old: &Value, new: &Value, parent: &str, field: &str) -> Value {
    let mut merged = old.clone();
    let from = match parent {
        "" => new.get(field),
        p => new.get(p).and_then(|v| v.get(field)),
    };
    let target = match parent {
        "" => &mut merged,
        p => &mut merged[p],
    };
    match from {
        Some(v) => target[field] = v.clone(),
        None => {
            if let Some(o) = target.as_object_mut() {
                o.remove(field);
            }
        }
    }
    let m = meta_mut(&mut merged);
    for f in ["resourceVersion", "managedFields"] {
        match new.pointer(&format!("/metadata/{f}")) {
            Some(v) => m.insert(f.into(), v.clone()),
            None => m.remove(f),
        };
    }
    merged
}

/// The new object of an update: immutable metadata from the old one, and
/// the spec/status split of resources with a status subresource.
pub fn prepare_update(
    r: &Resource,
    old: &Value,
    mut new: Value,
    subresource: Option<&str>,
) -> Value {
    if subresource == Some("finalize") {
        // A namespace's finalize changes only spec.finalizers.
        let mut merged = old.clone();
        merged["spec"]["finalizers"] = new
            .pointer("/spec/finalizers")
            .cloned()
            .unwrap_or(json!([]));
        if let Some(rv) = meta::meta_str(&new, "resourceVersion") {
            meta_mut(&mut merged).insert("resourceVersion".into(), json!(rv));
        }
        return merged;
    }
    if subresource == Some("ephemeralcontainers") {
        // Only the ephemeral containers change, as upstream's
        // EphemeralContainersStrategy.
        let mut merged = only_changing(old, &new, "spec", "ephemeralContainers");
        rkube_validation::default(&r.group, &r.plural, &mut merged);
        return merged;
    }
    if subresource == Some("status") && r.custom.is_some() {
        // A custom resource's status update changes only the status (and
        // the managed fields recorded for it), as upstream's statusStrategy.
        return only_changing(old, &new, "", "status");
    }
    if subresource == Some("status") {
        // A status update keeps the old spec (every field but metadata and
        // status), as upstream's status strategies; metadata changes such as
        // annotations still apply, except workloads' labels and owners.
        if let (Some(n), Some(o)) = (new.as_object_mut(), old.as_object()) {
            n.retain(|k, _| matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind"));
            for (k, v) in o {
                if !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind") {
                    n.insert(k.clone(), v.clone());
                }
            }
        }
        let keep: &[&str] = if r.group == "apps" {
            &["labels", "ownerReferences"]
        } else {
            &["ownerReferences"]
        };
        let old_meta = meta::obj_meta(old).cloned().unwrap_or_default();
        let m = meta_mut(&mut new);
        for field in keep {
            match old_meta.get(*field) {
                Some(v) => m.insert(field.to_string(), v.clone()),
                None => m.remove(*field),
            };
        }
    }
    let old_meta = meta::obj_meta(old).cloned().unwrap_or_default();
    let m = meta_mut(&mut new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "generation",
    ] {
        match old_meta.get(field) {
            Some(v) => m.insert(field.into(), v.clone()),
            None => m.remove(field),
        };
    }
    if r.has_status && subresource.is_none() {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    rkube_validation::default(&r.group, &r.plural, &mut new);
    if is_crd(r) && subresource.is_none() {
        crate::crd::strategy::prepare_update(&mut new);
    }
    custom_defaults(r, &mut new);
    if tracks_generation(r) {
        // Custom resources without a status subresource count status
        // changes too, as upstream.
        let keep_status = r.custom.is_some() && !r.has_status;
        let changed = |v: &Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("metadata");
                if !keep_status {
                    o.remove("status");
                }
            }
            v
        };
        if changed(old) != changed(&new) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
    }
    new
}

/// The grace period a delete waits for, if any: pods bound to a node wait
/// for the kubelet unless the grace period is 0.
pub fn grace_period(r: &Resource, obj: &Value, requested: Option<i64>) -> Option<i64> {
    if r.group.is_empty() && r.plural == "pods" {
        let bound = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let finished = matches!(
            obj.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded") | Some("Failed")
        );
        if !bound || finished {
            return None;
        }
        let grace = requested
            .or_else(|| {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30);
        return (grace > 0).then_some(grace).or(Some(0)).filter(|g| *g > 0);
    }
    None
}

/// Finalizers outside `metadata.finalizers` that hold a deletion: a
/// namespace's `spec.finalizers`, which the namespace controller clears
/// through the `finalize` subresource once the namespace is empty.
pub fn spec_finalizers(r: &Resource, obj: &Value) -> bool {
    r.group.is_empty()
        && r.plural == "namespaces"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
}

pub fn prepare_delete(r: &Resource, obj: &mut Value) {
    if r.group.is_empty() && r.plural == "namespaces" {
        obj["status"]["phase"] = json!("Terminating");
    }
    if is_crd(r) {
        crate::crd::strategy::prepare_delete(obj);
    }
}

/// Finalizers a delete adds: a CRD's cleanup of its custom resources.
pub fn deletion_finalizers(r: &Resource, obj: &Value, finalizers: &mut Vec<String>) {
    if is_crd(r) {
        crate::crd::strategy::deletion_finalizers(obj, finalizers);
    }
}

/// The pod's QoS class from its containers' requests and limits.
pub fn qos_class(pod: &Value) -> &'static str {
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array);
    let Some(containers) = containers else {
        return "BestEffort";
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|m| !m.is_empty()) || lim.is_some_and(|m| !m.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|m| m.get(res));
            let r = req.and_then(|m| m.get(res)).or(l);
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
