//! OpenAPI v3 documents built from the catalogue: the index with hashed
//! URLs, and one document per group-version with every resource's paths and
//! operations (with their `x-kubernetes-*` extensions and query
//! parameters, which kubectl reads to decide on server-side validation).
//! Schemas are not filled in yet.

use std::collections::BTreeMap;

use rkube_catalogue::{Catalogue, ResourceInfo};
use serde_json::{Value, json};

fn param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": { "type": "string", "uniqueItems": true },
    })
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut p = vec![
        param(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
        ),
        param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
        ),
    ];
    if patch {
        p.push(json!({ "name": "force", "in": "query", "schema": { "type": "boolean", "uniqueItems": true } }));
    }
    p
}

fn operation(r: &ResourceInfo, action: &str, params: Vec<Value>, content: &[&str]) -> Value {
    let gvk = json!({ "group": r.group, "version": r.version, "kind": r.kind });
    let mut op = json!({
        "tags": [],
        "operationId": format!("{action}{}", r.kind),
        "parameters": params,
        "responses": { "200": { "description": "OK" }, "401": { "description": "Unauthorized" } },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    });
    if !content.is_empty() {
        let schema = json!({ "type": "object" });
        let types: serde_json::Map<String, Value> = content
            .iter()
            .map(|c| (c.to_string(), json!({ "schema": schema })))
            .collect();
        op["requestBody"] = json!({ "content": types, "required": true });
    }
    op
}

const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

fn resource_paths(r: &ResourceInfo, paths: &mut BTreeMap<String, Value>) {
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
    let has = |v: &str| r.verbs.iter().any(|x| x == v);
    let mut coll = serde_json::Map::new();
    if has("list") {
        coll.insert("get".into(), operation(r, "list", vec![], &[]));
    }
    if has("create") {
        coll.insert(
            "post".into(),
            operation(r, "post", write_params(false), &["*/*"]),
        );
    }
    if has("deletecollection") {
        coll.insert(
            "delete".into(),
            operation(r, "deletecollection", vec![], &[]),
        );
    }
    if !coll.is_empty() {
        paths.insert(collection.clone(), Value::Object(coll));
    }
    let mut item = serde_json::Map::new();
    if has("get") {
        item.insert("get".into(), operation(r, "get", vec![], &[]));
    }
    if has("update") {
        item.insert(
            "put".into(),
            operation(r, "put", write_params(false), &["*/*"]),
        );
    }
    if has("patch") {
        item.insert(
            "patch".into(),
            operation(r, "patch", write_params(true), PATCH_TYPES),
        );
    }
    if has("delete") {
        item.insert("delete".into(), operation(r, "delete", vec![], &[]));
    }
    if !item.is_empty() {
        paths.insert(format!("{collection}/{{name}}"), Value::Object(item));
    }
    for sub in &r.subresources {
        let mut ops = serde_json::Map::new();
        let sub_info = ResourceInfo {
            kind: sub.kind.clone(),
            group: sub.group.clone().unwrap_or_else(|| r.group.clone()),
            version: sub.version.clone().unwrap_or_else(|| r.version.clone()),
            ..r.clone()
        };
        let sub_has = |v: &str| sub.verbs.iter().any(|x| x == v);
        if sub_has("get") {
            ops.insert("get".into(), operation(&sub_info, "get", vec![], &[]));
        }
        if sub_has("update") {
            ops.insert(
                "put".into(),
                operation(&sub_info, "put", write_params(false), &["*/*"]),
            );
        }
        if sub_has("patch") {
            ops.insert(
                "patch".into(),
                operation(&sub_info, "patch", write_params(true), PATCH_TYPES),
            );
        }
        if sub_has("create") {
            ops.insert(
                "post".into(),
                operation(&sub_info, "post", write_params(false), &["*/*"]),
            );
        }
        if !ops.is_empty() {
            paths.insert(
                format!("{collection}/{{name}}/{}", sub.name),
                Value::Object(ops),
            );
        }
    }
}

/// The document of one group-version (`api/v1`, `apis/apps/v1`).
pub fn group_version(cat: &Catalogue, group: &str, version: &str) -> Option<Value> {
    let resources = cat.resources_in(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut paths = BTreeMap::new();
    for r in resources {
        resource_paths(r, &mut paths);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": crate::server::VERSION },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}

/// The `/openapi/v3` index: each group-version's path with a hash of its
/// document, so clients can cache it.
pub fn index(cat: &Catalogue) -> Value {
    let mut paths = BTreeMap::new();
    for gv in cat.group_versions() {
        let key = if gv.group.is_empty() {
            format!("api/{}", gv.version)
        } else {
            format!("apis/{}/{}", gv.group, gv.version)
        };
        if let Some(doc) = group_version(cat, &gv.group, &gv.version) {
            let hash = hash_of(&doc);
            paths.insert(
                key.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}") }),
            );
        }
    }
    json!({ "paths": paths })
}

/// A stable content hash (upstream uses SHA-512 in hex; any stable hash works
/// for clients, which only compare it).
pub fn hash_of(doc: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    doc.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}
