//! Exit codes (documented in docs/exit-codes.md) and the CLI's error type.

use valex_core::ErrorClass;

/// The process exit codes of `valex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// A stage failed while running.
    StageFailed = 1,
    /// Usage, manifest or configuration error.
    Usage = 2,
    /// A plugin could not be loaded (ABI mismatch, missing symbol) or failed at run time
    /// (panicked, returned malformed output).
    PluginLoad = 3,
    /// Model or data files are missing or malformed; backend runtime errors.
    Input = 4,
    /// The run was interrupted (Ctrl-C, SIGTERM) and kept resumable: 128 + SIGINT, as
    /// shells report a process killed by Ctrl-C.
    Interrupted = 130,
}

impl From<ErrorClass> for ExitCode {
    fn from(c: ErrorClass) -> Self {
        match c {
            ErrorClass::Config => ExitCode::Usage,
            ErrorClass::Input => ExitCode::Input,
            ErrorClass::Plugin => ExitCode::PluginLoad,
            _ => ExitCode::StageFailed,
        }
    }
}

/// An error with its exit code; every line is printed as `error: <line>`.
#[derive(Debug)]
pub(crate) struct CliError {
    pub code: ExitCode,
    pub error: anyhow::Error,
}

impl CliError {
    pub fn new(code: ExitCode, error: impl Into<anyhow::Error>) -> Self {
        CliError {
            code,
            error: error.into(),
        }
    }

    pub fn usage(msg: impl std::fmt::Display) -> Self {
        CliError::new(ExitCode::Usage, anyhow::anyhow!("{msg}"))
    }

    /// Lines to print: the error chain joined with ": ", split at newlines (multi-problem
    /// manifest errors are one problem per line).
    pub fn lines(&self) -> Vec<String> {
        format!("{:#}", self.error)
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect()
    }
}
