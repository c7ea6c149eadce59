//! ConfigMaps, Secrets and Namespaces.

use crate::error::FieldError;
use crate::json::{arr, at, is_true, key, obj, s};
use crate::meta::{
    Errors, MetaRules, name_label, name_subdomain, validate_kube_finalizer_name,
    validate_object_meta, validate_object_meta_update, validate_qualified_name,
};
use crate::pods::config_key_errors;
use serde_json::Value;
use std::collections::BTreeMap;

/// `core.MaxSecretSize` (1 MiB), shared by ConfigMaps.
pub const MAX_SIZE: usize = 1024 * 1024;

const NAMESPACED: MetaRules = MetaRules {
    namespaced: Some(true),
    name: name_subdomain,
    builtin: true,
};

/// Decoded length of a base64 string (what `[]byte` fields hold).
fn b64_len(v: &str) -> usize {
    let trimmed = v.trim_end_matches('=');
    trimmed.len() * 3 / 4
}

fn sorted_keys(v: &Value, k: &str) -> Vec<String> {
    let mut keys: Vec<String> = obj(v, k)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// `ValidateConfigMap`.
pub fn validate_configmap(cm: &Value) -> Errors {
    let mut errs = validate_object_meta(cm, &NAMESPACED);
    let mut total = 0usize;
    let binary = obj(cm, "binaryData");
    for k in sorted_keys(cm, "data") {
        let p = key("data", &k);
        for m in config_key_errors(&k) {
            errs.push(FieldError::invalid(&p, k.as_str(), m));
        }
        if binary.is_some_and(|b| b.contains_key(&k)) {
            errs.push(FieldError::invalid(
                &p,
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += s(at(cm, &["data"]), &k).len();
    }
    for k in sorted_keys(cm, "binaryData") {
        for m in config_key_errors(&k) {
            errs.push(FieldError::invalid(&key("binaryData", &k), k.as_str(), m));
        }
        total += b64_len(s(at(cm, &["binaryData"]), &k));
    }
    if total > MAX_SIZE {
        errs.push(FieldError::too_long("[]", MAX_SIZE));
    }
    errs
}

fn immutable_data(new: &Value, old: &Value, fields: &[&str]) -> Errors {
    let mut errs = Vec::new();
    if !is_true(old, "immutable") {
        return errs;
    }
    if !is_true(new, "immutable") {
        errs.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for f in fields {
        let norm = |v: &Value| {
            v.get(*f)
                .filter(|x| !crate::json::empty_obj(Some(x)))
                .cloned()
        };
        if norm(new) != norm(old) {
            errs.push(FieldError::forbidden(
                f,
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs
}

/// `ValidateConfigMapUpdate`.
pub fn validate_configmap_update(new: &Value, old: &Value) -> Errors {
    let mut errs = validate_object_meta_update(new, old, true);
    errs.extend(immutable_data(new, old, &["data", "binaryData"]));
    errs.extend(validate_configmap(new));
    errs
}

/// Secret data as the server holds it: `data` merged with `stringData`,
/// mapped to decoded byte lengths.
fn secret_data(secret: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    if let Some(m) = obj(secret, "data") {
        for (k, v) in m {
            out.insert(k.clone(), b64_len(v.as_str().unwrap_or("")));
        }
    }
    if let Some(m) = obj(secret, "stringData") {
        for (k, v) in m {
            out.insert(k.clone(), v.as_str().unwrap_or("").len());
        }
    }
    out
}

/// `ValidateSecret`.
pub fn validate_secret(secret: &Value) -> Errors {
    let mut errs = validate_object_meta(secret, &NAMESPACED);
    let data = secret_data(secret);
    let mut total = 0;
    for (k, len) in &data {
        for m in config_key_errors(k) {
            errs.push(FieldError::invalid(&key("data", k), k.as_str(), m));
        }
        total += len;
    }
    if total > MAX_SIZE {
        errs.push(FieldError::too_long("data", MAX_SIZE));
    }
    let required = |k: &str| FieldError::required(&key("data", k), "");
    match s(secret, "type") {
        "kubernetes.io/service-account-token" => {
            let name = s(
                at(secret, &["metadata", "annotations"]),
                "kubernetes.io/service-account.name",
            );
            if name.is_empty() {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => {
            if !data.contains_key(".dockercfg") {
                errs.push(required(".dockercfg"));
            }
        }
        "kubernetes.io/dockerconfigjson" => {
            if !data.contains_key(".dockerconfigjson") {
                errs.push(required(".dockerconfigjson"));
            }
        }
        "kubernetes.io/basic-auth" => {
            if !data.contains_key("username") && !data.contains_key("password") {
                errs.push(required("username"));
                errs.push(required("password"));
            }
        }
        "kubernetes.io/ssh-auth" => {
            if data.get("ssh-privatekey").copied().unwrap_or(0) == 0 {
                errs.push(required("ssh-privatekey"));
            }
        }
        "kubernetes.io/tls" => {
            if !data.contains_key("tls.crt") {
                errs.push(required("tls.crt"));
            }
            if !data.contains_key("tls.key") {
                errs.push(required("tls.key"));
            }
        }
        _ => {}
    }
    errs
}

/// `ValidateSecretUpdate`.
pub fn validate_secret_update(new: &Value, old: &Value) -> Errors {
    let mut errs = validate_object_meta_update(new, old, true);
    let (nt, ot) = (s(new, "type"), s(old, "type"));
    if nt != ot {
        errs.push(FieldError::invalid("type", nt, crate::meta::IMMUTABLE));
    }
    errs.extend(immutable_data(new, old, &["data"]));
    errs.extend(validate_secret(new));
    errs
}

const NAMESPACE_RULES: MetaRules = MetaRules {
    namespaced: Some(false),
    name: name_label,
    builtin: true,
};

/// `ValidateNamespace`.
pub fn validate_namespace(ns: &Value) -> Errors {
    let mut errs = validate_object_meta(ns, &NAMESPACE_RULES);
    for f in arr(at(ns, &["spec"]), "finalizers") {
        let f = f.as_str().unwrap_or("");
        errs.extend(validate_qualified_name(f, "spec.finalizers"));
        errs.extend(validate_kube_finalizer_name(f, "spec.finalizers"));
    }
    errs
}

/// `ValidateNamespaceUpdate`.
pub fn validate_namespace_update(new: &Value, old: &Value) -> Errors {
    validate_object_meta_update(new, old, true)
}
