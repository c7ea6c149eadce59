//! scheduling.k8s.io: PriorityClass updates (upstream's
//! `ValidatePriorityClassUpdate`): `value` and `preemptionPolicy` are fixed
//! once created, everything else (description, labels, ...) may change.

use serde_json::Value;

use crate::error::FieldError;

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
