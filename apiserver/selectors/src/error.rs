//! The one error type: upstream returns plain Go errors whose text is the
//! contract, so we carry the fully rendered message.

/// A selector failed to parse or validate. `Display` is upstream's exact text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelectorError {
    message: String,
}

impl SelectorError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message, identical to upstream's `err.Error()`.
    pub fn message(&self) -> &str {
        &self.message
    }
}
