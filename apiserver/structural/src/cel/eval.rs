//! Evaluating a schema's rules over an object (and its old version).

use super::*;

use crate::path::{child, index, key};
use crate::schema::{RuleSpec, Schema};
use cel::common::types::CelOptional;
use cel::common::value::Val;
use cel::{Context, ExecutionError, Program, Value as Cel};
use rkube_validation::FieldError;
use serde_json::Value;

/// Evaluates all rules of the schema over `obj`.
pub(crate) fn validate<'a>(s: &Schema, obj: &'a Value, old: Option<&'a Value>) -> Vec<FieldError> {
    validate_at(s, obj, old, "")
}

/// [`validate`] for a value at `base` (a default inside a CRD).
pub(crate) fn validate_at<'a>(
    s: &Schema,
    obj: &'a Value,
    old: Option<&'a Value>,
    base: &str,
) -> Vec<FieldError> {
    if !has_rules(s) {
        return Vec::new();
    }
    ROOT_CONTEXT.with(|root| {
        // The root holds only functions; rules bind `self`/`oldSelf` in
        // child scopes borrowing from the object.
        let ctx: &Context<'a, 'a> = root;
        let mut ev = Evaluator {
            ctx,
            budget: runtime_budget(),
            errs: Vec::new(),
            stopped: false,
        };
        ev.node(s, obj, old, base);
        ev.errs
    })
}

thread_local! {
    /// The environment plus the Kubernetes library, built once per thread.
    static ROOT_CONTEXT: Context<'static, 'static> = {
        let mut ctx = Context::with_env(ENV.clone());
        add_library(&mut ctx);
        ctx
    };
}

#[cfg(test)]
thread_local! {
    /// Lets tests exhaust the runtime budget without evaluating 10M units.
    pub(crate) static TEST_BUDGET: std::cell::Cell<Option<f64>> = const { std::cell::Cell::new(None) };
}

pub(super) fn runtime_budget() -> f64 {
    #[cfg(test)]
    if let Some(b) = TEST_BUDGET.with(|b| b.get()) {
        return b;
    }
    RUNTIME_COST_BUDGET
}

pub(crate) fn has_rules(s: &Schema) -> bool {
    s.has_rules
}

pub(super) fn subtree_has_rules(s: &Schema) -> bool {
    !s.rules.is_empty()
        || s.items.as_deref().is_some_and(|i| i.has_rules)
        || s.properties
            .as_ref()
            .is_some_and(|p| p.values().any(|x| x.has_rules))
        || s.additional_schema().is_some_and(|a| a.has_rules)
}

pub(super) struct Evaluator<'c, 'a> {
    ctx: &'c Context<'a, 'a>,
    budget: f64,
    errs: Vec<FieldError>,
    stopped: bool,
}

impl<'a> Evaluator<'_, 'a> {
    fn node(&mut self, s: &Schema, v: &'a Value, old: Option<&'a Value>, p: &str) {
        if self.stopped {
            return;
        }
        if !s.rules.is_empty() && !v.is_null() {
            self.rules(s, v, old, p);
        }
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    // Map values are named `map[key]`, as upstream.
                    let (sub, is_prop) = match s.property(k) {
                        Some(sub) => (Some(sub), true),
                        None => (s.additional_schema(), false),
                    };
                    if let Some(sub) = sub
                        && has_rules(sub)
                    {
                        let cp = if is_prop { child(p, k) } else { key(p, k) };
                        let o = old.and_then(|o| o.get(k));
                        self.node(sub, x, o, &cp);
                    }
                }
            }
            Value::Array(a) => {
                if let Some(items) = s.items.as_deref()
                    && has_rules(items)
                {
                    for (i, x) in a.iter().enumerate() {
                        let o = correlate_item(s, x, old);
                        self.node(items, x, o, &index(p, i));
                    }
                }
            }
            _ => {}
        }
    }

    fn rules(&mut self, s: &Schema, v: &'a Value, old: Option<&'a Value>, p: &str) {
        // `self` is converted once and shared by the node's rules.
        let mut scope = self.ctx.new_inner_scope();
        let fields = s.rule_fields.as_ref();
        scope.add_variable_as_val("self", to_val_fields(v, s, fields));
        let ty = if s.ty.is_empty() {
            "object"
        } else {
            s.ty.as_str()
        };
        let field = if p.is_empty() {
            "<nil>".to_string()
        } else {
            p.to_string()
        };
        // Ratcheting: rules without oldSelf don't re-judge an unchanged value.
        let unchanged = old.is_some_and(|o| o == v);
        for r in &s.rules {
            if r.transition && old.is_none() && r.spec.optional_old_self != Some(true) {
                continue;
            }
            if unchanged && !r.transition {
                continue;
            }
            // Charge the rule before running it: cheap rules their static
            // bound, others their bound over the actual (and old) value.
            let cost = if r.static_cost <= CHEAP_RULE_COST {
                r.static_cost
            } else {
                let mut c = estimate(r.program.expression(), &Sizes::Values(vec![v]));
                if let Some(o) = old {
                    c = c.max(estimate(r.program.expression(), &Sizes::Values(vec![o])));
                }
                c
            };
            if cost > PER_CALL_COST_LIMIT {
                self.errs.push(FieldError::invalid(
                    &field,
                    ty,
                    format!(
                        "'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                        rule_error_string(&r.spec)
                    ),
                ));
                self.stopped = true;
                return;
            }
            self.budget -= cost;
            if self.budget < 0.0 {
                self.errs.push(FieldError::invalid(
                    &field,
                    ty,
                    "validation failed due to running out of cost budget, no further validation rules will be run",
                ));
                self.stopped = true;
                return;
            }
            let mut scope = scope.new_inner_scope();
            if r.transition {
                let o: Box<dyn Val + 'a> = match (old, r.spec.optional_old_self) {
                    (Some(o), Some(true)) => Box::new(CelOptional::of(to_val_fields(o, s, fields))),
                    (None, _) => Box::new(CelOptional::none()),
                    (Some(o), _) => to_val_fields(o, s, fields),
                };
                scope.add_variable_as_val("oldSelf", o);
            }
            let rule_text = || rule_error_string(&r.spec);
            // The interpreter is third-party code run on user data: a panic
            // in it fails this rule, not the request's worker.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                r.program.execute(&scope)
            }));
            let Ok(result) = run else {
                self.errs.push(FieldError::internal(
                    &field,
                    format!("internal error evaluating rule: {}", rule_text()),
                ));
                continue;
            };
            match result {
                Ok(Cel::Bool(true)) => {}
                Ok(Cel::Bool(false)) => {
                    let mut fp = field.clone();
                    if !r.spec.field_path.is_empty() {
                        let segs = field_path_segments(&r.spec.field_path);
                        fp = segs.iter().fold(p.to_string(), |acc, s| child(&acc, s));
                    }
                    let detail = self.message(r, &scope);
                    self.errs.push(match r.spec.reason.as_deref() {
                        Some("FieldValueForbidden") => FieldError::forbidden(&fp, detail),
                        Some("FieldValueRequired") => FieldError::required(&fp, detail),
                        Some("FieldValueDuplicate") => FieldError::duplicate(&fp, ty),
                        _ => FieldError::invalid(&fp, ty, detail),
                    });
                }
                Ok(other) => self.errs.push(FieldError::invalid(
                    &field,
                    ty,
                    format!(
                        "rule did not evaluate to a bool ({}) for rule: {}",
                        type_name(&other),
                        rule_text()
                    ),
                )),
                Err(e) => {
                    let msg = match &e {
                        ExecutionError::NoSuchOverload(_) => format!(
                            "'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {}",
                            rule_text()
                        ),
                        other => {
                            format!("{} evaluating rule: {}", upstream_error(other), rule_text())
                        }
                    };
                    self.errs.push(FieldError::invalid(&field, ty, msg));
                }
            }
        }
    }

    fn message(&self, r: &Rule, scope: &Context<'_, '_>) -> String {
        let run = |m: &Program| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.execute(scope))).ok()
        };
        if let Some(m) = &r.message
            && let Some(Ok(Cel::String(s))) = run(m)
            && !s.trim().is_empty()
            && !s.trim().contains('\n')
            && s.trim().len() <= MAX_MESSAGE_BYTES
        {
            return s.trim().to_string();
        }
        let msg = r.spec.message.trim();
        if msg.is_empty() {
            format!("failed rule: {}", rule_error_string(&r.spec))
        } else {
            msg.to_string()
        }
    }
}

/// Upstream `ruleErrorString`.
pub(super) fn rule_error_string(r: &RuleSpec) -> String {
    if !r.message.trim().is_empty() {
        r.message.trim().to_string()
    } else {
        r.rule.trim().to_string()
    }
}

/// cel-go's wording of the common runtime errors.
pub(super) fn upstream_error(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::IndexOutOfBounds(i) => format!("index out of bounds: {}", cel_text(i)),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::UndeclaredReference(n) => format!("no such attribute: {n}"),
        other => other.to_string(),
    }
}

pub(super) fn cel_text(v: &Cel) -> String {
    match v {
        Cel::Int(i) => i.to_string(),
        Cel::UInt(u) => u.to_string(),
        Cel::String(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

pub(super) fn type_name(v: &Cel) -> &'static str {
    match v {
        Cel::List(_) => "list",
        Cel::Map(_) => "map",
        Cel::Int(_) => "int",
        Cel::UInt(_) => "uint",
        Cel::Float(_) => "double",
        Cel::String(_) => "string",
        Cel::Bytes(_) => "bytes",
        Cel::Bool(_) => "bool",
        Cel::Null => "null_type",
        _ => "dyn",
    }
}
