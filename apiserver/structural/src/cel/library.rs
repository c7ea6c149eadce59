//! The Kubernetes CEL library functions that fit cel-rust.

use cel::extractors::This;
use cel::{Context, ExecutionError, Value as Cel};
use std::sync::Arc;

pub(super) fn add_library(ctx: &mut Context<'_, '_>) {
    // Names are free in the environment; a clash would only disable the
    // function, never change another one.
    let _ = ctx.add_function(
        "isSorted",
        |This(l): This<Arc<Vec<Cel>>>| -> Result<bool, ExecutionError> {
            for w in l.windows(2) {
                match compare(&w[0], &w[1]) {
                    Some(std::cmp::Ordering::Greater) => return Ok(false),
                    Some(_) => {}
                    None => {
                        return Err(ExecutionError::function_error(
                            "isSorted",
                            "list elements are not comparable",
                        ));
                    }
                }
            }
            Ok(true)
        },
    );
    let _ = ctx.add_function(
        "sum",
        |This(l): This<Arc<Vec<Cel>>>| -> Result<Cel, ExecutionError> {
            let mut ints: i64 = 0;
            let mut floats = 0.0;
            let mut any_float = false;
            for x in l.iter() {
                match x {
                    Cel::Int(i) => {
                        ints = ints.checked_add(*i).ok_or_else(|| {
                            ExecutionError::function_error("sum", "integer overflow")
                        })?
                    }
                    Cel::UInt(u) => {
                        ints = ints.saturating_add(i64::try_from(*u).unwrap_or(i64::MAX))
                    }
                    Cel::Float(f) => {
                        any_float = true;
                        floats += f
                    }
                    _ => {
                        return Err(ExecutionError::function_error(
                            "sum",
                            "list elements must be numbers",
                        ));
                    }
                }
            }
            Ok(if any_float {
                Cel::Float(floats + ints as f64)
            } else {
                Cel::Int(ints)
            })
        },
    );
    for (name, want) in [
        ("min", std::cmp::Ordering::Less),
        ("max", std::cmp::Ordering::Greater),
    ] {
        let _ = ctx.add_function(
            name,
            move |This(l): This<Arc<Vec<Cel>>>| -> Result<Cel, ExecutionError> {
                let mut best: Option<&Cel> = None;
                for x in l.iter() {
                    best = match best {
                        None => Some(x),
                        Some(b) => match compare(x, b) {
                            Some(o) if o == want => Some(x),
                            Some(_) => Some(b),
                            None => {
                                return Err(ExecutionError::function_error(
                                    name,
                                    "list elements are not comparable",
                                ));
                            }
                        },
                    };
                }
                best.cloned()
                    .ok_or_else(|| ExecutionError::function_error(name, "list is empty"))
            },
        );
    }
    // Kubernetes' quantity library, with quantities held as doubles (exact
    // for the integral and binary-suffixed amounts resources use).
    let _ = ctx.add_function("isQuantity", |q: Arc<String>| parse_quantity(&q).is_some());
    let _ = ctx.add_function("quantity", |q: Arc<String>| -> Result<f64, ExecutionError> {
        parse_quantity(&q).ok_or_else(|| {
            ExecutionError::function_error("quantity", "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
        })
    });
    let _ = ctx.add_function("isGreaterThan", |This(a): This<f64>, b: f64| a > b);
    let _ = ctx.add_function("isLessThan", |This(a): This<f64>, b: f64| a < b);
    let _ = ctx.add_function("compareTo", |This(a): This<f64>, b: f64| -> i64 {
        match a.partial_cmp(&b) {
            Some(std::cmp::Ordering::Less) => -1,
            Some(std::cmp::Ordering::Greater) => 1,
            _ => 0,
        }
    });
    let _ = ctx.add_function(
        "asInteger",
        |This(a): This<f64>| -> Result<i64, ExecutionError> {
            if a.fract() == 0.0 && a.abs() < 9.2e18 {
                Ok(a as i64)
            } else {
                Err(ExecutionError::function_error(
                    "asInteger",
                    "cannot convert value to integer",
                ))
            }
        },
    );
    let _ = ctx.add_function("asApproximateFloat", |This(a): This<f64>| a);
    let _ = ctx.add_function("isInteger", |This(a): This<f64>| a.fract() == 0.0);
    let _ = ctx.add_function("sign", |This(a): This<f64>| -> i64 {
        if a > 0.0 {
            1
        } else if a < 0.0 {
            -1
        } else {
            0
        }
    });
    // Kubernetes' sets library.
    let _ = ctx.add_function("sets.contains", |a: Arc<Vec<Cel>>, b: Arc<Vec<Cel>>| {
        b.iter().all(|x| a.contains(x))
    });
    let _ = ctx.add_function("sets.equivalent", |a: Arc<Vec<Cel>>, b: Arc<Vec<Cel>>| {
        b.iter().all(|x| a.contains(x)) && a.iter().all(|x| b.contains(x))
    });
    let _ = ctx.add_function("sets.intersects", |a: Arc<Vec<Cel>>, b: Arc<Vec<Cel>>| {
        b.iter().any(|x| a.contains(x))
    });
    let _ = ctx.add_function(
        "find",
        |This(s): This<Arc<String>>, re: Arc<String>| -> Result<Cel, ExecutionError> {
            let re =
                regex::Regex::new(&re).map_err(|e| ExecutionError::function_error("find", e))?;
            Ok(Cel::String(Arc::new(
                re.find(&s)
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default(),
            )))
        },
    );
    let _ = ctx.add_function(
        "findAll",
        |This(s): This<Arc<String>>, re: Arc<String>| -> Result<Cel, ExecutionError> {
            let re =
                regex::Regex::new(&re).map_err(|e| ExecutionError::function_error("findAll", e))?;
            Ok(Cel::List(Arc::new(
                re.find_iter(&s)
                    .map(|m| Cel::String(Arc::new(m.as_str().to_string())))
                    .collect(),
            )))
        },
    );
}

pub(super) fn compare(a: &Cel, b: &Cel) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Cel::Int(x), Cel::Int(y)) => Some(x.cmp(y)),
        (Cel::UInt(x), Cel::UInt(y)) => Some(x.cmp(y)),
        (Cel::Float(x), Cel::Float(y)) => x.partial_cmp(y),
        (Cel::String(x), Cel::String(y)) => Some(x.cmp(y)),
        (Cel::Bool(x), Cel::Bool(y)) => Some(x.cmp(y)),
        (Cel::Bytes(x), Cel::Bytes(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A Kubernetes quantity (`500m`, `1Gi`, `1e3`) as a double.
pub(super) fn parse_quantity(s: &str) -> Option<f64> {
    rkube_quota::Quantity::parse(s).map(|q| q.as_f64())
}
