//! The JSONPath subset printer columns use (`.status.replicas`,
//! `.spec.items[0].name`, `.status.conditions[?(@.type=="Ready")].status`):
//! enough for the columns operators declare, evaluated to the first match
//! as upstream's table convertor takes `results[0][0]`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    /// `[?(@.a.b=="x")]`: elements whose field path equals the literal.
    Filter(Vec<String>, Value),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Path {
    steps: Vec<Step>,
}

impl Path {
    /// Parses `.a.b[0]`, also with the `{...}` template braces kubectl uses.
    pub fn parse(text: &str) -> Result<Path, String> {
        let t = text.trim();
        let t = t
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(t);
        let t = t.strip_prefix('$').unwrap_or(t);
        let chars: Vec<char> = t.chars().collect();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    i += 1;
                    let start = i;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        i += 1;
                    }
                    let name: String = chars[start..i].iter().collect();
                    if !name.is_empty() {
                        steps.push(Step::Field(name));
                    }
                }
                '[' => {
                    let end =
                        find_close(&chars, i).ok_or_else(|| format!("unclosed [ in {text:?}"))?;
                    let inner: String = chars[i + 1..end].iter().collect();
                    steps.push(bracket(inner.trim())?);
                    i = end + 1;
                }
                c => return Err(format!("unexpected {c:?} in {text:?}")),
            }
        }
        Ok(Path { steps })
    }

    /// The first value the path selects.
    pub fn first<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        first(&self.steps, v)
    }
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (j, c) in chars.iter().enumerate().skip(open + 1) {
        match (quote, *c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(*c),
            (None, ']') => return Some(j),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

fn bracket(inner: &str) -> Result<Step, String> {
    if inner == "*" {
        return Ok(Step::All);
    }
    if let Some(name) = unquote(inner) {
        return Ok(Step::Field(name.to_owned()));
    }
    if let Ok(n) = inner.parse::<i64>() {
        return Ok(Step::Index(n));
    }
    let cond = inner
        .strip_prefix("?(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("unsupported [{inner}]"))?;
    let (lhs, rhs) = cond
        .split_once("==")
        .ok_or_else(|| format!("unsupported filter {cond:?}"))?;
    let fields = lhs
        .trim()
        .strip_prefix('@')
        .ok_or_else(|| format!("unsupported filter {cond:?}"))?
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let rhs = rhs.trim();
    let literal = match unquote(rhs) {
        Some(s) => Value::String(s.to_owned()),
        None => serde_json::from_str(rhs).map_err(|_| format!("bad literal {rhs:?}"))?,
    };
    Ok(Step::Filter(fields, literal))
}

fn first<'a>(steps: &[Step], v: &'a Value) -> Option<&'a Value> {
    let Some((step, rest)) = steps.split_first() else {
        return Some(v);
    };
    match step {
        Step::Field(name) => first(rest, v.get(name)?),
        Step::Index(n) => {
            let a = v.as_array()?;
            let i = if *n < 0 { a.len() as i64 + n } else { *n };
            first(rest, a.get(usize::try_from(i).ok()?)?)
        }
        Step::All => match v {
            Value::Array(a) => a.iter().find_map(|e| first(rest, e)),
            Value::Object(m) => m.values().find_map(|e| first(rest, e)),
            _ => None,
        },
        Step::Filter(fields, literal) => v.as_array()?.iter().find_map(|e| {
            let got = fields.iter().try_fold(e, |cur, f| cur.get(f))?;
            (got == literal).then(|| first(rest, e)).flatten()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_fields_indices_and_filters() {
        let obj = json!({"spec": {"a": [{"n": 1}, {"n": 2}]},
            "status": {"conditions": [{"type": "X", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        let p = |s: &str| Path::parse(s).unwrap();
        assert_eq!(p(".spec.a[1].n").first(&obj), Some(&json!(2)));
        assert_eq!(p("{.spec.a[-1].n}").first(&obj), Some(&json!(2)));
        assert_eq!(
            p(r#".status.conditions[?(@.type=="Ready")].status"#).first(&obj),
            Some(&json!("True"))
        );
        assert_eq!(p(".spec.missing").first(&obj), None);
    }
}
