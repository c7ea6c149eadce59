//! scheduling.k8s.io: PriorityClass updates (upstream's
//! `ValidatePriorityClassUpdate`): `value` and `preemptionPolicy` are fixed
//! once created, everything else (description, labels, ...) may change.

use serde_json::Value;

use crate::error::FieldError;

/// Upstream's `HighestUserDefinablePriority`.
const HIGHEST_USER_DEFINABLE: i64 = 1_000_000_000;

/// The classes the API server creates at start (`name`, `value`).
pub const SYSTEM_PRIORITY_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// Upstream's `ValidatePriorityClass` beyond metadata: the `system-` prefix
/// is reserved for the known system classes, and users stay at or below
/// one billion.
pub fn validate_priority_class(pc: &Value) -> Vec<FieldError> {
    let name = pc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let value = pc.get("value").and_then(Value::as_i64).unwrap_or(0);
    let global = pc
        .get("globalDefault")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if name.starts_with("system-") {
        let known = match SYSTEM_PRIORITY_CLASSES.iter().find(|c| c.0 == name) {
            None => Err(format!("{name} is not a known system priority class")),
            Some(c) if c.1 != value => {
                Err(format!("value of {name} PriorityClass must be {}", c.1))
            }
            Some(_) if global => Err(format!(
                "globalDefault of {name} PriorityClass must be false"
            )),
            Some(_) => Ok(()),
        };
        if let Err(e) = known {
            return vec![FieldError::forbidden(
                "metadata.name",
                format!(
                    "priority class names with 'system-' prefix are reserved for system use only. error: {e}"
                ),
            )];
        }
    } else if value > HIGHEST_USER_DEFINABLE {
        return vec![FieldError::forbidden(
            "value",
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE}"),
        )];
    }
    Vec::new()
}

pub fn validate_priority_class_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if new.get("value") != old.get("value") {
        errs.push(FieldError::forbidden(
            "value",
            "may not be changed in an update.",
        ));
    }
    let policy = |v: &Value| v.get("preemptionPolicy").cloned().unwrap_or(Value::Null);
    if policy(new) != policy(old) {
        errs.push(FieldError::invalid(
            "preemptionPolicy",
            policy(new),
            "field is immutable",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn value_and_preemption_policy_are_immutable() {
        let old =
            json!({"value": 10, "preemptionPolicy": "PreemptLowerPriority", "description": "a"});
        let ok =
            json!({"value": 10, "preemptionPolicy": "PreemptLowerPriority", "description": "b"});
        assert!(validate_priority_class_update(&ok, &old).is_empty());
        let bad = json!({"value": 11, "preemptionPolicy": "Never"});
        let errs: Vec<String> = validate_priority_class_update(&bad, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            [
                "value: Forbidden: may not be changed in an update.",
                "preemptionPolicy: Invalid value: \"Never\": field is immutable",
            ]
        );
    }
}
