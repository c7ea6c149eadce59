//! RFC 6902 JSON patch (`application/json-patch+json`).
//!
//! Operations run against a private copy of the document, which is returned
//! only when every operation succeeded: a failing `test` (or any other error)
//! leaves the caller's object untouched, as upstream requires.

use serde_json::{Map, Value};

use crate::error::PatchError;

/// Applies the JSON patch `patch` (an array of operations) to `doc`.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::bad("json patch must be an array of operations"));
    };
    let mut out = doc.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_op(&mut out, op).map_err(|e| match e {
            PatchError::BadPatch(m) => PatchError::BadPatch(format!("operation {i}: {m}")),
            other => other,
        })?;
    }
    Ok(out)
}

fn member<'a>(op: &'a Map<String, Value>, name: &str, kind: &str) -> Result<&'a Value, PatchError> {
    op.get(name)
        .ok_or_else(|| PatchError::bad(format!("{kind} operation missing \"{name}\"")))
}

fn string_member<'a>(
    op: &'a Map<String, Value>,
    name: &str,
    kind: &str,
) -> Result<&'a str, PatchError> {
    member(op, name, kind)?
        .as_str()
        .ok_or_else(|| PatchError::bad(format!("{kind} operation: \"{name}\" must be a string")))
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), PatchError> {
    let Value::Object(op) = op else {
        return Err(PatchError::bad("operation must be an object"));
    };
    let kind = op
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| PatchError::bad("operation missing string \"op\""))?;
    let path = parse_pointer(string_member(op, "path", kind)?)?;
    match kind {
        "add" => add(doc, &path, member(op, "value", kind)?.clone(), kind),
        "remove" => remove(doc, &path, kind).map(drop),
        "replace" => {
            let value = member(op, "value", kind)?.clone();
            let target = get_mut(doc, &path).ok_or_else(|| missing(kind, &path))?;
            *target = value;
            Ok(())
        }
        "move" => {
            let from = parse_pointer(string_member(op, "from", kind)?)?;
            if path.len() > from.len() && path[..from.len()] == from[..] {
                return Err(PatchError::na(format!(
                    "move operation: cannot move {} into its own child {}",
                    render(&from),
                    render(&path)
                )));
            }
            if from == path {
                return get_mut(doc, &from)
                    .map(drop)
                    .ok_or_else(|| missing(kind, &from));
            }
            let value = remove(doc, &from, kind)?;
            add(doc, &path, value, kind)
        }
        "copy" => {
            let from = parse_pointer(string_member(op, "from", kind)?)?;
            let value = get_mut(doc, &from)
                .ok_or_else(|| missing(kind, &from))?
                .clone();
            add(doc, &path, value, kind)
        }
        "test" => {
            let expected = member(op, "value", kind)?;
            let actual = get_mut(doc, &path).ok_or_else(|| missing(kind, &path))?;
            if json_equal(actual, expected) {
                Ok(())
            } else {
                Err(PatchError::na(format!(
                    "test operation failed: value at {} is not equal to the expected value",
                    render(&path)
                )))
            }
        }
        other => Err(PatchError::bad(format!(
            "unexpected operation kind {other:?}"
        ))),
    }
}

/// Parses an RFC 6901 pointer into unescaped reference tokens.
fn parse_pointer(p: &str) -> Result<Vec<String>, PatchError> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(PatchError::bad(format!(
            "invalid JSON pointer {p:?}: must be empty or start with '/'"
        )));
    };
    rest.split('/')
        .map(|tok| {
            let mut out = String::with_capacity(tok.len());
            let mut chars = tok.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => {
                            return Err(PatchError::bad(format!(
                                "invalid JSON pointer {p:?}: bad '~' escape"
                            )));
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

/// Re-escapes tokens for messages.
fn render(path: &[String]) -> String {
    path.iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

fn missing(kind: &str, path: &[String]) -> PatchError {
    PatchError::na(format!(
        "{kind} operation does not apply: doc is missing path: {:?}",
        render(path)
    ))
}

/// Array index per RFC 6901: digits only, no leading zeros.
fn parse_index(tok: &str) -> Option<usize> {
    if tok.is_empty()
        || !tok.bytes().all(|b| b.is_ascii_digit())
        || (tok.len() > 1 && tok.starts_with('0'))
    {
        return None;
    }
    tok.parse().ok()
}

fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for tok in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(tok)?,
            Value::Array(a) => a.get_mut(parse_index(tok)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn add(doc: &mut Value, path: &[String], value: Value, kind: &str) -> Result<(), PatchError> {
    let Some((last, parent_path)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    let parent = get_mut(doc, parent_path).ok_or_else(|| missing(kind, path))?;
    match parent {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let idx = if last == "-" {
                a.len()
            } else {
                parse_index(last).ok_or_else(|| {
                    PatchError::na(format!(
                        "{kind} operation does not apply: invalid array index {last:?} at {:?}",
                        render(path)
                    ))
                })?
            };
            if idx > a.len() {
                return Err(PatchError::na(format!(
                    "{kind} operation does not apply: index {idx} out of bounds at {:?}",
                    render(path)
                )));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(missing(kind, path)),
    }
}

fn remove(doc: &mut Value, path: &[String], kind: &str) -> Result<Value, PatchError> {
    let Some((last, parent_path)) = path.split_last() else {
        return Err(PatchError::na(format!(
            "{kind} operation does not apply: cannot remove the whole document"
        )));
    };
    let parent = get_mut(doc, parent_path).ok_or_else(|| missing(kind, path))?;
    match parent {
        Value::Object(m) => m.remove(last).ok_or_else(|| missing(kind, path)),
        Value::Array(a) => match parse_index(last) {
            Some(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(missing(kind, path)),
        },
        _ => Err(missing(kind, path)),
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}
