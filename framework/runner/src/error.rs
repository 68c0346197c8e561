//! Runner errors. Each carries what the CLI needs to pick an exit code.

use std::path::{Path, PathBuf};

use thiserror::Error;
use valex_core::{ComponentError, ErrorClass};

/// Errors while executing a plan.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The run directory exists already.
    ///
    /// Resolution: pass `--force` to replace it, or choose another `--out`.
    #[error("run directory {0} exists already (use --force to replace it)")]
    Exists(PathBuf),
    /// A component failed.
    ///
    /// Resolution: read the message; it names the file and the key, row or tensor.
    #[error("{stage}")]
    Component {
        /// The stage (`load model`, `record`, ...).
        stage: String,
        /// The component's error.
        #[source]
        source: ComponentError,
    },
    /// The plan is inconsistent with the data or model (found at run time).
    ///
    /// Resolution: fix the named manifest key.
    #[error("{0}")]
    Config(String),
    /// Reading or writing a file failed.
    ///
    /// Resolution: check the path, permissions and free space.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Statistics or neuron-set file problems.
    #[error(transparent)]
    StatsIo(#[from] valex_stats_io::StatsIoError),
}

impl RunError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        RunError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn component(stage: &str) -> impl FnOnce(ComponentError) -> RunError + '_ {
        move |source| RunError::Component {
            stage: stage.to_owned(),
            source,
        }
    }

    /// The error's class, for the exit code.
    pub fn class(&self) -> ErrorClass {
        match self {
            RunError::Exists(_) | RunError::Config(_) => ErrorClass::Config,
            RunError::Component { source, .. } => source.class,
            RunError::Io { .. } => ErrorClass::Stage,
            RunError::StatsIo(_) => ErrorClass::Input,
        }
    }
}
