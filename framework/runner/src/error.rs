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
    /// The run was interrupted (Ctrl-C, SIGTERM) and stopped cleanly; its staging folder is
    /// kept with a checkpoint.
    ///
    /// Resolution: continue it with `valex run --resume RUN_DIR`.
    #[error("interrupted during {stage}{detail}{}", resume_hint(.resume.as_deref()))]
    Interrupted {
        /// The stage that was running.
        stage: String,
        /// What was done (`after 12 of 144 items`), with a leading space, or empty.
        detail: String,
        /// The run directory to pass to `--resume` (set once the run directory is known).
        resume: Option<PathBuf>,
    },
    /// An incomplete run of this run directory is kept (interrupted, killed or failed).
    ///
    /// Resolution: continue it with `valex run --resume`, or pass `--force` to discard it.
    #[error(
        "an incomplete run of {} is kept in {} (resume it with `valex run --resume {}`, or pass --force to discard it)",
        final_path.display(), staging.display(), final_path.display()
    )]
    Incomplete {
        /// The run directory.
        final_path: PathBuf,
        /// Its staging folder.
        staging: PathBuf,
    },
    /// Another live process writes this staging folder.
    ///
    /// Resolution: wait for it, or remove the `lock` file if that process is not valex.
    #[error("{} is being written by process {pid} (remove {}/lock if that process is not valex)", path.display(), path.display())]
    Locked {
        /// The staging folder.
        path: PathBuf,
        /// The PID in its lock file.
        pid: u32,
    },
    /// `--resume` found nothing it can continue, or the run's inputs changed.
    ///
    /// Resolution: read the reason; restore the inputs, or start a new run.
    #[error("cannot resume {}: {reason}", path.display())]
    NotResumable {
        /// The run directory or staging folder given.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn resume_hint(resume: Option<&Path>) -> String {
    resume.map_or_else(String::new, |p| {
        format!(
            "; the incomplete run is kept: continue it with `valex run --resume {}`",
            p.display()
        )
    })
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

    /// True when the run stopped because it was asked to (exit code 130 in the CLI).
    pub fn is_interrupted(&self) -> bool {
        matches!(self, RunError::Interrupted { .. })
    }

    /// The error's class, for the exit code.
    pub fn class(&self) -> ErrorClass {
        match self {
            RunError::Exists(_)
            | RunError::Config(_)
            | RunError::Incomplete { .. }
            | RunError::Locked { .. }
            | RunError::NotResumable { .. } => ErrorClass::Config,
            RunError::Interrupted { .. } => ErrorClass::Stage,
            RunError::Component { source, .. } => source.class,
            RunError::Io { .. } => ErrorClass::Stage,
            // Writing an output is the stage's failure (a full disk: exit 1), reading a
            // statistics file that is not one is an input error.
            RunError::StatsIo(e) => match *e.kind {
                valex_stats_io::StatsIoErrorKind::Write => ErrorClass::Stage,
                _ => ErrorClass::Input,
            },
        }
    }
}
