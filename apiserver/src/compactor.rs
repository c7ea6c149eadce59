//! Periodic compaction of the store's history, as kube-apiserver does with
//! `--etcd-compaction-interval`: every interval, compact to the revision
//! seen one interval earlier, so at least one interval of history (for
//! watches resuming and paginated lists) always remains.

use std::sync::Arc;
use std::time::Duration;

use rkube_storage::{Storage, StorageError};

/// Parses a Go duration such as `5m0s`, `300s`, `1h`, `0` (off).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let c = rest.chars().next().unwrap_or(' ');
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let (unit, scale) = [("ms", 0.001), ("h", 3600.0), ("m", 60.0), ("s", 1.0)]
            .into_iter()
            .find(|(u, _)| rest.starts_with(u))
            .ok_or_else(|| format!("invalid duration {text:?}"))?;
        let n: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        total += n * scale;
        number.clear();
        rest = &rest[unit.len()..];
    }
    if !number.is_empty() {
        return Err(format!("invalid duration {text:?}: missing unit"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Runs forever (spawn it); does nothing when `interval` is zero.
pub async fn run(store: Arc<dyn Storage>, interval: Duration) {
    if interval.is_zero() {
        return;
    }
    let mut previous = store.current_revision().await.unwrap_or(0);
    loop {
        tokio::time::sleep(interval).await;
        let current = match store.current_revision().await {
            Ok(rev) => rev,
            Err(e) => {
                tracing::warn!(error = %e, "compactor: reading the revision failed");
                continue;
            }
        };
        if previous > 0 {
            match store.compact(previous).await {
                Ok(()) => tracing::debug!(revision = previous, "compacted"),
                // Someone (another API server) compacted further already.
                Err(StorageError::Compacted { .. }) => {}
                Err(e) => tracing::warn!(error = %e, revision = previous, "compaction failed"),
            }
        }
        previous = current;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5m0s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
    }
}
