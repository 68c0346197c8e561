//! What plugin authors implement: component traits, their outputs, the plugin's error type
//! and the declaration of a plugin's components ([`PluginSpec`], built by `export_plugin!`).
//!
//! Inputs are the valex types a built-in component gets ([`ActivationStats`], [`NeuronSet`],
//! the results document); the SDK rebuilds them from the ABI's data. This module knows nothing
//! of the C ABI itself (that is `rt.rs`).

use serde::Serialize;
use valex_core::{ActivationStats, NeuronEdit, NeuronSet, OutputFile};

/// An error a plugin reports; crosses the ABI as
/// `{"code": "scorer.bad_params", "message": "...", "help": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PluginError {
    /// Dotted machine-readable code, e.g. `scorer.bad_params`, `scorer.unknown_label`.
    pub code: String,
    /// One lowercase line naming the subject (key, label, tensor).
    pub message: String,
    /// How to fix it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl PluginError {
    /// An error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        PluginError {
            code: code.into(),
            message: message.into(),
            help: None,
        }
    }

    /// Bad params (`<kind>.bad_params`): the host reports it under the component's `params`.
    pub fn bad_params(message: impl Into<String>) -> Self {
        PluginError::new("bad_params", message)
    }

    /// Adds a hint on how to fix it.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The error as its JSON object.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"code":"plugin.internal","message":"error could not be serialised"}"#.to_vec()
        })
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for PluginError {}

/// Deserialises a component's params (`null` reads as `{}`, so defaults apply); serde's message
/// becomes a `bad_params` error (it names the unknown or missing field).
///
/// # Errors
/// Unknown fields, wrong types, missing fields.
pub fn parse_params<T: serde::de::DeserializeOwned>(
    params: &serde_json::Value,
) -> Result<T, PluginError> {
    let value = if params.is_null() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        params.clone()
    };
    serde_json::from_value(value).map_err(|e| PluginError::bad_params(e.to_string()))
}

/// What a scorer returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScorerOutput {
    /// One neuron set per requested label, in the order of the request.
    pub sets: Vec<(String, NeuronSet)>,
    /// Per-neuron scores per label, row-major `[n_layers * n_neurons]` (may be empty). Sent to
    /// the host only when it asks for them (they are large for real models).
    pub scores: Vec<(String, Vec<f64>)>,
    /// Facts worth reporting (thresholds, candidate counts), as JSON.
    pub details: serde_json::Value,
}

impl ScorerOutput {
    /// An output with `sets`, no scores and no details.
    pub fn new(sets: Vec<(String, NeuronSet)>) -> Self {
        ScorerOutput {
            sets,
            scores: Vec::new(),
            details: serde_json::Value::Null,
        }
    }
}

/// A scorer implemented in a plugin: statistics in, neuron sets (and scores) out.
pub trait ScorerComponent: Send {
    /// Scores the neurons over `labels` (a subset of `stats.labels`, compared against each
    /// other) and selects a set per label.
    ///
    /// # Errors
    /// Unknown labels, degenerate statistics; use codes like `scorer.unknown_label`.
    fn score(
        &mut self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScorerOutput, PluginError>;
}

/// The shape of the model an intervention edits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ModelShape {
    /// `model_type` (e.g. `llama`).
    pub architecture: String,
    /// Number of layers.
    pub n_layers: usize,
    /// Neurons per layer.
    pub n_neurons: usize,
}

/// An intervention implemented in a plugin: a neuron set in, a neuron edit out.
pub trait InterventionComponent: Send {
    /// Builds the edit for `set` at `tap`.
    ///
    /// # Errors
    /// A set that does not fit the model.
    fn edit(
        &mut self,
        set: &NeuronSet,
        tap: &str,
        model: &ModelShape,
    ) -> Result<NeuronEdit, PluginError>;
}

/// A reporter implemented in a plugin: the results document in, UTF-8 text files out.
pub trait ReporterComponent: Send {
    /// Renders `results`; every file's bytes must be UTF-8.
    ///
    /// # Errors
    /// Rendering failures.
    fn report(&mut self, results: &serde_json::Value) -> Result<Vec<OutputFile>, PluginError>;
}

/// Builds a component from its params (a JSON object, or `null` when the manifest gave none).
#[derive(Clone, Copy)]
pub enum ComponentFactory {
    /// A `scorer/*`.
    Scorer(fn(&serde_json::Value) -> Result<Box<dyn ScorerComponent>, PluginError>),
    /// An `intervention/*`.
    Intervention(fn(&serde_json::Value) -> Result<Box<dyn InterventionComponent>, PluginError>),
    /// A `reporter/*`.
    Reporter(fn(&serde_json::Value) -> Result<Box<dyn ReporterComponent>, PluginError>),
}

impl ComponentFactory {
    /// `scorer`, `intervention` or `reporter`.
    pub fn kind(&self) -> &'static str {
        match self {
            ComponentFactory::Scorer(_) => "scorer",
            ComponentFactory::Intervention(_) => "intervention",
            ComponentFactory::Reporter(_) => "reporter",
        }
    }
}

/// One component a plugin offers.
#[derive(Clone, Copy)]
pub struct Component {
    /// `kind/name`, lowercase kebab-case, e.g. `scorer/smd`.
    pub id: &'static str,
    /// The component's version (semver).
    pub version: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// Its factory.
    pub factory: ComponentFactory,
}

impl Component {
    /// A scorer.
    pub const fn scorer(
        id: &'static str,
        version: &'static str,
        summary: &'static str,
        factory: fn(&serde_json::Value) -> Result<Box<dyn ScorerComponent>, PluginError>,
    ) -> Self {
        Component {
            id,
            version,
            summary,
            factory: ComponentFactory::Scorer(factory),
        }
    }

    /// An intervention.
    pub const fn intervention(
        id: &'static str,
        version: &'static str,
        summary: &'static str,
        factory: fn(&serde_json::Value) -> Result<Box<dyn InterventionComponent>, PluginError>,
    ) -> Self {
        Component {
            id,
            version,
            summary,
            factory: ComponentFactory::Intervention(factory),
        }
    }

    /// A reporter.
    pub const fn reporter(
        id: &'static str,
        version: &'static str,
        summary: &'static str,
        factory: fn(&serde_json::Value) -> Result<Box<dyn ReporterComponent>, PluginError>,
    ) -> Self {
        Component {
            id,
            version,
            summary,
            factory: ComponentFactory::Reporter(factory),
        }
    }
}

/// A plugin: its name, version and components (written by `export_plugin!`).
pub struct PluginSpec {
    /// Library name, e.g. `valex-plugin-example`.
    pub name: &'static str,
    /// Library version.
    pub version: &'static str,
    /// The components.
    pub components: &'static [Component],
}

impl PluginSpec {
    /// The `describe()` document:
    /// `{name, version, sdk_version, components: [{id, kind, version, summary}]}`.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "version": self.version,
            "sdk_version": crate::SDK_VERSION,
            "components": self.components.iter().map(|c| serde_json::json!({
                "id": c.id,
                "kind": c.factory.kind(),
                "version": c.version,
                "summary": c.summary,
            })).collect::<Vec<_>>(),
        })
    }

    /// The component `id`.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialise_as_labeled_json() {
        let e =
            PluginError::bad_params("top_k: must be at least 1, found 0").with_help("set top_k");
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code": "bad_params", "message": "top_k: must be at least 1, found 0", "help": "set top_k"})
        );
        let back: PluginError = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn parse_params_reads_null_as_empty_and_names_unknown_fields() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct P {
            #[serde(default)]
            k: u32,
        }
        let p: P = parse_params(&serde_json::Value::Null).unwrap();
        assert_eq!(p.k, 0);
        let e = parse_params::<P>(&serde_json::json!({"kk": 1})).unwrap_err();
        assert_eq!(e.code, "bad_params");
        assert!(e.message.contains("unknown field `kk`"), "{}", e.message);
    }
}
