//! Priority admission: a pod's `priorityClassName` resolves into
//! `spec.priority` and `spec.preemptionPolicy` (the global default class,
//! or 0, when it names none), and at most one class is the global default.

use serde_json::{Value, json};

use super::{forbidden, list_cluster};
use crate::registry::{Registry, Resource};
use crate::status::ApiError;

const DEFAULT_POLICY: &str = "PreemptLowerPriority";

pub async fn admit_pod(reg: &Registry, r: &Resource, pod: &mut Value) -> Result<(), ApiError> {
    let class = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let classes = list_cluster(reg, "priorityclasses").await?;
    let found = if class.is_empty() {
        classes
            .iter()
            .find(|c| c.value.get("globalDefault").and_then(Value::as_bool) == Some(true))
    } else {
        let found = classes
            .iter()
            .find(|c| crate::meta::name(&c.value) == Some(class.as_str()));
        if found.is_none() {
            return Err(forbidden(
                r,
                pod,
                &format!("no PriorityClass with name {class} was found"),
            ));
        }
        found
    };
    let (name, priority, policy) = match found {
        Some(c) => (
            crate::meta::name(&c.value).unwrap_or_default().to_owned(),
            c.value.get("value").and_then(Value::as_i64).unwrap_or(0),
            c.value
                .get("preemptionPolicy")
                .and_then(Value::as_str)
                .unwrap_or(DEFAULT_POLICY)
                .to_owned(),
        ),
        None => (String::new(), 0, DEFAULT_POLICY.to_owned()),
    };
    if let Some(given) = pod.pointer("/spec/priority").and_then(Value::as_i64)
        && given != priority
    {
        return Err(forbidden(
            r,
            pod,
            &format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            ),
        ));
    }
    if let Some(given) = pod
        .pointer("/spec/preemptionPolicy")
        .and_then(Value::as_str)
        && given != policy
    {
        return Err(forbidden(
            r,
            pod,
            &format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ),
        ));
    }
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        if !name.is_empty() {
            spec.insert("priorityClassName".into(), json!(name));
        }
        spec.insert("priority".into(), json!(priority));
        spec.insert("preemptionPolicy".into(), json!(policy));
    }
    Ok(())
}

/// A second global default is refused.
pub async fn admit_class(reg: &Registry, r: &Resource, class: &Value) -> Result<(), ApiError> {
    if class.get("globalDefault").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let name = crate::meta::name(class).unwrap_or_default();
    for c in list_cluster(reg, "priorityclasses").await? {
        let other = crate::meta::name(&c.value).unwrap_or_default();
        if other != name && c.value.get("globalDefault").and_then(Value::as_bool) == Some(true) {
            return Err(forbidden(
                r,
                class,
                &format!(
                    "PriorityClass {other} is already marked as default. Only one default can exist"
                ),
            ));
        }
    }
    Ok(())
}
