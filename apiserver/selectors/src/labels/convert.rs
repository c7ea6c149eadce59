//! `metav1.LabelSelector` (JSON) → [`LabelSelector`], as
//! `metav1.LabelSelectorAsSelector` does it, errors included.

use serde_json::Value;

use super::requirement::{Operator, Requirement};
use super::selector::LabelSelector;
use crate::SelectorError;
use crate::gofmt::quote;

fn type_error(what: &str, found: &Value, want: &str) -> SelectorError {
    let kind = match found {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    SelectorError::new(format!(
        "json: cannot unmarshal {kind} into Go struct field {what} of type {want}"
    ))
}

pub(super) fn from_label_selector(value: &Value) -> Result<LabelSelector, SelectorError> {
    let obj = match value {
        Value::Null => return Ok(LabelSelector::nothing()),
        Value::Object(o) => o,
        other => return Err(type_error("LabelSelector", other, "v1.LabelSelector")),
    };
    let labels = match obj.get("matchLabels") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => {
            return Err(type_error(
                "LabelSelector.matchLabels",
                other,
                "map[string]string",
            ));
        }
    };
    let exprs = match obj.get("matchExpressions") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a),
        Some(other) => {
            return Err(type_error(
                "LabelSelector.matchExpressions",
                other,
                "[]v1.LabelSelectorRequirement",
            ));
        }
    };
    let n = labels.map_or(0, |m| m.len()) + exprs.map_or(0, |a| a.len());
    if n == 0 {
        return Ok(LabelSelector::everything());
    }

    let mut reqs = Vec::with_capacity(n);
    // Upstream iterates a Go map (random order); sorted keys make the first
    // reported error deterministic.
    let mut keys: Vec<&String> = labels.map(|m| m.keys().collect()).unwrap_or_default();
    keys.sort();
    for k in keys {
        let v = match labels.and_then(|m| m.get(k)) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => {
                return Err(type_error("LabelSelector.matchLabels", other, "string"));
            }
        };
        reqs.push(Requirement::new(k.clone(), Operator::Equals, vec![v])?);
    }
    for expr in exprs.into_iter().flatten() {
        reqs.push(expression(expr)?);
    }
    Ok(LabelSelector::from_requirements(reqs))
}

fn expression(expr: &Value) -> Result<Requirement, SelectorError> {
    let field = |name: &str| expr.get(name).filter(|v| !v.is_null());
    let text = |name: &str| -> Result<String, SelectorError> {
        match field(name) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(type_error(
                &format!("LabelSelectorRequirement.{name}"),
                other,
                "string",
            )),
        }
    };
    if !expr.is_object() {
        return Err(type_error(
            "LabelSelector.matchExpressions",
            expr,
            "v1.LabelSelectorRequirement",
        ));
    }
    let key = text("key")?;
    let op_name = text("operator")?;
    let op = match op_name.as_str() {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        _ => {
            return Err(SelectorError::new(format!(
                "{} is not a valid pod selector operator",
                quote(&op_name)
            )));
        }
    };
    let values = match field("values") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Null => Ok(String::new()),
                other => Err(type_error(
                    "LabelSelectorRequirement.values",
                    other,
                    "string",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(type_error(
                "LabelSelectorRequirement.values",
                other,
                "[]string",
            ));
        }
    };
    Requirement::new(key, op, values)
}
