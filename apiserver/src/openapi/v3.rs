//! OpenAPI v3 documents, one per group-version, as upstream serves them
//! under `/openapi/v3/apis/<group>/<version>`.

use serde_json::{Map, Value, json};

use super::definitions::{Definitions, REF_PREFIX_V2};
use super::operations::{Operation, PathItem};

pub const REF_PREFIX_V3: &str = "#/components/schemas/";

fn reference(def: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX_V3}{def}") })
}

/// A v2 schema in v3 form: references move to `#/components/schemas/`, and a
/// reference with siblings (a described property) is wrapped in `allOf`,
/// since v3.0 ignores a `$ref`'s siblings.
pub fn schema(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            let mut reference = None;
            for (k, x) in m {
                match k.as_str() {
                    "$ref" => {
                        let r = x.as_str().unwrap_or_default();
                        let name = r.strip_prefix(REF_PREFIX_V2).unwrap_or(r);
                        reference = Some(json!({ "$ref": format!("{REF_PREFIX_V3}{name}") }));
                    }
                    "properties" => {
                        let props = x
                            .as_object()
                            .map(|p| p.iter().map(|(n, s)| (n.clone(), schema(s))).collect())
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    "items" | "additionalProperties" if x.is_object() => {
                        out.insert(k.clone(), schema(x));
                    }
                    _ => {
                        out.insert(k.clone(), x.clone());
                    }
                }
            }
            match reference {
                Some(r) if out.is_empty() => r,
                Some(r) => {
                    out.insert("allOf".into(), json!([r]));
                    Value::Object(out)
                }
                None => Value::Object(out),
            }
        }
        other => other.clone(),
    }
}

/// Types whose v3 schema is a union (`OpenAPIV3OneOfTypes` upstream): v2
/// says "string", v3 says which JSON types the value may take.
const ONE_OF: &[(&str, &[&str])] = &[
    (
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        &["integer", "string"],
    ),
    (
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
        &["string", "number"],
    ),
];

/// A whole definition in v3 form.
pub fn definition(name: &str, v: &Value) -> Value {
    let mut out = schema(v);
    if let Some((_, types)) = ONE_OF.iter().find(|(n, _)| *n == name)
        && let Some(m) = out.as_object_mut()
    {
        m.remove("type");
        let one_of: Vec<Value> = types.iter().map(|t| json!({ "type": t })).collect();
        m.insert("oneOf".into(), Value::Array(one_of));
    }
    out
}

/// A v2 query or path parameter in v3 form (its type moves into `schema`).
fn parameter(p: &Value) -> Value {
    let mut out = Map::new();
    let mut sch = Map::new();
    if let Some(m) = p.as_object() {
        for (k, x) in m {
            match k.as_str() {
                "type" | "uniqueItems" | "format" => {
                    sch.insert(k.clone(), x.clone());
                }
                _ => {
                    out.insert(k.clone(), x.clone());
                }
            }
        }
    }
    out.insert("schema".into(), Value::Object(sch));
    Value::Object(out)
}

fn status_text(code: &str) -> &'static str {
    match code {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        _ => "Unauthorized",
    }
}

fn operation(o: &Operation) -> Value {
    let mut op = json!({
        "description": o.description,
        "operationId": o.operation_id,
        "tags": [o.tag],
    });
    if !o.action.is_empty() {
        op["x-kubernetes-action"] = json!(o.action);
    }
    if let Some((g, v, k)) = &o.gvk {
        op["x-kubernetes-group-version-kind"] = json!({ "group": g, "kind": k, "version": v });
    }
    if !o.parameters.is_empty() {
        op["parameters"] = Value::Array(o.parameters.iter().map(parameter).collect());
    }
    if let Some(b) = &o.body {
        let content: Map<String, Value> = o
            .consumes
            .iter()
            .map(|c| {
                (
                    (*c).to_owned(),
                    json!({ "schema": reference(&b.definition) }),
                )
            })
            .collect();
        let mut body = json!({ "content": content });
        if b.required {
            body["required"] = Value::Bool(true);
        }
        op["requestBody"] = body;
    }
    let mut responses = Map::new();
    for (code, def) in &o.responses {
        let mut r = json!({ "description": status_text(code) });
        if let Some(d) = def {
            let content: Map<String, Value> = o
                .produces
                .iter()
                .map(|c| ((*c).to_owned(), json!({ "schema": reference(d) })))
                .collect();
            r["content"] = Value::Object(content);
        }
        responses.insert((*code).to_owned(), r);
    }
    responses.insert("401".into(), json!({ "description": "Unauthorized" }));
    op["responses"] = Value::Object(responses);
    op
}

/// An upstream v2 path item in v3 form: parameters carry their type in
/// `schema`, responses their schema per produced content type.
fn raw_path_item(raw: &Value) -> Value {
    let mut out = Map::new();
    for (k, v) in raw.as_object().into_iter().flatten() {
        if k == "parameters" {
            let ps = v.as_array().into_iter().flatten().map(parameter).collect();
            out.insert(k.clone(), Value::Array(ps));
            continue;
        }
        let mut op = Map::new();
        let produces: Vec<String> = v["produces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect();
        for (field, x) in v.as_object().into_iter().flatten() {
            match field.as_str() {
                "consumes" | "produces" | "schemes" => {}
                "parameters" => {
                    let ps = x.as_array().into_iter().flatten().map(parameter).collect();
                    op.insert(field.clone(), Value::Array(ps));
                }
                "responses" => {
                    let mut rs = Map::new();
                    for (code, r) in x.as_object().into_iter().flatten() {
                        let mut resp = json!({ "description": r["description"] });
                        if let Some(sch) = r.get("schema") {
                            let content: Map<String, Value> = produces
                                .iter()
                                .map(|c| (c.clone(), json!({ "schema": schema(sch) })))
                                .collect();
                            resp["content"] = Value::Object(content);
                        }
                        rs.insert(code.clone(), resp);
                    }
                    op.insert(field.clone(), Value::Object(rs));
                }
                _ => {
                    op.insert(field.clone(), x.clone());
                }
            }
        }
        out.insert(k.clone(), Value::Object(op));
    }
    Value::Object(out)
}

fn path_item(item: &PathItem) -> Value {
    if let Some(raw) = &item.raw {
        return raw_path_item(raw);
    }
    let mut p = Map::new();
    for o in &item.operations {
        p.insert(o.method.to_owned(), operation(o));
    }
    if !item.parameters.is_empty() {
        p.insert(
            "parameters".into(),
            Value::Array(item.parameters.iter().map(parameter).collect()),
        );
    }
    Value::Object(p)
}

/// The serialized document of one group-version, given its paths. Written
/// a path and a schema at a time, in the key order serde_json gives a whole
/// document, so the transient memory is one item's rather than the whole
/// tree's (a document of 1.6 MB otherwise leaves ~20 MB of freed heap).
pub fn document(defs: &Definitions, items: &[PathItem], extra: &Map<String, Value>) -> Vec<u8> {
    let mut roots = Vec::new();
    for item in items {
        item.refs(&mut roots);
    }

    let mut out = Vec::new();
    let write = |out: &mut Vec<u8>, v: &Value| {
        // Writing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(out, v);
    };
    out.extend_from_slice(br#"{"components":{"schemas":{"#);
    let names = defs.closure(roots, extra);
    let mut first = true;
    for name in &names {
        let Some(def) = defs.lookup(name, extra) else {
            continue;
        };
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        write(&mut out, &Value::String(name.clone()));
        out.push(b':');
        write(&mut out, &definition(name, &def));
    }
    out.extend_from_slice(br#"},"securitySchemes":"#);
    let security = json!({
        "BearerToken": {
            "description": "Bearer Token authentication",
            "in": "header",
            "name": "authorization",
            "type": "apiKey",
        }
    });
    write(&mut out, &security);
    out.extend_from_slice(br#"},"info":"#);
    write(
        &mut out,
        &json!({ "title": "Kubernetes", "version": crate::server::VERSION }),
    );
    out.extend_from_slice(br#","openapi":"3.0.0","paths":{"#);
    for (i, item) in super::operations::sorted(items).into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(&mut out, &Value::String(item.path.clone()));
        out.push(b':');
        write(&mut out, &path_item(item));
    }
    out.extend_from_slice(b"}}");
    out
}
