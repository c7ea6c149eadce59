//! The OpenAPI v2 document in gnostic's protobuf form
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, message
//! `openapi.v2.Document` of github.com/google/gnostic's OpenAPIv2.proto),
//! encoded straight from the JSON document. Field numbers are those of that
//! file. Extension values, defaults and enums travel as YAML text in
//! `Any.yaml`, as gnostic's compiler produces them (JSON is valid YAML).

use serde_json::{Map, Value};

/// A protobuf message being written.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }
    fn bool(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }
    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }
    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }
    /// Always present, even empty (oneof members and map values must be).
    fn with(&mut self, field: u32, f: impl FnOnce(&mut Msg)) {
        let mut m = Msg::default();
        f(&mut m);
        self.message(field, m);
    }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn strings(m: &mut Msg, field: u32, v: Option<&Value>) {
    for x in v.and_then(Value::as_array).into_iter().flatten() {
        if let Some(t) = x.as_str() {
            m.bytes(field, t.as_bytes());
        }
    }
}

/// `Any { yaml = 2 }`.
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.bytes(2, v.to_string().as_bytes());
    m
}

/// `repeated NamedAny vendor_extension`: the `x-` keys of an object.
fn extensions(m: &mut Msg, field: u32, obj: &Map<String, Value>) {
    for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
        m.with(field, |n| {
            n.string(1, k);
            n.message(2, any(v));
        });
    }
}

/// `openapi.v2.Schema`.
fn schema(v: &Value) -> Msg {
    let mut m = Msg::default();
    let Some(o) = v.as_object() else {
        return m;
    };
    m.string(1, s(v, "$ref"));
    m.string(2, s(v, "format"));
    m.string(3, s(v, "title"));
    m.string(4, s(v, "description"));
    if let Some(d) = o.get("default") {
        m.message(5, any(d));
    }
    let num = |k: &str| o.get(k).and_then(Value::as_f64).unwrap_or_default();
    let int = |k: &str| o.get(k).and_then(Value::as_i64).unwrap_or_default();
    let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or_default();
    m.double(6, num("multipleOf"));
    m.double(7, num("maximum"));
    m.bool(8, flag("exclusiveMaximum"));
    m.double(9, num("minimum"));
    m.bool(10, flag("exclusiveMinimum"));
    m.int64(11, int("maxLength"));
    m.int64(12, int("minLength"));
    m.string(13, s(v, "pattern"));
    m.int64(14, int("maxItems"));
    m.int64(15, int("minItems"));
    m.bool(16, flag("uniqueItems"));
    m.int64(17, int("maxProperties"));
    m.int64(18, int("minProperties"));
    strings(&mut m, 19, o.get("required"));
    for e in o
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(20, any(e));
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => m.with(21, |a| {
            // oneof member: written even when false.
            a.key(2, 0);
            a.varint(u64::from(*b));
        }),
        Some(x @ Value::Object(_)) => m.with(21, |a| a.message(1, schema(x))),
        _ => {}
    }
    match o.get("type") {
        Some(Value::String(t)) => m.with(22, |ti| ti.string(1, t)),
        Some(Value::Array(ts)) => m.with(22, |ti| strings(ti, 1, Some(&Value::Array(ts.clone())))),
        _ => {}
    }
    match o.get("items") {
        Some(x @ Value::Object(_)) => m.with(23, |it| it.message(1, schema(x))),
        Some(Value::Array(xs)) => m.with(23, |it| xs.iter().for_each(|x| it.message(1, schema(x)))),
        _ => {}
    }
    for x in o
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, schema(x));
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        m.with(25, |p| {
            for (name, ps) in props {
                p.with(1, |n| {
                    n.string(1, name);
                    n.message(2, schema(ps));
                });
            }
        });
    }
    m.bool(27, flag("readOnly"));
    extensions(&mut m, 31, o);
    m
}

/// `ParametersItem { Parameter parameter = 1 }`.
fn parameter(p: &Value) -> Msg {
    let mut item = Msg::default();
    item.with(1, |param| {
        if s(p, "in") == "body" {
            // Parameter.body_parameter = 1
            param.with(1, |b| {
                b.string(1, s(p, "description"));
                b.string(2, s(p, "name"));
                b.string(3, "body");
                b.bool(
                    4,
                    p.get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or_default(),
                );
                if let Some(sc) = p.get("schema") {
                    b.message(5, schema(sc));
                }
            });
            return;
        }
        // Parameter.non_body_parameter = 2 → query (3) or path (4) sub-schema.
        param.with(2, |nb| {
            let path = s(p, "in") == "path";
            nb.with(if path { 4 } else { 3 }, |q| {
                q.bool(
                    1,
                    p.get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or_default(),
                );
                q.string(2, s(p, "in"));
                q.string(3, s(p, "description"));
                q.string(4, s(p, "name"));
                let unique = p
                    .get("uniqueItems")
                    .and_then(Value::as_bool)
                    .unwrap_or_default();
                if path {
                    q.string(5, s(p, "type"));
                    q.bool(19, unique);
                } else {
                    q.string(6, s(p, "type"));
                    q.bool(20, unique);
                }
            });
        });
    });
    item
}

/// `openapi.v2.Operation`.
fn operation(o: &Value) -> Msg {
    let mut m = Msg::default();
    strings(&mut m, 1, o.get("tags"));
    m.string(3, s(o, "description"));
    m.string(5, s(o, "operationId"));
    strings(&mut m, 6, o.get("produces"));
    strings(&mut m, 7, o.get("consumes"));
    for p in o
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(8, parameter(p));
    }
    if let Some(rs) = o.get("responses").and_then(Value::as_object) {
        m.with(9, |responses| {
            for (code, r) in rs {
                responses.with(1, |named| {
                    named.string(1, code);
                    // ResponseValue.response = 1
                    named.with(2, |rv| {
                        rv.with(1, |resp| {
                            resp.string(1, s(r, "description"));
                            if let Some(sc) = r.get("schema") {
                                // SchemaItem.schema = 1
                                resp.with(2, |si| si.message(1, schema(sc)));
                            }
                        });
                    });
                });
            }
        });
    }
    strings(&mut m, 10, o.get("schemes"));
    if let Some(obj) = o.as_object() {
        extensions(&mut m, 13, obj);
    }
    m
}

/// `openapi.v2.PathItem`.
fn path_item(p: &Value) -> Msg {
    let mut m = Msg::default();
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (8, "patch"),
    ] {
        if let Some(o) = p.get(method) {
            m.message(field, operation(o));
        }
    }
    for x in p
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(9, parameter(x));
    }
    m
}

/// `openapi.v2.Document`, written a path and a definition at a time.
#[derive(Default)]
pub struct DocumentWriter {
    paths: Msg,
    definitions: Msg,
}

impl DocumentWriter {
    /// `Paths.path = 2`: NamedPathItem { name = 1, value = 2 }.
    pub fn path(&mut self, path: &str, item: &Value) {
        self.paths.with(2, |n| {
            n.string(1, path);
            n.message(2, path_item(item));
        });
    }

    /// `Definitions.additional_properties = 1`: NamedSchema.
    pub fn definition(&mut self, name: &str, d: &Value) {
        self.definitions.with(1, |n| {
            n.string(1, name);
            n.message(2, schema(d));
        });
    }

    /// The document, given the JSON document's other members (swagger,
    /// info, security, securityDefinitions).
    pub fn finish(self, doc: &Value) -> Vec<u8> {
        let mut m = Msg::default();
        m.string(1, s(doc, "swagger"));
        if let Some(info) = doc.get("info") {
            m.with(2, |i| {
                i.string(1, s(info, "title"));
                i.string(2, s(info, "version"));
            });
        }
        m.message(8, self.paths);
        m.message(9, self.definitions);
        for req in doc
            .get("security")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            m.with(12, |sr| {
                for (name, scopes) in req.as_object().into_iter().flatten() {
                    sr.with(1, |n| {
                        n.string(1, name);
                        n.with(2, |sa| strings(sa, 1, Some(scopes)));
                    });
                }
            });
        }
        if let Some(sd) = doc.get("securityDefinitions").and_then(Value::as_object) {
            m.with(13, |defs| {
                for (name, d) in sd {
                    defs.with(1, |n| {
                        n.string(1, name);
                        // SecurityDefinitionsItem.api_key_security = 2
                        n.with(2, |item| {
                            item.with(2, |k| {
                                k.string(1, s(d, "type"));
                                k.string(2, s(d, "name"));
                                k.string(3, s(d, "in"));
                                k.string(4, s(d, "description"));
                            });
                        });
                    });
                }
            });
        }
        m.0
    }
}
