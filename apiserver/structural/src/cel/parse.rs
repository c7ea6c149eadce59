//! Parsing rules with bounded nesting (the interpreter recurses per level).

use super::*;

use cel::Program;
use cel::common::ast::{EntryExpr, Expr};
use cel::parser::Expression;

/// Deepest expression nesting accepted: deeper rules are refused at
/// compile time so that evaluating them (the interpreter recurses per
/// level) fits a 2 MiB worker stack even in debug builds. cel-go allows
/// more (250); rules nesting past 32 levels are not known in practice.
pub(super) const MAX_DEPTH: usize = 32;
/// cel-go's default `ParserExpressionSizeCodePointLimit`.
pub(super) const MAX_EXPRESSION_CHARS: usize = 100_000;

/// Parses an expression on a thread with a large stack (the parser
/// recurses per nesting level), refusing what nests deeper than
/// [`MAX_DEPTH`].
pub(super) fn parse(src: &str) -> Result<Program, String> {
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
pub(super) fn ast_depth(e: &Expression) -> usize {
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
