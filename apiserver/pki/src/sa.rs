//! The service-account token signing key pair (`pki/sa.key`, `pki/sa.pub`).
//! kubeadm keeps it outside any certificate; the apiserver signs tokens with
//! the private key and verifies them with the public one.

use std::path::Path;

use crate::error::{PkiError, Result};
use crate::files::{self, PRIVATE_MODE, PUBLIC_MODE};
use crate::keys;

/// PEM key pair: private key (PKCS#8, or PKCS#1/SEC1 if kubeadm wrote it) and
/// SPKI "PUBLIC KEY".
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceAccountKeys {
    pub private_key_pem: String,
    pub public_key_pem: String,
}

impl std::fmt::Debug for ServiceAccountKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKeys")
            .field("public_key_pem", &self.public_key_pem)
            .finish_non_exhaustive()
    }
}

/// Loads or creates `sa.key`; writes `sa.pub` from it if missing.
pub(crate) fn ensure(pki_dir: &Path) -> Result<ServiceAccountKeys> {
    let key_path = pki_dir.join("sa.key");
    let pub_path = pki_dir.join("sa.pub");
    let key_what = key_path.display().to_string();
    let (private_key_pem, key) = match files::read_optional(&key_path)? {
        Some(pem) => {
            let key = keys::parse_key_pem(&pem, &key_what)?;
            (pem, key)
        }
        None => {
            let key = keys::generate(&key_what)?;
            let pem = key.serialize_pem();
            files::write_atomic(&key_path, pem.as_bytes(), PRIVATE_MODE)?;
            (pem, key)
        }
    };
    let derived = key.public_key_pem();
    let public_key_pem = match files::read_optional(&pub_path)? {
        Some(existing) => {
            if strip(&existing) != strip(&derived) {
                return Err(PkiError::KeyMismatch {
                    what: pub_path.display().to_string(),
                });
            }
            existing
        }
        None => {
            files::write_atomic(&pub_path, derived.as_bytes(), PUBLIC_MODE)?;
            derived
        }
    };
    Ok(ServiceAccountKeys {
        private_key_pem,
        public_key_pem,
    })
}

/// PEM body without whitespace, to compare encodings that wrap lines differently.
fn strip(pem: &str) -> String {
    pem.chars().filter(|c| !c.is_whitespace()).collect()
}
