//! Errors shared by all components.
//!
//! Components report failures as a [`ComponentError`] that carries an [`ErrorClass`]; the CLI
//! maps the class to a documented exit code (docs/exit-codes.md).

use thiserror::Error;

/// Bad parameters for a component (from a manifest's `params` table or `--set`).
///
/// Resolution: fix the named key in the manifest.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{message}")]
pub struct ConfigError {
    /// Dotted key path inside the component's params, when known (e.g. `top_rate`).
    pub key: Option<String>,
    /// What is wrong, lowercase, naming expected and found values.
    pub message: String,
}

impl ConfigError {
    /// A new error about `key`.
    pub fn new(key: Option<&str>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }

    /// Deserialises a component's params, turning serde's message into a [`ConfigError`].
    ///
    /// An absent table (`null`) is read as an empty one, so defaults apply.
    ///
    /// # Errors
    /// Returns serde's message (unknown field, wrong type, ...) as a `ConfigError`.
    pub fn parse_params<T: serde::de::DeserializeOwned>(
        params: &serde_json::Value,
    ) -> Result<T, ConfigError> {
        let value = if params.is_null() {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            params.clone()
        };
        serde_json::from_value(value).map_err(|e| ConfigError::new(None, e.to_string()))
    }
}

/// Which part of the world a runtime failure belongs to; it picks the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Configuration (manifest, params): exit 2.
    Config,
    /// Model or data files (weights, tokenizer, dataset rows): exit 4.
    Input,
    /// A stage failed while running: exit 1.
    Stage,
    /// A run-time loaded plugin failed (panicked, returned malformed output, or was poisoned
    /// by an earlier panic): exit 3.
    Plugin,
}

/// A failure inside a component at run time.
///
/// Resolution: read the message; it names the file and the key, row or tensor.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct ComponentError {
    /// Which kind of failure this is.
    pub class: ErrorClass,
    /// One line naming the subject (file, tensor, row).
    pub message: String,
    /// The underlying cause, if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ComponentError {
    /// A model/data error (exit 4).
    pub fn input(message: impl Into<String>) -> Self {
        ComponentError {
            class: ErrorClass::Input,
            message: message.into(),
            source: None,
        }
    }

    /// A configuration error found at run time (exit 2).
    pub fn config(message: impl Into<String>) -> Self {
        ComponentError {
            class: ErrorClass::Config,
            message: message.into(),
            source: None,
        }
    }

    /// A stage failure (exit 1).
    pub fn stage(message: impl Into<String>) -> Self {
        ComponentError {
            class: ErrorClass::Stage,
            message: message.into(),
            source: None,
        }
    }

    /// A failure of a run-time loaded plugin (exit 3); the message names the library path and
    /// the component.
    pub fn plugin(message: impl Into<String>) -> Self {
        ComponentError {
            class: ErrorClass::Plugin,
            message: message.into(),
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
