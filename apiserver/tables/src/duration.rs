//! Human-readable ages, matching apimachinery's `duration.HumanDuration`
//! so that AGE and similar cells read exactly as upstream's.

use chrono::{DateTime, Utc};

/// Formats an elapsed duration given in nanoseconds with ~2-3 significant
/// figures ("5s", "2m3s", "4h", "3d", "2y"...). Up to one second in the
/// future is shown as "0s" to tolerate clock skew; beyond that "<invalid>".
pub fn human_duration_nanos(nanos: i64) -> String {
    const SEC: i64 = 1_000_000_000;
    const MIN: i64 = 60 * SEC;
    const HOUR: i64 = 60 * MIN;
    // Go truncates toward zero, as does Rust integer division.
    let seconds = nanos / SEC;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / MIN;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

/// `HumanDuration` for a chrono duration.
pub fn human_duration(d: chrono::TimeDelta) -> String {
    // Durations beyond ~292 years overflow nanoseconds; Go saturates too.
    let nanos = d
        .num_nanoseconds()
        .unwrap_or(if d < chrono::TimeDelta::zero() {
            i64::MIN
        } else {
            i64::MAX
        });
    human_duration_nanos(nanos)
}

/// Parses a Kubernetes timestamp (RFC 3339, with or without fractional
/// seconds, as `metav1.Time` and `metav1.MicroTime` serialise).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Upstream's `translateTimestampSince`: "<unknown>" for an unset time,
/// otherwise the human duration since it.
pub fn since(ts: Option<&str>, now: DateTime<Utc>) -> String {
    match ts.filter(|s| !s.is_empty()).and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn hd(secs: i64) -> String {
        human_duration_nanos(secs * S)
    }

    #[test]
    fn human_duration_matches_upstream_table() {
        // Cases from apimachinery's duration_test.go.
        assert_eq!(hd(1), "1s");
        assert_eq!(hd(70), "70s");
        assert_eq!(hd(190), "3m10s");
        assert_eq!(hd(70 * 60), "70m");
        assert_eq!(hd(47 * 60 * 60), "47h");
        assert_eq!(hd(49 * 60 * 60), "2d1h");
        assert_eq!(hd((8 * 24 + 2) * 60 * 60), "8d");
        assert_eq!(hd(367 * 24 * 60 * 60), "367d");
        assert_eq!(hd((365 * 2 + 10) * 24 * 60 * 60), "2y10d");
        assert_eq!(hd((365 * 8 + 100) * 24 * 60 * 60), "8y");
        assert_eq!(hd(119), "119s");
        assert_eq!(hd(120), "2m");
        assert_eq!(hd(123), "2m3s");
        assert_eq!(hd(9 * 60 + 59), "9m59s");
        assert_eq!(hd(10 * 60 + 59), "10m");
        assert_eq!(hd(3 * 60 * 60), "3h");
        assert_eq!(hd(3 * 60 * 60 + 5 * 60), "3h5m");
        assert_eq!(hd(8 * 60 * 60 + 5 * 60), "8h");
        assert_eq!(hd(3 * 24 * 60 * 60), "3d");
        assert_eq!(hd(2 * 365 * 24 * 60 * 60), "2y");
        assert_eq!(hd(0), "0s");
    }

    #[test]
    fn skew_tolerance() {
        assert_eq!(human_duration_nanos(-S / 2), "0s");
        assert_eq!(human_duration_nanos(-S - S / 2), "0s");
        assert_eq!(human_duration_nanos(-2 * S), "<invalid>");
    }

    #[test]
    fn since_handles_unset_and_fractions() {
        let now = parse_time("2024-01-01T00:10:00Z").unwrap();
        assert_eq!(since(None, now), "<unknown>");
        assert_eq!(since(Some(""), now), "<unknown>");
        assert_eq!(since(Some("2024-01-01T00:05:00Z"), now), "5m");
        assert_eq!(since(Some("2024-01-01T00:09:55.123456Z"), now), "4s");
    }
}
