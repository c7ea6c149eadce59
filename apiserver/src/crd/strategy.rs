//! The CRD objects' strategy (upstream `pkg/registry/customresourcedefinition`
//! and `pkg/apis/apiextensions/validation`): defaults, validation with
//! upstream's paths and messages, status on create, and the cleanup
//! finalizer with the Terminating condition on delete.

use rkube_selectors::validation::dns1123_subdomain_errors;
use rkube_structural::Structural;
use rkube_validation::{FieldError, dns1035_label_errors};
use serde_json::{Value, json};

use super::{CLEANUP_FINALIZER, str_at, strings_at};

/// `SetDefaults_CustomResourceDefinition*` (v1).
pub fn default(crd: &mut Value) {
    let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let empty = |v: Option<&Value>| v.and_then(Value::as_str).is_none_or(str::is_empty);
        if empty(names.get("singular")) {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if empty(names.get("listKind")) && !kind.is_empty() {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    let conversion = spec
        .entry("conversion")
        .or_insert_with(|| json!({ "strategy": "None" }));
    if let Some(c) = conversion.as_object_mut() {
        c.entry("strategy").or_insert(json!("None"));
        if let Some(service) = c
            .get_mut("webhook")
            .and_then(|w| w.get_mut("clientConfig"))
            .and_then(|cc| cc.get_mut("service"))
            .and_then(Value::as_object_mut)
        {
            service.entry("port").or_insert(json!(443));
        }
    }
}

fn storage_version(crd: &Value) -> Option<String> {
    crd.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| str_at(v, "/name").to_owned())
}

/// On create: a fresh status (names not yet accepted) listing the storage
/// version as stored, as upstream's PrepareForCreate.
pub fn prepare_create(crd: &mut Value) {
    default(crd);
    let stored: Vec<String> = storage_version(crd).into_iter().collect();
    crd["status"] = json!({
        "acceptedNames": { "plural": "", "kind": "" },
        "storedVersions": stored,
    });
}

/// On update of the main resource: a new storage version joins
/// `status.storedVersions`.
pub fn prepare_update(crd: &mut Value) {
    default(crd);
    if let Some(v) = storage_version(crd) {
        let mut stored = strings_at(crd, "/status/storedVersions");
        if !stored.contains(&v) {
            stored.push(v);
            crd["status"]["storedVersions"] = json!(stored);
        }
    }
}

/// The first deletion of a CRD adds the cleanup finalizer, so that its
/// custom resources go first.
pub fn deletion_finalizers(crd: &Value, finalizers: &mut Vec<String>) {
    if crd.pointer("/metadata/deletionTimestamp").is_none()
        && !finalizers.iter().any(|f| f == CLEANUP_FINALIZER)
    {
        finalizers.push(CLEANUP_FINALIZER.into());
    }
}

/// Sets (or replaces) a condition, keeping its transition time when the
/// status did not change.
pub fn set_condition(crd: &mut Value, type_: &str, status: &str, reason: &str, message: &str) {
    let now = crate::meta::now_rfc3339();
    if !crd["status"].is_object() {
        crd["status"] = json!({});
    }
    let conds = crd["status"]
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(conds) = conds else { return };
    if !conds.is_array() {
        *conds = json!([]);
    }
    let Some(list) = conds.as_array_mut() else {
        return;
    };
    let mut cond = json!({
        "type": type_,
        "status": status,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    });
    match list.iter_mut().find(|c| str_at(c, "/type") == type_) {
        Some(existing) => {
            if str_at(existing, "/status") == status
                && let Some(t) = existing.get("lastTransitionTime")
            {
                cond["lastTransitionTime"] = t.clone();
            }
            *existing = cond;
        }
        None => list.push(cond),
    }
}

pub fn condition_true(crd: &Value, type_: &str) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|l| {
            l.iter()
                .any(|c| str_at(c, "/type") == type_ && str_at(c, "/status") == "True")
        })
}

/// Marks a CRD being deleted (upstream's REST Delete).
pub fn prepare_delete(crd: &mut Value) {
    set_condition(
        crd,
        "Terminating",
        "True",
        "InstanceDeletionPending",
        "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
    );
}

fn label_errs(errs: &mut Vec<FieldError>, path: &str, value: &str, prefix: &str) {
    let msgs = dns1035_label_errors(value);
    if !value.is_empty() && !msgs.is_empty() {
        errs.push(FieldError::invalid(
            path,
            value,
            format!("{prefix}{}", msgs.join(",")),
        ));
    }
}

/// `ValidateCustomResourceDefinitionNames`.
fn validate_names(names: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let plural = str_at(names, "/plural");
    let singular = str_at(names, "/singular");
    let kind = str_at(names, "/kind");
    let list_kind = str_at(names, "/listKind");
    label_errs(&mut errs, &format!("{path}.plural"), plural, "");
    label_errs(&mut errs, &format!("{path}.singular"), singular, "");
    let mixed = "may have mixed case, but should otherwise match: ";
    if !kind.is_empty() && !dns1035_label_errors(&kind.to_lowercase()).is_empty() {
        let m = dns1035_label_errors(&kind.to_lowercase()).join(",");
        errs.push(FieldError::invalid(
            &format!("{path}.kind"),
            kind,
            format!("{mixed}{m}"),
        ));
    }
    if !list_kind.is_empty() && !dns1035_label_errors(&list_kind.to_lowercase()).is_empty() {
        let m = dns1035_label_errors(&list_kind.to_lowercase()).join(",");
        errs.push(FieldError::invalid(
            &format!("{path}.listKind"),
            list_kind,
            format!("{mixed}{m}"),
        ));
    }
    for (i, s) in strings_at(names, "/shortNames").iter().enumerate() {
        let msgs = dns1035_label_errors(s);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.shortNames[{i}]"),
                s.as_str(),
                msgs.join(","),
            ));
        }
    }
    if !kind.is_empty() && kind == list_kind {
        errs.push(FieldError::invalid(
            &format!("{path}.listKind"),
            list_kind,
            "kind and listKind may not be the same",
        ));
    }
    for (i, c) in strings_at(names, "/categories").iter().enumerate() {
        let msgs = dns1035_label_errors(c);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.categories[{i}]"),
                c.as_str(),
                msgs.join(","),
            ));
        }
    }
    errs
}

/// `validateSimpleJSONPath` plus the required prefix.
fn simple_path(errs: &mut Vec<FieldError>, path: &str, value: &str, under: &str) {
    if value.is_empty() {
        errs.push(FieldError::required(path, ""));
    } else if !value.starts_with('.') {
        errs.push(FieldError::invalid(
            path,
            value,
            "must be a simple json path starting with .",
        ));
    } else if !value.starts_with(&format!(".{under}.")) {
        errs.push(FieldError::invalid(
            path,
            value,
            format!("should be a json path under .{under}"),
        ));
    }
}

const COLUMN_TYPES: &[&str] = &["boolean", "date", "integer", "number", "string"];

fn validate_version(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    match v.pointer("/schema/openAPIV3Schema") {
        None => errs.push(FieldError::required(
            &format!("{path}.schema.openAPIV3Schema"),
            "schemas are required",
        )),
        Some(schema) => {
            let base = format!("{path}.schema.openAPIV3Schema");
            if let Err(e) = Structural::compile(schema, &base) {
                errs.extend(e);
            }
        }
    }
    if let Some(scale) = v.pointer("/subresources/scale") {
        let p = format!("{path}.subresources.scale");
        simple_path(
            errs,
            &format!("{p}.specReplicasPath"),
            str_at(scale, "/specReplicasPath"),
            "spec",
        );
        simple_path(
            errs,
            &format!("{p}.statusReplicasPath"),
            str_at(scale, "/statusReplicasPath"),
            "status",
        );
        let sel = str_at(scale, "/labelSelectorPath");
        if !sel.is_empty() {
            simple_path(errs, &format!("{p}.labelSelectorPath"), sel, "status");
        }
    }
    let cols = v.get("additionalPrinterColumns").and_then(Value::as_array);
    for (i, c) in cols.into_iter().flatten().enumerate() {
        let p = format!("{path}.additionalPrinterColumns[{i}]");
        if str_at(c, "/name").is_empty() {
            errs.push(FieldError::required(&format!("{p}.name"), ""));
        }
        let t = str_at(c, "/type");
        if t.is_empty() {
            errs.push(FieldError::required(&format!("{p}.type"), ""));
        } else if !COLUMN_TYPES.contains(&t) {
            errs.push(FieldError::not_supported(
                &format!("{p}.type"),
                t,
                COLUMN_TYPES,
            ));
        }
        let jp = str_at(c, "/jsonPath");
        if jp.is_empty() {
            errs.push(FieldError::required(&format!("{p}.jsonPath"), ""));
        } else if super::jsonpath::Path::parse(jp).is_err() {
            errs.push(FieldError::invalid(
                &format!("{p}.jsonPath"),
                jp,
                "must be a simple json path",
            ));
        }
    }
    let fields = v.get("selectableFields").and_then(Value::as_array);
    let fields = fields.map(Vec::as_slice).unwrap_or_default();
    if fields.len() > 8 {
        errs.push(FieldError::too_many(
            &format!("{path}.selectableFields"),
            fields.len() as i64,
            8,
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, f) in fields.iter().enumerate() {
        let p = format!("{path}.selectableFields[{i}].jsonPath");
        let jp = str_at(f, "/jsonPath");
        if jp.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if !jp.starts_with('.') {
            errs.push(FieldError::invalid(
                &p,
                jp,
                "must be a simple json path starting with .",
            ));
        } else if !seen.insert(jp.to_owned()) {
            errs.push(FieldError::duplicate(&p, jp));
        }
    }
}

fn validate_conversion(spec: &Value, errs: &mut Vec<FieldError>) {
    let Some(conv) = spec.get("conversion") else {
        return;
    };
    let strategy = str_at(conv, "/strategy");
    let webhook = conv.get("webhook").filter(|w| !w.is_null());
    match strategy {
        "None" => {
            if webhook.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.conversion.webhook",
                    "should not be set when strategy is not set to Webhook",
                ));
            }
        }
        "Webhook" => match webhook {
            None => errs.push(FieldError::required(
                "spec.conversion.webhook",
                "required when strategy is set to Webhook",
            )),
            Some(w) => {
                let versions = strings_at(w, "/conversionReviewVersions");
                if !versions.iter().any(|v| v == "v1" || v == "v1beta1") {
                    errs.push(FieldError::invalid(
                        "spec.conversion.webhook.conversionReviewVersions",
                        json!(versions),
                        "must include at least one of v1, v1beta1",
                    ));
                }
                let cc = w.get("clientConfig");
                let url = cc.and_then(|c| c.get("url")).is_some_and(|u| !u.is_null());
                let service = cc
                    .and_then(|c| c.get("service"))
                    .is_some_and(|s| !s.is_null());
                if url == service {
                    errs.push(FieldError::required(
                        "spec.conversion.webhook.clientConfig",
                        "exactly one of url or service is required",
                    ));
                }
            }
        },
        "" => errs.push(FieldError::required("spec.conversion.strategy", "")),
        other => errs.push(FieldError::not_supported(
            "spec.conversion.strategy",
            other,
            &["None", "Webhook"],
        )),
    }
}

/// `ValidateCustomResourceDefinitionSpec` (v1).
fn validate_spec(crd: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = crd.get("spec").unwrap_or(&Value::Null);
    let group = str_at(spec, "/group");
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else if !dns1123_subdomain_errors(group).is_empty() {
        errs.push(FieldError::invalid(
            "spec.group",
            group,
            dns1123_subdomain_errors(group).join(","),
        ));
    } else if group.split('.').count() < 2 {
        errs.push(FieldError::invalid(
            "spec.group",
            group,
            "should be a domain with at least one dot",
        ));
    }
    match str_at(spec, "/scope") {
        "" => errs.push(FieldError::required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldError::required(
            "spec.versions",
            "must have at least one version",
        ));
    }
    let mut names = std::collections::HashSet::new();
    let mut unique = true;
    let mut storage = 0;
    for (i, v) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let name = str_at(v, "/name");
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        if !names.insert(name.to_owned()) {
            unique = false;
        }
        let msgs = dns1035_label_errors(name);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.name"),
                name,
                msgs.join(","),
            ));
        }
        validate_version(v, &path, &mut errs);
    }
    if !unique {
        errs.push(FieldError::invalid(
            "spec.versions",
            json!(versions),
            "must contain unique version names",
        ));
    }
    if !versions.is_empty() && storage != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            json!(versions),
            "must have exactly one version marked as storage version",
        ));
    }
    let names = spec.get("names").unwrap_or(&Value::Null);
    for (field, key) in [
        ("plural", "/plural"),
        ("singular", "/singular"),
        ("kind", "/kind"),
        ("listKind", "/listKind"),
    ] {
        if str_at(names, key).is_empty() {
            errs.push(FieldError::required(&format!("spec.names.{field}"), ""));
        }
    }
    errs.extend(validate_names(names, "spec.names"));
    validate_conversion(spec, &mut errs);
    // v1 CRDs prune: preserving is per schema node.
    if spec.get("preserveUnknownFields").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::invalid(
            "spec.preserveUnknownFields",
            true,
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
    errs
}

/// `metadata.name` must be `<plural>.<group>`.
fn validate_name(crd: &Value) -> Vec<FieldError> {
    let name = crate::meta::name(crd).unwrap_or_default();
    let want = format!(
        "{}.{}",
        str_at(crd, "/spec/names/plural"),
        str_at(crd, "/spec/group")
    );
    if !name.is_empty() && name != want {
        return vec![FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        )];
    }
    Vec::new()
}

fn validate_status(crd: &Value) -> Vec<FieldError> {
    crd.pointer("/status/acceptedNames")
        .map(|n| validate_names(n, "status.acceptedNames"))
        .unwrap_or_default()
}

/// Groups under `k8s.io` and `kubernetes.io` belong to the Kubernetes
/// project: their CRDs must point at the approved API review.
fn validate_protected_group(crd: &Value) -> Vec<FieldError> {
    let group = str_at(crd, "/spec/group");
    let protected = ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|d| group == *d || group.ends_with(&format!(".{d}")));
    let annotated = crd
        .pointer("/metadata/annotations/api-approved.kubernetes.io")
        .and_then(Value::as_str)
        .is_some_and(|a| !a.is_empty());
    if protected && !annotated {
        return vec![FieldError::required(
            "metadata.annotations[api-approved.kubernetes.io]",
            "protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111",
        )];
    }
    Vec::new()
}

pub fn validate_create(crd: &Value) -> Vec<FieldError> {
    let mut errs = validate_name(crd);
    errs.extend(validate_protected_group(crd));
    errs.extend(validate_spec(crd));
    errs.extend(validate_status(crd));
    errs
}

pub fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate_spec(new);
    let established = super::strategy::condition_true(old, "Established");
    let immutable = |errs: &mut Vec<FieldError>, path: &str, pointer: &str| {
        if new.pointer(pointer) != old.pointer(pointer) {
            errs.push(FieldError::invalid(
                path,
                new.pointer(pointer).cloned().unwrap_or(Value::Null),
                "field is immutable",
            ));
        }
    };
    if established {
        immutable(&mut errs, "spec.scope", "/spec/scope");
        immutable(&mut errs, "spec.names.kind", "/spec/names/kind");
    }
    immutable(&mut errs, "spec.group", "/spec/group");
    immutable(&mut errs, "spec.names.plural", "/spec/names/plural");
    errs.extend(validate_status(new));
    let declared: Vec<String> = new
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| str_at(v, "/name").to_owned()).collect())
        .unwrap_or_default();
    for (i, v) in strings_at(new, "/status/storedVersions").iter().enumerate() {
        if !declared.contains(v) {
            errs.push(FieldError::invalid(
                &format!("status.storedVersions[{i}]"),
                v.as_str(),
                "must appear in spec.versions",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "foos.example.com"},
            "spec": {
                "group": "example.com", "scope": "Namespaced",
                "names": {"plural": "foos", "kind": "Foo"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}}}],
            }
        })
    }

    #[test]
    fn defaults_names_and_conversion() {
        let mut c = crd();
        prepare_create(&mut c);
        assert_eq!(c.pointer("/spec/names/singular"), Some(&json!("foo")));
        assert_eq!(c.pointer("/spec/names/listKind"), Some(&json!("FooList")));
        assert_eq!(c.pointer("/spec/conversion/strategy"), Some(&json!("None")));
        assert_eq!(c.pointer("/status/storedVersions"), Some(&json!(["v1"])));
        assert!(validate_create(&c).is_empty(), "{:?}", validate_create(&c));
    }

    #[test]
    fn protected_groups_and_preserve_unknown_fields() {
        let mut c = crd();
        c["metadata"]["name"] = json!("foos.x.k8s.io");
        c["spec"]["group"] = json!("x.k8s.io");
        c["spec"]["preserveUnknownFields"] = json!(true);
        default(&mut c);
        let all: Vec<String> = validate_create(&c).iter().map(|e| e.to_string()).collect();
        let all = all.join("\n");
        assert!(all.contains("metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation"), "{all}");
        assert!(
            all.contains("spec.preserveUnknownFields: Invalid value: true: cannot set to true"),
            "{all}"
        );
        c["metadata"]["annotations"] = json!({"api-approved.kubernetes.io": "https://github.com/kubernetes/kubernetes/pull/1"});
        c["spec"]["preserveUnknownFields"] = json!(false);
        assert!(validate_create(&c).is_empty(), "{:?}", validate_create(&c));
    }

    #[test]
    fn rejects_bad_names_and_versions() {
        let mut c = crd();
        c["metadata"]["name"] = json!("bars.example.com");
        c["spec"]["group"] = json!("example");
        c["spec"]["versions"][0]["storage"] = json!(false);
        c["spec"]["versions"][0]
            .as_object_mut()
            .unwrap()
            .remove("schema");
        default(&mut c);
        let msgs: Vec<String> = validate_create(&c).iter().map(|e| e.to_string()).collect();
        let all = msgs.join("\n");
        assert!(all.contains("metadata.name: Invalid value: \"bars.example.com\": must be spec.names.plural+\".\"+spec.group"), "{all}");
        assert!(
            all.contains(
                "spec.group: Invalid value: \"example\": should be a domain with at least one dot"
            ),
            "{all}"
        );
        assert!(
            all.contains("must have exactly one version marked as storage version"),
            "{all}"
        );
        assert!(
            all.contains(
                "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"
            ),
            "{all}"
        );
    }
}
