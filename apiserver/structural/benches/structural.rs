//! Throughput of the custom resource write path in this crate: prune,
//! default and validate one typical object (a 50-field spec with two CEL
//! rules, a list-type map and a nested object), in objects per second.
//! Run: `cargo bench -p rkube-structural`.

use rkube_structural::Structural;
use serde_json::{Map, Value, json};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn schema() -> Value {
    let mut props = Map::new();
    for i in 0..20 {
        props.insert(
            format!("str{i}"),
            json!({"type": "string", "maxLength": 64, "pattern": "^[a-z0-9-]*$"}),
        );
        props.insert(
            format!("int{i}"),
            json!({"type": "integer", "minimum": 0, "maximum": 1000, "default": 1}),
        );
    }
    for i in 0..5 {
        props.insert(
            format!("enum{i}"),
            json!({"type": "string", "enum": ["a", "b", "c"]}),
        );
    }
    props.insert("replicas".into(), json!({"type": "integer"}));
    props.insert("minReplicas".into(), json!({"type": "integer"}));
    props.insert(
        "ports".into(),
        json!({"type": "array", "maxItems": 16, "x-kubernetes-list-type": "map",
               "x-kubernetes-list-map-keys": ["name"],
               "items": {"type": "object", "required": ["name"], "properties": {
                   "name": {"type": "string", "maxLength": 15},
                   "port": {"type": "integer", "minimum": 1, "maximum": 65535}}}}),
    );
    props.insert(
        "template".into(),
        json!({"type": "object", "properties": {
            "image": {"type": "string"}, "pullPolicy": {"type": "string", "default": "IfNotPresent"}}}),
    );
    props.insert(
        "labels".into(),
        json!({"type": "object", "additionalProperties": {"type": "string"}}),
    );
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": props,
                "x-kubernetes-validations": [
                    {"rule": "self.minReplicas <= self.replicas", "message": "minReplicas must not exceed replicas"},
                    {"rule": "self.ports.all(p, p.port > 0)"}
                ]
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    })
}

fn object() -> Value {
    let mut spec = Map::new();
    for i in 0..20 {
        spec.insert(format!("str{i}"), json!(format!("value-{i}")));
        if i % 2 == 0 {
            spec.insert(format!("int{i}"), json!(i * 3));
        }
    }
    for i in 0..5 {
        spec.insert(format!("enum{i}"), json!("b"));
    }
    spec.insert("replicas".into(), json!(3));
    spec.insert("minReplicas".into(), json!(1));
    spec.insert(
        "ports".into(),
        json!([{"name": "http", "port": 80}, {"name": "https", "port": 443}]),
    );
    spec.insert("template".into(), json!({"image": "nginx:1.27"}));
    spec.insert("labels".into(), json!({"app": "web", "tier": "frontend"}));
    spec.insert("unknownField".into(), json!("pruned"));
    json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": spec
    })
}

fn strip_rules(mut v: Value) -> Value {
    if let Some(spec) = v
        .pointer_mut("/properties/spec")
        .and_then(Value::as_object_mut)
    {
        spec.remove("x-kubernetes-validations");
    }
    v
}

fn run(name: &str, mut f: impl FnMut()) {
    for _ in 0..200 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<40} {:>10.0} objects/s  ({:.1} µs/object)",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}

fn main() {
    let s = match Structural::compile(&schema(), "spec.versions[0].schema.openAPIV3Schema") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("benchmark schema rejected: {e:?}");
            std::process::exit(1);
        }
    };
    let obj = object();
    {
        let mut o = obj.clone();
        s.prune(&mut o);
        s.apply_defaults(&mut o);
        let errs = s.validate(&o, Some(&obj));
        if !errs.is_empty() {
            eprintln!("benchmark object invalid: {errs:?}");
            std::process::exit(1);
        }
    }
    println!("rkube-structural: 50-field spec, 2 CEL rules, list-type map");
    run("prune + default + validate (create)", || {
        let mut o = obj.clone();
        black_box(s.prune(&mut o));
        s.apply_defaults(&mut o);
        black_box(s.validate(&o, None));
    });
    run("prune + default + validate (update)", || {
        let mut o = obj.clone();
        black_box(s.prune(&mut o));
        s.apply_defaults(&mut o);
        black_box(s.validate(&o, Some(&obj)));
    });
    run("validate only (OpenAPI + list types + CEL)", || {
        black_box(s.validate(&obj, None));
    });
    run("apply_defaults only", || {
        let mut o = obj.clone();
        s.apply_defaults(&mut o);
        black_box(o);
    });
    let plain = match Structural::compile(&strip_rules(schema()), "x") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("benchmark schema rejected: {e:?}");
            std::process::exit(1);
        }
    };
    run("validate only, without CEL rules", || {
        black_box(plain.validate(&obj, None));
    });
    run("prune only", || {
        let mut o = obj.clone();
        black_box(s.prune(&mut o));
    });
    run("clone only (baseline)", || {
        black_box(obj.clone());
    });
    run("compile schema", || {
        black_box(Structural::compile(&schema(), "x").is_ok());
    });
}
