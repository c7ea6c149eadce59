//! Termination messages as upstream's kubelet gives them: a host file
//! mounted at the container's `terminationMessagePath`, read when the
//! container exits; with `FallbackToLogsOnError`, the tail of its log when
//! the file is empty and the container failed.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};

/// Upstream's MaxContainerTerminationMessageLength.
const MAX_FILE_BYTES: u64 = 4 * 1024;
/// Upstream's MaxContainerTerminationMessageLogLines and ...LogLength.
const MAX_LOG_LINES: usize = 80;
const MAX_LOG_BYTES: usize = 2 * 1024;

/// Where one container run's termination message comes from.
#[derive(Clone, Debug)]
pub struct Source {
    file: PathBuf,
    /// The run's CRI log, when the policy falls back to it.
    fallback_log: Option<PathBuf>,
}

impl Source {
    /// Creates the run's message file under the pod's directory
    /// (`<root>/pods/<uid>/containers/<name>/<attempt>`, writable by any
    /// user as upstream makes it) and mounts it into `config`.
    pub fn prepare(
        root: &Path,
        pod: &Pod,
        c: &Container,
        attempt: u32,
        config: &mut cri::ContainerConfig,
    ) -> anyhow::Result<Option<Source>> {
        use std::os::unix::fs::PermissionsExt;
        let path = c
            .termination_message_path
            .as_deref()
            .unwrap_or("/dev/termination-log");
        if path.is_empty() {
            return Ok(None);
        }
        let dir = root
            .join("pods")
            .join(pod.metadata.uid.as_deref().unwrap_or("unknown"))
            .join("containers")
            .join(&c.name);
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(attempt.to_string());
        std::fs::write(&file, b"")?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666))?;
        config.mounts.push(cri::Mount {
            container_path: path.to_owned(),
            host_path: file.to_string_lossy().into_owned(),
            ..Default::default()
        });
        let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
        Ok(Some(Source {
            file,
            fallback_log: fallback.then(|| {
                super::pod_log_dir(pod)
                    .join(&c.name)
                    .join(format!("{attempt}.log"))
            }),
        }))
    }

    /// The message of a run that exited with `exit_code`.
    pub fn message(&self, exit_code: i32) -> String {
        let from_file = read_head(&self.file, MAX_FILE_BYTES);
        if !from_file.is_empty() || exit_code == 0 {
            return from_file;
        }
        match &self.fallback_log {
            Some(log) => log_tail(log),
            None => from_file,
        }
    }
}

fn read_head(path: &Path, max: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(max).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last lines of a CRI log (`<time> <stream> <P|F> <text>`), at most
/// MAX_LOG_LINES lines and MAX_LOG_BYTES bytes, partial lines joined.
fn log_tail(path: &Path) -> String {
    let mut raw = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        // Enough of the end for 80 lines of any sensible length.
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(64 * 1024);
        if f.seek(SeekFrom::Start(start)).is_ok() {
            let _ = f.read_to_end(&mut raw);
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let mut lines: Vec<String> = Vec::new();
    let mut partial = String::new();
    for record in text.lines() {
        let mut fields = record.splitn(4, ' ');
        let (Some(_time), Some(_stream), Some(tag)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        partial.push_str(fields.next().unwrap_or(""));
        if tag != "P" {
            lines.push(std::mem::take(&mut partial) + "\n");
        }
    }
    // Output that ended without a newline (the runtime tags it partial).
    if !partial.is_empty() {
        lines.push(partial);
    }
    let keep = lines.len().saturating_sub(MAX_LOG_LINES);
    let out: String = lines[keep..].concat();
    // The last bytes, cut at a character boundary.
    let mut cut = out.len().saturating_sub(MAX_LOG_BYTES);
    while !out.is_char_boundary(cut) {
        cut += 1;
    }
    out[cut..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_joins_partials_and_keeps_the_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        let mut text = String::new();
        for i in 0..100 {
            text.push_str(&format!(
                "2026-01-01T00:00:00.000000000Z stdout F line {i}\n"
            ));
        }
        text.push_str("2026-01-01T00:00:00.000000000Z stderr P half \n");
        text.push_str("2026-01-01T00:00:00.000000000Z stderr F done\n");
        std::fs::write(&log, text).expect("write");
        let tail = log_tail(&log);
        assert!(tail.starts_with("line 21\n"), "{tail}");
        assert!(tail.ends_with("line 99\nhalf done\n"), "{tail}");
        assert_eq!(tail.lines().count(), 80);
    }

    #[test]
    fn file_first_then_logs_only_on_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("msg");
        let log = dir.path().join("0.log");
        std::fs::write(&file, "").expect("write");
        std::fs::write(&log, "2026-01-01T00:00:00Z stdout F boom\n").expect("write");
        let s = Source {
            file: file.clone(),
            fallback_log: Some(log),
        };
        assert_eq!(s.message(0), "");
        assert_eq!(s.message(1), "boom\n");
        std::fs::write(&file, "from file").expect("write");
        assert_eq!(s.message(1), "from file");
    }
}
