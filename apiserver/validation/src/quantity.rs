//! `resource.Quantity` values as floats, enough to compare requests/limits
//! (parsed by rkube-quota's exact `Quantity`).

/// Parses a quantity string into a float value; `None` when malformed.
pub fn parse(q: &str) -> Option<f64> {
    rkube_quota::Quantity::parse(q).map(|q| q.as_f64())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        assert_eq!(super::parse("500m"), Some(0.5));
        assert_eq!(super::parse("1Gi"), Some(1073741824.0));
        assert_eq!(super::parse("1e3"), Some(1000.0));
        assert_eq!(super::parse("x"), None);
    }
}
