//! Messages with a custom JSON form (`Special`): times, durations, quantities,
//! int-or-strings, embedded JSON and the apiextensions schema unions.

use serde_json::Value;

use crate::DecodeError;
use crate::types::{Message, Special};
use crate::wire::{self, Value as Wire};

pub(crate) fn decode(msg: &Message, buf: &[u8], depth: u32) -> Result<Value, DecodeError> {
    match msg.special {
        Special::None => unreachable!("plain messages are decoded by decode::message"),
        Special::Time | Special::MicroTime => {
            if buf.is_empty() {
                // Go's zero time.Time marshals as an empty message and to JSON as null.
                return Ok(Value::Null);
            }
            let (mut secs, mut nanos) = (0i64, 0i32);
            for item in wire::fields(buf) {
                match item? {
                    (1, Wire::Varint(v)) => secs = v as i64,
                    (2, Wire::Varint(v)) => nanos = v as i64 as i32,
                    _ => {}
                }
            }
            let micros = (msg.special == Special::MicroTime).then_some(nanos);
            Ok(Value::String(format_time(secs, micros)?))
        }
        Special::Duration => {
            let mut ns = 0i64;
            for item in wire::fields(buf) {
                if let (1, Wire::Varint(v)) = item? {
                    ns = v as i64;
                }
            }
            Ok(Value::String(go_duration(ns)))
        }
        Special::Quantity => {
            let mut s = None;
            for item in wire::fields(buf) {
                if let (1, Wire::Len(b)) = item? {
                    s = Some(String::from_utf8_lossy(b).into_owned());
                }
            }
            // A zero resource.Quantity prints as "0".
            Ok(Value::String(
                s.filter(|s| !s.is_empty()).unwrap_or_else(|| "0".into()),
            ))
        }
        Special::IntOrString => {
            let (mut ty, mut int_val, mut str_val) = (0i64, 0i32, String::new());
            for item in wire::fields(buf) {
                match item? {
                    (1, Wire::Varint(v)) => ty = v as i64,
                    (2, Wire::Varint(v)) => int_val = v as i64 as i32,
                    (3, Wire::Len(b)) => str_val = String::from_utf8_lossy(b).into_owned(),
                    _ => {}
                }
            }
            Ok(match ty {
                0 => Value::from(int_val),
                1 => Value::String(str_val),
                t => {
                    return Err(DecodeError::Malformed(format!(
                        "IntOrString has invalid type {t}"
                    )));
                }
            })
        }
        Special::RawJson | Special::RawExtension => {
            let mut raw: &[u8] = &[];
            for item in wire::fields(buf) {
                if let (1, Wire::Len(b)) = item? {
                    raw = b;
                }
            }
            if raw.is_empty() {
                return Ok(Value::Null);
            }
            if msg.special == Special::RawExtension && raw.starts_with(crate::MAGIC) {
                return crate::decode(raw);
            }
            serde_json::from_slice(raw)
                .map_err(|e| DecodeError::Malformed(format!("embedded JSON is invalid: {e}")))
        }
        Special::StringArray => {
            let mut items = Vec::new();
            for item in wire::fields(buf) {
                match item? {
                    (1, Wire::Len(b)) => {
                        items.push(Value::String(String::from_utf8_lossy(b).into_owned()))
                    }
                    (1, w) => {
                        return Err(DecodeError::Malformed(format!(
                            "string list item has wire type {}",
                            w.wire_type()
                        )));
                    }
                    _ => {}
                }
            }
            Ok(Value::Array(items))
        }
        Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => {
            // Decode the union's fields by tag, then apply the Go MarshalJSON rules.
            let mut by_tag: [Option<Value>; 3] = [None, None, None];
            for item in wire::fields(buf) {
                let (tag, w) = item?;
                let Some(f) = msg.field(tag) else { continue };
                let v = crate::decode::value(f.ty, w, depth)?;
                let slot = &mut by_tag[(tag as usize).min(2)];
                match (f.card, slot.as_mut()) {
                    (crate::Card::Rep, Some(Value::Array(a))) => a.push(v),
                    (crate::Card::Rep, _) => *slot = Some(Value::Array(vec![v])),
                    _ => *slot = Some(v),
                }
            }
            let [_, one, two] = by_tag;
            let non_empty = |v: &Option<Value>| matches!(v, Some(Value::Array(a)) if !a.is_empty());
            Ok(match msg.special {
                // JSONSchemaPropsOrArray {schema = 1, jSONSchemas = 2}
                Special::SchemaOrArray if non_empty(&two) => two.unwrap_or(Value::Null),
                Special::SchemaOrArray => one.unwrap_or(Value::Null),
                // JSONSchemaPropsOrBool {allows = 1, schema = 2}
                Special::SchemaOrBool => match two {
                    Some(schema) => schema,
                    None => one.unwrap_or(Value::Bool(false)),
                },
                // JSONSchemaPropsOrStringArray {schema = 1, property = 2}
                _ if non_empty(&two) => two.unwrap_or(Value::Null),
                _ => one.unwrap_or(Value::Null),
            })
        }
    }
}

/// Format Unix seconds as Go's `time.RFC3339` in UTC, or with `Some(nanos)` as
/// `RFC3339Micro` (metav1.MicroTime).
pub(crate) fn format_time(secs: i64, micro_nanos: Option<i32>) -> Result<String, DecodeError> {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return Err(DecodeError::Malformed(format!(
            "time {secs}s is out of range"
        )));
    }
    let (hh, mm, ss) = (tod / 3600, tod / 60 % 60, tod % 60);
    Ok(match micro_nanos {
        None => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
        Some(n) => {
            let us = n.clamp(0, 999_999_999) / 1000;
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{us:06}Z")
        }
    })
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Go's `time.Duration.String()`: "1h2m3.5s", "1.5ms", "0s".
pub(crate) fn go_duration(ns: i64) -> String {
    let neg = ns < 0;
    let mut u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".into(),
            1..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let frac = fraction(&mut u, prec);
        out = format!("{u}{frac}{unit}");
    } else {
        let frac = fraction(&mut u, 9);
        let secs = u % 60;
        u /= 60;
        out.insert_str(0, &format!("{secs}{frac}s"));
        if u > 0 {
            out.insert_str(0, &format!("{}m", u % 60));
            u /= 60;
            if u > 0 {
                out.insert_str(0, &format!("{u}h"));
            }
        }
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Split off `prec` decimal digits of `*u` as ".ddd" without trailing zeros
/// ("" when they are all zero), leaving the integer part in `*u`.
fn fraction(u: &mut u64, prec: u32) -> String {
    let p = 10u64.pow(prec);
    let frac = *u % p;
    *u /= p;
    if frac == 0 {
        return String::new();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!(".{}", digits.trim_end_matches('0'))
}
