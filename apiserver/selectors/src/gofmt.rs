//! Tiny re-implementations of the Go formatting that leaks into upstream's
//! error messages: `%q` for strings, `encoding/json` for string slices, and
//! `field.Error` / `utilerrors.Aggregate` rendering.

use std::fmt::Write;

/// Go's `strconv.Quote` (what `%q` prints for a string).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `strconv.IsPrint` for non-ASCII: control, format,
/// private-use, line/paragraph separators and non-characters are escaped.
fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    !(c.is_control()
        || (0x80..=0xa0).contains(&u)
        || u == 0xad
        || u == 0x1680
        || u == 0x3000
        || (0x2000..=0x200f).contains(&u)
        || (0x2028..=0x202f).contains(&u)
        || u == 0x205f
        || (0x2060..=0x206f).contains(&u)
        || u == 0xfeff
        || (0xfff9..=0xfffb).contains(&u)
        || (0xe000..=0xf8ff).contains(&u)
        || u >= 0xf0000
        || (u & 0xfffe) == 0xfffe)
}

/// Go's `json.Marshal` of a string (HTML-safe escaping included).
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `json.Marshal` of a `[]string`; `None` is a nil slice (`null`).
pub(crate) fn json_string_slice(values: Option<&[String]>) -> String {
    match values {
        None => "null".to_string(),
        Some(vs) => {
            let items: Vec<String> = vs.iter().map(|v| json_string(v)).collect();
            format!("[{}]", items.join(","))
        }
    }
}

/// `field.Invalid(path, value, detail).Error()`; `bad_value` is already
/// rendered (quoted string or JSON).
pub(crate) fn field_invalid(path: &str, bad_value: &str, detail: &str) -> String {
    if detail.is_empty() {
        format!("{path}: Invalid value: {bad_value}")
    } else {
        format!("{path}: Invalid value: {bad_value}: {detail}")
    }
}

/// `field.ErrorList.ToAggregate().Error()`: duplicates dropped, a single
/// message bare, several bracketed and comma separated.
pub(crate) fn aggregate(messages: &[String]) -> Option<String> {
    let mut unique: Vec<&str> = Vec::new();
    for m in messages {
        if !unique.contains(&m.as_str()) {
            unique.push(m);
        }
    }
    match unique.len() {
        0 => None,
        1 => Some(unique[0].to_string()),
        _ => Some(format!("[{}]", unique.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny\u{1}"), r#""x\ny\x01""#);
        assert_eq!(quote("héllo"), "\"héllo\"");
        assert_eq!(quote("\u{200b}"), r#""\u200b""#);
    }

    #[test]
    fn json_matches_go() {
        assert_eq!(json_string_slice(None), "null");
        assert_eq!(json_string_slice(Some(&[])), "[]");
        assert_eq!(
            json_string_slice(Some(&["a".into(), "<b>".into()])),
            r#"["a","\u003cb\u003e"]"#
        );
    }

    #[test]
    fn aggregate_dedups_and_brackets() {
        assert_eq!(aggregate(&[]), None);
        assert_eq!(aggregate(&["a".into(), "a".into()]), Some("a".into()));
        assert_eq!(
            aggregate(&["a".into(), "b".into(), "a".into()]),
            Some("[a, b]".into())
        );
    }
}
