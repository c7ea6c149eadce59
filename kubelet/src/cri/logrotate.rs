//! Container log rotation, as upstream's container log manager: every
//! 10 s a running container's log over `--container-log-max-size` is
//! renamed `<n>.log.<YYYYMMDD-HHMMSS>`, the runtime reopens a fresh
//! `<n>.log` (CRI ReopenContainerLog), rotated files but the newest are
//! gzipped, and at most `--container-log-max-files` files are kept.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Upstream's defaults.
pub const DEFAULT_MAX_SIZE: &str = "10Mi";
pub const DEFAULT_MAX_FILES: usize = 5;
/// Upstream's `containerLogMonitorInterval`.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Policy {
    pub max_size: u64,
    pub max_files: usize,
}

/// The rotated files of `log` (`<log>.<stamp>` and `<log>.<stamp>.gz`),
/// oldest first.
fn rotated(log: &Path) -> Vec<PathBuf> {
    let Some(name) = log.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut out: Vec<PathBuf> = log
        .parent()
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .map(|e| e.path())
        .filter(|p| !p.to_string_lossy().ends_with(".tmp"))
        .collect();
    out.sort_by_key(|p| sort_key(p));
    out
}

/// A rotated file's stamp, whether compressed or not.
fn sort_key(p: &Path) -> String {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.trim_end_matches(".gz").to_owned()
}

fn gzip(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let tmp = PathBuf::from(format!("{}.tmp", gz.display()));
    let data = std::fs::read(path)?;
    let mut enc =
        flate2::write::GzEncoder::new(std::fs::File::create(&tmp)?, flate2::Compression::default());
    enc.write_all(&data)?;
    enc.finish()?;
    std::fs::rename(&tmp, &gz)?;
    std::fs::remove_file(path)
}

/// Renames `log` aside if it grew past the policy's size; true when it
/// did (the runtime then has to reopen it). As upstream, the rotated
/// files are first cut to `max_files - 2` and compressed, so that after
/// the rotation the newest rotated file is plain and the others gzipped.
pub fn rotate_if_needed(log: &Path, policy: &Policy) -> std::io::Result<bool> {
    let size = match std::fs::metadata(log) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if size < policy.max_size {
        return Ok(false);
    }
    let mut files = rotated(log);
    let keep = policy.max_files.saturating_sub(2);
    while files.len() > keep {
        std::fs::remove_file(files.remove(0))?;
    }
    for f in &files {
        if f.extension().is_none_or(|e| e != "gz") {
            gzip(f)?;
        }
    }
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    // The new name sorts after every rotated file (several rotations in
    // one second get -001, -002...).
    let newest = rotated(log).last().map(|p| sort_key(p));
    let mut n = 0;
    let aside = loop {
        let name = match n {
            0 => format!("{}.{stamp}", log.display()),
            n => format!("{}.{stamp}-{n:03}", log.display()),
        };
        let path = PathBuf::from(name);
        if newest.as_ref().is_none_or(|k| sort_key(&path) > *k) {
            break path;
        }
        n += 1;
    };
    std::fs::rename(log, &aside)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_compresses_and_keeps_max_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        let policy = Policy {
            max_size: 10,
            max_files: 3,
        };
        std::fs::write(&log, "short").expect("write");
        assert!(!rotate_if_needed(&log, &policy).expect("rotate"));
        for round in 0..4 {
            std::fs::write(&log, format!("a line that is long enough {round}")).expect("write");
            assert!(rotate_if_needed(&log, &policy).expect("rotate"));
            assert!(!log.exists());
        }
        std::fs::write(&log, "current").expect("write");
        rotate_if_needed(&log, &policy).expect("clean");
        let files = rotated(&log);
        // The current log and two rotated ones: the older compressed.
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[0].to_string_lossy().ends_with(".gz"), "{files:?}");
        assert!(!files[1].to_string_lossy().ends_with(".gz"), "{files:?}");
        assert_eq!(
            std::fs::read_to_string(&files[1]).expect("newest"),
            "a line that is long enough 3"
        );
        let gz = std::fs::File::open(&files[0]).expect("gz");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz), &mut text)
            .expect("gunzip");
        assert_eq!(text, "a line that is long enough 2");
    }
}
