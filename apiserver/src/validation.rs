//! Validation of what people write by hand, with upstream's field paths
//! and messages. Name rules live in the strategy.

use serde_json::{Value, json};

use crate::registry::Resource;
use crate::status::FieldError;

fn containers_errs(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let containers = spec.get("containers").and_then(Value::as_array);
    match containers {
        None => errs.push(FieldError::required(format!("{path}.containers"), "")),
        Some(list) if list.is_empty() => {
            errs.push(FieldError::required(format!("{path}.containers"), ""))
        }
        Some(list) => {
            let mut seen = std::collections::HashSet::new();
            for (i, c) in list.iter().enumerate() {
                let p = format!("{path}.containers[{i}]");
                match c.get("name").and_then(Value::as_str) {
                    None | Some("") => errs.push(FieldError::required(format!("{p}.name"), "")),
                    Some(n) => {
                        if !seen.insert(n.to_owned()) {
                            errs.push(FieldError::duplicate(format!("{p}.name"), json!(n)));
                        }
                    }
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(|s| s.trim().is_empty())
                {
                    errs.push(FieldError::required(format!("{p}.image"), ""));
                }
                if let Some(ports) = c.get("ports").and_then(Value::as_array) {
                    for (j, port) in ports.iter().enumerate() {
                        let n = port
                            .get("containerPort")
                            .and_then(Value::as_i64)
                            .unwrap_or(0);
                        if !(1..=65535).contains(&n) {
                            errs.push(FieldError::invalid(
                                format!("{p}.ports[{j}].containerPort"),
                                json!(n),
                                "must be between 1 and 65535, inclusive",
                            ));
                        }
                    }
                }
            }
        }
    }
}

pub fn validate(r: &Resource, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match (r.group.as_str(), r.plural.as_str()) {
        ("", "pods") => {
            if let Some(spec) = obj.get("spec") {
                containers_errs(spec, "spec", &mut errs);
            } else {
                errs.push(FieldError::required("spec.containers", ""));
            }
        }
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") => {
            if let Some(spec) = obj.pointer("/spec/template/spec") {
                containers_errs(spec, "spec.template.spec", &mut errs);
            } else {
                errs.push(FieldError::required("spec.template.spec.containers", ""));
            }
            if let (Some(old), Some(sel)) = (old, obj.pointer("/spec/selector"))
                && old.pointer("/spec/selector") != Some(sel)
            {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    sel.clone(),
                    "field is immutable",
                ));
            }
        }
        _ => {}
    }
    errs
}
