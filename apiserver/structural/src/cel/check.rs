//! Compile-time field checks: the part of cel-go's type checking that matters most.

use crate::schema::Schema;
use cel::Program;
use cel::common::ast::{EntryExpr, Expr};
use cel::parser::Expression;
use std::collections::HashMap;

/// The first selection of a field the schema doesn't declare, as cel-go's
/// checker reports it (`ERROR: <input>:1:5: undefined field 'z'`).
pub(super) fn undefined_field(
    program: &Program,
    rule: &str,
    s: &Schema,
    root: bool,
) -> Option<String> {
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
pub(super) fn closed(s: &Schema) -> bool {
    s.properties.is_some()
        && s.additional_properties.is_none()
        && !s.preserves_unknown()
        && !s.int_or_string
}

pub(super) fn check_fields<'s>(
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
