//! The error every parameter check returns. Its own module, so that the checks (`checks`) and
//! the typed parameters built from them (`params`) both depend on it and not on each other.

/// A parameter the user must change, named as the user wrote it (`maskLen`, `allowNetworks[1]`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{field}`: {message}")]
pub struct ParamError {
    pub field: String,
    pub message: String,
}

impl ParamError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> ParamError {
        ParamError {
            field: field.into(),
            message: message.into(),
        }
    }
}
