//! The OpenAPI v2 (Swagger 2.0) document: every served path, and the
//! definitions they reference.

use serde_json::{Map, Value, json};

use super::definitions::{Definitions, REF_PREFIX_V2};
use super::operations::{Operation, PathItem, sorted};
use super::proto::DocumentWriter;

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

fn path_item(item: &PathItem) -> Value {
    if let Some(raw) = &item.raw {
        return raw.clone();
    }
    let mut p = Map::new();
    for o in &item.operations {
        p.insert(o.method.to_owned(), operation(o));
    }
    if !item.parameters.is_empty() {
        p.insert("parameters".into(), Value::Array(item.parameters.clone()));
    }
    Value::Object(p)
}

/// The whole document, given every served path and the extra definitions
/// (custom resources) beside the built-in table: (JSON, gnostic protobuf).
/// Written a path and a definition at a time, in the key order serde_json
/// gives a whole document, so that the transient memory stays one item's.
pub fn documents(
    defs: &Definitions,
    items: &[PathItem],
    extra: &Map<String, Value>,
) -> (Vec<u8>, Vec<u8>) {
    let mut roots = Vec::new();
    for item in items {
        item.refs(&mut roots);
    }
    let write = |out: &mut Vec<u8>, v: &Value| {
        // Writing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(out, v);
    };
    let mut pb = DocumentWriter::default();
    let mut json = Vec::new();
    json.extend_from_slice(br#"{"definitions":{"#);
    let mut first = true;
    for name in &defs.closure(roots, extra) {
        let Some(def) = defs.lookup(name, extra) else {
            continue;
        };
        if !std::mem::take(&mut first) {
            json.push(b',');
        }
        write(&mut json, &Value::String(name.clone()));
        json.push(b':');
        write(&mut json, &def);
        pb.definition(name, &def);
    }
    let head = json!({
        "info": { "title": "Kubernetes", "version": crate::server::VERSION },
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
    });
    json.extend_from_slice(br#"},"info":"#);
    write(&mut json, &head["info"]);
    json.extend_from_slice(br#","paths":{"#);
    for (i, item) in sorted(items).into_iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        let v = path_item(item);
        write(&mut json, &Value::String(item.path.clone()));
        json.push(b':');
        write(&mut json, &v);
        pb.path(&item.path, &v);
    }
    json.extend_from_slice(br#"},"security":"#);
    write(&mut json, &head["security"]);
    json.extend_from_slice(br#","securityDefinitions":"#);
    write(&mut json, &head["securityDefinitions"]);
    json.extend_from_slice(br#","swagger":"2.0"}"#);
    (json, pb.finish(&head))
}
