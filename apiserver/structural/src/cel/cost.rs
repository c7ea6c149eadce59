//! Cost estimates: from the schema at compile time, from the value before evaluation.

use super::*;

use crate::schema::Schema;
use cel::common::ast::{EntryExpr, Expr};
use cel::parser::Expression;
use serde_json::Value;
use std::collections::HashMap;

/// Upper bounds of sizes, from the schema (compile time) or from the
/// actual value (before evaluation).
#[derive(Clone)]
pub(super) enum Sizes<'a> {
    Schema(Option<&'a Schema>),
    /// All values the expression may stand for (list elements are merged).
    Values(Vec<&'a Value>),
    Unknown(f64),
}

impl<'a> Sizes<'a> {
    pub(super) fn schema(s: &'a Schema) -> Self {
        Sizes::Schema(Some(s))
    }

    fn field(&self, name: &str) -> Self {
        match self {
            Sizes::Schema(Some(s)) => Sizes::Schema(s.child(name)),
            Sizes::Schema(None) => Sizes::Schema(None),
            Sizes::Values(vs) => Sizes::Values(vs.iter().filter_map(|v| v.get(name)).collect()),
            Sizes::Unknown(n) => Sizes::Unknown(*n),
        }
    }

    fn elem(&self) -> Self {
        match self {
            Sizes::Schema(Some(s)) => match s.ty.as_str() {
                "array" => Sizes::Schema(s.items.as_deref()),
                "object" => Sizes::Schema(s.additional_schema()),
                _ => Sizes::Schema(None),
            },
            Sizes::Schema(None) => Sizes::Schema(None),
            Sizes::Values(vs) => Sizes::Values(
                vs.iter()
                    .flat_map(|v| match v {
                        Value::Array(a) => a.iter().collect::<Vec<_>>(),
                        Value::Object(m) => m.values().collect(),
                        _ => Vec::new(),
                    })
                    .collect(),
            ),
            Sizes::Unknown(n) => Sizes::Unknown(*n),
        }
    }

    /// Largest number of elements (lists, maps) or characters (strings).
    fn size(&self) -> f64 {
        match self {
            Sizes::Schema(Some(s)) => {
                let bound = match s.ty.as_str() {
                    "array" => s.max_items,
                    "object" => s.max_properties,
                    "string" => s.max_length,
                    _ => None,
                };
                match bound {
                    Some(n) => n.max(0) as f64,
                    None => match s.ty.as_str() {
                        "array" => MAX_REQUEST_BYTES / s.items.as_deref().map_or(3.0, min_size),
                        "object" => MAX_REQUEST_BYTES / 6.0,
                        "integer" | "number" | "boolean" => 1.0,
                        _ => MAX_REQUEST_BYTES,
                    },
                }
            }
            Sizes::Schema(None) => MAX_REQUEST_BYTES,
            Sizes::Values(vs) => vs
                .iter()
                .map(|v| match v {
                    Value::Array(a) => a.len() as f64,
                    Value::Object(m) => m.len() as f64,
                    Value::String(s) => s.len() as f64,
                    _ => 1.0,
                })
                .fold(0.0, f64::max),
            Sizes::Unknown(n) => *n,
        }
    }
}

/// Estimated cost (cel-go's units, roughly: one per node, string and list
/// traversals at 0.1 per element, comprehensions times their range size).
pub(super) fn estimate(e: &Expression, self_sizes: &Sizes<'_>) -> f64 {
    let mut vars: HashMap<String, Sizes<'_>> = HashMap::new();
    vars.insert("self".into(), self_sizes.clone());
    vars.insert("oldSelf".into(), self_sizes.clone());
    cost(e, &vars)
}

pub(super) fn sizes_of<'a>(e: &Expression, vars: &HashMap<String, Sizes<'a>>) -> Sizes<'a> {
    match &e.expr {
        Expr::Ident(n) => vars.get(n).cloned().unwrap_or(Sizes::Unknown(1.0)),
        Expr::Select(s) if !s.test => sizes_of(&s.operand, vars).field(&s.field),
        Expr::Call(c) if c.func_name == "_[_]" && c.args.len() == 2 => {
            sizes_of(&c.args[0], vars).elem()
        }
        // `lists.range(n)` makes n elements (at most cel's 1,000,000).
        Expr::Call(c)
            if c.func_name == "lists.range"
                || (c.func_name == "range"
                    && matches!(c.target.as_deref().map(|t| &t.expr), Some(Expr::Ident(n)) if n == "lists")) =>
        {
            let n = match c.args.first().map(|a| &a.expr) {
                Some(Expr::Literal(cel::common::ast::LiteralValue::Int(n))) => {
                    (*n.inner() as f64).max(0.0)
                }
                _ => 1_000_000.0,
            };
            Sizes::Unknown(n.min(1_000_000.0))
        }
        Expr::List(l) => Sizes::Unknown(l.elements.len() as f64),
        Expr::Map(m) => Sizes::Unknown(m.entries.len() as f64),
        Expr::Literal(cel::common::ast::LiteralValue::String(s)) => Sizes::Unknown(s.len() as f64),
        // map()/filter() results are at most as large as their range.
        Expr::Comprehension(c) => Sizes::Unknown(sizes_of(&c.iter_range, vars).size()),
        Expr::Call(c) => {
            // Concatenations and other calls: bounded by their operands.
            let mut n: f64 = 1.0;
            for a in c.target.iter().map(|t| &**t).chain(c.args.iter()) {
                n += sizes_of(a, vars).size();
            }
            Sizes::Unknown(n)
        }
        _ => Sizes::Unknown(1.0),
    }
}

pub(super) fn cost(e: &Expression, vars: &HashMap<String, Sizes<'_>>) -> f64 {
    match &e.expr {
        Expr::Literal(_) | Expr::Unspecified => 0.0,
        Expr::Ident(_) => 1.0,
        Expr::Select(s) => 1.0 + cost(&s.operand, vars),
        Expr::List(l) => 10.0 + l.elements.iter().map(|x| cost(x, vars)).sum::<f64>(),
        Expr::Map(m) => {
            30.0 + m
                .entries
                .iter()
                .map(|en| match &en.expr {
                    EntryExpr::MapEntry(me) => cost(&me.key, vars) + cost(&me.value, vars),
                    EntryExpr::StructField(sf) => cost(&sf.value, vars),
                })
                .sum::<f64>()
        }
        Expr::Struct(st) => {
            40.0 + st
                .entries
                .iter()
                .map(|en| match &en.expr {
                    EntryExpr::MapEntry(me) => cost(&me.key, vars) + cost(&me.value, vars),
                    EntryExpr::StructField(sf) => cost(&sf.value, vars),
                })
                .sum::<f64>()
        }
        Expr::Call(c) => {
            let operands: Vec<&Expression> =
                c.target.iter().map(|t| &**t).chain(c.args.iter()).collect();
            let mut total = 1.0 + operands.iter().map(|x| cost(x, vars)).sum::<f64>();
            let size = |x: &Expression| sizes_of(x, vars).size();
            total += match c.func_name.as_str() {
                // Traversals of strings or lists.
                "_==_" | "_!=_" | "_+_" | "contains" | "startsWith" | "endsWith" | "_<_"
                | "_<=_" | "_>_" | "_>=_" | "lowerAscii" | "upperAscii" | "trim" | "replace"
                | "split" | "join" | "indexOf" | "lastIndexOf" | "substring" | "charAt" => {
                    0.1 * operands.iter().map(|x| size(x)).sum::<f64>()
                }
                "@in" => operands.get(1).map_or(0.0, |l| size(l)),
                "matches" | "find" | "findAll" => {
                    let s = operands.first().map_or(0.0, |x| size(x));
                    let r = operands.get(1).map_or(1.0, |x| size(x));
                    0.1 * s * r.max(1.0)
                }
                "isSorted" | "sum" | "min" | "max" | "sort" | "distinct" | "reverse"
                | "flatten" | "slice" => operands.first().map_or(0.0, |x| size(x)),
                _ => 0.0,
            };
            total
        }
        Expr::Comprehension(c) => {
            let range = sizes_of(&c.iter_range, vars);
            let n = range.size();
            let mut inner = vars.clone();
            inner.insert(c.iter_var.clone(), range.elem());
            if let Some(v2) = &c.iter_var2 {
                inner.insert(v2.clone(), range.elem());
            }
            inner.insert(c.accu_var.clone(), Sizes::Unknown(n));
            cost(&c.iter_range, vars)
                + cost(&c.accu_init, vars)
                + n * (cost(&c.loop_cond, &inner) + cost(&c.loop_step, &inner))
                + cost(&c.result, &inner)
        }
    }
}
