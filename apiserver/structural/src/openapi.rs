//! Value validation as kube-openapi's `validate.SchemaValidator` does it for
//! custom resources, with its messages (`spec.x in body must be of type
//! integer: "string"`) turned into field errors the way apiextensions'
//! `kubeOpenAPIResultToFieldErrors` does.

use crate::format;
use crate::path::{go_float, join};
use crate::schema::{Additional, Schema};
use rkube_validation::FieldError;
use serde_json::Value;

/// Errors of one validation run.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub errors: Vec<FieldError>,
    /// For each error, the value it is about (for ratcheting on update).
    pub nodes: Vec<Vec<Seg>>,
}

impl Outcome {
    fn merge(&mut self, o: Outcome) {
        self.errors.extend(o.errors);
        self.nodes.extend(o.nodes);
    }
}

/// One step of a value path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    Field(String),
    Index(usize),
}

fn segs(name: &Name<'_>) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut cur = name;
    loop {
        match cur {
            Name::Root => break,
            Name::Field(p, k) => {
                out.push(Seg::Field((*k).to_string()));
                cur = p;
            }
            Name::Index(p, i) => {
                out.push(Seg::Index(*i));
                cur = p;
            }
        }
    }
    out.reverse();
    out
}

/// Validates `v` against `s`; `base` prefixes error paths (the object root
/// is `""`, a default is `<schema path>.default`).
pub(crate) fn validate(s: &Schema, v: &Value, base: &str) -> Outcome {
    let mut out = Outcome::default();
    Validator { base }.value(s, v, &Name::Root, &mut out);
    out
}

/// A kube-openapi value path (`spec.items[0]`), rendered only for errors.
#[derive(Clone, Copy)]
enum Name<'a> {
    Root,
    Field(&'a Name<'a>, &'a str),
    Index(&'a Name<'a>, usize),
}

impl std::fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::Root => Ok(()),
            Name::Field(Name::Root, k) => f.write_str(k),
            Name::Field(p, k) => write!(f, "{p}.{k}"),
            Name::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

struct Validator<'a> {
    base: &'a str,
}

/// The JSON type name kube-openapi infers for a value.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_json_integer(f: f64) -> bool {
    f.is_finite() && f.fract() == 0.0 && f.abs() < 9007199254740992.0
}

impl Validator<'_> {
    fn field(&self, name: &Name<'_>) -> String {
        join(self.base, &name.to_string())
    }

    /// `<name> in body <msg>` (kube-openapi's `in` is always "body" here).
    fn msg(name: &Name<'_>, rest: std::fmt::Arguments<'_>) -> String {
        format!("{name} in body {rest}")
    }

    fn push(&self, out: &mut Outcome, node: &Name<'_>, e: FieldError) {
        out.errors.push(e);
        out.nodes.push(segs(node));
    }

    fn invalid(&self, out: &mut Outcome, name: &Name<'_>, value: Value, msg: String) {
        self.push(
            out,
            name,
            FieldError::invalid(&self.field(name), value, msg),
        );
    }

    /// allOf/anyOf/oneOf/not failures: reported at the root, about `node`.
    fn composite(&self, out: &mut Outcome, node: &Name<'_>, msg: String) {
        let e = FieldError::invalid(&self.field(&Name::Root), String::new(), msg);
        self.push(out, node, e);
    }

    fn type_invalid(&self, out: &mut Outcome, name: &Name<'_>, ty: &str, actual: &str) {
        let m = Self::msg(name, format_args!("must be of type {ty}: {}", go_q(actual)));
        self.invalid(out, name, Value::String(actual.to_string()), m);
    }

    fn value(&self, s: &Schema, v: &Value, name: &Name<'_>, out: &mut Outcome) {
        // kube-openapi converts x-kubernetes-int-or-string into a two-type schema.
        let ty = s.ty.as_str();
        let types: &[&str] = if s.int_or_string {
            &["integer", "string"]
        } else if s.ty.is_empty() {
            &[]
        } else {
            std::slice::from_ref(&ty)
        };
        if v.is_null() {
            if !types.is_empty() && !s.nullable {
                self.type_invalid(out, name, &types.join(","), "null");
            }
            self.enumeration(s, v, name, out);
            return;
        }
        // kube-openapi runs every applicable validator even after a type
        // mismatch (each applies by the value's own kind).
        self.type_check(types, v, name, out);
        self.composition(s, v, name, out);
        if let Value::String(st) = v {
            self.string(s, st, name, out);
            if !s.format.is_empty() && format::known(&s.format) && !format::valid(&s.format, st) {
                let m = Self::msg(
                    name,
                    format_args!("must be of type {}: {}", s.format, go_q(st)),
                );
                self.invalid(out, name, v.clone(), m);
            }
        }
        if let Value::Number(n) = v {
            self.number(s, n.as_f64().unwrap_or(0.0), v, name, out);
        }
        if let Value::Array(a) = v {
            self.array(s, a, name, out);
        }
        self.enumeration(s, v, name, out);
        if let Value::Object(m) = v {
            self.object(s, m, name, out);
        }
    }

    fn type_check(&self, types: &[&str], v: &Value, name: &Name<'_>, out: &mut Outcome) {
        if types.is_empty() {
            return;
        }
        let actual = json_type(v);
        let float_int = actual == "number"
            && types.contains(&"integer")
            && v.as_f64().is_some_and(is_json_integer);
        let int_float = actual == "integer" && types.contains(&"number");
        if !(types.contains(&actual) || float_int || int_float) {
            self.type_invalid(out, name, &types.join(","), actual);
        }
    }

    fn composition(&self, s: &Schema, v: &Value, name: &Name<'_>, out: &mut Outcome) {
        let quoted = || go_q(&name.to_string());
        if !s.all_of.is_empty() {
            let mut valid = 0;
            for sub in &s.all_of {
                let mut r = Outcome::default();
                self.value(sub, v, name, &mut r);
                if r.errors.is_empty() {
                    valid += 1;
                }
                out.merge(r);
            }
            if valid != s.all_of.len() {
                let extra = if valid == 0 { "Found none valid" } else { "" };
                let m = format!("{} must validate all the schemas (allOf){extra}", quoted());
                self.composite(out, name, m);
            }
        }
        if !s.any_of.is_empty() {
            let mut best: Option<Outcome> = None;
            let mut ok = false;
            for sub in &s.any_of {
                let mut r = Outcome::default();
                self.value(sub, v, name, &mut r);
                if r.errors.is_empty() {
                    ok = true;
                    best = None;
                    break;
                }
                if best
                    .as_ref()
                    .is_none_or(|b| r.errors.len() < b.errors.len())
                {
                    best = Some(r);
                }
            }
            if !ok {
                let m = format!("{} must validate at least one schema (anyOf)", quoted());
                self.composite(out, name, m);
            }
            if let Some(b) = best {
                out.merge(b);
            }
        }
        if !s.one_of.is_empty() {
            let mut valid = 0;
            let mut best: Option<Outcome> = None;
            for sub in &s.one_of {
                let mut r = Outcome::default();
                self.value(sub, v, name, &mut r);
                if r.errors.is_empty() {
                    valid += 1;
                } else if best
                    .as_ref()
                    .is_none_or(|b| r.errors.len() < b.errors.len())
                {
                    best = Some(r);
                }
            }
            if valid != 1 {
                let extra = if valid == 0 {
                    "Found none valid".to_string()
                } else {
                    format!("Found {valid} valid alternatives")
                };
                let m = format!(
                    "{} must validate one and only one schema (oneOf). {extra}",
                    quoted()
                );
                self.composite(out, name, m);
                if valid == 0
                    && let Some(b) = best
                {
                    out.merge(b);
                }
            }
        }
        if let Some(not) = &s.not {
            let mut r = Outcome::default();
            self.value(not, v, name, &mut r);
            if r.errors.is_empty() {
                let m = format!("{} must not validate the schema (not)", quoted());
                self.composite(out, name, m);
            }
        }
    }

    fn string(&self, s: &Schema, st: &str, name: &Name<'_>, out: &mut Outcome) {
        let len = st.chars().count() as i64;
        if let Some(max) = s.max_length
            && len > max
        {
            self.push(
                out,
                name,
                FieldError::too_long(&self.field(name), usize::try_from(max).unwrap_or(0)),
            );
        }
        if let Some(min) = s.min_length
            && len < min
        {
            let m = Self::msg(name, format_args!("should be at least {min} chars long"));
            self.invalid(out, name, Value::String(st.to_string()), m);
        }
        if let Some(p) = &s.pattern {
            let ok = s.pattern_re.as_ref().is_some_and(|re| re.is_match(st));
            if !ok {
                let m = Self::msg(name, format_args!("should match '{p}'"));
                self.invalid(out, name, Value::String(st.to_string()), m);
            }
        }
    }

    fn number(&self, s: &Schema, f: f64, v: &Value, name: &Name<'_>, out: &mut Outcome) {
        if let Some(factor) = s.multiple_of {
            if factor <= 0.0 {
                let m = format!(
                    "factor MultipleOf declared for {name} must be positive: {}",
                    go_float(factor)
                );
                self.invalid(out, name, v.clone(), m);
            } else {
                let mult = if factor < 1.0 {
                    (1.0 / factor) * f
                } else {
                    f / factor
                };
                if !is_json_integer(mult) {
                    let m = Self::msg(
                        name,
                        format_args!("should be a multiple of {}", go_float(factor)),
                    );
                    self.invalid(out, name, v.clone(), m);
                }
            }
        }
        if let Some(max) = s.maximum {
            let bad = if s.exclusive_maximum {
                f >= max
            } else {
                f > max
            };
            if bad {
                let rel = if s.exclusive_maximum {
                    "less than"
                } else {
                    "less than or equal to"
                };
                let m = Self::msg(name, format_args!("should be {rel} {}", go_float(max)));
                self.invalid(out, name, v.clone(), m);
            }
        }
        if let Some(min) = s.minimum {
            let bad = if s.exclusive_minimum {
                f <= min
            } else {
                f < min
            };
            if bad {
                let rel = if s.exclusive_minimum {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                let m = Self::msg(name, format_args!("should be {rel} {}", go_float(min)));
                self.invalid(out, name, v.clone(), m);
            }
        }
    }

    fn array(&self, s: &Schema, a: &[Value], name: &Name<'_>, out: &mut Outcome) {
        if let Some(items) = &s.items {
            for (i, x) in a.iter().enumerate() {
                self.value(items, x, &Name::Index(name, i), out);
            }
        }
        let size = a.len() as i64;
        if let Some(min) = s.min_items
            && size < min
        {
            let m = Self::msg(name, format_args!("should have at least {min} items"));
            self.invalid(out, name, Value::from(size), m);
        }
        if let Some(max) = s.max_items
            && size > max
        {
            self.push(
                out,
                name,
                FieldError::too_many(&self.field(name), size, usize::try_from(max).unwrap_or(0)),
            );
        }
        if s.unique_items {
            let mut seen = Vec::with_capacity(a.len());
            let dup = a.iter().any(|x| {
                let d = seen.iter().any(|y| json_equal(x, y));
                seen.push(x.clone());
                d
            });
            if dup {
                let m = Self::msg(name, format_args!("shouldn't contain duplicates"));
                self.invalid(out, name, Value::String(String::new()), m);
            }
        }
    }

    fn enumeration(&self, s: &Schema, v: &Value, name: &Name<'_>, out: &mut Outcome) {
        let Some(values) = &s.enum_values else {
            return;
        };
        if values.is_empty() || values.iter().any(|e| json_equal(e, v)) {
            return;
        }
        let supported: Vec<String> = values
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let refs: Vec<&str> = supported.iter().map(String::as_str).collect();
        self.push(
            out,
            name,
            FieldError::not_supported(&self.field(name), v.clone(), &refs),
        );
    }

    fn object(
        &self,
        s: &Schema,
        m: &serde_json::Map<String, Value>,
        name: &Name<'_>,
        out: &mut Outcome,
    ) {
        let n = m.len() as i64;
        if let Some(min) = s.min_properties
            && n < min
        {
            let msg = Self::msg(name, format_args!("should have at least {min} properties"));
            self.invalid(out, name, Value::from(n), msg);
            return;
        }
        if let Some(max) = s.max_properties
            && n > max
        {
            self.push(
                out,
                name,
                FieldError::too_many(&self.field(name), n, usize::try_from(max).unwrap_or(0)),
            );
            return;
        }
        let child = |k| Name::Field(name, k);
        match &s.additional_properties {
            Some(Additional::Bool(false)) => {
                for k in m.keys() {
                    if s.property(k).is_none() {
                        let msg = format!("{name}.{k} in body is a forbidden property");
                        self.invalid(out, name, Value::String(k.clone()), msg);
                    }
                }
            }
            Some(Additional::Schema(ap)) => {
                for (k, v) in m {
                    if s.property(k).is_none() {
                        self.value(ap, v, &child(k), out);
                    }
                }
            }
            _ => {}
        }
        if let Some(props) = &s.properties {
            for (k, ps) in props {
                if let Some(v) = m.get(k) {
                    self.value(ps, v, &child(k), out);
                }
            }
        }
        for k in &s.required {
            if !m.contains_key(k) {
                self.push(out, name, FieldError::required(&self.field(&child(k)), ""));
            }
        }
    }
}

/// Go's `%q` of a string.
fn go_q(s: &str) -> String {
    rkube_validation::go_quote(s)
}

/// JSON equality with numbers compared by value (1 == 1.0), as Go's
/// reflect.DeepEqual after kube-openapi's enum conversions.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| json_equal(p, q)))
        }
        _ => a == b,
    }
}
