//! `x-kubernetes-validations` (upstream `schema/cel`): CEL rules compiled
//! once per schema, evaluated per write with `self` (and `oldSelf` for
//! transition rules, only when the old value exists), with a cost limit:
//! a static estimate at compile time (per rule and for the whole schema)
//! and, before each evaluation, the same estimate over the actual value
//! charged against a per-object budget, so no rule runs unbounded.

mod check;
mod cost;
mod eval;
mod library;
mod parse;
mod values;

#[cfg(test)]
pub(crate) use eval::TEST_BUDGET;
pub(crate) use eval::{has_rules, validate, validate_at};

use check::*;
use cost::*;
use eval::*;
use library::*;
use parse::*;
use values::*;

use crate::path::{child, index, key};
use crate::schema::{RuleSpec, Schema};
use cel::{Env, Program};
use rkube_validation::FieldError;
use serde_json::Value;
use std::sync::{Arc, LazyLock};

/// Upstream `StaticEstimatedCostLimit`: one rule's estimated cost.
pub const PER_RULE_COST_LIMIT: f64 = 10_000_000.0;
/// Upstream `StaticEstimatedCRDCostLimit`: all rules, times how often each runs.
pub const PER_SCHEMA_COST_LIMIT: f64 = 100_000_000.0;
/// Upstream `PerCallLimit`: one evaluation of one rule.
pub const PER_CALL_COST_LIMIT: f64 = 1_000_000.0;
/// Upstream `RuntimeCELCostBudget`: all rule evaluations of one object.
pub const RUNTIME_COST_BUDGET: f64 = 10_000_000.0;
/// Upstream `MaxEvaluatedMessageExpressionSizeBytes`.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;
/// Rules whose static estimate is at most this are charged that estimate at
/// run time without estimating over the actual value.
const CHEAP_RULE_COST: f64 = 256.0;
/// Upstream's maximum request size, bounding what isn't bounded by the schema.
const MAX_REQUEST_BYTES: f64 = 3.0 * 1024.0 * 1024.0;

const REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // Extensions are independent libraries; one failing to register
    // leaves the others usable (and rules using it fail to evaluate).
    let _ = env.add_extension(cel::extensions::strings);
    let _ = env.add_extension(cel::extensions::lists);
    let _ = env.add_extension(cel::extensions::math);
    Arc::new(env)
});

/// One compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub spec: RuleSpec,
    program: Program,
    message: Option<Program>,
    transition: bool,
    /// The compile-time estimate (schema bounds).
    static_cost: f64,
}

// ---- compile ----

/// Compiles every rule of the schema into its nodes; returns the errors
/// with upstream's paths.
pub(crate) fn compile(s: &mut Schema, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = Costs::default();
    compile_node(s, base, true, 1.0, None, &mut total, &mut errs);
    if total.total > PER_SCHEMA_COST_LIMIT {
        // As upstream: blame the most expensive expressions, then the total.
        total
            .each
            .sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
        for (path, _) in total.each.iter().take(4) {
            errs.push(FieldError::forbidden(
                path,
                "contributed to estimated rule & messageExpression cost total exceeding cost limit for entire OpenAPIv3 schema",
            ));
        }
        errs.push(FieldError::forbidden(
            base,
            cost_message(
                "x-kubernetes-validations estimated rule & messageExpression cost total for entire OpenAPIv3 schema",
                total.total,
                PER_SCHEMA_COST_LIMIT,
            ),
        ));
    }
    errs
}

/// Each expression's estimated cost times how often it may run, by path.
#[derive(Default)]
struct Costs {
    total: f64,
    each: Vec<(String, f64)>,
}

impl Costs {
    fn observe(&mut self, path: String, cost: f64) {
        self.total += cost;
        self.each.push((path, cost));
    }
}

fn compile_node(
    s: &mut Schema,
    p: &str,
    root: bool,
    cardinality: f64,
    uncorrelatable: Option<&str>,
    total: &mut Costs,
    errs: &mut Vec<FieldError>,
) {
    let specs = s.validations.clone();
    let mut rules = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let rp = index(&child(p, "x-kubernetes-validations"), i);
        if let Some(rule) =
            compile_rule(s, spec, &rp, root, cardinality, uncorrelatable, total, errs)
        {
            rules.push(Arc::new(rule));
        }
    }
    s.rule_fields = fields_read(&rules);
    s.rules = rules;
    let elem_card = |max: Option<i64>, min_elem: f64| {
        cardinality * max.map_or(MAX_REQUEST_BYTES / min_elem, |m| m.max(0) as f64)
    };
    let list_is_map = s.list_type.as_deref() == Some("map");
    // Upstream `MapIsCorrelatable`: granular and atomic maps both correlate.
    let map_correlatable = matches!(s.map_type.as_deref(), None | Some("granular" | "atomic"));
    let max_items = s.max_items;
    let max_props = s.max_properties;
    if let Some(items) = s.items.as_deref_mut() {
        let ip = child(p, "items");
        // Upstream names the outermost uncorrelatable list or map.
        let unc = match uncorrelatable {
            Some(u) => Some(u.to_string()),
            None if !list_is_map => Some(p.to_string()),
            None => None,
        };
        let c = elem_card(max_items, min_size(items));
        compile_node(items, &ip, false, c, unc.as_deref(), total, errs);
    }
    if let Some(props) = s.properties.as_mut() {
        for (k, sub) in props.iter_mut() {
            let sp = key(&child(p, "properties"), k);
            let unc = match uncorrelatable {
                Some(u) => Some(u.to_string()),
                None if !map_correlatable => Some(p.to_string()),
                None => None,
            };
            compile_node(sub, &sp, false, cardinality, unc.as_deref(), total, errs);
        }
    }
    if let Some(crate::schema::Additional::Schema(ap)) = s.additional_properties.as_mut() {
        let ap_path = child(p, "additionalProperties");
        let unc = match uncorrelatable {
            Some(u) => Some(u.to_string()),
            None if !map_correlatable => Some(p.to_string()),
            None => None,
        };
        let c = elem_card(max_props, 3.0 + min_size(ap));
        compile_node(ap, &ap_path, false, c, unc.as_deref(), total, errs);
    }
    s.has_rules = subtree_has_rules(s);
}

#[allow(clippy::too_many_arguments)]
fn compile_rule(
    s: &Schema,
    spec: &RuleSpec,
    rp: &str,
    root: bool,
    cardinality: f64,
    uncorrelatable: Option<&str>,
    total: &mut Costs,
    errs: &mut Vec<FieldError>,
) -> Option<Rule> {
    let rule = spec.rule.trim();
    let msg = spec.message.trim();
    let msg_expr = spec.message_expression.trim();
    let before = errs.len();
    if rule.is_empty() {
        errs.push(FieldError::required(
            &child(rp, "rule"),
            "rule is not specified",
        ));
    } else if !spec.message.is_empty() && msg.is_empty() {
        errs.push(FieldError::invalid(
            &child(rp, "message"),
            spec.message.as_str(),
            "message must be non-empty if specified",
        ));
    } else if msg.contains('\n') || msg.contains('\r') {
        errs.push(FieldError::invalid(
            &child(rp, "message"),
            spec.message.as_str(),
            "message must not contain line breaks",
        ));
    } else if (rule.contains('\n') || rule.contains('\r')) && msg.is_empty() {
        errs.push(FieldError::required(
            &child(rp, "message"),
            "message must be specified if rule contains line breaks",
        ));
    }
    if !spec.message_expression.is_empty() && msg_expr.is_empty() {
        errs.push(FieldError::required(
            &child(rp, "messageExpression"),
            "messageExpression must be non-empty if specified",
        ));
    }
    if let Some(r) = &spec.reason
        && !REASONS.contains(&r.as_str())
    {
        errs.push(FieldError::not_supported(
            &child(rp, "reason"),
            r.as_str(),
            &REASONS,
        ));
    }
    if !spec.field_path.is_empty() {
        let fp = child(rp, "fieldPath");
        if spec.field_path.trim().is_empty() {
            errs.push(FieldError::invalid(
                &fp,
                spec.field_path.as_str(),
                "fieldPath must be non-empty if specified",
            ));
        } else if spec.field_path.contains('\n') {
            errs.push(FieldError::invalid(
                &fp,
                spec.field_path.as_str(),
                "fieldPath must not contain line breaks",
            ));
        } else if !field_path_valid(s, &spec.field_path) {
            errs.push(FieldError::invalid(
                &fp,
                spec.field_path.as_str(),
                "fieldPath must be a valid path",
            ));
        }
    }
    if errs.len() > before {
        return None;
    }
    let program = match parse(rule) {
        Ok(p) => p,
        Err(e) => {
            errs.push(FieldError::invalid(
                &child(rp, "rule"),
                rule_repr(spec),
                format!("compilation failed: {e}"),
            ));
            return None;
        }
    };
    if let Some(e) = undefined_field(&program, rule, s, root) {
        errs.push(FieldError::invalid(
            &child(rp, "rule"),
            rule_repr(spec),
            format!("compilation failed: {e}"),
        ));
        return None;
    }
    let transition = program.references().has_variable("oldSelf");
    if transition && let Some(unc) = uncorrelatable {
        errs.push(FieldError::invalid(
            &child(rp, "rule"),
            rule,
            format!(
                "oldSelf cannot be used on the uncorrelatable portion of the schema within {unc}"
            ),
        ));
        return None;
    }
    if !transition && let Some(o) = spec.optional_old_self {
        errs.push(FieldError::invalid(
            &child(rp, "optionalOldSelf"),
            o,
            "may not be set if oldSelf is not used in rule",
        ));
        return None;
    }
    let message = if msg_expr.is_empty() {
        None
    } else {
        match parse(msg_expr) {
            Ok(p) => Some(p),
            Err(e) => {
                errs.push(FieldError::invalid(
                    &child(rp, "messageExpression"),
                    rule_repr(spec),
                    format!("messageExpression compilation failed: {e}"),
                ));
                return None;
            }
        }
    };
    // As upstream, an expression's cost is its estimate times how often it
    // may run (the cardinality of its schema node).
    let rule_cost = estimate(program.expression(), &Sizes::schema(s));
    let msg_cost = message
        .as_ref()
        .map_or(0.0, |m| estimate(m.expression(), &Sizes::schema(s)));
    let mut over = false;
    if rule_cost * cardinality > PER_RULE_COST_LIMIT {
        errs.push(FieldError::forbidden(
            &child(rp, "rule"),
            cost_message(
                "estimated rule cost",
                rule_cost * cardinality,
                PER_RULE_COST_LIMIT,
            ),
        ));
        over = true;
    }
    if msg_cost * cardinality > PER_RULE_COST_LIMIT {
        errs.push(FieldError::forbidden(
            &child(rp, "messageExpression"),
            cost_message(
                "estimated messageExpression cost",
                msg_cost * cardinality,
                PER_RULE_COST_LIMIT,
            ),
        ));
        over = true;
    }
    total.observe(child(rp, "rule"), rule_cost * cardinality);
    if message.is_some() {
        total.observe(child(rp, "messageExpression"), msg_cost * cardinality);
    }
    if over {
        return None;
    }
    let cost = rule_cost + msg_cost;
    Some(Rule {
        spec: spec.clone(),
        program,
        message,
        transition,
        static_cost: cost,
    })
}

/// A rule as upstream prints the `ValidationRule` in compile errors (Go's
/// `%#v`; pointers print as addresses there, here as a fixed one).
fn rule_repr(r: &RuleSpec) -> Value {
    let q = rkube_validation::go_quote;
    let reason = match &r.reason {
        Some(_) => "(*apiextensions.FieldValueErrorReason)(0xc000010000)",
        None => "(*apiextensions.FieldValueErrorReason)(nil)",
    };
    let optional = match r.optional_old_self {
        Some(_) => "(*bool)(0xc000010008)",
        None => "(*bool)(nil)",
    };
    rkube_validation::go_repr(format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, OptionalOldSelf:{optional}}}",
        q(&r.rule),
        q(&r.message),
        q(&r.message_expression),
        q(&r.field_path),
    ))
}

/// Upstream `getCostErrorMessage`.
fn cost_message(what: &str, cost: f64, limit: f64) -> String {
    let f = cost / limit;
    let factor = if f > 100.0 {
        "more than 100x".to_string()
    } else if f < 1.5 {
        format!("{f:.6}x")
    } else {
        format!("{f:.1}x")
    };
    format!(
        "{what} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

/// Smallest serialized size of a value of this schema (with its separator),
/// as upstream bounds unbounded lists by the request size.
fn min_size(s: &Schema) -> f64 {
    match s.ty.as_str() {
        "string" => 3.0,
        "boolean" => 5.0,
        "integer" | "number" => 2.0,
        _ => 3.0,
    }
}

/// A field path of a rule (`.a.b`, `['a'].b`) names properties that exist.
fn field_path_valid(s: &Schema, fp: &str) -> bool {
    let mut cur = s;
    for seg in field_path_segments(fp) {
        match cur.child(&seg) {
            Some(next) => cur = next,
            None => {
                if cur.preserves_unknown() {
                    return true;
                }
                return false;
            }
        }
    }
    true
}

fn field_path_segments(fp: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = fp.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").unwrap_or(r.len());
            out.push(r[..end].to_string());
            rest = r.get(end + 2..).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            out.push(r[..end].to_string());
            rest = &r[end..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}
