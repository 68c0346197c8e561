//! The model-backend extension point.
//!
//! A backend loads a model, tokenizes text, runs batched forwards with an optional
//! [`NeuronEdit`] applied at a tap, accumulates per-label neuron statistics on its device
//! (never handing full activations back), and scores continuations by log-likelihood.

use crate::error::ComponentError;
use crate::intervention::NeuronEdit;
use crate::stats::ActivationStats;

/// What a loaded model looks like, as far as experiments are concerned.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    /// `model_type` from config.json (e.g. `llama`, `qwen2`).
    pub architecture: String,
    /// Number of transformer layers.
    pub n_layers: usize,
    /// Width of the FFN activation (intermediate size): neurons per layer.
    pub n_neurons: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Vocabulary size of the LM head.
    pub vocab_size: usize,
    /// sha256 (hex) over the model's files in a fixed order (config, weights, tokenizer).
    pub content_sha256: String,
}

/// Tap points and interventions a backend supports, declared up front so plans can be
/// validated before a model loads.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    /// Tap names that can be recorded (e.g. `mlp.gate_act`).
    pub taps: Vec<String>,
    /// Tap names at which a [`NeuronEdit`] can be applied.
    pub intervention_taps: Vec<String>,
}

/// A tokenized text with byte offsets, so callers can map character spans to tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    /// Token ids, special tokens included when requested.
    pub ids: Vec<u32>,
    /// For each token, the byte range `[start, end)` it covers in the input text
    /// (`(0, 0)` for special tokens).
    pub offsets: Vec<(usize, usize)>,
}

/// One batch for the statistics pass.
///
/// Rows have different lengths; the backend pads them (right padding) and masks the padding.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    /// Token ids per row.
    pub ids: Vec<Vec<u32>>,
    /// Per row and position: does this token enter the statistics? Same shape as `ids`.
    pub positions: Vec<Vec<bool>>,
    /// Per row: index of the label (into [`ActivationStats::labels`]) the row counts for.
    pub labels: Vec<usize>,
}

/// One continuation to score: `log p(continuation | context)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreRequest {
    /// The prompt tokens.
    pub context: Vec<u32>,
    /// The tokens whose log-probabilities are summed.
    pub continuation: Vec<u32>,
}

/// A loaded model.
///
/// Object-safe so that the manifest picks the implementation at run time.
///
/// ```
/// use valex_core::{ModelBackend, ModelInfo, Capabilities, Encoding, RecordBatch, ScoreRequest,
///                  NeuronEdit, ActivationStats, ComponentError};
/// struct Null(ModelInfo);
/// impl ModelBackend for Null {
///     fn info(&self) -> &ModelInfo { &self.0 }
///     fn capabilities(&self) -> Capabilities {
///         Capabilities { taps: vec![], intervention_taps: vec![] }
///     }
///     fn encode(&self, _text: &str) -> Result<Encoding, ComponentError> {
///         Ok(Encoding { ids: vec![], offsets: vec![] })
///     }
///     fn record(&mut self, _tap: &str, _b: &RecordBatch, _e: Option<&NeuronEdit>,
///               _s: &mut ActivationStats) -> Result<(), ComponentError> { Ok(()) }
///     fn score(&mut self, r: &[ScoreRequest], _e: Option<&NeuronEdit>)
///         -> Result<Vec<Vec<f32>>, ComponentError> {
///         Ok(r.iter().map(|q| vec![0.0; q.continuation.len()]).collect())
///     }
/// }
/// ```
pub trait ModelBackend: Send {
    /// Shape and identity of the model.
    fn info(&self) -> &ModelInfo;

    /// Taps and intervention points this backend offers.
    fn capabilities(&self) -> Capabilities;

    /// Tokenizes `text`, adding the model's BOS token if its tokenizer does.
    ///
    /// # Errors
    /// Fails when the tokenizer rejects the text.
    fn encode(&self, text: &str) -> Result<Encoding, ComponentError>;

    /// Runs one batch forward and adds, for every layer, the per-label count of `act > 0`,
    /// sum and sum of squares of `tap` over the marked positions into `stats`.
    ///
    /// The backend updates only the per-neuron arrays (`active`, `sum`, `sum_sq`); token and
    /// item counts are the caller's business. `edit` (if any) is applied during the forward.
    ///
    /// # Errors
    /// Fails on unknown taps, shape mismatches or device errors.
    fn record(
        &mut self,
        tap: &str,
        batch: &RecordBatch,
        edit: Option<&NeuronEdit>,
        stats: &mut ActivationStats,
    ) -> Result<(), ComponentError>;

    /// For every request, the log-probability (natural log) of each continuation token given
    /// everything before it, with `edit` applied at all positions.
    ///
    /// # Errors
    /// Fails on device errors or empty continuations.
    fn score(
        &mut self,
        requests: &[ScoreRequest],
        edit: Option<&NeuronEdit>,
    ) -> Result<Vec<Vec<f32>>, ComponentError>;
}

/// A backend's parsed configuration: cheap to build (validation), loads the model on demand.
pub trait BackendLoader: Send {
    /// Files the model will be read from, for provenance (empty for built-in models).
    fn input_files(&self) -> Vec<std::path::PathBuf>;

    /// Loads the model.
    ///
    /// # Errors
    /// Missing or malformed model files, unreadable tokenizer, shape mismatches.
    fn load(&self) -> Result<Box<dyn ModelBackend>, ComponentError>;
}
