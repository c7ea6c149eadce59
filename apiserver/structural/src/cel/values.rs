//! JSON values as CEL sees them, and old/new correlation.

use super::*;

use crate::schema::Schema;
use cel::common::ast::{EntryExpr, Expr};
use cel::common::types::{
    CelBool, CelBytes, CelDouble, CelDuration, CelInt, CelList, CelMap, CelMapKey, CelNull,
    CelString, CelTimestamp, CelUInt,
};
use cel::common::value::Val;
use cel::parser::Expression;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The old item an item of a `list-type: map` list correlates with (same
/// key values); items of other lists don't correlate.
pub(super) fn correlate_item<'o>(
    s: &Schema,
    item: &Value,
    old: Option<&'o Value>,
) -> Option<&'o Value> {
    if s.list_type.as_deref() != Some("map") || s.list_map_keys.is_empty() {
        return None;
    }
    let old = old?.as_array()?;
    old.iter()
        .find(|o| s.list_map_keys.iter().all(|k| o.get(k) == item.get(k)))
}

/// `self` for a node's rules: an object holds only the fields they read
/// (converting a large object for rules reading two fields is most of
/// their cost), anything else converts whole.
pub(super) fn to_val_fields<'a>(
    v: &'a Value,
    s: &Schema,
    fields: Option<&std::collections::BTreeSet<String>>,
) -> Box<dyn Val + 'a> {
    match (v, fields) {
        (Value::Object(m), Some(fields)) => {
            let map: HashMap<CelMapKey<'a>, Box<dyn Val + 'a>> = fields
                .iter()
                .filter_map(|f| m.get_key_value(f.as_str()))
                .map(|(k, x)| (CelMapKey::from(k.as_str()), to_val(x, s.child(k))))
                .collect();
            Box::new(CelMap::from(map))
        }
        _ => to_val(v, Some(s)),
    }
}

/// The fields of `self`/`oldSelf` the rules select, or `None` when some
/// rule uses either as a whole (`self.all(...)`, `self == oldSelf`).
pub(super) fn fields_read(rules: &[Arc<Rule>]) -> Option<std::collections::BTreeSet<String>> {
    let mut fields = std::collections::BTreeSet::new();
    let mut whole = false;
    for r in rules {
        collect_fields(r.program.expression(), &mut fields, &mut whole);
        if let Some(m) = &r.message {
            collect_fields(m.expression(), &mut fields, &mut whole);
        }
    }
    (!whole).then_some(fields)
}

pub(super) fn collect_fields(
    e: &Expression,
    fields: &mut std::collections::BTreeSet<String>,
    whole: &mut bool,
) {
    if *whole {
        return;
    }
    let mut each = |x: &Expression| collect_fields(x, fields, whole);
    match &e.expr {
        Expr::Ident(n) if n == "self" || n == "oldSelf" => *whole = true,
        Expr::Select(sel) => match &sel.operand.expr {
            Expr::Ident(n) if n == "self" || n == "oldSelf" => {
                fields.insert(sel.field.clone());
            }
            _ => each(&sel.operand),
        },
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                each(t);
            }
            c.args.iter().for_each(each);
        }
        Expr::List(l) => l.elements.iter().for_each(each),
        Expr::Map(m) => {
            for en in &m.entries {
                match &en.expr {
                    EntryExpr::MapEntry(me) => {
                        each(&me.key);
                        each(&me.value);
                    }
                    EntryExpr::StructField(sf) => each(&sf.value),
                }
            }
        }
        Expr::Struct(st) => {
            for en in &st.entries {
                match &en.expr {
                    EntryExpr::MapEntry(me) => {
                        each(&me.key);
                        each(&me.value);
                    }
                    EntryExpr::StructField(sf) => each(&sf.value),
                }
            }
        }
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                each(x);
            }
        }
        _ => {}
    }
}

/// A JSON value as CEL sees it, borrowing its strings: numbers typed by
/// the schema (`number` fields are doubles even when written as integers).
pub(super) fn to_val<'a>(v: &'a Value, s: Option<&Schema>) -> Box<dyn Val + 'a> {
    match v {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => {
            let double = s.is_some_and(|s| s.ty == "number");
            match (n.as_i64(), n.as_u64()) {
                (Some(i), _) if !double => Box::new(CelInt::from(i)),
                (None, Some(u)) if !double => Box::new(CelUInt::from(u)),
                _ => Box::new(CelDouble::from(n.as_f64().unwrap_or(0.0))),
            }
        }
        Value::String(st) => formatted(st, s.map_or("", |s| s.format.as_str()))
            .unwrap_or_else(|| Box::new(CelString::from(st.as_str()))),
        Value::Array(a) => {
            let items = s.and_then(|s| s.items.as_deref());
            let list: Vec<Box<dyn Val + 'a>> = a.iter().map(|x| to_val(x, items)).collect();
            Box::new(CelList::from(list))
        }
        Value::Object(m) => {
            let map: HashMap<CelMapKey<'a>, Box<dyn Val + 'a>> = m
                .iter()
                .map(|(k, x)| {
                    (
                        CelMapKey::from(k.as_str()),
                        to_val(x, s.and_then(|s| s.child(k))),
                    )
                })
                .collect();
            Box::new(CelMap::from(map))
        }
    }
}

/// Strings of some formats are typed values in CEL, as upstream's schema
/// declarations make them: `date-time`/`date` timestamps, `duration`
/// durations, `byte` bytes. Unparsable strings stay strings.
pub(super) fn formatted<'a>(st: &str, format: &str) -> Option<Box<dyn Val + 'a>> {
    use base64::Engine;
    match format {
        "date-time" | "datetime" => chrono::DateTime::parse_from_rfc3339(st)
            .ok()
            .map(|t| Box::new(CelTimestamp::from(t)) as Box<dyn Val>),
        "date" => chrono::NaiveDate::parse_from_str(st, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| {
                let t = t.and_utc().fixed_offset();
                Box::new(CelTimestamp::from(t)) as Box<dyn Val>
            }),
        "duration" => go_duration(st).map(|d| Box::new(CelDuration::from(d)) as Box<dyn Val>),
        "byte" => base64::engine::general_purpose::STANDARD
            .decode(st)
            .ok()
            .map(|b| Box::new(CelBytes::from(b)) as Box<dyn Val>),
        _ => None,
    }
}

/// Go's `time.ParseDuration` (`1h30m`, `1.5s`, `-300ms`).
pub(super) fn go_duration(s: &str) -> Option<chrono::Duration> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        nanos += n * scale;
    }
    if !nanos.is_finite() || nanos.abs() > i64::MAX as f64 {
        return None;
    }
    let d = chrono::Duration::nanoseconds(nanos as i64);
    Some(if neg { -d } else { d })
}
