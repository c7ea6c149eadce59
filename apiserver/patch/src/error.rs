//! Patch errors. Each maps to the HTTP status upstream's patch handler uses,
//! so the API server can turn them into `Status` objects directly.

use thiserror::Error;

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatchError {
    /// The patch document itself is malformed (bad op, missing member,
    /// invalid pointer, wrong directive shape). Upstream: 400 Bad Request.
    #[error("{0}")]
    BadPatch(String),
    /// A well-formed JSON patch did not apply to this document (missing path,
    /// index out of range, failed `test`). Upstream: 422 Unprocessable Entity.
    #[error("{0}")]
    NotApplicable(String),
    /// A strategic merge patch conflicts with the object's shape (lists of
    /// lists, keys outside `$retainKeys`). Upstream: 422.
    #[error("{0}")]
    Invalid(String),
}

impl PatchError {
    /// HTTP status upstream answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::BadPatch(_) => 400,
            PatchError::NotApplicable(_) | PatchError::Invalid(_) => 422,
        }
    }

    pub(crate) fn bad(msg: impl Into<String>) -> Self {
        PatchError::BadPatch(msg.into())
    }

    pub(crate) fn na(msg: impl Into<String>) -> Self {
        PatchError::NotApplicable(msg.into())
    }
}
