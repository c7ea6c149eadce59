//! Field paths as upstream's `field.Path` renders them.

/// `parent.child` (or `child` at the root).
pub(crate) fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// `parent[key]`.
pub(crate) fn key(parent: &str, k: &str) -> String {
    format!("{parent}[{k}]")
}

/// `parent[i]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// Joins a base path and a kube-openapi value path (`spec.items[0]`); an
/// empty result is upstream's nil path, which renders as `<nil>`.
pub(crate) fn join(base: &str, name: &str) -> String {
    let name = name.strip_prefix('.').unwrap_or(name);
    match (base.is_empty(), name.is_empty()) {
        (true, true) => "<nil>".to_string(),
        (true, false) => name.to_string(),
        (false, true) => base.to_string(),
        (false, false) if name.starts_with('[') => format!("{base}{name}"),
        (false, false) => format!("{base}.{name}"),
    }
}

/// Go's `%v` of a float64 (`%g` with the shortest representation).
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return "0".into();
    }
    // Shortest round-trip digits and decimal exponent, via `{:e}`.
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    // Plain notation: Rust's `{}` is already the shortest round-trip form.
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_floats() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(100000.0), "100000");
        assert_eq!(go_float(1000000.0), "1e+06");
        assert_eq!(go_float(123456789.0), "1.23456789e+08");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5), "-2.5");
    }

    #[test]
    fn joins() {
        assert_eq!(join("", ""), "<nil>");
        assert_eq!(join("", ".spec"), "spec");
        assert_eq!(join("a.default", "[0].x"), "a.default[0].x");
        assert_eq!(join("a.default", "x"), "a.default.x");
    }
}
