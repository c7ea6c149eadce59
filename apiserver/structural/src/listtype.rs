//! `x-kubernetes-list-type` set/map uniqueness (upstream `schema/listtype`).

use crate::path::index;
use crate::schema::Schema;
use rkube_validation::FieldError;
use serde_json::Value;
use std::collections::HashSet;

/// Walks `v` with `s` and reports duplicates in sets and maps.
pub(crate) fn validate(base: &str, s: &Schema, v: &Value, out: &mut Vec<FieldError>) {
    if !s.has_list_types {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if let Some(sub) = s.property(k) {
                    if sub.has_list_types {
                        validate(&crate::path::join(base, k), sub, x, out);
                    }
                } else if let Some(sub) = s.additional_schema()
                    && sub.has_list_types
                {
                    validate(&crate::path::key(base, k), sub, x, out);
                }
            }
        }
        Value::Array(a) => {
            match s.list_type.as_deref() {
                Some("set") => {
                    for i in duplicates(a.iter().map(canonical)) {
                        out.push(FieldError::duplicate(&index(base, i), a[i].clone()));
                    }
                }
                Some("map") => map(base, s, a, out),
                _ => {}
            }
            if let Some(items) = &s.items
                && items.has_list_types
            {
                for (i, x) in a.iter().enumerate() {
                    validate(&index(base, i), items, x, out);
                }
            }
        }
        _ => {}
    }
}

/// Indices of second occurrences (each duplicated value reported once).
fn duplicates(keys: impl Iterator<Item = String>) -> Vec<usize> {
    let mut seen: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (i, k) in keys.enumerate() {
        let n = seen.entry(k).or_insert(0);
        *n += 1;
        if *n == 2 {
            out.push(i);
        }
    }
    out
}

/// A value's identity: JSON text with object keys sorted.
fn canonical(v: &Value) -> String {
    match v {
        // As Go's map keys: 1 (int64) and 1.0 (float64) differ.
        Value::Number(n) => n.to_string(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(canonical).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

fn map(base: &str, s: &Schema, a: &[Value], out: &mut Vec<FieldError>) {
    for (i, x) in a.iter().enumerate() {
        if !x.is_object() && !x.is_null() {
            out.push(FieldError::invalid(
                &index(base, i),
                x.clone(),
                "must be an object for an array of list-type map",
            ));
            return;
        }
    }
    if a.len() <= 1 {
        return;
    }
    let mut seen = HashSet::new();
    for (i, x) in a.iter().enumerate() {
        let key: Vec<String> = s
            .list_map_keys
            .iter()
            .map(|k| match x.get(k) {
                Some(v) => canonical(v),
                None => match s.items.as_ref().and_then(|it| it.property(k)) {
                    // A defaulted key counts with its default, as upstream.
                    Some(ps) if ps.default.is_some() => {
                        canonical(ps.default.as_ref().unwrap_or(&Value::Null))
                    }
                    _ => "\u{0}unspecified".to_string(),
                },
            })
            .collect();
        if !seen.insert(key) {
            out.push(FieldError::duplicate(&index(base, i), x.clone()));
        }
    }
}
