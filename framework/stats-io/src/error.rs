//! [`StatsIoError`]: every failure of this crate, as one line naming the file and the
//! tensor or key.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Which kind of file an error is about; it starts the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A valex statistics file (`<stem>.safetensors` + `<stem>.json`).
    Statistics,
    /// A released counts folder (`over_zero.safetensors` + `counts.json`).
    ReleasedCounts,
    /// A neuron-set JSON file.
    NeuronSets,
    /// Any file being hashed.
    Hashed,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Statistics => "statistics file",
            FileKind::ReleasedCounts => "released counts",
            FileKind::NeuronSets => "neuron-set file",
            FileKind::Hashed => "file",
        })
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StatsIoErrorKind {
    /// The file could not be read (the cause is the I/O error).
    ///
    /// Resolution: check that the path exists and is readable.
    #[error("failed to read")]
    Read,
    /// The file could not be written or renamed into place.
    ///
    /// Resolution: check that the folder exists and is writable.
    #[error("failed to write")]
    Write,
    /// The file is not valid JSON (the cause is serde's error).
    ///
    /// Resolution: regenerate the file.
    #[error("invalid JSON")]
    Json,
    /// The safetensors header is malformed.
    ///
    /// Resolution: regenerate the file; it is truncated or not safetensors.
    #[error("invalid safetensors header: {0}")]
    Header(String),
    /// A tensor is absent.
    ///
    /// Resolution: the file belongs to other labels, or was written partially.
    #[error("tensor {name} is missing")]
    MissingTensor {
        /// Tensor name.
        name: String,
    },
    /// A tensor has the wrong shape.
    ///
    /// Resolution: the statistics come from another model; record them again.
    #[error("tensor {name} has shape {found:?}, expected {expected:?}")]
    Shape {
        /// Tensor name.
        name: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape required.
        expected: Vec<usize>,
    },
    /// A tensor has the wrong dtype.
    ///
    /// Resolution: write the file with this crate (f64 for statistics, i32 for counts).
    #[error("tensor {name} has dtype {found}, expected {expected}")]
    Dtype {
        /// Tensor name.
        name: String,
        /// Dtype in the file.
        found: String,
        /// Dtype required.
        expected: String,
    },
    /// A required JSON key is absent or has the wrong type.
    ///
    /// Resolution: fix or regenerate the JSON file.
    #[error("key {key}: {message}")]
    Key {
        /// Dotted key path (`labels[2].tokens`).
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A requested label is not in the file.
    ///
    /// Resolution: pick one of the listed labels.
    #[error("unknown label {label}; available: {available}")]
    UnknownLabel {
        /// The label asked for.
        label: String,
        /// Comma-separated labels of the file.
        available: String,
    },
    /// The sidecar declares a format version this crate does not read.
    ///
    /// Resolution: use the valex version that wrote the file.
    #[error("format version {found} is not supported; this valex reads version {expected}")]
    Version {
        /// Version in the file.
        found: u64,
        /// Version this crate reads and writes.
        expected: u64,
    },
    /// The data to write (or read) is inconsistent (label lengths, duplicate labels).
    ///
    /// Resolution: the message names the label; fix the producer.
    #[error("{0}")]
    Invalid(String),
}

/// An error of valex-stats-io: `{file kind} {path}: {what}`.
///
/// Resolution: see [`StatsIoErrorKind`].
#[derive(Debug, Error)]
#[error("{file} {}: {kind}", .path.display())]
pub struct StatsIoError {
    /// Which kind of file.
    pub file: FileKind,
    /// The file the error is about.
    pub path: PathBuf,
    /// What went wrong (boxed to keep `Result<_, StatsIoError>` small).
    pub kind: Box<StatsIoErrorKind>,
    /// The underlying cause (I/O, JSON), if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StatsIoError {
    /// An error without a cause.
    pub fn new(file: FileKind, path: &Path, kind: StatsIoErrorKind) -> Self {
        StatsIoError {
            file,
            path: path.to_owned(),
            kind: Box::new(kind),
            source: None,
        }
    }

    /// Attaches a cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_file_and_tensor() {
        let e = StatsIoError::new(
            FileKind::Statistics,
            Path::new("x.safetensors"),
            StatsIoErrorKind::Shape {
                name: "富强/active".into(),
                found: vec![28, 100],
                expected: vec![28, 18944],
            },
        );
        assert_eq!(
            e.to_string(),
            "statistics file x.safetensors: tensor 富强/active has shape [28, 100], expected [28, 18944]"
        );
    }

    #[test]
    fn cause_is_kept_out_of_the_message() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = StatsIoError::new(
            FileKind::NeuronSets,
            Path::new("m.json"),
            StatsIoErrorKind::Read,
        )
        .with_source(io);
        assert_eq!(e.to_string(), "neuron-set file m.json: failed to read");
        let src = std::error::Error::source(&e).expect("has a source");
        assert_eq!(src.to_string(), "gone");
    }
}
