//! One error type for the crate, so callers see which file was at fault.

use std::path::PathBuf;

/// Everything that can go wrong while creating, loading or using the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file (or in-memory blob, named by `what`) is not usable PEM of the expected kind.
    #[error("{what}: invalid PEM: {reason}")]
    InvalidPem { what: String, reason: String },
    #[error("{what}: private key does not match its certificate or public key")]
    KeyMismatch { what: String },
    #[error("{what}: certificate is not signed by the cluster CA ({ca})")]
    NotSignedByCa { what: String, ca: PathBuf },
    #[error("{what}: certificate generation failed: {source}")]
    Generate { what: String, source: rcgen::Error },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("TLS client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("{what}: kubeconfig YAML: {source}")]
    Kubeconfig {
        what: String,
        source: serde_yaml::Error,
    },
}

/// Crate-wide result.
pub type Result<T, E = PkiError> = std::result::Result<T, E>;

impl PkiError {
    pub(crate) fn pem(what: impl std::fmt::Display, reason: impl std::fmt::Display) -> Self {
        PkiError::InvalidPem {
            what: what.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn generate(what: impl std::fmt::Display, source: rcgen::Error) -> Self {
        PkiError::Generate {
            what: what.to_string(),
            source,
        }
    }
}
