//! The fields each kind can be selected by (upstream's per-kind
//! `GetAttrs`/field label conversion), and their values on an object.

use crate::selectable::Selectable;

/// Fields every resource supports.
const COMMON: &[&str] = &["metadata.name", "metadata.namespace"];

/// Extra selectable fields per (group, resource).
fn kind_fields(group: &str, resource: &str) -> &'static [(&'static str, &'static str)] {
    match (group, resource) {
        ("", "pods") => &[
            ("spec.nodeName", "/spec/nodeName"),
            ("spec.restartPolicy", "/spec/restartPolicy"),
            ("spec.schedulerName", "/spec/schedulerName"),
            ("spec.serviceAccountName", "/spec/serviceAccountName"),
            ("spec.hostNetwork", "/spec/hostNetwork"),
            ("status.phase", "/status/phase"),
            ("status.podIP", "/status/podIP"),
            ("status.nominatedNodeName", "/status/nominatedNodeName"),
        ],
        ("", "events") | ("events.k8s.io", "events") => &[
            ("involvedObject.kind", "/involvedObject/kind"),
            ("involvedObject.namespace", "/involvedObject/namespace"),
            ("involvedObject.name", "/involvedObject/name"),
            ("involvedObject.uid", "/involvedObject/uid"),
            ("involvedObject.apiVersion", "/involvedObject/apiVersion"),
            (
                "involvedObject.resourceVersion",
                "/involvedObject/resourceVersion",
            ),
            ("involvedObject.fieldPath", "/involvedObject/fieldPath"),
            ("regarding.kind", "/regarding/kind"),
            ("regarding.namespace", "/regarding/namespace"),
            ("regarding.name", "/regarding/name"),
            ("reason", "/reason"),
            ("reportingComponent", "/reportingComponent"),
            ("reportingController", "/reportingController"),
            ("source", "/source/component"),
            ("type", "/type"),
        ],
        ("", "secrets") => &[("type", "/type")],
        ("", "namespaces") => &[("status.phase", "/status/phase")],
        ("", "nodes") => &[("spec.unschedulable", "/spec/unschedulable")],
        ("", "replicationcontrollers") | ("apps", "replicasets") => {
            &[("status.replicas", "/status/replicas")]
        }
        ("", "services") => &[
            ("spec.clusterIP", "/spec/clusterIP"),
            ("spec.type", "/spec/type"),
        ],
        ("", "persistentvolumeclaims") => &[],
        ("batch", "jobs") => &[("status.successful", "/status/succeeded")],
        ("certificates.k8s.io", "certificatesigningrequests") => {
            &[("spec.signerName", "/spec/signerName")]
        }
        _ => &[],
    }
}

/// Defaults upstream's field functions fill in for absent fields.
fn absent_default(field: &str) -> Option<&'static str> {
    match field {
        "spec.hostNetwork" | "spec.unschedulable" => Some("false"),
        "status.replicas" | "status.successful" => Some("0"),
        _ => None,
    }
}

/// Every object path any kind can be selected by (plus the core/v1 names
/// of events.k8s.io's): what the watch cache keeps parsed for filtering.
pub fn all_pointers() -> &'static [&'static str] {
    static POINTERS: std::sync::LazyLock<Vec<&'static str>> =
        std::sync::LazyLock::new(collect_pointers);
    &POINTERS
}

fn collect_pointers() -> Vec<&'static str> {
    const KINDS: &[(&str, &str)] = &[
        ("", "pods"),
        ("", "events"),
        ("", "secrets"),
        ("", "namespaces"),
        ("", "nodes"),
        ("", "replicationcontrollers"),
        ("", "services"),
        ("batch", "jobs"),
        ("certificates.k8s.io", "certificatesigningrequests"),
    ];
    let mut out: Vec<&'static str> = KINDS
        .iter()
        .flat_map(|(g, r)| kind_fields(g, r).iter().map(|(_, p)| *p))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether `field` can be selected on this resource.
pub fn supported(group: &str, resource: &str, field: &str) -> bool {
    COMMON.contains(&field)
        || kind_fields(group, resource)
            .iter()
            .any(|(f, _)| *f == field)
}

/// The value of a selectable field, as a string ("" when absent).
pub fn value(group: &str, resource: &str, obj: &dyn Selectable, field: &str) -> String {
    match field {
        "metadata.name" => return obj.name().unwrap_or_default().to_owned(),
        "metadata.namespace" => return obj.scalar("/metadata/namespace").unwrap_or_default(),
        _ => {}
    }
    let Some((_, pointer)) = kind_fields(group, resource)
        .iter()
        .find(|(f, _)| *f == field)
    else {
        return String::new();
    };
    // events.k8s.io Events are filtered as stored, in core/v1 form (the
    // watch cache), or as served: look at both names.
    let stored = pointer
        .replace("/regarding/", "/involvedObject/")
        .replace("/reportingController", "/reportingComponent");
    obj.scalar(pointer)
        .or_else(|| obj.scalar(&stored))
        .unwrap_or_else(|| absent_default(field).unwrap_or_default().to_owned())
}

/// JSON pointers of custom resources' `selectableFields`, registered when
/// a CRD is served so the watch cache keeps them in its extracts. Leaked:
/// a handful per CRD definition, never freed while the process runs.
static CUSTOM_POINTERS: std::sync::RwLock<Vec<&'static str>> = std::sync::RwLock::new(Vec::new());

/// Registers pointers; whether any was new.
pub fn register_pointers<'a>(pointers: impl Iterator<Item = &'a str>) -> bool {
    let Ok(mut known) = CUSTOM_POINTERS.write() else {
        return false;
    };
    let mut added = false;
    for p in pointers {
        if !known.contains(&p) && !all_pointers().contains(&p) {
            known.push(Box::leak(p.to_owned().into_boxed_str()));
            added = true;
        }
    }
    added
}

/// The registered custom pointers.
pub fn custom_pointers() -> Vec<&'static str> {
    CUSTOM_POINTERS
        .read()
        .map(|v| v.clone())
        .unwrap_or_default()
}
