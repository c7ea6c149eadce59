//! `x-kubernetes-validations` (upstream `schema/cel`): CEL rules compiled
//! once per schema, evaluated per write with `self` (and `oldSelf` for
//! transition rules, only when the old value exists), with a cost limit:
//! a static estimate at compile time (per rule and for the whole schema)
//! and, before each evaluation, the same estimate over the actual value
//! charged against a per-object budget, so no rule runs unbounded.

use crate::path::{child, index, key};
use crate::schema::{RuleSpec, Schema};
use cel::common::ast::{EntryExpr, Expr};
use cel::common::types::{
    CelBool, CelBytes, CelDouble, CelDuration, CelInt, CelList, CelMap, CelMapKey, CelNull,
    CelOptional, CelString, CelTimestamp, CelUInt,
};
use cel::common::value::Val;
use cel::extractors::This;
use cel::parser::Expression;
use cel::{Context, Env, ExecutionError, Program, Value as Cel};
use rkube_validation::FieldError;
use serde_json::Value;
use std::collections::HashMap;
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

/// Deepest expression nesting accepted: deeper rules are refused at
/// compile time so that evaluating them (the interpreter recurses per
/// level) fits a 2 MiB worker stack even in debug builds. cel-go allows
/// more (250); rules nesting past 32 levels are not known in practice.
const MAX_DEPTH: usize = 32;
/// cel-go's default `ParserExpressionSizeCodePointLimit`.
const MAX_EXPRESSION_CHARS: usize = 100_000;

/// Parses an expression on a thread with a large stack (the parser
/// recurses per nesting level), refusing what nests deeper than
/// [`MAX_DEPTH`].
fn parse(src: &str) -> Result<Program, String> {
    if src.chars().count() > MAX_EXPRESSION_CHARS {
        return Err(format!(
            "ERROR: <input>:-1:0: expression code point size exceeds limit: size: {}, limit {MAX_EXPRESSION_CHARS}",
            src.chars().count()
        ));
    }
    // Cheap lexical bound first: brackets and unary operator runs.
    let (mut depth, mut max, mut run, mut max_run) = (0usize, 0usize, 0usize, 0usize);
    for c in src.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c == '!' || c == '-' {
            run += 1;
            max_run = max_run.max(run);
        } else if !c.is_whitespace() {
            run = 0;
        }
    }
    let too_deep = || "ERROR: <input>:1:1: expression recursion limit exceeded".to_string();
    if max > MAX_DEPTH || max_run > MAX_DEPTH {
        return Err(too_deep());
    }
    let owned = src.to_string();
    std::thread::Builder::new()
        .name("cel-parse".into())
        .stack_size(256 << 20)
        .spawn(move || {
            ENV.compile(&owned)
                .map_err(|e| e.to_string())
                .and_then(|p| {
                    if ast_depth(p.expression()) > MAX_DEPTH {
                        Err("ERROR: <input>:1:1: expression recursion limit exceeded".to_string())
                    } else {
                        Ok(p)
                    }
                })
        })
        .map_err(|e| format!("ERROR: <input>:1:1: cannot start the parser: {e}"))?
        .join()
        // The parser recursing past even this stack, or failing otherwise.
        .map_err(|_| "ERROR: <input>:1:1: expression could not be parsed".to_string())?
}

/// Nesting depth of an expression, walked without recursion.
fn ast_depth(e: &Expression) -> usize {
    let mut max = 0;
    let mut stack = vec![(e, 1usize)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        if d > MAX_DEPTH {
            break;
        }
        match &e.expr {
            Expr::Select(s) => stack.push((&s.operand, d + 1)),
            Expr::Call(c) => {
                if let Some(t) = &c.target {
                    stack.push((t, d + 1));
                }
                stack.extend(c.args.iter().map(|a| (a, d + 1)));
            }
            Expr::List(l) => stack.extend(l.elements.iter().map(|x| (x, d + 1))),
            Expr::Map(m) => {
                for en in &m.entries {
                    match &en.expr {
                        EntryExpr::MapEntry(me) => {
                            stack.push((&me.key, d + 1));
                            stack.push((&me.value, d + 1));
                        }
                        EntryExpr::StructField(sf) => stack.push((&sf.value, d + 1)),
                    }
                }
            }
            Expr::Struct(st) => {
                for en in &st.entries {
                    match &en.expr {
                        EntryExpr::MapEntry(me) => {
                            stack.push((&me.key, d + 1));
                            stack.push((&me.value, d + 1));
                        }
                        EntryExpr::StructField(sf) => stack.push((&sf.value, d + 1)),
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
                    stack.push((x, d + 1));
                }
            }
            _ => {}
        }
    }
    max
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

// ---- field checks (the part of cel-go's type checking that matters most) ----

/// The first selection of a field the schema doesn't declare, as cel-go's
/// checker reports it (`ERROR: <input>:1:5: undefined field 'z'`).
fn undefined_field(program: &Program, rule: &str, s: &Schema, root: bool) -> Option<String> {
    let mut vars: HashMap<String, Option<&Schema>> = HashMap::new();
    vars.insert("self".into(), Some(s));
    vars.insert("oldSelf".into(), Some(s));
    let mut found = None;
    // The object root has apiVersion, kind and metadata (as embedded
    // resources do) whether the schema lists them or not.
    let meta_at = if root { Some(s) } else { None };
    check_fields(program.expression(), &vars, meta_at, &mut found);
    let (id, field) = found?;
    let start = program
        .source_info()
        .offset_for(id)
        .map_or(0, |(start, _)| start as usize);
    let before: String = rule.chars().take(start).collect();
    let line = before.matches('\n').count() + 1;
    let col = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    let text = rule.lines().nth(line - 1).unwrap_or("");
    Some(format!(
        "ERROR: <input>:{line}:{col}: undefined field '{field}'\n | {text}\n | {:.>col$}",
        "^"
    ))
}

/// Whether field selections on values of this schema are checked.
fn closed(s: &Schema) -> bool {
    s.properties.is_some()
        && s.additional_properties.is_none()
        && !s.preserves_unknown()
        && !s.int_or_string
}

fn check_fields<'s>(
    e: &Expression,
    vars: &HashMap<String, Option<&'s Schema>>,
    root: Option<&Schema>,
    found: &mut Option<(u64, String)>,
) -> Option<&'s Schema> {
    if found.is_some() {
        return None;
    }
    match &e.expr {
        Expr::Ident(n) => vars.get(n).copied().flatten(),
        Expr::Select(sel) => {
            let os = check_fields(&sel.operand, vars, root, found)?;
            if closed(os)
                && os.property(&sel.field).is_none()
                && !((os.embedded_resource || root.is_some_and(|r| std::ptr::eq(r, os)))
                    && ["apiVersion", "kind", "metadata"].contains(&sel.field.as_str()))
            {
                *found = Some((e.id, sel.field.clone()));
                return None;
            }
            if sel.test { None } else { os.child(&sel.field) }
        }
        Expr::Call(c) => {
            let target = c
                .target
                .as_deref()
                .and_then(|t| check_fields(t, vars, root, found));
            let args: Vec<Option<&Schema>> = c
                .args
                .iter()
                .map(|a| check_fields(a, vars, root, found))
                .collect();
            match (c.func_name.as_str(), args.first()) {
                ("_[_]", Some(Some(list))) => match list.ty.as_str() {
                    "array" => list.items.as_deref(),
                    _ => list.additional_schema(),
                },
                _ => {
                    let _ = target;
                    None
                }
            }
        }
        Expr::Comprehension(c) => {
            let range = check_fields(&c.iter_range, vars, root, found);
            let elem = range.and_then(|r| match r.ty.as_str() {
                "array" => r.items.as_deref(),
                _ => None,
            });
            let mut inner = vars.clone();
            inner.insert(c.iter_var.clone(), elem);
            if let Some(v2) = &c.iter_var2 {
                inner.insert(v2.clone(), None);
            }
            inner.insert(c.accu_var.clone(), None);
            check_fields(&c.accu_init, vars, root, found);
            check_fields(&c.loop_cond, &inner, root, found);
            check_fields(&c.loop_step, &inner, root, found);
            check_fields(&c.result, &inner, root, found);
            None
        }
        Expr::List(l) => {
            for x in &l.elements {
                check_fields(x, vars, root, found);
            }
            None
        }
        Expr::Map(m) => {
            for en in &m.entries {
                if let EntryExpr::MapEntry(me) = &en.expr {
                    check_fields(&me.key, vars, root, found);
                    check_fields(&me.value, vars, root, found);
                }
            }
            None
        }
        _ => None,
    }
}

// ---- cost estimation ----

/// Upper bounds of sizes, from the schema (compile time) or from the
/// actual value (before evaluation).
#[derive(Clone)]
enum Sizes<'a> {
    Schema(Option<&'a Schema>),
    /// All values the expression may stand for (list elements are merged).
    Values(Vec<&'a Value>),
    Unknown(f64),
}

impl<'a> Sizes<'a> {
    fn schema(s: &'a Schema) -> Self {
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
fn estimate(e: &Expression, self_sizes: &Sizes<'_>) -> f64 {
    let mut vars: HashMap<String, Sizes<'_>> = HashMap::new();
    vars.insert("self".into(), self_sizes.clone());
    vars.insert("oldSelf".into(), self_sizes.clone());
    cost(e, &vars)
}

fn sizes_of<'a>(e: &Expression, vars: &HashMap<String, Sizes<'a>>) -> Sizes<'a> {
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

fn cost(e: &Expression, vars: &HashMap<String, Sizes<'_>>) -> f64 {
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

// ---- evaluation ----

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

fn runtime_budget() -> f64 {
    #[cfg(test)]
    if let Some(b) = TEST_BUDGET.with(|b| b.get()) {
        return b;
    }
    RUNTIME_COST_BUDGET
}

pub(crate) fn has_rules(s: &Schema) -> bool {
    s.has_rules
}

fn subtree_has_rules(s: &Schema) -> bool {
    !s.rules.is_empty()
        || s.items.as_deref().is_some_and(|i| i.has_rules)
        || s.properties
            .as_ref()
            .is_some_and(|p| p.values().any(|x| x.has_rules))
        || s.additional_schema().is_some_and(|a| a.has_rules)
}

struct Evaluator<'c, 'a> {
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
fn rule_error_string(r: &RuleSpec) -> String {
    if !r.message.trim().is_empty() {
        r.message.trim().to_string()
    } else {
        r.rule.trim().to_string()
    }
}

/// cel-go's wording of the common runtime errors.
fn upstream_error(e: &ExecutionError) -> String {
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

fn cel_text(v: &Cel) -> String {
    match v {
        Cel::Int(i) => i.to_string(),
        Cel::UInt(u) => u.to_string(),
        Cel::String(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

fn type_name(v: &Cel) -> &'static str {
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

/// The old item an item of a `list-type: map` list correlates with (same
/// key values); items of other lists don't correlate.
fn correlate_item<'o>(s: &Schema, item: &Value, old: Option<&'o Value>) -> Option<&'o Value> {
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
fn to_val_fields<'a>(
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
fn fields_read(rules: &[Arc<Rule>]) -> Option<std::collections::BTreeSet<String>> {
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

fn collect_fields(
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
fn to_val<'a>(v: &'a Value, s: Option<&Schema>) -> Box<dyn Val + 'a> {
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
fn formatted<'a>(st: &str, format: &str) -> Option<Box<dyn Val + 'a>> {
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

/// A Kubernetes quantity (`500m`, `1Gi`, `1e3`) as a double.
fn parse_quantity(s: &str) -> Option<f64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    if num.is_empty() || num == "+" || num == "-" || num.matches('.').count() > 1 {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => {
            let exp: i32 = e[1..].parse().ok()?;
            10f64.powi(exp)
        }
        _ => return None,
    };
    Some(n * scale)
}

/// Go's `time.ParseDuration` (`1h30m`, `1.5s`, `-300ms`).
fn go_duration(s: &str) -> Option<chrono::Duration> {
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

// ---- Kubernetes CEL library (the parts that fit cel-rust) ----

fn add_library(ctx: &mut Context<'_, '_>) {
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

fn compare(a: &Cel, b: &Cel) -> Option<std::cmp::Ordering> {
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
