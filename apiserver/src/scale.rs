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
    parent["spec"]["replicas"] = json!(replicas);
    let updated = registry.update(r, ns, name, parent, None, w).await?;
    Ok(to_scale(&updated))
}
