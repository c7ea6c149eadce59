//! One requirement (`key op values`): upstream's `labels.Requirement`, with
//! `NewRequirement`'s validation messages and `Matches`/`String` behaviour.

use std::fmt;

use super::Labels;
use crate::SelectorError;
use crate::gofmt::{aggregate, field_invalid, json_string_slice, quote};
use crate::validation::{label_key_errors, label_value_errors};

/// A selector operator (upstream `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl Operator {
    /// Upstream's string value of the operator (`"in"`, `"!="`, `"gt"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `key op values`. Always valid once constructed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Upstream `NewRequirement`: validates the key, the value count for the
    /// operator, integer values for `gt`/`lt`, and every value as a label
    /// value. Errors are aggregated exactly as upstream renders them.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, SelectorError> {
        let key = key.into();
        let errs = validate(&key, operator, &values);
        match aggregate(&errs) {
            Some(msg) => Err(SelectorError::new(msg)),
            None => Ok(Self {
                key,
                operator,
                values,
            }),
        }
    }

    /// Builds without validation, for selectors made from trusted sets.
    pub(crate) fn unchecked(key: String, operator: Operator, values: Vec<String>) -> Self {
        Self {
            key,
            operator,
            values,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values in the order given (the string parser sorts and dedups them).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Upstream `Requirement.Matches`; note `notin`/`!=` match absent keys.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let got = labels.get_label(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                got.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => got.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => got.is_some(),
            Operator::DoesNotExist => got.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(have) = got.and_then(parse_int) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Some(want) = parse_int(want) else {
                    return false;
                };
                match self.operator {
                    Operator::GreaterThan => have > want,
                    _ => have < want,
                }
            }
        }
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`: optional sign, decimal digits only.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The individual `field.Error` messages `NewRequirement` would produce.
fn validate(key: &str, op: Operator, values: &[String]) -> Vec<String> {
    let mut errs = Vec::new();
    let key_errs = label_key_errors(key);
    if !key_errs.is_empty() {
        errs.push(field_invalid("key", &quote(key), &key_errs.join("; ")));
    }
    let rendered = || json_string_slice((!values.is_empty()).then_some(values));
    match op {
        Operator::In | Operator::NotIn => {
            if values.is_empty() {
                errs.push(field_invalid(
                    "values",
                    &rendered(),
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
        }
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
            if values.len() != 1 {
                errs.push(field_invalid(
                    "values",
                    &rendered(),
                    "exact-match compatibility requires one single value",
                ));
            }
        }
        Operator::Exists | Operator::DoesNotExist => {
            if !values.is_empty() {
                errs.push(field_invalid(
                    "values",
                    &rendered(),
                    "values set must be empty for exists and does not exist",
                ));
            }
        }
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                errs.push(field_invalid(
                    "values",
                    &rendered(),
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if parse_int(v).is_none() {
                    errs.push(field_invalid(
                        &format!("values[{i}]"),
                        &quote(v),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        let value_errs = label_value_errors(v);
        if !value_errs.is_empty() {
            errs.push(field_invalid(
                &format!("values[{i}][{key}]"),
                &quote(v),
                &value_errs.join("; "),
            ));
        }
    }
    errs
}

/// Upstream `Requirement.String()`: values printed sorted (duplicates kept).
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        f.write_str(&sorted.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}
