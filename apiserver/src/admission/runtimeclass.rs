//! RuntimeClass admission: a pod's `runtimeClassName` must name an
//! existing RuntimeClass, whose `overhead.podFixed` becomes the pod's
//! `spec.overhead` and whose `scheduling` adds node selector terms and
//! tolerations, with upstream's refusals.

use rkube_quota::parse_list;
use serde_json::{Value, json};

use super::{forbidden, list_cluster};
use crate::registry::{Registry, Resource};
use crate::status::ApiError;

pub async fn admit_pod(reg: &Registry, r: &Resource, pod: &mut Value) -> Result<(), ApiError> {
    let name = pod
        .pointer("/spec/runtimeClassName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let has_overhead = pod.pointer("/spec/overhead").is_some_and(|o| !o.is_null());
    if name.is_empty() {
        if has_overhead {
            return Err(forbidden(
                r,
                pod,
                "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead",
            ));
        }
        return Ok(());
    }
    let classes = list_cluster(reg, "runtimeclasses").await?;
    let Some(class) = classes
        .into_iter()
        .find(|c| crate::meta::name(&c.value) == Some(name.as_str()))
        .map(|c| c.value)
    else {
        let why = format!("pod rejected: RuntimeClass \"{name}\" not found");
        return Err(forbidden(r, pod, &why));
    };
    set_overhead(r, pod, &class, has_overhead)?;
    set_scheduling(r, pod, &class)
}

fn set_overhead(r: &Resource, pod: &mut Value, class: &Value, has: bool) -> Result<(), ApiError> {
    let fixed = class.pointer("/overhead/podFixed").filter(|o| !o.is_null());
    match (fixed, has) {
        (Some(fixed), true) => {
            if parse_list(Some(fixed)) != parse_list(pod.pointer("/spec/overhead")) {
                return Err(forbidden(
                    r,
                    pod,
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead",
                ));
            }
        }
        (Some(fixed), false) => pod["spec"]["overhead"] = fixed.clone(),
        (None, true) => {
            return Err(forbidden(
                r,
                pod,
                "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead",
            ));
        }
        (None, false) => {}
    }
    Ok(())
}

fn set_scheduling(r: &Resource, pod: &mut Value, class: &Value) -> Result<(), ApiError> {
    let Some(scheduling) = class.get("scheduling").filter(|s| !s.is_null()) else {
        return Ok(());
    };
    if let Some(selector) = scheduling.get("nodeSelector").and_then(Value::as_object) {
        let mut conflicts = Vec::new();
        let merged = pod["spec"]
            .as_object_mut()
            .map(|s| s.entry("nodeSelector").or_insert_with(|| json!({})));
        if let Some(Value::Object(pod_selector)) = merged {
            for (k, v) in selector {
                match pod_selector.get(k) {
                    Some(existing) if existing != v => conflicts.push(format!(
                        "conflict: runtimeClass.scheduling.nodeSelector[{k}] = {}; pod.spec.nodeSelector[{k}] = {}",
                        v.as_str().unwrap_or_default(),
                        existing.as_str().unwrap_or_default()
                    )),
                    _ => {
                        pod_selector.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        if !conflicts.is_empty() {
            let why = format!("pod rejected: {}", super::aggregate(&conflicts));
            return Err(forbidden(r, pod, &why));
        }
    }
    if let Some(tolerations) = scheduling.get("tolerations").and_then(Value::as_array) {
        let merged = pod["spec"]
            .as_object_mut()
            .map(|s| s.entry("tolerations").or_insert_with(|| json!([])));
        if let Some(Value::Array(list)) = merged {
            for t in tolerations {
                if !list.contains(t) {
                    list.push(t.clone());
                }
            }
        }
    }
    Ok(())
}
