//! File helpers: reads that name the file on failure, and atomic writes
//! with kubeadm's permissions (0600 for private keys and kubeconfigs).

use std::io::Write;
use std::path::Path;

use crate::error::{PkiError, Result};

/// Mode for private keys and files embedding them.
pub(crate) const PRIVATE_MODE: u32 = 0o600;
/// Mode for certificates and public keys.
pub(crate) const PUBLIC_MODE: u32 = 0o644;

/// Reads a PEM/YAML text file; `Ok(None)` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| PkiError::pem(path.display(), "file is not UTF-8 text")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads a text file that must exist.
pub(crate) fn read_required(path: &Path) -> Result<String> {
    read_optional(path)?.ok_or_else(|| PkiError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
    })
}

/// Writes `contents` to `path` via a temporary file and rename, so a crash
/// never leaves a half-written key behind; parents are created as needed.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let err = |source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    let mut file = opts.open(&tmp).map_err(err)?;
    #[cfg(unix)]
    {
        // The mode given to open() is filtered by the umask and ignored for an
        // existing file; set it explicitly.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(err)?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)
}
