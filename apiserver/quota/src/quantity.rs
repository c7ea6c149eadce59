//! `resource.Quantity` with exact arithmetic: values are held in
//! nano-units, and printed in upstream's canonical form keeping the
//! binary (`Ki`, `Mi`…) or decimal (`k`, `M`…) format they came in.

use std::cmp::Ordering;
use std::fmt;

const NANO: i128 = 1_000_000_000;

#[derive(Debug, Clone, Copy, Default)]
pub struct Quantity {
    nanos: i128,
    binary: bool,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}
impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Quantity {
    pub fn from_int(n: i64) -> Quantity {
        Quantity {
            nanos: i128::from(n) * NANO,
            binary: false,
        }
    }

    pub fn zero() -> Quantity {
        Quantity::default()
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Parses upstream's quantity syntax (`500m`, `1.5Gi`, `1e3`, `+2k`).
    pub fn parse(s: &str) -> Option<Quantity> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
            .unwrap_or(s.len());
        let (num, suffix) = s.split_at(split);
        let (neg, num) = match num.as_bytes().first() {
            Some(b'-') => (true, &num[1..]),
            Some(b'+') => (false, &num[1..]),
            _ => (false, num),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
            || int.len() + frac.len() > 30
        {
            return None;
        }
        let mantissa: i128 = format!("{int}{frac}").parse().ok()?;
        let scale = u32::try_from(frac.len()).ok()?;
        let (num_mult, binary): (i128, bool) = match suffix {
            "" => (NANO, false),
            "n" => (1, false),
            "u" => (1_000, false),
            "m" => (1_000_000, false),
            "k" => (NANO * 1_000, false),
            "M" => (NANO * 1_000_000, false),
            "G" => (NANO * 1_000_000_000, false),
            "T" => (NANO * 1_000_000_000_000, false),
            "P" => (NANO * 1_000_000_000_000_000, false),
            "E" => (NANO * 1_000_000_000_000_000_000, false),
            "Ki" => (NANO << 10, true),
            "Mi" => (NANO << 20, true),
            "Gi" => (NANO << 30, true),
            "Ti" => (NANO << 40, true),
            "Pi" => (NANO << 50, true),
            "Ei" => (NANO << 60, true),
            e if e.starts_with(['e', 'E']) => {
                let exp: i32 = e[1..].parse().ok()?;
                if !(-9..=18).contains(&exp) {
                    return None;
                }
                if exp >= 0 {
                    (NANO * 10i128.pow(exp.unsigned_abs()), false)
                } else {
                    (NANO / 10i128.pow(exp.unsigned_abs()), false)
                }
            }
            _ => return None,
        };
        let scaled = mantissa.checked_mul(num_mult)?;
        let div = 10i128.checked_pow(scale)?;
        // Upstream rounds sub-nano precision up.
        let mut nanos = scaled / div + i128::from(scaled % div != 0);
        if neg {
            nanos = -nanos;
        }
        Some(Quantity { nanos, binary })
    }

    /// The sum, in the receiver's format (the other's when the receiver is zero).
    #[allow(clippy::should_implement_trait)] // keeps the receiver's format, unlike `+` would suggest
    pub fn add(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos + other.nanos,
            binary: if self.nanos == 0 {
                other.binary
            } else {
                self.binary
            },
        }
    }

    #[allow(clippy::should_implement_trait)]
    pub fn sub(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos - other.nanos,
            binary: self.binary,
        }
    }

    /// The value in milli-units, rounded up (as upstream's MilliValue).
    pub fn milli(&self) -> i128 {
        let m = 1_000_000;
        self.nanos / m + i128::from(self.nanos % m > 0)
    }

    /// The value as a float (for code that only compares or scales).
    pub fn as_f64(&self) -> f64 {
        self.nanos as f64 / NANO as f64
    }

    /// `self / other` as a float (for limit/request ratios).
    pub fn ratio(&self, other: &Quantity) -> f64 {
        self.nanos as f64 / other.nanos as f64
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.nanos;
        if n == 0 {
            return f.write_str("0");
        }
        if n % NANO != 0 {
            for (div, suffix) in [(1_000_000, "m"), (1_000, "u"), (1, "n")] {
                if n % div == 0 {
                    return write!(f, "{}{suffix}", n / div);
                }
            }
        }
        let v = n / NANO;
        if self.binary {
            for (shift, suffix) in [
                (60, "Ei"),
                (50, "Pi"),
                (40, "Ti"),
                (30, "Gi"),
                (20, "Mi"),
                (10, "Ki"),
            ] {
                if v % (1i128 << shift) == 0 {
                    return write!(f, "{}{suffix}", v >> shift);
                }
            }
            return write!(f, "{v}");
        }
        for (exp, suffix) in [
            (18, "E"),
            (15, "P"),
            (12, "T"),
            (9, "G"),
            (6, "M"),
            (3, "k"),
        ] {
            let d = 10i128.pow(exp);
            if v % d == 0 {
                return write!(f, "{}{suffix}", v / d);
            }
        }
        write!(f, "{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::Quantity;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn parse_and_print() {
        for (input, out) in [
            ("500m", "500m"),
            ("1", "1"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("0.5", "500m"),
            ("1e3", "1k"),
            ("100M", "100M"),
            ("-2", "-2"),
            ("0", "0"),
        ] {
            assert_eq!(q(input).to_string(), out, "{input}");
        }
        for bad in ["", "x", "1x", "1.2.3", "--1", "m"] {
            assert!(Quantity::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn arithmetic() {
        assert_eq!(q("500m").add(q("1")).to_string(), "1500m");
        assert_eq!(q("1Gi").add(q("1Gi")).to_string(), "2Gi");
        assert_eq!(Quantity::zero().add(q("1Gi")).to_string(), "1Gi");
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("2").sub(q("500m")).to_string(), "1500m");
        assert_eq!(q("1n").milli(), 1);
    }
}
