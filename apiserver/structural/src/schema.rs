//! The parsed form of an `openAPIV3Schema` (upstream `JSONSchemaProps`),
//! read leniently from JSON: a keyword of the wrong JSON type is recorded
//! in `bad` and reported by the CRD checks instead of being dropped silently.

use regex::Regex;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `additionalProperties`: a boolean or a schema.
#[derive(Debug, Clone)]
pub(crate) enum Additional {
    Bool(bool),
    Schema(Box<Schema>),
}

/// One `x-kubernetes-validations` entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleSpec {
    pub rule: String,
    pub message: String,
    pub message_expression: String,
    pub reason: Option<String>,
    pub field_path: String,
    pub optional_old_self: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Schema {
    pub ty: String,
    pub format: String,
    pub title: String,
    pub description: String,
    pub nullable: bool,
    pub default: Option<Value>,
    pub enum_values: Option<Vec<Value>>,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub multiple_of: Option<f64>,
    pub max_length: Option<i64>,
    pub min_length: Option<i64>,
    pub pattern: Option<String>,
    /// Compiled `pattern` (None when absent or invalid).
    pub pattern_re: Option<Regex>,
    pub max_items: Option<i64>,
    pub min_items: Option<i64>,
    pub unique_items: bool,
    pub max_properties: Option<i64>,
    pub min_properties: Option<i64>,
    pub required: Vec<String>,
    /// `None` when the keyword is absent (Go's nil map), `Some` even if empty.
    pub properties: Option<BTreeMap<String, Schema>>,
    pub additional_properties: Option<Additional>,
    pub items: Option<Box<Schema>>,
    /// `items` given as an array of schemas (forbidden).
    pub items_array: bool,
    pub all_of: Vec<Schema>,
    pub any_of: Vec<Schema>,
    pub one_of: Vec<Schema>,
    pub not: Option<Box<Schema>>,
    pub preserve_unknown_fields: Option<bool>,
    pub embedded_resource: bool,
    pub int_or_string: bool,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub map_type: Option<String>,
    pub validations: Vec<RuleSpec>,
    /// `validations` compiled (filled by `cel::compile`).
    pub rules: Vec<std::sync::Arc<crate::cel::Rule>>,
    /// The subtree (this node included) has compiled rules.
    pub has_rules: bool,
    /// The only fields of `self`/`oldSelf` this node's rules read, when
    /// they only ever select fields (`None`: the whole value is needed).
    pub rule_fields: Option<std::collections::BTreeSet<String>>,
    /// The subtree (this node included) has set/map list types.
    pub has_list_types: bool,
    /// The subtree (this node included) has embedded resources.
    pub has_embedded: bool,
    /// Keywords that CRD schemas may not use, as present.
    pub has_ref: bool,
    pub has_id: bool,
    pub has_additional_items: bool,
    pub has_pattern_properties: bool,
    pub has_definitions: bool,
    pub has_dependencies: bool,
    /// Keywords with a value of the wrong JSON type: (keyword, value, expected).
    pub bad: Vec<(String, Value, &'static str)>,
}

impl Schema {
    pub fn parse(v: &Value) -> Schema {
        let mut s = Schema::default();
        let Some(m) = v.as_object() else {
            s.bad.push((String::new(), v.clone(), "object"));
            return s;
        };
        s.ty = string(&mut s.bad, m, "type").unwrap_or_default();
        s.format = string(&mut s.bad, m, "format").unwrap_or_default();
        s.title = string(&mut s.bad, m, "title").unwrap_or_default();
        s.description = string(&mut s.bad, m, "description").unwrap_or_default();
        s.nullable = boolean(&mut s.bad, m, "nullable").unwrap_or(false);
        s.default = m.get("default").filter(|d| !d.is_null()).cloned();
        s.enum_values = match m.get("enum") {
            Some(Value::Array(a)) => Some(a.clone()),
            Some(Value::Null) | None => None,
            Some(other) => {
                s.bad.push(("enum".into(), other.clone(), "array"));
                None
            }
        };
        s.maximum = number(&mut s.bad, m, "maximum");
        s.exclusive_maximum = boolean(&mut s.bad, m, "exclusiveMaximum").unwrap_or(false);
        s.minimum = number(&mut s.bad, m, "minimum");
        s.exclusive_minimum = boolean(&mut s.bad, m, "exclusiveMinimum").unwrap_or(false);
        s.multiple_of = number(&mut s.bad, m, "multipleOf");
        s.max_length = integer(&mut s.bad, m, "maxLength");
        s.min_length = integer(&mut s.bad, m, "minLength");
        s.pattern = string(&mut s.bad, m, "pattern");
        s.pattern_re = s.pattern.as_deref().and_then(|p| Regex::new(p).ok());
        s.max_items = integer(&mut s.bad, m, "maxItems");
        s.min_items = integer(&mut s.bad, m, "minItems");
        s.unique_items = boolean(&mut s.bad, m, "uniqueItems").unwrap_or(false);
        s.max_properties = integer(&mut s.bad, m, "maxProperties");
        s.min_properties = integer(&mut s.bad, m, "minProperties");
        s.required = strings(&mut s.bad, m, "required");
        s.properties = match m.get("properties") {
            Some(Value::Object(p)) => Some(
                p.iter()
                    .map(|(k, v)| (k.clone(), Schema::parse(v)))
                    .collect(),
            ),
            Some(Value::Null) | None => None,
            Some(other) => {
                s.bad.push(("properties".into(), other.clone(), "object"));
                None
            }
        };
        s.additional_properties = match m.get("additionalProperties") {
            Some(Value::Bool(b)) => Some(Additional::Bool(*b)),
            Some(v @ Value::Object(_)) => Some(Additional::Schema(Box::new(Schema::parse(v)))),
            Some(Value::Null) | None => None,
            Some(other) => {
                s.bad
                    .push(("additionalProperties".into(), other.clone(), "object"));
                None
            }
        };
        match m.get("items") {
            Some(v @ Value::Object(_)) => s.items = Some(Box::new(Schema::parse(v))),
            // An array of schemas (tuple validation) is refused by the CRD checks.
            Some(Value::Array(a)) => s.items_array = !a.is_empty(),
            Some(Value::Null) | None => {}
            Some(other) => s.bad.push(("items".into(), other.clone(), "object")),
        }
        s.all_of = list(&mut s.bad, m, "allOf");
        s.any_of = list(&mut s.bad, m, "anyOf");
        s.one_of = list(&mut s.bad, m, "oneOf");
        s.not = match m.get("not") {
            Some(v @ Value::Object(_)) => Some(Box::new(Schema::parse(v))),
            Some(Value::Null) | None => None,
            Some(other) => {
                s.bad.push(("not".into(), other.clone(), "object"));
                None
            }
        };
        s.preserve_unknown_fields = boolean(&mut s.bad, m, "x-kubernetes-preserve-unknown-fields");
        s.embedded_resource =
            boolean(&mut s.bad, m, "x-kubernetes-embedded-resource").unwrap_or(false);
        s.int_or_string = boolean(&mut s.bad, m, "x-kubernetes-int-or-string").unwrap_or(false);
        s.list_type = string(&mut s.bad, m, "x-kubernetes-list-type");
        s.list_map_keys = strings(&mut s.bad, m, "x-kubernetes-list-map-keys");
        s.map_type = string(&mut s.bad, m, "x-kubernetes-map-type");
        s.validations = match m.get("x-kubernetes-validations") {
            Some(Value::Array(a)) => a.iter().map(rule_spec).collect(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => {
                s.bad
                    .push(("x-kubernetes-validations".into(), other.clone(), "array"));
                Vec::new()
            }
        };
        s.has_ref = m.get("$ref").is_some_and(|v| !v.is_null());
        s.has_id = m
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty());
        s.has_additional_items = m.get("additionalItems").is_some_and(|v| !v.is_null());
        s.has_pattern_properties = m
            .get("patternProperties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
        s.has_definitions = m
            .get("definitions")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
        s.has_dependencies = m.get("dependencies").is_some_and(|v| !v.is_null());
        let (lists, embedded) = {
            let mut children = s
                .items
                .iter()
                .map(|b| &**b)
                .chain(s.properties.iter().flat_map(|p| p.values()))
                .chain(s.additional_schema());
            children
                .try_fold((false, false), |(l, e), c| {
                    let acc = (l || c.has_list_types, e || c.has_embedded);
                    if acc == (true, true) { None } else { Some(acc) }
                })
                .unwrap_or((true, true))
        };
        s.has_list_types = matches!(s.list_type.as_deref(), Some("set" | "map")) || lists;
        s.has_embedded = s.embedded_resource || embedded;
        s
    }

    pub fn property(&self, k: &str) -> Option<&Schema> {
        self.properties.as_ref().and_then(|p| p.get(k))
    }

    pub fn has_properties(&self) -> bool {
        self.properties.as_ref().is_some_and(|p| !p.is_empty())
    }

    pub fn preserves_unknown(&self) -> bool {
        self.preserve_unknown_fields == Some(true)
    }

    /// Schema of the values of an object's unknown keys (`additionalProperties: {...}`).
    pub fn additional_schema(&self) -> Option<&Schema> {
        match &self.additional_properties {
            Some(Additional::Schema(s)) => Some(s),
            _ => None,
        }
    }

    /// Schema for key `k` of an object: its property, else `additionalProperties`.
    pub fn child(&self, k: &str) -> Option<&Schema> {
        self.property(k).or_else(|| self.additional_schema())
    }
}

fn rule_spec(v: &Value) -> RuleSpec {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    RuleSpec {
        rule: s("rule"),
        message: s("message"),
        message_expression: s("messageExpression"),
        reason: v.get("reason").and_then(Value::as_str).map(str::to_string),
        field_path: s("fieldPath"),
        optional_old_self: v.get("optionalOldSelf").and_then(Value::as_bool),
    }
}

type Bad = Vec<(String, Value, &'static str)>;

fn string(bad: &mut Bad, m: &Map<String, Value>, k: &str) -> Option<String> {
    match m.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => {
            bad.push((k.into(), other.clone(), "string"));
            None
        }
    }
}

fn boolean(bad: &mut Bad, m: &Map<String, Value>, k: &str) -> Option<bool> {
    match m.get(k) {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::Null) | None => None,
        Some(other) => {
            bad.push((k.into(), other.clone(), "boolean"));
            None
        }
    }
}

fn number(bad: &mut Bad, m: &Map<String, Value>, k: &str) -> Option<f64> {
    match m.get(k) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::Null) | None => None,
        Some(other) => {
            bad.push((k.into(), other.clone(), "number"));
            None
        }
    }
}

fn integer(bad: &mut Bad, m: &Map<String, Value>, k: &str) -> Option<i64> {
    match m.get(k) {
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(Value::Null) | None => None,
        Some(other) => {
            bad.push((k.into(), other.clone(), "integer"));
            None
        }
    }
}

fn strings(bad: &mut Bad, m: &Map<String, Value>, k: &str) -> Vec<String> {
    match m.get(k) {
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => {
            bad.push((k.into(), other.clone(), "array of strings"));
            Vec::new()
        }
    }
}

fn list(bad: &mut Bad, m: &Map<String, Value>, k: &str) -> Vec<Schema> {
    match m.get(k) {
        Some(Value::Array(a)) => a.iter().map(Schema::parse).collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => {
            bad.push((k.into(), other.clone(), "array"));
            Vec::new()
        }
    }
}
