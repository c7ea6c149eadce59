//! `resource.Quantity` to integers, rounding up as upstream's `Value()` and
//! `MilliValue()` do (a request of 0.1m cpu counts as 1m).

/// The quantity scaled by `10^scale` (0 for `Value()`, 3 for
/// `MilliValue()`), rounded up; `None` when malformed.
pub fn scaled(q: &str, scale: i32) -> Option<i64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (negative, number) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole
        .bytes()
        .chain(frac.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // mantissa * 2^bin * 10^(dec - frac digits)
    let (bin, dec): (u32, i32) = match suffix {
        "" => (0, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        s if s.starts_with(['e', 'E']) => (0, s[1..].parse().ok()?),
        _ => return None,
    };
    let digits = format!("{whole}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return None;
    }
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let exp = dec - frac.len() as i32 + scale;
    let mut value = mantissa.checked_mul(1i128.checked_shl(bin)?)?;
    if exp >= 0 {
        value = value.checked_mul(10i128.checked_pow(exp as u32)?)?;
    } else {
        let div = 10i128.checked_pow((-exp) as u32).unwrap_or(i128::MAX);
        value = (value + div - 1) / div;
    }
    let value = i64::try_from(value).unwrap_or(i64::MAX);
    Some(if negative { -value } else { value })
}

/// `Value()`: whole units, rounded up.
pub fn value(q: &str) -> Option<i64> {
    scaled(q, 0)
}

/// `MilliValue()`: thousandths, rounded up.
pub fn milli_value(q: &str) -> Option<i64> {
    scaled(q, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_upstream() {
        assert_eq!(milli_value("500m"), Some(500));
        assert_eq!(milli_value("1"), Some(1000));
        assert_eq!(milli_value("0.1"), Some(100));
        assert_eq!(milli_value("100u"), Some(1), "rounded up");
        assert_eq!(value("1Gi"), Some(1 << 30));
        assert_eq!(value("1.5Ki"), Some(1536));
        assert_eq!(value("1e3"), Some(1000));
        assert_eq!(value("128974848"), Some(128974848));
        assert_eq!(value("129M"), Some(129_000_000));
        assert_eq!(value("1500m"), Some(2));
        assert_eq!(value("x"), None);
        assert_eq!(value(""), None);
    }
}
