//! Schema-driven decoding of protobuf messages into upstream JSON.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::schema::MESSAGES;
use crate::types::{Card, Field, Special, Ty};
use crate::wire::{self, Value as Wire};
use crate::{DecodeError, wellknown};

/// Nesting limit: deeper input is rejected rather than risking the stack.
const MAX_DEPTH: u32 = 256;

pub(crate) struct Envelope<'a> {
    pub api_version: String,
    pub kind: String,
    pub raw: &'a [u8],
    pub content_encoding: String,
}

/// Parse a `runtime.Unknown` (the bytes after the magic prefix).
pub(crate) fn envelope(buf: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let mut env = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
    };
    for item in wire::fields(buf) {
        match item? {
            (1, Wire::Len(tm)) => {
                for item in wire::fields(tm) {
                    match item? {
                        (1, Wire::Len(b)) => env.api_version = utf8(b),
                        (2, Wire::Len(b)) => env.kind = utf8(b),
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(b)) => env.raw = b,
            (3, Wire::Len(b)) => env.content_encoding = utf8(b),
            (4, Wire::Len(_)) => {}
            (1..=4, w) => {
                return Err(DecodeError::Malformed(format!(
                    "runtime.Unknown: unexpected wire type {}",
                    w.wire_type()
                )));
            }
            _ => {}
        }
    }
    Ok(env)
}

fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Decode message `idx` from `buf` into its JSON value.
pub(crate) fn message(idx: u16, buf: &[u8], depth: u32) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::Malformed("message nesting too deep".into()));
    }
    let msg = &MESSAGES[usize::from(idx)];
    if msg.special != Special::None {
        return wellknown::decode(msg, buf, depth).map_err(|e| at(e, msg.name));
    }
    let mut out = Map::new();
    fields_into(idx, buf, depth, &mut out).map_err(|e| at(e, msg.name))?;
    Ok(Value::Object(out))
}

/// Decode the fields of message `idx` into `out` (shared by inline fields).
pub(crate) fn fields_into(
    idx: u16,
    buf: &[u8],
    depth: u32,
    out: &mut Map<String, Value>,
) -> Result<(), DecodeError> {
    let msg = &MESSAGES[usize::from(idx)];
    for item in wire::fields(buf) {
        let (tag, w) = item?;
        let Some(f) = msg.field(tag) else { continue };
        field(f, w, depth, out).map_err(|e| at(e, f.json))?;
    }
    for f in msg.fields {
        if f.omit_zero && f.card == Card::One && out.get(f.json).is_some_and(is_zero) {
            out.remove(f.json);
        }
    }
    Ok(())
}

fn field(
    f: &Field,
    w: Wire<'_>,
    depth: u32,
    out: &mut Map<String, Value>,
) -> Result<(), DecodeError> {
    match f.card {
        Card::One => {
            let v = value(f.ty, w, depth)?;
            out.insert(f.json.to_owned(), v);
        }
        Card::Inline => {
            let (Ty::M(idx), Wire::Len(b)) = (f.ty, w) else {
                return Err(wire_mismatch(f.ty, w));
            };
            fields_into(idx, b, depth + 1, out)?;
        }
        Card::Rep => {
            let slot = out
                .entry(f.json.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(items) = slot else {
                unreachable!("repeated field slot is always an array")
            };
            match (f.ty, w) {
                // Packed encoding of a repeated scalar.
                (ty, Wire::Len(b)) if is_numeric(ty) => {
                    let mut r = wire::Reader::new(b);
                    while !r.is_empty() {
                        let item = match ty {
                            Ty::F64 => Wire::Fixed64(u64::from_le_bytes(
                                r.take(8)?.try_into().expect("8 bytes"),
                            )),
                            Ty::F32 => Wire::Fixed32(u32::from_le_bytes(
                                r.take(4)?.try_into().expect("4 bytes"),
                            )),
                            _ => Wire::Varint(r.varint()?),
                        };
                        items.push(value(ty, item, depth)?);
                    }
                }
                (ty, w) => items.push(value(ty, w, depth)?),
            }
        }
        Card::Map => {
            let Wire::Len(entry) = w else {
                return Err(wire_mismatch(Ty::Bytes, w));
            };
            let (mut key, mut val) = (String::new(), None);
            for item in wire::fields(entry) {
                match item? {
                    (1, Wire::Len(b)) => key = utf8(b),
                    (1, w) => return Err(wire_mismatch(Ty::Str, w)),
                    (2, w) => val = Some(value(f.ty, w, depth)?),
                    _ => {}
                }
            }
            let val = match val {
                Some(v) => v,
                None => zero(f.ty, depth)?,
            };
            let slot = out
                .entry(f.json.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(map) = slot else {
                unreachable!("map field slot is always an object")
            };
            map.insert(key, val);
        }
    }
    Ok(())
}

fn is_numeric(ty: Ty) -> bool {
    !matches!(ty, Ty::Str | Ty::Bytes | Ty::M(_))
}

/// The JSON value of one scalar or message on the wire.
pub(crate) fn value(ty: Ty, w: Wire<'_>, depth: u32) -> Result<Value, DecodeError> {
    Ok(match (ty, w) {
        (Ty::Str, Wire::Len(b)) => Value::String(utf8(b)),
        (Ty::Bytes, Wire::Len(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Ty::M(idx), Wire::Len(b)) => message(idx, b, depth + 1)?,
        (Ty::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        (Ty::I32, Wire::Varint(v)) => Value::from(v as i64 as i32),
        (Ty::I64, Wire::Varint(v)) => Value::from(v as i64),
        (Ty::U32, Wire::Varint(v)) => Value::from(v as u32),
        (Ty::U64, Wire::Varint(v)) => Value::from(v),
        (Ty::F64, Wire::Fixed64(v)) => float(f64::from_bits(v))?,
        (Ty::F32, Wire::Fixed32(v)) => float(f64::from(f32::from_bits(v)))?,
        (ty, w) => return Err(wire_mismatch(ty, w)),
    })
}

/// The JSON of a value absent from a map entry (Go's zero value).
fn zero(ty: Ty, depth: u32) -> Result<Value, DecodeError> {
    Ok(match ty {
        Ty::Str | Ty::Bytes => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::F64 | Ty::F32 => Value::from(0.0),
        Ty::M(idx) => message(idx, &[], depth + 1)?,
        _ => Value::from(0),
    })
}

fn float(v: f64) -> Result<Value, DecodeError> {
    // Go's encoding/json writes integral floats without a fraction.
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return Ok(Value::from(v as i64));
    }
    Number::from_f64(v)
        .map(Value::Number)
        .ok_or_else(|| DecodeError::Malformed(format!("unsupported float value {v}")))
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn wire_mismatch(ty: Ty, w: Wire<'_>) -> DecodeError {
    DecodeError::Malformed(format!(
        "wire type {} does not fit a {ty:?} field",
        w.wire_type()
    ))
}

/// Prefix an error with the field or message it happened in.
fn at(e: DecodeError, name: &str) -> DecodeError {
    match e {
        DecodeError::Field { path, message } => DecodeError::Field {
            path: format!("{name}.{path}"),
            message,
        },
        DecodeError::Truncated => DecodeError::Field {
            path: name.to_owned(),
            message: "truncated input".into(),
        },
        DecodeError::Malformed(message) => DecodeError::Field {
            path: name.to_owned(),
            message,
        },
        other => other,
    }
}
