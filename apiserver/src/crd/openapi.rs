//! The OpenAPI definitions of custom resources, named and shaped as
//! upstream's builder: `com.example.v1.Foo` (the group's labels reversed)
//! with `metadata` referring to ObjectMeta and the kind in
//! `x-kubernetes-group-version-kind`, and its `...List`.

use serde_json::{Map, Value, json};

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
const API_VERSION_DESC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// `com.example` for `example.com`.
pub fn reversed_group(group: &str) -> String {
    group.split('.').rev().collect::<Vec<_>>().join(".")
}

pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    format!("{}.{version}.{kind}", reversed_group(group))
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{ "group": group, "kind": kind, "version": version }])
}

/// Adds the definitions of one served version of a CRD.
pub fn add_definitions(out: &mut Map<String, Value>, crd: &Value, version: &Value) {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let names = crd.pointer("/status/acceptedNames").unwrap_or(&Value::Null);
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let list_kind = names
        .get("listKind")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{kind}List"));
    let v = version
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if group.is_empty() || kind.is_empty() || v.is_empty() {
        return;
    }
    let mut schema = version
        .pointer("/schema/openAPIV3Schema")
        .cloned()
        .unwrap_or_else(|| json!({ "type": "object" }));
    if !schema.is_object() {
        schema = json!({ "type": "object" });
    }
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    schema["properties"]["apiVersion"] =
        json!({ "type": "string", "description": API_VERSION_DESC });
    schema["properties"]["kind"] = json!({ "type": "string", "description": KIND_DESC });
    schema["properties"]["metadata"] = json!({
        "$ref": format!("#/definitions/{META}ObjectMeta"),
        "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    });
    schema["x-kubernetes-group-version-kind"] = gvk(group, v, kind);
    let name = definition_name(group, v, kind);
    let list = json!({
        "description": format!("{list_kind} is a list of {kind}"),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": { "type": "string", "description": API_VERSION_DESC },
            "kind": { "type": "string", "description": KIND_DESC },
            "items": {
                "type": "array",
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", names.get("plural").and_then(Value::as_str).unwrap_or_default()),
                "items": { "$ref": format!("#/definitions/{name}") },
            },
            "metadata": {
                "$ref": format!("#/definitions/{META}ListMeta"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "x-kubernetes-group-version-kind": gvk(group, v, &list_kind),
    });
    out.insert(name.clone(), schema);
    out.insert(definition_name(group, v, &list_kind), list);
}
