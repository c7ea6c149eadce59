//! Field errors rendered exactly like upstream's `field.Error`.

use serde_json::Value;
use std::fmt;

/// Key of the marker object carrying a pre-rendered Go `%#v` value.
const GO_REPR_KEY: &str = "\u{0}goRepr";

/// What went wrong with a field (upstream's `field.ErrorType` plus bad value).
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    Required,
    Invalid(Value),
    NotFound(Value),
    Duplicate(Value),
    /// Bad value and the supported values.
    NotSupported(Value, Vec<String>),
    Forbidden,
    /// Maximum length in bytes.
    TooLong(usize),
    /// Actual quantity (negative: omitted) and maximum.
    TooMany(i64, usize),
    Internal,
}

impl ErrorKind {
    /// Upstream's `causes[].reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid(_) => "FieldValueInvalid",
            ErrorKind::NotFound(_) => "FieldValueNotFound",
            ErrorKind::Duplicate(_) => "FieldValueDuplicate",
            ErrorKind::NotSupported(..) => "FieldValueNotSupported",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::TooLong(_) => "FieldValueTooLong",
            ErrorKind::TooMany(..) => "FieldValueTooMany",
            ErrorKind::Internal => "InternalError",
        }
    }

    /// Upstream's `ErrorType.String()`.
    pub fn type_str(&self) -> &'static str {
        match self {
            ErrorKind::Required => "Required value",
            ErrorKind::Invalid(_) => "Invalid value",
            ErrorKind::NotFound(_) => "Not found",
            ErrorKind::Duplicate(_) => "Duplicate value",
            ErrorKind::NotSupported(..) => "Unsupported value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::TooLong(_) => "Too long",
            ErrorKind::TooMany(..) => "Too many",
            ErrorKind::Internal => "Internal error",
        }
    }
}

/// One field-level validation error.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub kind: ErrorKind,
    pub detail: String,
}

impl FieldError {
    fn new(field: &str, kind: ErrorKind, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            kind,
            detail: detail.into(),
        }
    }
    pub fn required(field: &str, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorKind::Required, detail)
    }
    pub fn invalid(field: &str, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorKind::Invalid(value.into()), detail)
    }
    pub fn not_found(field: &str, value: impl Into<Value>) -> Self {
        Self::new(field, ErrorKind::NotFound(value.into()), "")
    }
    pub fn duplicate(field: &str, value: impl Into<Value>) -> Self {
        Self::new(field, ErrorKind::Duplicate(value.into()), "")
    }
    /// `field.NotSupported`: the detail lists the quoted supported values.
    pub fn not_supported(field: &str, value: impl Into<Value>, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| s.to_string()).collect();
        let detail = if list.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = list.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(field, ErrorKind::NotSupported(value.into(), list), detail)
    }
    pub fn forbidden(field: &str, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorKind::Forbidden, detail)
    }
    /// `field.TooLong`: "may not be more than N bytes".
    pub fn too_long(field: &str, max: usize) -> Self {
        Self::new(
            field,
            ErrorKind::TooLong(max),
            format!("may not be more than {max} bytes"),
        )
    }
    /// `field.TooMany`: "must have at most N items".
    pub fn too_many(field: &str, actual: i64, max: usize) -> Self {
        Self::new(
            field,
            ErrorKind::TooMany(actual, max),
            format!("must have at most {max} items"),
        )
    }
    pub fn internal(field: &str, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorKind::Internal, detail)
    }

    /// Upstream's `ErrorBody()`: the message without the field path.
    pub fn body(&self) -> String {
        let mut s = match &self.kind {
            ErrorKind::Invalid(v) | ErrorKind::NotFound(v) | ErrorKind::Duplicate(v) => {
                format!("{}: {}", self.kind.type_str(), render_value(v))
            }
            ErrorKind::NotSupported(v, _) => {
                format!("{}: {}", self.kind.type_str(), render_value(v))
            }
            ErrorKind::TooMany(actual, _) if *actual >= 0 => {
                format!("{}: {}", self.kind.type_str(), actual)
            }
            _ => self.kind.type_str().to_string(),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// Wraps an already rendered Go `%#v` representation so it prints verbatim.
pub fn go_repr(rendered: impl Into<String>) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(GO_REPR_KEY.to_string(), Value::String(rendered.into()));
    Value::Object(m)
}

/// Renders a bad value the way upstream's `ErrorBody` prints it.
pub fn render_value(v: &Value) -> String {
    match v {
        Value::Null => "\"null\"".to_string(),
        Value::String(s) => go_quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Object(m) => match m.get(GO_REPR_KEY) {
            Some(Value::String(s)) if m.len() == 1 => s.clone(),
            _ => go_map(v),
        },
        Value::Array(_) => go_map(v),
    }
}

/// Best-effort `%#v` of a JSON value with no Go type information.
fn go_map(v: &Value) -> String {
    match v {
        Value::Object(m) if m.values().all(|x| x.is_string()) => string_map(Some(v)),
        Value::Array(a) if a.iter().all(|x| x.is_string()) => {
            string_slice(a.iter().filter_map(Value::as_str))
        }
        other => other.to_string(),
    }
}

/// `%#v` of a `map[string]string` (nil when absent or empty-and-null).
pub fn string_map(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    let val = m.get(k).and_then(Value::as_str).unwrap_or("");
                    format!("{}:{}", go_quote(k), go_quote(val))
                })
                .collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// `%#v` of a `[]string`.
pub fn string_slice<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let parts: Vec<String> = items.map(go_quote).collect();
    format!("[]string{{{}}}", parts.join(", "))
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display() {
        assert_eq!(
            FieldError::required("spec.containers[0].image", "").to_string(),
            "spec.containers[0].image: Required value"
        );
        assert_eq!(
            FieldError::invalid(
                "spec.ports[0].port",
                0,
                "must be between 1 and 65535, inclusive"
            )
            .to_string(),
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            FieldError::duplicate("a", "x").to_string(),
            "a: Duplicate value: \"x\""
        );
        assert_eq!(
            FieldError::not_supported("a", "X", &["A", "B"]).to_string(),
            "a: Unsupported value: \"X\": supported values: \"A\", \"B\""
        );
        assert_eq!(
            FieldError::forbidden("a", "nope").to_string(),
            "a: Forbidden: nope"
        );
        assert_eq!(
            FieldError::too_long("[]", 1048576).to_string(),
            "[]: Too long: may not be more than 1048576 bytes"
        );
        assert_eq!(
            FieldError::too_many("a", 3, 2).to_string(),
            "a: Too many: 3: must have at most 2 items"
        );
        assert_eq!(
            FieldError::invalid("a", Value::Null, "x").to_string(),
            "a: Invalid value: \"null\": x"
        );
        assert_eq!(
            FieldError::invalid("l", json!({"b": "2", "a": "1"}), "d").to_string(),
            "l: Invalid value: map[string]string{\"a\":\"1\", \"b\":\"2\"}: d"
        );
        assert_eq!(
            FieldError::required("a", "").kind.reason(),
            "FieldValueRequired"
        );
        assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
    }
}
