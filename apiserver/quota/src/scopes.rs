//! Which objects a ResourceQuota covers: its `scopes` and `scopeSelector`
//! (only pods have scopes, so a scoped quota never covers anything else).

use serde_json::Value;

use crate::usage::{ResourceList, is_best_effort, tracks};

/// One scope requirement: `scopeName`, `operator`, `values`.
struct Requirement<'a> {
    scope: &'a str,
    operator: &'a str,
    values: Vec<&'a str>,
}

fn requirements(quota: &Value) -> Vec<Requirement<'_>> {
    let mut out: Vec<Requirement> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|scope| Requirement {
            scope,
            operator: "Exists",
            values: Vec::new(),
        })
        .collect();
    for e in quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push(Requirement {
            scope: e
                .get("scopeName")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            operator: e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            values: e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect(),
        });
    }
    out
}

fn has_cross_namespace_affinity(pod: &Value) -> bool {
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let Some(a) = pod.pointer(&format!("/spec/affinity/{kind}")) else {
            return false;
        };
        let required = a
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let preferred = a
            .get("preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|w| w.get("podAffinityTerm"));
        required.chain(preferred).any(|t| {
            t.get("namespaceSelector").is_some()
                || t.get("namespaces")
                    .and_then(Value::as_array)
                    .is_some_and(|n| !n.is_empty())
        })
    })
}

fn pod_matches(r: &Requirement, pod: &Value) -> bool {
    match r.scope {
        "Terminating" => pod
            .pointer("/spec/activeDeadlineSeconds")
            .and_then(Value::as_i64)
            .is_some_and(|s| s >= 0),
        "NotTerminating" => pod
            .pointer("/spec/activeDeadlineSeconds")
            .and_then(Value::as_i64)
            .is_none_or(|s| s < 0),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "CrossNamespacePodAffinity" => has_cross_namespace_affinity(pod),
        "PriorityClass" => {
            let class = pod
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match r.operator {
                "In" => r.values.contains(&class),
                "NotIn" => !r.values.contains(&class),
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether `quota` (with hard limits `hard`) covers `obj` of
/// `group`/`plural`: it limits something that kind counts, and every scope
/// matches.
pub fn covers(quota: &Value, hard: &ResourceList, group: &str, plural: &str, obj: &Value) -> bool {
    if !hard.keys().any(|k| tracks(group, plural, k)) {
        return false;
    }
    let reqs = requirements(quota);
    if reqs.is_empty() {
        return true;
    }
    group.is_empty() && plural == "pods" && reqs.iter().all(|r| pod_matches(r, obj))
}

/// Whether `quota` has scopes (then only pods can count against it).
pub fn is_scoped(quota: &Value) -> bool {
    !requirements(quota).is_empty()
}
