//! `x-kubernetes-embedded-resource` checks (upstream `schema/objectmeta`
//! validation): embedded objects need `apiVersion` and `kind`, and their
//! `metadata` must be object metadata.

use crate::path::{child, index, key};
use crate::schema::Schema;
use rkube_validation::{FieldError, dns1035_label_errors, name_path_segment};
use serde_json::{Map, Value};

pub(crate) fn validate(base: &str, s: &Schema, v: &Value, out: &mut Vec<FieldError>) {
    if !s.has_embedded {
        return;
    }
    match v {
        Value::Object(m) => {
            if s.embedded_resource {
                resource(base, m, out);
            }
            for (k, x) in m {
                if let Some(sub) = s.property(k) {
                    if sub.has_embedded {
                        validate(&child(base, k), sub, x, out);
                    }
                } else if let Some(sub) = s.additional_schema()
                    && sub.has_embedded
                {
                    validate(&key(base, k), sub, x, out);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = &s.items {
                for (i, x) in a.iter().enumerate() {
                    validate(&index(base, i), items, x, out);
                }
            }
        }
        _ => {}
    }
}

fn resource(base: &str, m: &Map<String, Value>, out: &mut Vec<FieldError>) {
    if !m.contains_key("apiVersion") {
        out.push(FieldError::required(
            &child(base, "apiVersion"),
            "must not be empty",
        ));
    }
    if !m.contains_key("kind") {
        out.push(FieldError::required(
            &child(base, "kind"),
            "must not be empty",
        ));
    }
    for (k, v) in m {
        match k.as_str() {
            "apiVersion" => match v.as_str() {
                None => out.push(FieldError::invalid(
                    &child(base, "apiVersion"),
                    v.clone(),
                    "must be a string",
                )),
                Some("") => out.push(FieldError::invalid(
                    &child(base, "apiVersion"),
                    "",
                    "must not be empty",
                )),
                Some(av) if av.matches('/').count() > 1 || av.starts_with('/') => {
                    out.push(FieldError::invalid(
                        &child(base, "apiVersion"),
                        av,
                        format!("unexpected GroupVersion string: {av}"),
                    ))
                }
                Some(_) => {}
            },
            "kind" => match v.as_str() {
                None => out.push(FieldError::invalid(
                    &child(base, "kind"),
                    v.clone(),
                    "must be a string",
                )),
                Some("") => out.push(FieldError::invalid(
                    &child(base, "kind"),
                    "",
                    "must not be empty",
                )),
                Some(kind) => {
                    let errs = dns1035_label_errors(&kind.to_lowercase());
                    if !errs.is_empty() {
                        out.push(FieldError::invalid(
                            &child(base, "kind"),
                            kind,
                            format!(
                                "may have mixed case, but should otherwise match: {}",
                                errs.join(",")
                            ),
                        ));
                    }
                }
            },
            "metadata" => metadata(&child(base, "metadata"), v, out),
            _ => {}
        }
    }
}

/// The parts of `ValidateObjectMeta` that apply to embedded metadata.
fn metadata(base: &str, v: &Value, out: &mut Vec<FieldError>) {
    let Some(m) = v.as_object() else {
        out.push(FieldError::invalid(
            base,
            v.clone(),
            "expected object metadata to be an object",
        ));
        return;
    };
    for (k, prefix) in [("name", false), ("generateName", true)] {
        if let Some(n) = m.get(k).and_then(Value::as_str)
            && !n.is_empty()
        {
            for e in name_path_segment(n, prefix) {
                out.push(FieldError::invalid(&child(base, k), n, e));
            }
        }
    }
}
