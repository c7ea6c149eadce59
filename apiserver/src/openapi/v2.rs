//! The OpenAPI v2 (Swagger 2.0) document: every served path, and the
//! definitions they reference.

use serde_json::{Map, Value, json};

use super::definitions::{Definitions, REF_PREFIX_V2};
use super::operations::{Operation, PathItem};

fn status_text(code: &str) -> &'static str {
    match code {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        _ => "Unauthorized",
    }
}

fn operation(o: &Operation) -> Value {
    let mut params = Vec::new();
    if let Some(b) = &o.body {
        let mut p = json!({
            "in": "body",
            "name": "body",
            "schema": { "$ref": format!("{REF_PREFIX_V2}{}", b.definition) },
        });
        if b.required {
            p["required"] = Value::Bool(true);
        }
        params.push(p);
    }
    params.extend(o.parameters.iter().cloned());
    let mut responses = Map::new();
    for (code, def) in &o.responses {
        let mut r = json!({ "description": status_text(code) });
        if let Some(d) = def {
            r["schema"] = json!({ "$ref": format!("{REF_PREFIX_V2}{d}") });
        }
        responses.insert((*code).to_owned(), r);
    }
    responses.insert("401".into(), json!({ "description": "Unauthorized" }));
    let mut op = json!({
        "consumes": o.consumes,
        "description": o.description,
        "operationId": o.operation_id,
        "produces": o.produces,
        "responses": responses,
        "schemes": ["https"],
        "tags": [o.tag],
    });
    if !o.action.is_empty() {
        op["x-kubernetes-action"] = json!(o.action);
    }
    if let Some((g, v, k)) = &o.gvk {
        op["x-kubernetes-group-version-kind"] = json!({ "group": g, "kind": k, "version": v });
    }
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    op
}

pub fn paths(items: &[PathItem]) -> Map<String, Value> {
    let mut out = Map::new();
    for item in items {
        if let Some(raw) = &item.raw {
            out.insert(item.path.clone(), raw.clone());
            continue;
        }
        let mut p = Map::new();
        for o in &item.operations {
            p.insert(o.method.to_owned(), operation(o));
        }
        if !item.parameters.is_empty() {
            p.insert("parameters".into(), Value::Array(item.parameters.clone()));
        }
        out.insert(item.path.clone(), Value::Object(p));
    }
    out
}

/// The whole document, given every served path and the extra definitions
/// (custom resources) beside the built-in table.
pub fn document(defs: &Definitions, items: &[PathItem], extra: &Map<String, Value>) -> Value {
    let paths = paths(items);
    let mut roots = Vec::new();
    for p in paths.values() {
        super::definitions::collect_refs(p, &mut roots);
    }
    let definitions: Map<String, Value> = defs
        .closure(roots, extra)
        .into_iter()
        .map(|(k, v)| (k, v.into_owned()))
        .collect();
    json!({
        "definitions": definitions,
        "info": { "title": "Kubernetes", "version": crate::server::VERSION },
        "paths": paths,
        "security": [ { "BearerToken": [] } ],
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "in": "header",
                "name": "authorization",
                "type": "apiKey",
            }
        },
        "swagger": "2.0",
    })
}
