//! The `scale` subresource: an `autoscaling/v1` Scale view of a workload's
//! replicas, read and written through the parent object.

use rkube_selectors::LabelSelector;
use serde_json::{Value, json};

use crate::meta;
use crate::registry::{Registry, Resource};
use crate::status::ApiError;

/// The label selector of a workload as a string (`app=web`).
fn selector_string(obj: &Value) -> String {
    match obj.pointer("/spec/selector") {
        Some(sel) if sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some() => {
            LabelSelector::from_label_selector(sel)
                .map(|s| s.to_string())
                .unwrap_or_default()
        }
        // ReplicationControllers select with a plain map.
        Some(Value::Object(map)) => {
            let mut pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            pairs.sort();
            pairs.join(",")
        }
        _ => String::new(),
    }
}

/// The Scale of a workload or of a custom resource (its CRD's paths).
pub fn to_scale_of(r: &Resource, obj: &Value) -> Value {
    let Some(paths) = r.custom.as_ref().and_then(|c| c.scale.as_ref()) else {
        return to_scale(obj);
    };
    let mut scale = to_scale(obj);
    scale["spec"]["replicas"] = obj
        .pointer(&paths.spec_replicas)
        .cloned()
        .unwrap_or(json!(0));
    scale["status"]["replicas"] = obj
        .pointer(&paths.status_replicas)
        .cloned()
        .unwrap_or(json!(0));
    match paths
        .label_selector
        .as_ref()
        .and_then(|p| obj.pointer(p))
        .and_then(Value::as_str)
    {
        Some(sel) => scale["status"]["selector"] = json!(sel),
        None => {
            if let Some(st) = scale["status"].as_object_mut() {
                st.remove("selector");
            }
        }
    }
    scale
}

pub fn to_scale(obj: &Value) -> Value {
    let m = meta::obj_meta(obj).cloned().unwrap_or_default();
    let mut metadata = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(field) {
            metadata[field] = v.clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": { "replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0)) },
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector_string(obj),
        },
    })
}

/// Writes a Scale back: the parent's `spec.replicas`, guarded by the
/// Scale's resourceVersion when it has one.
pub async fn write(
    registry: &Registry,
    r: &Resource,
    ns: Option<&str>,
    name: &str,
    scale: &Value,
    w: crate::registry::Write<'_>,
) -> Result<Value, ApiError> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            &[crate::status::FieldError::invalid(
                "spec.replicas",
                json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    let mut parent = registry.get(r, ns, name).await?;
    if let Some(rv) = meta::meta_str(scale, "resourceVersion").filter(|s| !s.is_empty()) {
        meta::meta_mut(&mut parent).insert("resourceVersion".into(), json!(rv));
    }
    match r.custom.as_ref().and_then(|c| c.scale.as_ref()) {
        Some(paths) => set_pointer(&mut parent, &paths.spec_replicas, json!(replicas)),
        None => parent["spec"]["replicas"] = json!(replicas),
    }
    let updated = registry.update(r, ns, name, parent, None, w).await?;
    Ok(to_scale_of(r, &updated))
}

/// Sets the value at a JSON pointer, making the objects on the way.
fn set_pointer(obj: &mut Value, pointer: &str, value: Value) {
    let mut cur = obj;
    let parts: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i + 1 == parts.len() {
            cur[part.as_str()] = value;
            return;
        }
        cur = &mut cur[part.as_str()];
    }
}
