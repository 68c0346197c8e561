//! Manifest errors: one [`ManifestError`] per problem, collected into [`ManifestErrors`].
//!
//! Every error renders as ONE line,
//! `<file>: <key path> (from <origin>): <message>`, where `<file>` is the manifest given on
//! the command line (or the file that could not be read or parsed) and `<origin>` names the
//! layer that set the offending value (`experiments/x.toml`, `include ../_base/y.toml`,
//! `env VALEX_EXPERIMENT__SEED`, `flag --set experiment.seed=x`, `defaults`).

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// What kind of problem a [`ManifestError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestErrorKind {
    /// A manifest or include file could not be read.
    ///
    /// Resolution: check the path (include paths are relative to the including file).
    Read,
    /// A file is not valid TOML.
    ///
    /// Resolution: fix the syntax at the line and column given.
    Parse,
    /// Files include each other in a loop.
    ///
    /// Resolution: remove one `include` entry of the chain shown.
    IncludeCycle,
    /// A `--set` flag or `VALEX_*` variable is malformed.
    ///
    /// Resolution: write `--set section.key=value` / `VALEX_SECTION__KEY=value`.
    BadOverride,
    /// `schema_version` is missing or not the one this valex reads.
    ///
    /// Resolution: write `schema_version = 1`, or use a valex that reads your version.
    UnsupportedVersion,
    /// A key that the schema does not know (typo?).
    ///
    /// Resolution: use the suggested key, or remove it.
    UnknownKey,
    /// A value of the wrong type.
    ///
    /// Resolution: write a value of the expected type.
    WrongType,
    /// A required key or section is absent.
    ///
    /// Resolution: add it.
    MissingKey,
    /// A value of the right type that breaks a rule (range, pattern, allowed words).
    ///
    /// Resolution: pick an allowed value (the message lists them).
    InvalidValue,
    /// Sections that do not fit together (`[evaluate]` without `[score]`).
    ///
    /// Resolution: add the missing section, or remove the dependent one.
    Rule,
    /// A component id that no plugin registered.
    ///
    /// Resolution: use the suggested id (`valex plugins` lists them all).
    UnknownComponent,
    /// A component's factory rejected its params.
    ///
    /// Resolution: fix the named key under `params`.
    BadParams,
    /// The schema check and the typed schema disagree (a valex bug).
    ///
    /// Resolution: report the manifest that triggered it.
    Internal,
}

/// One problem found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ManifestError {
    /// What kind of problem this is.
    pub kind: ManifestErrorKind,
    /// The file the problem is in, when it is not the top-level manifest (an include that is
    /// missing or malformed). `None` means [`ManifestErrors::file`].
    pub file: Option<PathBuf>,
    /// Dotted key path (`score.params.top_rate`, `reporters[0].use`), when the problem has one.
    pub key: Option<String>,
    /// The layer that set the value (`defaults`, a file, `env VALEX_..`, `flag --set ..`).
    pub origin: Option<String>,
    /// What is wrong, lowercase, naming expected and found values.
    pub message: String,
}

impl ManifestError {
    /// A new error of `kind` with `message`, no key and no origin.
    pub fn new(kind: ManifestErrorKind, message: impl Into<String>) -> Self {
        ManifestError {
            kind,
            file: None,
            key: None,
            origin: None,
            message: message.into(),
        }
    }

    /// Sets the key path.
    #[must_use]
    pub fn at(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the origin, if any.
    #[must_use]
    pub fn from_origin(mut self, origin: Option<impl Into<String>>) -> Self {
        self.origin = origin.map(Into::into);
        self
    }

    /// Sets the file the problem is in.
    #[must_use]
    pub fn in_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }
}

/// Renders `[<key> ][(from <origin>)]: <message>` (without the file).
impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.key, &self.origin) {
            (Some(key), Some(origin)) => write!(f, "{key} (from {origin}): ")?,
            (Some(key), None) => write!(f, "{key}: ")?,
            (None, Some(origin)) => write!(f, "{origin}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)
    }
}

/// Every problem found while loading or resolving one manifest.
///
/// Resolution: fix each line; they are independent of each other.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ManifestErrors {
    /// The top-level manifest, as given.
    pub file: PathBuf,
    /// The problems, in a stable order (file problems, then schema order).
    pub errors: Vec<ManifestError>,
}

impl ManifestErrors {
    /// The rendered lines, one per error.
    pub fn lines(&self) -> Vec<String> {
        self.errors
            .iter()
            .map(|e| {
                let file = e.file.as_ref().unwrap_or(&self.file);
                format!("{}: {e}", file.display())
            })
            .collect()
    }
}

/// One line per error, separated by newlines.
impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_line_per_error_with_key_origin_and_file() {
        let errs = ManifestErrors {
            file: PathBuf::from("experiments/x.toml"),
            errors: vec![
                ManifestError::new(ManifestErrorKind::WrongType, "expected an integer")
                    .at("experiment.seed")
                    .from_origin(Some("env VALEX_EXPERIMENT__SEED")),
                ManifestError::new(ManifestErrorKind::MissingKey, "missing required key")
                    .at("experiment.name"),
                ManifestError::new(ManifestErrorKind::Read, "cannot read: gone")
                    .in_file("experiments/_base/y.toml"),
                ManifestError::new(ManifestErrorKind::BadOverride, "expected key=value")
                    .from_origin(Some("flag --set oops")),
            ],
        };
        insta::assert_snapshot!(errs.to_string(), @r"
        experiments/x.toml: experiment.seed (from env VALEX_EXPERIMENT__SEED): expected an integer
        experiments/x.toml: experiment.name: missing required key
        experiments/_base/y.toml: cannot read: gone
        experiments/x.toml: flag --set oops: expected key=value
        ");
    }
}
