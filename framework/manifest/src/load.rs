//! Loading a manifest: reading files, following `include`s, applying the five layers with
//! figment, and remembering which layer set every value (its origin).
//!
//! Layers, lowest first: embedded `defaults.toml` → included files (depth first, later ones
//! win, the including file wins over its includes) → the manifest → `VALEX_*` variables →
//! `--set` flags. Each file, variable and flag is its own figment provider, so figment's
//! tags tell us the origin of every merged value. This module owns figment for valex; it must
//! not know about the registry (that is `plan.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use crate::convert::{figment_to_json, table_to_dict};
use crate::error::{ManifestError, ManifestErrorKind as K, ManifestErrors};
use crate::files::Reader;
use crate::overrides::{env_layer, set_layer};
use crate::raw::Manifest;
use crate::validate;

/// The embedded lowest layer (`defaults.toml`), for `valex validate` and docs.
pub const DEFAULTS_TOML: &str = include_str!("defaults.toml");

/// Origin name of the defaults layer.
pub const DEFAULTS_ORIGIN: &str = "defaults";

/// Sections whose defaults apply only when some other layer mentions the section.
const OPTIONAL_SECTIONS: [&str; 3] = ["record", "score", "evaluate"];

/// Overrides that come from outside the manifest files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Environment variables; only `VALEX_<SECTION>[__<KEY>...]` with a known section are
    /// read (the CLI passes `std::env::vars()`).
    pub env: Vec<(String, String)>,
    /// `--set` flags as `key=value` (dotted key), applied in order.
    pub sets: Vec<String>,
}

/// A manifest with every layer applied and checked against the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedManifest {
    /// The top-level manifest, as given.
    pub path: PathBuf,
    /// The typed, validated manifest.
    pub manifest: Manifest,
    /// The manifest with all layers applied, as pretty TOML in schema order (for run dirs).
    pub resolved_toml: String,
    /// The manifest and every included file, in the order they were read (manifest first).
    pub files: Vec<PathBuf>,
    /// Folder of the top-level manifest, as given (empty for the current folder); relative
    /// paths in component params resolve against it.
    pub base_dir: PathBuf,
    pub(crate) origins: Origins,
}

impl LoadedManifest {
    /// The layer that set the value at `key` (`experiment.seed`, `reporters[0].use`):
    /// `defaults`, a file, `env VALEX_..` or `flag --set ..`.
    pub fn origin(&self, key: &str) -> Option<&str> {
        self.origins.get(key)
    }
}

/// Where each merged value came from, by dotted key path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Origins(BTreeMap<String, String>);

impl Origins {
    /// The origin of exactly `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The origin of `key`, or of its closest ancestor that has one.
    pub(crate) fn nearest(&self, key: &str) -> Option<&str> {
        let mut k = key;
        loop {
            if let Some(o) = self.get(k) {
                return Some(o);
            }
            let cut = k.rfind(['.', '['])?;
            k = &k[..cut];
        }
    }
}

/// Joins a key path and a child key.
pub(crate) fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// One figment provider: a file, a variable, a flag or the defaults.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub(crate) origin: String,
    pub(crate) dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.origin.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut m = Map::new();
        m.insert(Profile::Default, self.dict.clone());
        Ok(m)
    }
}

/// Everything layering produced, before the typed deserialisation.
pub(crate) struct Layered {
    pub(crate) path: PathBuf,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) base_dir: PathBuf,
    /// The merged tree as JSON.
    pub(crate) json: serde_json::Value,
    pub(crate) origins: Origins,
    /// Schema and override problems (not fatal for further checks).
    pub(crate) errors: Vec<ManifestError>,
}

/// Loads `path` with every layer applied and validates it against the schema.
///
/// # Errors
/// Every problem found, each as one line: unreadable or malformed files, include cycles,
/// malformed overrides, unknown keys, wrong types, missing keys, invalid values and
/// cross-section rules. Component ids and params are checked later, by [`crate::resolve`].
pub fn load(path: &Path, opts: &LoadOptions) -> Result<LoadedManifest, ManifestErrors> {
    let layered = layer(path, opts)?;
    finish(layered).map_err(|(path, errors)| ManifestErrors { file: path, errors })
}

/// Turns a checked layering into a [`LoadedManifest`], or returns the collected errors.
pub(crate) fn finish(l: Layered) -> Result<LoadedManifest, (PathBuf, Vec<ManifestError>)> {
    if !l.errors.is_empty() {
        return Err((l.path, l.errors));
    }
    let internal = |m: String| vec![ManifestError::new(K::Internal, m)];
    let manifest: Manifest = serde_json::from_value(l.json).map_err(|e| {
        (
            l.path.clone(),
            internal(format!("typed schema rejected it: {e}")),
        )
    })?;
    let resolved_toml = toml::to_string_pretty(&manifest).map_err(|e| {
        (
            l.path.clone(),
            internal(format!("cannot render as TOML: {e}")),
        )
    })?;
    Ok(LoadedManifest {
        path: l.path,
        manifest,
        resolved_toml,
        files: l.files,
        base_dir: l.base_dir,
        origins: l.origins,
    })
}

/// Reads the files, applies all layers and runs the schema check. Unreadable and malformed
/// files and include cycles are fatal (`Err`); other problems are collected in
/// [`Layered::errors`].
pub(crate) fn layer(path: &Path, opts: &LoadOptions) -> Result<Layered, ManifestErrors> {
    let mut reader = Reader::default();
    reader.visit(path, path.to_path_buf(), path.display().to_string(), None);
    if !reader.fatal.is_empty() {
        return Err(ManifestErrors {
            file: path.to_path_buf(),
            errors: reader.fatal,
        });
    }
    let mut errors = reader.errors;
    let mut layers = reader.layers;

    let mut env: Vec<&(String, String)> = opts.env.iter().collect();
    env.sort();
    for (name, value) in env {
        match env_layer(name, value) {
            Some(Ok(l)) => layers.push(l),
            Some(Err(e)) => errors.push(e),
            None => {}
        }
    }
    for flag in &opts.sets {
        match set_layer(flag) {
            Ok(l) => layers.push(l),
            Err(e) => errors.push(e),
        }
    }

    let mut figment = Figment::new().merge(defaults_layer(&layers));
    for l in &layers {
        figment = figment.merge(l);
    }
    let mut root = figment.find_value("").map_err(|e| ManifestErrors {
        file: path.to_path_buf(),
        errors: vec![ManifestError::new(
            K::Internal,
            format!("layering failed: {e}"),
        )],
    })?;
    let mut origins = Origins::default();
    collect_origins(&figment, &root, "", &mut origins);
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    for (key, origin) in crate::template_files::inline(&mut root, &base_dir, &origins, &mut errors)
    {
        origins.0.insert(key, origin);
    }
    errors.extend(validate::check(&root, &origins));
    crate::template_files::strip(&mut root);
    dedup(&mut errors);
    let mut json = figment_to_json(&root);
    model_path_shorthand(&mut json, &mut origins);
    crate::plugins::resolve_paths(&mut json, &origins, &reader.dirs);

    Ok(Layered {
        path: path.to_path_buf(),
        files: reader.files,
        base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        json,
        origins,
        errors,
    })
}

/// `model.path` is shorthand for `model.params.path` (so `--set model.path=DIR` points any
/// preset at a local model folder): it moves there, replacing a `params.path` set elsewhere,
/// and keeps its origin.
fn model_path_shorthand(json: &mut serde_json::Value, origins: &mut Origins) {
    let Some(model) = json.get_mut("model").and_then(|m| m.as_object_mut()) else {
        return;
    };
    if let Some(reference) = model.get_mut("reference").and_then(|r| r.as_object_mut()) {
        path_into_params(reference, "model.reference", origins);
    }
    path_into_params(model, "model", origins);
}

/// Moves `table.path` to `table.params.path`, with its origin.
fn path_into_params(
    table: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
    origins: &mut Origins,
) {
    let Some(path) = table.remove("path") else {
        return;
    };
    let params = table
        .entry("params")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if let Some(params) = params.as_object_mut() {
        params.insert("path".to_owned(), path);
        if let Some(o) = origins.get(&format!("{key}.path")).map(str::to_owned) {
            origins.0.insert(format!("{key}.params.path"), o);
        }
    }
}

/// Removes repeated identical errors, keeping the first.
fn dedup(errors: &mut Vec<ManifestError>) {
    let mut seen = Vec::new();
    errors.retain(|e| {
        if seen.contains(e) {
            false
        } else {
            seen.push(e.clone());
            true
        }
    });
}

/// The defaults, limited to the always-present sections plus the optional sections that
/// some layer mentions (so `[record]` defaults do not invent a `[record]` section).
fn defaults_layer(layers: &[Layer]) -> Layer {
    let table: toml::Table = DEFAULTS_TOML
        .parse()
        .expect("the embedded defaults.toml is valid TOML (tested)");
    let mut dict = table_to_dict(table);
    dict.retain(|section, _| {
        !OPTIONAL_SECTIONS.contains(&section.as_str())
            || layers.iter().any(|l| l.dict.contains_key(section))
    });
    Layer {
        origin: DEFAULTS_ORIGIN.to_owned(),
        dict,
    }
}

fn collect_origins(figment: &Figment, v: &Value, path: &str, out: &mut Origins) {
    if !path.is_empty()
        && let Some(meta) = figment.get_metadata(v.tag())
    {
        out.0.insert(path.to_owned(), meta.name.to_string());
    }
    match v {
        Value::Dict(_, d) => {
            for (k, v) in d {
                collect_origins(figment, v, &child(path, k), out);
            }
        }
        Value::Array(_, a) => {
            for (i, v) in a.iter().enumerate() {
                collect_origins(figment, v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        let t: toml::Table = DEFAULTS_TOML.parse().unwrap();
        assert!(t.contains_key("record"));
        assert!(!t.contains_key("schema_version"));
    }

    #[test]
    fn nearest_origin_walks_up_key_paths() {
        let mut o = Origins::default();
        o.0.insert("score.params".into(), "m.toml".into());
        o.0.insert("reporters".into(), "defaults".into());
        assert_eq!(o.nearest("score.params.top_rate.x"), Some("m.toml"));
        assert_eq!(o.nearest("reporters[0].use"), Some("defaults"));
        assert_eq!(o.nearest("model"), None);
    }
}
