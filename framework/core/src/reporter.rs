//! Reporters: turn the run's results into files. They return bytes; the runner writes them
//! atomically into the run directory.

use crate::error::ComponentError;

/// One file a reporter produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// File name relative to the run directory (no `..`, no absolute paths).
    pub name: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// A reporter (`reporter/json`, ...).
pub trait Reporter: Send + Sync {
    /// Renders `results` (the run's deterministic results document).
    ///
    /// # Errors
    /// Rendering failures.
    fn report(&self, results: &serde_json::Value) -> Result<Vec<OutputFile>, ComponentError>;
}
