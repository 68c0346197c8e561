//! Reading manifest files: the manifest and its `include`s, depth first, with cycle
//! detection and per-file `schema_version` checks. Each file becomes one layer whose origin
//! is its path as given (the manifest) or `include <path>` (an included file); paths are
//! shown relative, as the user wrote them, joined lexically.

use std::path::{Component, Path, PathBuf};

use figment::value::Value;

use crate::convert::{as_integer, describe, line_col, table_to_dict, toml_to_figment};
use crate::error::{ManifestError, ManifestErrorKind as K};
use crate::load::Layer;
use crate::raw::SCHEMA_VERSION;

/// Reads the manifest and its includes, depth first.
#[derive(Default)]
pub(crate) struct Reader {
    /// File layers in merge order (lowest first).
    pub(crate) layers: Vec<Layer>,
    /// Files in read order, as displayed.
    pub(crate) files: Vec<PathBuf>,
    /// Folder of each file read, as displayed, by its origin name (for `[[plugins]] path`).
    pub(crate) dirs: std::collections::BTreeMap<String, PathBuf>,
    /// Canonical path and display path of each file being read (for cycle detection).
    stack: Vec<(PathBuf, PathBuf)>,
    pub(crate) fatal: Vec<ManifestError>,
    pub(crate) errors: Vec<ManifestError>,
}

impl Reader {
    /// Reads `fs_path` (shown as `display`), its includes first, and pushes its layer.
    pub(crate) fn visit(
        &mut self,
        fs_path: &Path,
        display: PathBuf,
        origin: String,
        from: Option<&Path>,
    ) {
        let text = match std::fs::read_to_string(fs_path) {
            Ok(t) => t,
            Err(e) => {
                let by = from.map_or(String::new(), |f| {
                    format!(" (included from {})", f.display())
                });
                self.fatal.push(
                    ManifestError::new(K::Read, format!("cannot read: {}{by}", io_message(&e)))
                        .in_file(display),
                );
                return;
            }
        };
        let canonical = std::fs::canonicalize(fs_path).unwrap_or_else(|_| fs_path.to_path_buf());
        if self.stack.iter().any(|(c, _)| *c == canonical) {
            // The whole chain from the manifest, so the user sees how the loop is reached.
            let chain: Vec<String> = self
                .stack
                .iter()
                .map(|(_, d)| d.display().to_string())
                .chain([display.display().to_string()])
                .collect();
            let includer = self.stack.last().map(|(_, d)| d.clone());
            let includer_origin = includer.as_deref().map(|d| self.origin_of(d));
            self.fatal.push(
                ManifestError::new(
                    K::IncludeCycle,
                    format!("include cycle: {}", chain.join(" -> ")),
                )
                .at("include")
                .from_origin(includer_origin),
            );
            return;
        }
        self.files.push(display.clone());
        let mut table = match text.parse::<toml::Table>() {
            Ok(t) => t,
            Err(e) => {
                let (line, col) = line_col(&text, e.span().map_or(0, |s| s.start));
                let msg = e.message().trim().replace('\n', "; ");
                self.fatal.push(
                    ManifestError::new(
                        K::Parse,
                        format!("TOML parse error at line {line}, column {col}: {msg}"),
                    )
                    .in_file(display),
                );
                return;
            }
        };
        self.check_file_version(&table, &origin, from.is_none());
        let includes = self.take_includes(&mut table, &origin);
        self.stack.push((canonical, display.clone()));
        let fs_dir = fs_path.parent().unwrap_or(Path::new(""));
        let display_dir = display.parent().unwrap_or(Path::new(""));
        for inc in includes {
            let inc_display = normalize(&display_dir.join(&inc));
            let inc_origin = format!("include {}", inc_display.display());
            self.visit(&fs_dir.join(&inc), inc_display, inc_origin, Some(&display));
        }
        self.stack.pop();
        self.dirs.insert(origin.clone(), display_dir.to_path_buf());
        self.layers.push(Layer {
            origin,
            dict: table_to_dict(table),
        });
    }

    /// The origin name a file on the stack was given.
    fn origin_of(&self, display: &Path) -> String {
        if self.stack.first().is_some_and(|(_, d)| d == display) {
            display.display().to_string()
        } else {
            format!("include {}", display.display())
        }
    }

    /// Removes `include` from `table` and returns its entries.
    fn take_includes(&mut self, table: &mut toml::Table, origin: &str) -> Vec<String> {
        let Some(v) = table.remove("include") else {
            return Vec::new();
        };
        let found = |v: toml::Value| describe(&toml_to_figment(v));
        match v {
            toml::Value::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        toml::Value::String(s) => out.push(s),
                        other => self.errors.push(
                            ManifestError::new(
                                K::WrongType,
                                format!("expected a file path string, found {}", found(other)),
                            )
                            .at(format!("include[{i}]"))
                            .from_origin(Some(origin)),
                        ),
                    }
                }
                out
            }
            other => {
                self.errors.push(
                    ManifestError::new(
                        K::WrongType,
                        format!("expected an array of file paths, found {}", found(other)),
                    )
                    .at("include")
                    .from_origin(Some(origin)),
                );
                Vec::new()
            }
        }
    }

    /// Every file may state `schema_version`; a version other than 1 is an error in that
    /// file. The top-level manifest must state it.
    fn check_file_version(&mut self, table: &toml::Table, origin: &str, is_top: bool) {
        match table.get("schema_version") {
            None if is_top => self.errors.push(
                ManifestError::new(
                    K::UnsupportedVersion,
                    format!(
                        "missing required key (write `schema_version = {SCHEMA_VERSION}` at the top of the manifest)"
                    ),
                )
                .at("schema_version"),
            ),
            None => {}
            Some(v) => {
                if let Some(e) = version_error(&toml_to_figment(v.clone())) {
                    self.errors
                        .push(e.at("schema_version").from_origin(Some(origin)));
                }
            }
        }
    }
}

/// The error for a `schema_version` value other than 1, if any.
pub(crate) fn version_error(v: &Value) -> Option<ManifestError> {
    match as_integer(v) {
        Some(n) if n == i128::from(SCHEMA_VERSION) => None,
        Some(n) => Some(ManifestError::new(
            K::UnsupportedVersion,
            format!("unsupported schema_version {n} (this valex reads {SCHEMA_VERSION})"),
        )),
        None => Some(ManifestError::new(
            K::WrongType,
            format!(
                "expected an integer (this valex reads {SCHEMA_VERSION}), found {}",
                describe(v)
            ),
        )),
    }
}

/// `io::Error` text without the ` (os error N)` suffix.
fn io_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// Lexically removes `.` and `name/..` pairs so messages show `experiments/_base/y.toml`
/// rather than `experiments/x/../_base/y.toml`. Leading `..` are kept.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_include_paths_lexically() {
        assert_eq!(
            normalize(Path::new("experiments/x/../_base/./y.toml")),
            PathBuf::from("experiments/_base/y.toml")
        );
        assert_eq!(
            normalize(Path::new("../_base/y.toml")),
            PathBuf::from("../_base/y.toml")
        );
    }
}
