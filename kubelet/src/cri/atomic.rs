//! Upstream's atomic writer for API-backed volumes: the files live in a
//! timestamped directory `..<time>`, `..data` links to it, and every
//! top-level name the user sees links through `..data`. An update writes a
//! new directory and swaps `..data` with one rename, so a container never
//! sees a half-written set, and keys that went away disappear.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

use anyhow::Context;

/// Relative path → (content, mode).
pub type Payload = BTreeMap<String, (Vec<u8>, i32)>;

const DATA: &str = "..data";

fn check_path(rel: &str) -> anyhow::Result<()> {
    let p = Path::new(rel);
    anyhow::ensure!(
        !rel.is_empty()
            && !rel.starts_with("..")
            && p.components().all(|c| matches!(c, Component::Normal(_))),
        "volume path {rel:?} must be relative, without '..' and not start with '..'"
    );
    Ok(())
}

fn top_level(rel: &str) -> &str {
    rel.split('/').next().unwrap_or(rel)
}

/// Whether `dir` already holds exactly this payload.
fn unchanged(dir: &Path, payload: &Payload) -> bool {
    let data = dir.join(DATA);
    if !data.exists() {
        return false;
    }
    let mut count = 0;
    for (rel, (content, mode)) in payload {
        let path = data.join(rel);
        let Ok(meta) = std::fs::metadata(&path) else {
            return false;
        };
        if meta.permissions().mode() & 0o777 != (*mode as u32 & 0o777)
            || std::fs::read(&path).ok().as_deref() != Some(content.as_slice())
        {
            return false;
        }
        count += 1;
    }
    // Nothing else in it either.
    let mut files = 0;
    let mut stack = vec![data];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files += 1;
            }
        }
    }
    files == count
}

/// Writes the payload into `dir`, its files owned by group `gid` when
/// given (the pod's fsGroup); false when it was already there.
pub fn write(dir: &Path, payload: &Payload, gid: Option<u32>) -> anyhow::Result<bool> {
    for rel in payload.keys() {
        check_path(rel)?;
    }
    std::fs::create_dir_all(dir)?;
    if unchanged(dir, payload) {
        return Ok(false);
    }
    let stamp = chrono::Utc::now()
        .format("..%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    let fresh = dir.join(&stamp);
    std::fs::create_dir_all(&fresh)?;
    for (rel, (content, mode)) in payload {
        let path = fresh.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode as u32 & 0o777))?;
        if gid.is_some() {
            std::os::unix::fs::chown(&path, None, gid)?;
        }
    }
    // Swap ..data in one rename.
    let old = std::fs::read_link(dir.join(DATA)).ok();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp)?;
    std::fs::rename(&tmp, dir.join(DATA))?;
    // The user-visible names, through ..data.
    let wanted: BTreeSet<&str> = payload.keys().map(|k| top_level(k)).collect();
    for name in &wanted {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA).join(name), &link)?;
        }
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !wanted.contains(name.as_str()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    if let Some(old) = old.filter(|o| o.as_os_str() != stamp.as_str()) {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(entries: &[(&str, &str, i32)]) -> Payload {
        entries
            .iter()
            .map(|(k, v, m)| (k.to_string(), (v.as_bytes().to_vec(), *m)))
            .collect()
    }

    #[test]
    fn updates_swap_the_data_and_drop_removed_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        assert!(
            write(
                d,
                &payload(&[("a", "1", 0o644), ("sub/b", "2", 0o600)]),
                None
            )
            .expect("write")
        );
        assert_eq!(std::fs::read_to_string(d.join("a")).expect("a"), "1");
        assert_eq!(std::fs::read_to_string(d.join("sub/b")).expect("b"), "2");
        assert_eq!(
            std::fs::metadata(d.join("sub/b"))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert!(
            !write(
                d,
                &payload(&[("a", "1", 0o644), ("sub/b", "2", 0o600)]),
                None
            )
            .expect("same")
        );
        assert!(write(d, &payload(&[("a", "changed", 0o644)]), None).expect("update"));
        assert_eq!(std::fs::read_to_string(d.join("a")).expect("a"), "changed");
        assert!(!d.join("sub").exists(), "a removed key goes");
        let stamps = std::fs::read_dir(d)
            .expect("dir")
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("..") && n != DATA
            })
            .count();
        assert_eq!(stamps, 1, "old data directories are removed");
        assert!(write(d, &payload(&[("../x", "no", 0o644)]), None).is_err());
    }
}
