//! rkube-validation: upstream-exact validation and defaulting of built-in
//! API objects held as `serde_json::Value`.
//!
//! Messages match `field.Error` output of upstream v1.36 (clients and
//! conformance tests compare them verbatim), and checks run in upstream's
//! order so the first error matches. Callers should, as upstream's
//! registry does, run [`default`] first, set `metadata.namespace` from the
//! request, generate names from `generateName`, and on update copy
//! `resourceVersion`/`uid`/`creationTimestamp` from storage where the client
//! left them out, before validating.

// Match arms holding an `if` mirror upstream switch cases; collapsing them
// into guards would change which arm unmatched values fall into.
#![allow(clippy::collapsible_match)]

mod config;
mod cron;
mod defaults;
mod error;
mod json;
mod meta;
mod pods;
mod quantity;
mod scheduling;
mod services;
mod workloads;

pub use defaults::default;
pub use error::{ErrorKind, FieldError, go_quote, go_repr, render_value};
pub use meta::{
    MetaRules, NameFn, dns1035_label_errors, dns1123_label_errors, name_dns1035, name_label,
    name_path_segment, name_subdomain, validate_annotations, validate_labels,
};
pub use pods::config_key_errors;
pub use scheduling::SYSTEM_PRIORITY_CLASSES;

use meta::{validate_object_meta, validate_object_meta_update};
use serde_json::Value;

/// Cluster-scoped built-in resources (namespace forbidden).
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "namespaces"),
    ("", "nodes"),
    ("", "persistentvolumes"),
    ("", "componentstatuses"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("storage.k8s.io", "storageclasses"),
    ("storage.k8s.io", "csidrivers"),
    ("storage.k8s.io", "csinodes"),
    ("storage.k8s.io", "volumeattachments"),
    ("storage.k8s.io", "volumeattributesclasses"),
    ("scheduling.k8s.io", "priorityclasses"),
    ("node.k8s.io", "runtimeclasses"),
    ("networking.k8s.io", "ingressclasses"),
    ("networking.k8s.io", "ipaddresses"),
    ("networking.k8s.io", "servicecidrs"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("apiregistration.k8s.io", "apiservices"),
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
    ),
    ("admissionregistration.k8s.io", "mutatingadmissionpolicies"),
    (
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicybindings",
    ),
    ("certificates.k8s.io", "certificatesigningrequests"),
    ("certificates.k8s.io", "clustertrustbundles"),
    ("flowcontrol.apiserver.k8s.io", "flowschemas"),
    (
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
    ),
    ("resource.k8s.io", "deviceclasses"),
    ("resource.k8s.io", "resourceslices"),
];

/// Built-in API groups (their objects get core's finalizer-name check).
const BUILTIN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "networking.k8s.io",
    "discovery.k8s.io",
    "coordination.k8s.io",
    "certificates.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "admissionregistration.k8s.io",
    "resource.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
];

/// Metadata rules for a resource: scope, name validator, built-in-ness.
/// Unknown (custom) resources get DNS-subdomain names and no scope check.
pub fn meta_rules(group: &str, resource: &str) -> MetaRules {
    // apiextensions-apiserver validates metadata with apimachinery's
    // generic rules, without core's kube finalizer-name check (its own
    // `customresourcecleanup.apiextensions.k8s.io` would fail it).
    let builtin = BUILTIN_GROUPS.contains(&group) && group != "apiextensions.k8s.io";
    let namespaced = if CLUSTER_SCOPED.contains(&(group, resource)) {
        Some(false)
    } else if builtin {
        Some(true)
    } else {
        None
    };
    let name: NameFn = match (group, resource) {
        ("", "services") => name_dns1035,
        ("", "namespaces") | ("apps", "statefulsets") => name_label,
        ("rbac.authorization.k8s.io", _) => name_path_segment,
        ("certificates.k8s.io", "certificatesigningrequests") => meta::name_any,
        _ => name_subdomain,
    };
    MetaRules {
        namespaced,
        name,
        builtin,
    }
}

/// Removes repeated identical errors, as `ErrorList.ToAggregate` does.
fn dedup(errs: Vec<FieldError>) -> Vec<FieldError> {
    let mut seen = std::collections::HashSet::new();
    errs.into_iter()
        .filter(|e| seen.insert(e.to_string()))
        .collect()
}

/// Validates an object being created (after defaulting).
pub fn validate_create(group: &str, resource: &str, obj: &Value) -> Vec<FieldError> {
    let errs = match (group, resource) {
        ("", "pods") => pods::validate_pod_create(obj),
        ("", "services") => services::validate_service(obj),
        ("", "configmaps") => config::validate_configmap(obj),
        ("", "secrets") => config::validate_secret(obj),
        ("", "namespaces") => config::validate_namespace(obj),
        ("scheduling.k8s.io", "priorityclasses") => {
            let mut e = validate_object_meta(obj, &meta_rules(group, resource));
            e.extend(scheduling::validate_priority_class(obj));
            e
        }
        ("", "podtemplates") => {
            let mut e = validate_object_meta(obj, &meta_rules(group, resource));
            e.extend(pods::validate_pod_template_spec(
                json::at(obj, &["template"]),
                "template",
            ));
            e
        }
        _ => match workloads::validate_create(group, resource, obj) {
            Some(e) => e,
            None => validate_object_meta(obj, &meta_rules(group, resource)),
        },
    };
    dedup(errs)
}

/// Validates an update of a pod's `ephemeralcontainers` subresource.
pub fn validate_ephemeral_containers_update(new: &Value, old: &Value) -> Vec<FieldError> {
    dedup(pods::validate_pod_ephemeral_containers_update(new, old))
}

/// Validates an update of `old` into `new` (after defaulting `new`).
pub fn validate_update(group: &str, resource: &str, new: &Value, old: &Value) -> Vec<FieldError> {
    let errs = match (group, resource) {
        ("", "pods") => pods::validate_pod_update(new, old),
        ("", "services") => services::validate_service_update(new, old),
        ("", "configmaps") => config::validate_configmap_update(new, old),
        ("", "secrets") => config::validate_secret_update(new, old),
        ("", "namespaces") => config::validate_namespace_update(new, old),
        ("scheduling.k8s.io", "priorityclasses") => {
            let mut e = validate_object_meta_update(new, old, true);
            e.extend(scheduling::validate_priority_class_update(new, old));
            e
        }
        ("", "podtemplates") => {
            let mut e = validate_object_meta_update(new, old, true);
            e.extend(pods::validate_pod_template_spec(
                json::at(new, &["template"]),
                "template",
            ));
            e
        }
        _ => match workloads::validate_update(group, resource, new, old) {
            Some(e) => e,
            None => validate_object_meta_update(new, old, meta_rules(group, resource).builtin),
        },
    };
    dedup(errs)
}

#[cfg(test)]
mod tests;
