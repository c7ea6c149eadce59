//! `metadata` validation (apimachinery `ValidateObjectMeta*`), name rules,
//! labels, annotations and label selectors.

use crate::error::{FieldError, go_quote, go_repr, string_map};
use crate::json::{arr, child, index, int, s};
use rkube_selectors::LabelSelector;
use rkube_selectors::validation::{dns1123_subdomain_errors, label_key_errors, label_value_errors};
use serde_json::Value;

pub type Errors = Vec<FieldError>;

/// A name validator: `(name, is_generate_name_prefix) -> messages`.
pub type NameFn = fn(&str, bool) -> Vec<String>;

/// `FieldImmutableErrorMsg`.
pub const IMMUTABLE: &str = "field is immutable";
/// `IsNegativeErrorMsg`.
pub const NEGATIVE: &str = "must be greater than or equal to 0";
/// `TotalAnnotationSizeLimitB`.
pub const ANNOTATIONS_MAX: usize = 256 * 1024;

/// Upstream's `RegexError`, with its `',  or '` spacing.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let ex: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        ex.join(" or ")
    )
}

/// `MaxLenError`.
pub fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} bytes")
}

/// `InclusiveRangeError`.
pub fn inclusive_range(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

fn is_label_chars(s: &str, first: fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mid = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-';
    let end = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => first(*f) && end(l) && b.iter().all(mid),
        _ => false,
    }
}

/// `IsDNS1123Label`.
pub fn dns1123_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !is_label_chars(value, |c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        if !value.is_empty() && dns1123_subdomain_errors(value).is_empty() {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                "[a-z0-9]([-a-z0-9]*[a-z0-9])?",
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsDNS1035Label`.
pub fn dns1035_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !is_label_chars(value, |c| c.is_ascii_lowercase()) {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            "[a-z]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `maskTrailingDash`: upstream replaces the last *two* bytes with "a".
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        let cut = name.len() - 2;
        if name.is_char_boundary(cut) {
            return format!("{}a", &name[..cut]);
        }
    }
    name.to_string()
}

/// `NameIsDNSSubdomain`.
pub fn name_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        dns1123_subdomain_errors(&mask_trailing_dash(name))
    } else {
        dns1123_subdomain_errors(name)
    }
}

/// `NameIsDNSLabel`.
pub fn name_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        dns1123_label_errors(&mask_trailing_dash(name))
    } else {
        dns1123_label_errors(name)
    }
}

/// `NameIsDNS1035Label`.
pub fn name_dns1035(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        dns1035_label_errors(&mask_trailing_dash(name))
    } else {
        dns1035_label_errors(name)
    }
}

/// `path.ValidatePathSegmentName`.
pub fn name_path_segment(name: &str, prefix: bool) -> Vec<String> {
    if !prefix {
        for bad in [".", ".."] {
            if name == bad {
                return vec![format!("may not be '{bad}'")];
            }
        }
    }
    ["/", "%"]
        .iter()
        .filter(|c| name.contains(*c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

/// Accepts any name (e.g. CertificateSigningRequests).
pub fn name_any(_: &str, _: bool) -> Vec<String> {
    Vec::new()
}

/// `ValidateDNS1123Label` as field errors.
pub fn validate_dns1123_label(value: &str, path: &str) -> Errors {
    dns1123_label_errors(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// `ValidateDNS1123Subdomain` as field errors.
pub fn validate_dns1123_subdomain(value: &str, path: &str) -> Errors {
    dns1123_subdomain_errors(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// `ValidateQualifiedName` as field errors.
pub fn validate_qualified_name(value: &str, path: &str) -> Errors {
    label_key_errors(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// `ValidateNonnegativeField`.
pub fn validate_nonnegative(value: i64, path: &str) -> Errors {
    if value < 0 {
        vec![FieldError::invalid(path, value, NEGATIVE)]
    } else {
        Vec::new()
    }
}

/// Nonnegative check of an optional integer field of `v`.
pub fn nonneg_field(v: &Value, key: &str, base: &str) -> Errors {
    int(v, key)
        .map(|n| validate_nonnegative(n, &child(base, key)))
        .unwrap_or_default()
}

/// `ValidateLabels`: keys must be qualified names, values label values.
pub fn validate_labels(labels: Option<&Value>, path: &str) -> Errors {
    let mut errs = Vec::new();
    for (k, v) in crate::json::string_pairs(labels) {
        errs.extend(validate_qualified_name(k, path));
        for m in label_value_errors(v) {
            errs.push(FieldError::invalid(path, v, m));
        }
    }
    errs
}

/// `ValidateAnnotations`: case-insensitive qualified keys and total size.
pub fn validate_annotations(annotations: Option<&Value>, path: &str) -> Errors {
    let mut errs = Vec::new();
    let pairs = crate::json::string_pairs(annotations);
    let mut total = 0usize;
    for (k, v) in &pairs {
        for m in label_key_errors(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, *k, m));
        }
        total += k.len() + v.len();
    }
    if total > ANNOTATIONS_MAX {
        errs.push(FieldError::too_long(path, ANNOTATIONS_MAX));
    }
    errs
}

fn validate_owner_references(refs: &[Value], path: &str) -> Errors {
    let mut errs = Vec::new();
    let mut controller = String::new();
    for r in refs {
        let api_version = s(r, "apiVersion");
        let version = match api_version.split_once('/') {
            Some((_, v)) => v,
            None => api_version,
        };
        let (kind, name, uid) = (s(r, "kind"), s(r, "name"), s(r, "uid"));
        if version.is_empty() {
            errs.push(FieldError::invalid(
                &child(path, "apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(
                &child(path, "kind"),
                kind,
                "kind must not be empty",
            ));
        }
        if name.is_empty() {
            errs.push(FieldError::invalid(
                &child(path, "name"),
                name,
                "name must not be empty",
            ));
        }
        if uid.is_empty() {
            errs.push(FieldError::invalid(
                &child(path, "uid"),
                uid,
                "uid must not be empty",
            ));
        }
        if api_version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if crate::json::is_true(r, "controller") {
            let cur = format!("{kind}/{name}");
            if controller.is_empty() {
                controller = cur;
            } else {
                errs.push(FieldError::invalid(
                    path,
                    Value::Array(refs.to_vec()),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {controller} and {cur}"),
                ));
            }
        }
    }
    errs
}

/// `apimachinery ValidateFinalizers`.
fn validate_finalizers(finalizers: &[Value], path: &str) -> Errors {
    let mut errs = Vec::new();
    let names: Vec<&str> = finalizers.iter().filter_map(Value::as_str).collect();
    for f in &names {
        errs.extend(validate_qualified_name(f, path));
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            go_repr(crate::error::string_slice(names.iter().copied())),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// Core's `validateKubeFinalizerName`.
pub fn validate_kube_finalizer_name(name: &str, path: &str) -> Errors {
    if !name.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(&name) {
        return vec![FieldError::invalid(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        )];
    }
    Vec::new()
}

/// How a kind's metadata is validated.
#[derive(Clone, Copy)]
pub struct MetaRules {
    /// Some(true): namespace required; Some(false): forbidden; None: unchecked.
    pub namespaced: Option<bool>,
    pub name: NameFn,
    /// Built-in kinds also run core's kube finalizer-name check.
    pub builtin: bool,
}

/// `ValidateObjectMeta` (core flavour when `rules.builtin`).
pub fn validate_object_meta(obj: &Value, rules: &MetaRules) -> Errors {
    static NULL: Value = Value::Null;
    let meta = obj.get("metadata").unwrap_or(&NULL);
    let path = "metadata";
    let mut errs = Vec::new();
    let gen_name = s(meta, "generateName");
    if !gen_name.is_empty() {
        for m in (rules.name)(gen_name, true) {
            errs.push(FieldError::invalid("metadata.generateName", gen_name, m));
        }
    }
    let name = s(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for m in (rules.name)(name, false) {
            errs.push(FieldError::invalid("metadata.name", name, m));
        }
    }
    let ns = s(meta, "namespace");
    match rules.namespaced {
        Some(true) => {
            if ns.is_empty() {
                errs.push(FieldError::required("metadata.namespace", ""));
            } else {
                for m in name_label(ns, false) {
                    errs.push(FieldError::invalid("metadata.namespace", ns, m));
                }
            }
        }
        Some(false) => {
            if !ns.is_empty() {
                errs.push(FieldError::forbidden(
                    "metadata.namespace",
                    "not allowed on this type",
                ));
            }
        }
        None => {}
    }
    errs.extend(nonneg_field(meta, "generation", path));
    errs.extend(validate_labels(meta.get("labels"), "metadata.labels"));
    errs.extend(validate_annotations(
        meta.get("annotations"),
        "metadata.annotations",
    ));
    errs.extend(validate_owner_references(
        arr(meta, "ownerReferences"),
        "metadata.ownerReferences",
    ));
    errs.extend(validate_finalizers(
        arr(meta, "finalizers"),
        "metadata.finalizers",
    ));
    if rules.builtin {
        errs.extend(kube_finalizers(meta));
    }
    errs
}

fn kube_finalizers(meta: &Value) -> Errors {
    let mut errs = Vec::new();
    for (i, f) in arr(meta, "finalizers").iter().enumerate() {
        if let Some(f) = f.as_str() {
            errs.extend(validate_kube_finalizer_name(
                f,
                &index("metadata.finalizers", i),
            ));
        }
    }
    errs
}

/// Go's `time.Time.String()` for an RFC 3339 UTC timestamp.
fn go_time(v: Option<&Value>) -> String {
    match v.and_then(Value::as_str) {
        None => "0001-01-01 00:00:00 +0000 UTC".to_string(),
        Some(t) => match t.strip_suffix('Z') {
            Some(rest) => format!("{} +0000 UTC", rest.replacen('T', " ", 1)),
            None => t.replacen('T', " ", 1),
        },
    }
}

/// `ValidateObjectMetaUpdate` (core flavour when `builtin`).
pub fn validate_object_meta_update(new: &Value, old: &Value, builtin: bool) -> Errors {
    static NULL: Value = Value::Null;
    let nm = new.get("metadata").unwrap_or(&NULL);
    let om = old.get("metadata").unwrap_or(&NULL);
    let mut errs = Vec::new();
    if crate::json::has(om, "deletionTimestamp") {
        let old_f: Vec<&str> = arr(om, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut extra: Vec<&str> = arr(nm, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_f.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    crate::error::string_slice(extra.into_iter())
                ),
            ));
        }
    }
    let rv = s(nm, "resourceVersion");
    if rv.is_empty() {
        errs.push(FieldError::invalid(
            "metadata.resourceVersion",
            rv,
            "must be specified for an update",
        ));
    }
    let (ng, og) = (
        int(nm, "generation").unwrap_or(0),
        int(om, "generation").unwrap_or(0),
    );
    if ng < og {
        errs.push(FieldError::invalid(
            "metadata.generation",
            ng,
            "must not be decremented",
        ));
    }
    for key in ["name", "namespace", "uid"] {
        let (n, o) = (s(nm, key), s(om, key));
        if n != o {
            errs.push(FieldError::invalid(&child("metadata", key), n, IMMUTABLE));
        }
    }
    let (nc, oc) = (
        go_time(nm.get("creationTimestamp")),
        go_time(om.get("creationTimestamp")),
    );
    if nc != oc {
        errs.push(FieldError::invalid(
            "metadata.creationTimestamp",
            go_repr(nc),
            IMMUTABLE,
        ));
    }
    let ptr_time = |m: &Value| {
        m.get("deletionTimestamp")
            .filter(|v| !v.is_null())
            .map(|v| go_time(Some(v)))
    };
    let (nd, od) = (ptr_time(nm), ptr_time(om));
    if nd != od {
        let shown = match nd {
            Some(t) => go_repr(t),
            None => Value::Null,
        };
        errs.push(FieldError::invalid(
            "metadata.deletionTimestamp",
            shown,
            IMMUTABLE,
        ));
    }
    let (ngp, ogp) = (
        int(nm, "deletionGracePeriodSeconds"),
        int(om, "deletionGracePeriodSeconds"),
    );
    if ngp != ogp {
        let shown = ngp.map(Value::from).unwrap_or(Value::Null);
        errs.push(FieldError::invalid(
            "metadata.deletionGracePeriodSeconds",
            shown,
            IMMUTABLE,
        ));
    }
    errs.extend(validate_labels(nm.get("labels"), "metadata.labels"));
    errs.extend(validate_annotations(
        nm.get("annotations"),
        "metadata.annotations",
    ));
    errs.extend(validate_owner_references(
        arr(nm, "ownerReferences"),
        "metadata.ownerReferences",
    ));
    if builtin {
        errs.extend(kube_finalizers(nm));
    }
    errs
}

/// `ValidateLabelSelector` (strict label values).
pub fn validate_label_selector(sel: Option<&Value>, path: &str) -> Errors {
    let mut errs = Vec::new();
    let Some(sel) = sel.filter(|v| !v.is_null()) else {
        return errs;
    };
    errs.extend(validate_labels(
        sel.get("matchLabels"),
        &child(path, "matchLabels"),
    ));
    for (i, expr) in arr(sel, "matchExpressions").iter().enumerate() {
        let p = index(&child(path, "matchExpressions"), i);
        let op = s(expr, "operator");
        let values = arr(expr, "values");
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        &child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        &child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                &child(&p, "operator"),
                op,
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_qualified_name(s(expr, "key"), &child(&p, "key")));
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            for m in label_value_errors(v) {
                errs.push(FieldError::invalid(&index(&child(&p, "values"), j), v, m));
            }
        }
    }
    errs
}

/// `metav1.LabelSelectorAsSelector`: absent/null → nothing.
pub fn as_selector(sel: Option<&Value>) -> Result<LabelSelector, ()> {
    static NULL: Value = Value::Null;
    LabelSelector::from_label_selector(sel.unwrap_or(&NULL)).map_err(|_| ())
}

/// Whether a selector has no matchLabels and no matchExpressions.
pub fn selector_is_empty(sel: &Value) -> bool {
    crate::json::empty_obj(sel.get("matchLabels"))
        && crate::json::empty_obj(sel.get("matchExpressions"))
}

/// Go `%#v` of a `*metav1.LabelSelector` (as dereferenced by `ErrorBody`).
pub fn selector_repr(sel: Option<&Value>) -> Value {
    let Some(sel) = sel.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    let labels = sel.get("matchLabels").filter(|v| v.as_object().is_some());
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|e| {
                    let values = match e.get("values").and_then(Value::as_array) {
                        None => "[]string(nil)".to_string(),
                        Some(v) => crate::error::string_slice(v.iter().filter_map(Value::as_str)),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(s(e, "key")),
                        go_quote(s(e, "operator")),
                        values
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    go_repr(format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        string_map(labels),
        exprs
    ))
}

/// Go `%#v` of a labels map.
pub fn labels_repr(labels: Option<&Value>) -> Value {
    go_repr(string_map(labels.filter(|v| !v.is_null())))
}
