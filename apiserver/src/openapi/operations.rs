//! The operations of each served resource, described once and rendered as
//! OpenAPI v2 (`v2.rs`) or v3 (`v3.rs`): paths, actions, operation ids,
//! parameters, request and response kinds, content types.

use rkube_catalogue::{ResourceInfo, SubresourceInfo};
use serde_json::{Map, Value};

use super::definitions::{Definitions, STREAM_PATHS, parameters};

pub const PRODUCES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/cbor",
];
pub const PRODUCES_WATCH: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/cbor",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
    "application/cbor-seq",
];
pub const CONSUMES_ANY: &[&str] = &["*/*"];
/// kubectl reads these to decide whether a resource takes strategic merge
/// patches (and server-side apply).
pub const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+cbor",
];

const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

pub struct Body {
    pub definition: String,
    pub required: bool,
}

pub struct Operation {
    /// HTTP method, lower case (`get`, `post`, ...).
    pub method: &'static str,
    /// `x-kubernetes-action` (empty for discovery paths).
    pub action: &'static str,
    pub operation_id: String,
    pub description: String,
    /// Query parameters in upstream's v2 form.
    pub parameters: Vec<Value>,
    pub body: Option<Body>,
    pub consumes: &'static [&'static str],
    pub produces: &'static [&'static str],
    /// (status code, definition returned).
    pub responses: Vec<(&'static str, Option<String>)>,
    /// `x-kubernetes-group-version-kind` (None for discovery paths).
    pub gvk: Option<(String, String, String)>,
    pub tag: String,
}

pub struct PathItem {
    pub path: String,
    /// A path item copied whole from upstream, in v2 form (streaming
    /// subresources); `parameters` and `operations` are then empty.
    pub raw: Option<Value>,
    /// Path-level parameters in upstream's v2 form.
    pub parameters: Vec<Value>,
    pub operations: Vec<Operation>,
}

impl PathItem {
    /// The definitions the item's operations refer to.
    pub fn refs(&self, out: &mut Vec<String>) {
        if let Some(raw) = &self.raw {
            super::definitions::collect_refs(raw, out);
        }
        for o in &self.operations {
            out.extend(o.body.iter().map(|b| b.definition.clone()));
            out.extend(o.responses.iter().filter_map(|(_, d)| d.clone()));
        }
    }
}

/// Items sorted by path, as a JSON object's keys are (a path is served by
/// one resource; a duplicate would be dropped).
pub fn sorted(items: &[PathItem]) -> Vec<&PathItem> {
    let mut sorted: Vec<&PathItem> = items.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    sorted.dedup_by(|a, b| a.path == b.path);
    sorted
}

/// `rbac.authorization.k8s.io` → `RbacAuthorization`, core → `Core`.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .trim_end_matches(".k8s.io")
        .split(['.', '-'])
        .map(capitalize)
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// upstream's group tag: `apps`, `core`, `rbacAuthorization`.
fn group_tag(group: &str) -> String {
    let g = group_camel(group);
    let mut c = g.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// upstream's tag: `apps_v1`, `core_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    format!("{}_{version}", group_tag(group))
}

const DISCOVERY_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";

fn discovery(
    path: String,
    operation_id: String,
    description: &str,
    tag: String,
    definition: String,
    types: &'static [&'static str],
) -> PathItem {
    PathItem {
        path,
        raw: None,
        parameters: Vec::new(),
        operations: vec![Operation {
            method: "get",
            action: "",
            operation_id,
            description: description.into(),
            parameters: Vec::new(),
            body: None,
            consumes: types,
            produces: types,
            responses: vec![("200", Some(definition))],
            gvk: None,
            tag,
        }],
    }
}

/// `/api/v1/`, `/apis/<group>/<version>/`: the resource list.
pub fn group_version_discovery(group: &str, version: &str) -> PathItem {
    let path = if group.is_empty() {
        format!("/api/{version}/")
    } else {
        format!("/apis/{group}/{version}/")
    };
    discovery(
        path,
        format!(
            "get{}{}APIResources",
            group_camel(group),
            capitalize(version)
        ),
        "get available resources",
        tag(group, version),
        format!("{META}APIResourceList"),
        PRODUCES,
    )
}

/// `/apis/<group>/`: the group.
pub fn group_discovery(group: &str) -> PathItem {
    discovery(
        format!("/apis/{group}/"),
        format!("get{}APIGroup", group_camel(group)),
        "get information of a group",
        group_tag(group),
        format!("{META}APIGroup"),
        DISCOVERY_TYPES,
    )
}

/// `/api/`, `/apis/` and `/version/`, by the v3 index key they live under.
pub fn root_discovery() -> Vec<(&'static str, PathItem)> {
    vec![
        (
            "api",
            discovery(
                "/api/".into(),
                "getCoreAPIVersions".into(),
                "get available API versions",
                "core".into(),
                format!("{META}APIVersions"),
                DISCOVERY_TYPES,
            ),
        ),
        (
            "apis",
            discovery(
                "/apis/".into(),
                "getAPIVersions".into(),
                "get available API versions",
                "apis".into(),
                format!("{META}APIGroupList"),
                DISCOVERY_TYPES,
            ),
        ),
        (
            "version",
            discovery(
                "/version/".into(),
                "getCodeVersion".into(),
                "get the version information for this server",
                "version".into(),
                "io.k8s.apimachinery.pkg.version.Info".into(),
                &["application/json"],
            ),
        ),
    ]
}

/// The deprecated `/watch/` paths of a resource, as upstream still lists.
fn watch_paths(r: &ResourceInfo, root: &str, gv: &str, tag: &str) -> Vec<PathItem> {
    let by_name = |mut ps: Vec<Value>| {
        ps.sort_by(|a, b| {
            let n = |v: &Value| {
                v.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            n(a).cmp(&n(b))
        });
        ps
    };
    let list_params = parameters("path_all_namespaces");
    let path_param = |name: &str| {
        parameters("path_item")
            .into_iter()
            .filter(|p| p.get("name").and_then(Value::as_str) == Some(name))
            .map(|mut p| {
                if name == "name" {
                    p["description"] = Value::String(format!("name of the {}", r.kind));
                }
                p
            })
            .collect::<Vec<_>>()
    };
    let op = |action, operation_id: String, description: String| Operation {
        method: "get",
        action,
        operation_id,
        description,
        parameters: Vec::new(),
        body: None,
        consumes: CONSUMES_ANY,
        produces: PRODUCES_WATCH,
        responses: vec![("200", Some(format!("{META}WatchEvent")))],
        gvk: Some((r.group.clone(), r.version.clone(), r.kind.clone())),
        tag: tag.to_owned(),
    };
    let list_desc = format!(
        "watch individual changes to a list of {}. deprecated: use the 'watch' parameter with a list operation instead.",
        r.kind
    );
    let item_desc = format!(
        "watch changes to an object of kind {}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.",
        r.kind
    );
    let (ns_path, ns, ns_params) = if r.namespaced {
        (
            format!("{root}/watch/namespaces/{{namespace}}/{}", r.plural),
            "Namespaced",
            path_param("namespace"),
        )
    } else {
        (format!("{root}/watch/{}", r.plural), "", Vec::new())
    };
    let mut out = vec![
        PathItem {
            path: ns_path.clone(),
            raw: None,
            parameters: by_name([list_params.clone(), ns_params.clone()].concat()),
            operations: vec![op(
                "watchlist",
                format!("watch{gv}{ns}{}List", r.kind),
                list_desc.clone(),
            )],
        },
        PathItem {
            path: format!("{ns_path}/{{name}}"),
            raw: None,
            parameters: by_name([list_params.clone(), ns_params, path_param("name")].concat()),
            operations: vec![op("watch", format!("watch{gv}{ns}{}", r.kind), item_desc)],
        },
    ];
    if r.namespaced {
        out.push(PathItem {
            path: format!("{root}/watch/{}", r.plural),
            raw: None,
            parameters: list_params,
            operations: vec![op(
                "watchlist",
                format!("watch{gv}{}ListForAllNamespaces", r.kind),
                list_desc,
            )],
        });
    }
    out
}

/// The path parameter `name` says what it names.
fn path_params(key: &str, kind: &str) -> Vec<Value> {
    let mut ps = parameters(key);
    for p in &mut ps {
        if p.get("name").and_then(Value::as_str) == Some("name") {
            p["description"] = Value::String(format!("name of the {kind}"));
        }
    }
    ps
}

/// Subresources served by generic code; the streaming ones (log, exec,
/// attach, portforward, proxy) take their own parameters: their path items
/// come whole from upstream's (`streams.json`).
fn described(sub: &SubresourceInfo) -> bool {
    !matches!(
        sub.name.as_str(),
        "log" | "exec" | "attach" | "portforward" | "proxy"
    )
}

fn stream_paths(item: &str, sub: &str) -> Vec<PathItem> {
    [format!("{item}/{sub}"), format!("{item}/{sub}/{{path}}")]
        .into_iter()
        .filter_map(|path| {
            let raw = STREAM_PATHS.get(&path)?.clone();
            Some(PathItem {
                path,
                raw: Some(raw),
                parameters: Vec::new(),
                operations: Vec::new(),
            })
        })
        .collect()
}

struct Ids<'a> {
    r: &'a ResourceInfo,
    gv: String,
}

impl Ids<'_> {
    fn id(&self, verb: &str, suffix: &str) -> String {
        let ns = if self.r.namespaced { "Namespaced" } else { "" };
        format!("{verb}{}{ns}{}{suffix}", self.gv, self.r.kind)
    }
}

/// Every path of one resource, with its operations.
pub fn resource_paths(
    defs: &Definitions,
    extra: &Map<String, Value>,
    r: &ResourceInfo,
) -> Vec<PathItem> {
    let root = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let collection = if r.namespaced {
        format!("{root}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{root}/{}", r.plural)
    };
    let ids = Ids {
        r,
        gv: format!("{}{}", group_camel(&r.group), capitalize(&r.version)),
    };
    let gvk = (r.group.clone(), r.version.clone(), r.kind.clone());
    let kind_def = defs.for_kind(extra, &r.group, &r.version, &r.kind);
    let list_def = defs.for_kind(extra, &r.group, &r.version, &r.list_kind);
    let tag = tag(&r.group, &r.version);
    let op = |method, action, operation_id, description: String| Operation {
        method,
        action,
        operation_id,
        description,
        parameters: parameters(action),
        body: None,
        consumes: CONSUMES_ANY,
        produces: PRODUCES,
        responses: Vec::new(),
        gvk: Some(gvk.clone()),
        tag: tag.clone(),
    };
    let with_body = |def: &Option<String>| {
        def.as_ref().map(|d| Body {
            definition: d.clone(),
            required: true,
        })
    };
    let mut out = Vec::new();

    // The collection: list, create, deletecollection.
    let mut ops = Vec::new();
    if r.has_verb("list") {
        let mut o = op(
            "get",
            "list",
            ids.id("list", ""),
            format!("list or watch objects of kind {}", r.kind),
        );
        o.produces = PRODUCES_WATCH;
        o.responses = vec![("200", list_def.clone())];
        ops.push(o);
    }
    if r.has_verb("create") {
        let mut o = op(
            "post",
            "post",
            ids.id("create", ""),
            format!("create a {}", r.kind),
        );
        o.body = with_body(&kind_def);
        o.responses = vec![
            ("200", kind_def.clone()),
            ("201", kind_def.clone()),
            ("202", kind_def.clone()),
        ];
        ops.push(o);
    }
    if r.has_verb("deletecollection") {
        let mut o = op(
            "delete",
            "deletecollection",
            ids.id("delete", "").replacen(
                &format!("delete{}", ids.gv),
                &format!("delete{}Collection", ids.gv),
                1,
            ),
            format!("delete collection of {}", r.kind),
        );
        o.body = Some(Body {
            definition: DELETE_OPTIONS.into(),
            required: false,
        });
        o.responses = vec![("200", Some(STATUS.into()))];
        ops.push(o);
    }
    if !ops.is_empty() {
        let params = if r.namespaced {
            parameters("path_collection")
        } else {
            pretty_only()
        };
        out.push(PathItem {
            path: collection.clone(),
            raw: None,
            parameters: params,
            operations: ops,
        });
    }

    // The item: read, replace, patch, delete.
    let item = format!("{collection}/{{name}}");
    let item_params = if r.namespaced {
        path_params("path_item", &r.kind)
    } else {
        path_params("path_item", &r.kind)
            .into_iter()
            .filter(|p| p.get("name").and_then(Value::as_str) != Some("namespace"))
            .collect()
    };
    let mut ops = Vec::new();
    if r.has_verb("get") {
        let mut o = op(
            "get",
            "get",
            ids.id("read", ""),
            format!("read the specified {}", r.kind),
        );
        o.responses = vec![("200", kind_def.clone())];
        ops.push(o);
    }
    if r.has_verb("update") {
        let mut o = op(
            "put",
            "put",
            ids.id("replace", ""),
            format!("replace the specified {}", r.kind),
        );
        o.body = with_body(&kind_def);
        o.responses = vec![("200", kind_def.clone()), ("201", kind_def.clone())];
        ops.push(o);
    }
    if r.has_verb("patch") {
        let mut o = op(
            "patch",
            "patch",
            ids.id("patch", ""),
            format!("partially update the specified {}", r.kind),
        );
        o.body = Some(Body {
            definition: PATCH.into(),
            required: true,
        });
        o.consumes = PATCH_TYPES;
        o.responses = vec![("200", kind_def.clone()), ("201", kind_def.clone())];
        ops.push(o);
    }
    if r.has_verb("delete") {
        let mut o = op(
            "delete",
            "delete",
            ids.id("delete", ""),
            format!("delete a {}", r.kind),
        );
        o.body = Some(Body {
            definition: DELETE_OPTIONS.into(),
            required: false,
        });
        let deleted = if returns_deleted_object(&r.group, &r.plural) {
            kind_def.clone()
        } else {
            Some(STATUS.into())
        };
        o.responses = vec![("200", deleted.clone()), ("202", deleted)];
        ops.push(o);
    }
    if !ops.is_empty() {
        out.push(PathItem {
            path: item.clone(),
            raw: None,
            parameters: item_params.clone(),
            operations: ops,
        });
    }

    for sub in r.subresources.iter().filter(|s| !described(s)) {
        out.extend(stream_paths(&item, &sub.name));
    }

    // Subresources (status, scale, eviction, binding, ...).
    for sub in r.subresources.iter().filter(|s| described(s)) {
        let group = sub.group.clone().unwrap_or_else(|| r.group.clone());
        let version = sub.version.clone().unwrap_or_else(|| r.version.clone());
        let sub_def = defs.for_kind(extra, &group, &version, &sub.kind);
        let suffix = capitalize(&sub.name);
        let has = |v: &str| sub.verbs.iter().any(|x| x == v);
        let sgvk = (group, version, sub.kind.clone());
        let mut ops = Vec::new();
        let sop = |method, action, verb: &str, description: String| {
            let mut o = op(method, action, ids.id(verb, &suffix), description);
            o.gvk = Some(sgvk.clone());
            o
        };
        if has("get") {
            let mut o = sop(
                "get",
                "get",
                "read",
                format!("read {} of the specified {}", sub.name, r.kind),
            );
            o.responses = vec![("200", sub_def.clone())];
            ops.push(o);
        }
        if has("update") {
            let mut o = sop(
                "put",
                "put",
                "replace",
                format!("replace {} of the specified {}", sub.name, r.kind),
            );
            o.body = with_body(&sub_def);
            o.responses = vec![("200", sub_def.clone()), ("201", sub_def.clone())];
            ops.push(o);
        }
        if has("patch") {
            let mut o = sop(
                "patch",
                "patch",
                "patch",
                format!("partially update {} of the specified {}", sub.name, r.kind),
            );
            o.body = Some(Body {
                definition: PATCH.into(),
                required: true,
            });
            o.consumes = PATCH_TYPES;
            o.responses = vec![("200", sub_def.clone()), ("201", sub_def.clone())];
            ops.push(o);
        }
        if has("create") {
            let mut o = sop(
                "post",
                "post",
                "create",
                format!("create {} of a {}", sub.name, r.kind),
            );
            o.body = with_body(&sub_def);
            o.responses = vec![
                ("200", sub_def.clone()),
                ("201", sub_def.clone()),
                ("202", sub_def.clone()),
            ];
            ops.push(o);
        }
        if !ops.is_empty() {
            let mut params = path_params("path_item", &sub.kind);
            if !r.namespaced {
                params.retain(|p| p.get("name").and_then(Value::as_str) != Some("namespace"));
            }
            if let Some(p) = params
                .iter_mut()
                .find(|p| p.get("name").and_then(Value::as_str) == Some("name"))
            {
                p["description"] = Value::String(format!("name of the {}", sub.kind));
            }
            out.push(PathItem {
                path: format!("{item}/{}", sub.name),
                raw: None,
                parameters: params,
                operations: ops,
            });
        }
    }

    if r.has_verb("watch") {
        out.extend(watch_paths(r, &root, &ids.gv, &tag));
    }

    // Namespaced lists across all namespaces.
    if r.namespaced && r.has_verb("list") {
        let mut o = op(
            "get",
            "list",
            format!("list{}{}ForAllNamespaces", ids.gv, r.kind),
            format!("list or watch objects of kind {}", r.kind),
        );
        o.parameters = Vec::new();
        o.produces = PRODUCES_WATCH;
        o.responses = vec![("200", list_def)];
        out.push(PathItem {
            path: format!("{root}/{}", r.plural),
            raw: None,
            parameters: parameters("path_all_namespaces"),
            operations: vec![o],
        });
    }
    out.iter_mut().for_each(hoist_common_parameters);
    out
}

/// Resources whose delete answers with the deleted object rather than a
/// Status (upstream's stores with `ReturnDeletedObject`).
fn returns_deleted_object(group: &str, plural: &str) -> bool {
    const TABLE: &[(&str, &str)] = &[
        ("", "persistentvolumeclaims"),
        ("", "persistentvolumes"),
        ("", "pods"),
        ("", "podtemplates"),
        ("", "resourcequotas"),
        ("", "serviceaccounts"),
        ("", "services"),
        ("resource.k8s.io", "deviceclasses"),
        ("resource.k8s.io", "devicetaintrules"),
        ("resource.k8s.io", "resourceclaims"),
        ("resource.k8s.io", "resourceclaimtemplates"),
        ("resource.k8s.io", "resourcepoolstatusrequests"),
        ("resource.k8s.io", "resourceslices"),
        ("storage.k8s.io", "csidrivers"),
        ("storage.k8s.io", "csinodes"),
        ("storage.k8s.io", "storageclasses"),
        ("storage.k8s.io", "volumeattachments"),
        ("storage.k8s.io", "volumeattributesclasses"),
    ];
    TABLE.contains(&(group, plural))
}

/// Parameters every operation of a path shares move to the path level, as
/// upstream's builder does (a create-only path lists dryRun there), sorted
/// by name.
fn hoist_common_parameters(item: &mut PathItem) {
    let Some((first, rest)) = item.operations.split_first() else {
        return;
    };
    let common: Vec<Value> = first
        .parameters
        .iter()
        .filter(|p| rest.iter().all(|o| o.parameters.contains(p)))
        .cloned()
        .collect();
    for o in &mut item.operations {
        o.parameters.retain(|p| !common.contains(p));
    }
    item.parameters.extend(common);
    item.parameters.sort_by(|a, b| {
        let n = |v: &Value| {
            v.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        n(a).cmp(&n(b))
    });
}

/// The `pretty` parameter alone (cluster-scoped collections).
fn pretty_only() -> Vec<Value> {
    parameters("path_collection")
        .into_iter()
        .filter(|p| p.get("name").and_then(Value::as_str) == Some("pretty"))
        .collect()
}
