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
    /// Per row: the item's key within its label (the record stage uses its ordinal), passed
    /// to [`ActivationStats::add_item_layer`] for bootstrap weights and kept item means.
    pub keys: Vec<u64>,
}

/// One continuation to score: `log p(continuation | context)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreRequest {
    /// The prompt tokens.
    pub context: Vec<u32>,
    /// The tokens whose log-probabilities are summed.
    pub continuation: Vec<u32>,
}

impl ScoreRequest {
    /// Checks requests before a forward, the same way in every backend: a non-empty context
    /// (the first continuation token needs a token before it), a non-empty continuation, and
    /// every id below `vocab_size`.
    ///
    /// # Errors
    /// The first bad request, by index.
    pub fn check_all(requests: &[ScoreRequest], vocab_size: usize) -> Result<(), ComponentError> {
        for (i, r) in requests.iter().enumerate() {
            if r.continuation.is_empty() {
                return Err(ComponentError::stage(format!(
                    "score request {i}: empty continuation"
                )));
            }
            if r.context.is_empty() {
                return Err(ComponentError::stage(format!(
                    "score request {i}: empty context (the first continuation token needs a token before it)"
                )));
            }
            check_token_ids("score request", i, &r.context, vocab_size)?;
            check_token_ids("score request", i, &r.continuation, vocab_size)?;
        }
        Ok(())
    }
}

/// One prompt to continue by greedy decoding ([`ModelBackend::generate`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GenerateRequest {
    /// The prompt tokens (non-empty), special tokens and chat template already applied.
    pub prompt: Vec<u32>,
    /// At most this many new tokens (a stop token counts as one).
    pub max_new_tokens: usize,
    /// Whether the model's own end-of-sequence ids stop generation (the backend knows them:
    /// config.json `eos_token_id`, the tokenizer's end token).
    pub stop_at_eos: bool,
    /// Further token ids that stop generation (kept in the output as the last token).
    pub stop_ids: Vec<u32>,
    /// Strings that stop generation once the decoded new text contains one; the text is cut
    /// before it.
    pub stop_strings: Vec<String>,
}

/// Why a generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The model produced an end-of-sequence id or a requested stop id.
    StopToken,
    /// The decoded text contains a stop string.
    StopString,
    /// `max_new_tokens` were produced (or the model's position table ran out).
    MaxTokens,
}

/// The continuation of one [`GenerateRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// New token ids in order (a stop id, when one stopped it, is the last).
    pub tokens: Vec<u32>,
    /// The new tokens decoded (special tokens skipped), cut before a stop string.
    pub text: String,
    /// Why generation stopped.
    pub stop: StopReason,
}

impl GenerateRequest {
    /// Checks requests the same way in every backend: a non-empty prompt whose ids are below
    /// `vocab_size`.
    ///
    /// # Errors
    /// The first bad request, by index.
    pub fn check_all(
        requests: &[GenerateRequest],
        vocab_size: usize,
    ) -> Result<(), ComponentError> {
        for (i, r) in requests.iter().enumerate() {
            if r.prompt.is_empty() {
                return Err(ComponentError::stage(format!(
                    "generate request {i}: empty prompt"
                )));
            }
            check_token_ids("generate request", i, &r.prompt, vocab_size)?;
            check_token_ids("generate request", i, &r.stop_ids, vocab_size)?;
        }
        Ok(())
    }
}

/// Checks that every id of row `row` is below `vocab_size`; `what` names the row in the error.
///
/// # Errors
/// [`ComponentError::input`] naming the first id out of range.
pub fn check_token_ids(
    what: &str,
    row: usize,
    ids: &[u32],
    vocab_size: usize,
) -> Result<(), ComponentError> {
    match ids.iter().find(|&&id| id as usize >= vocab_size) {
        Some(id) => Err(ComponentError::input(format!(
            "{what} {row}: token id {id} is out of range for vocab size {vocab_size}"
        ))),
        None => Ok(()),
    }
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

    /// Runs one batch forward and adds, for every layer and every row with at least one
    /// marked position, the row's count of `act > 0`, sum and sum of squares of `tap` over its
    /// marked positions into `stats` with [`ActivationStats::add_item_layer`] (which derives
    /// the item-level statistics), or with [`ActivationStats::add_items_layers`] for all of a
    /// batch's layers at once (the same sums to the bit, spread over threads for large
    /// models). Rows with no marked position add nothing.
    ///
    /// The backend updates only the per-neuron arrays; token and item counts are the caller's
    /// business ([`ActivationStats::count_item`]). `edit` (if any) is applied during the
    /// forward.
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
    /// everything before it, with `edit` applied at its positions (context tokens are the
    /// prompt, continuation tokens the generated part; see [`crate::EditPositions`]).
    ///
    /// # Errors
    /// Fails on device errors or empty continuations.
    fn score(
        &mut self,
        requests: &[ScoreRequest],
        edit: Option<&NeuronEdit>,
    ) -> Result<Vec<Vec<f32>>, ComponentError>;

    /// Tokenizes a prompt followed by the start of the model's reply, with offsets into
    /// `prompt + reply`. A backend with a chat template wraps `prompt` as the user turn and
    /// puts `reply` after the assistant header; the default is `encode(prompt + reply)`.
    /// Evaluators that score a continuation of a prompt call this instead of [`Self::encode`].
    ///
    /// # Errors
    /// Fails when the tokenizer or the template rejects the text.
    fn encode_reply(&self, prompt: &str, reply: &str) -> Result<Encoding, ComponentError> {
        self.encode(&format!("{prompt}{reply}"))
    }

    /// Tokenizes a chat prompt: an optional system message and a user message, ready for the
    /// model to write its reply. A backend with a chat template renders both messages with
    /// the generation prompt; the default is `encode(system + "\n\n" + user)` (or
    /// `encode(user)` without a system message).
    ///
    /// # Errors
    /// Fails when the tokenizer or the template rejects the text.
    fn encode_chat(&self, system: Option<&str>, user: &str) -> Result<Encoding, ComponentError> {
        match system {
            Some(s) => self.encode(&format!("{s}\n\n{user}")),
            None => self.encode(user),
        }
    }

    /// Continues every request by greedy decoding (argmax at each step, ties to the lowest
    /// id), with `edit` applied at its positions (prompt tokens and new tokens; see
    /// [`crate::EditPositions`]). A row stops at the model's end-of-sequence ids (when
    /// `stop_at_eos`), at one of its `stop_ids` or `stop_strings`, or after
    /// `max_new_tokens`; the result of a row does not depend on the other rows of the call
    /// (beyond float rounding).
    ///
    /// # Errors
    /// The default: the backend does not support generation (backend/ort, external backends).
    /// Otherwise bad requests (empty prompt, ids out of range) or device errors.
    fn generate(
        &mut self,
        requests: &[GenerateRequest],
        edit: Option<&NeuronEdit>,
    ) -> Result<Vec<Generated>, ComponentError> {
        let _ = (requests, edit);
        Err(ComponentError::config(format!(
            "this {} backend does not support generation (needed by generating evaluators such as evaluator/support-percent); use backend/candle",
            self.info().architecture
        )))
    }

    /// Runs `rows` as one right-padded batch (row `i` holds its tokens from position 0) and
    /// returns the logits and the activations of every layer at each of `taps`, for
    /// debugging, parity checks and self-checks. Positions past a row's end hold 0.
    ///
    /// # Errors
    /// The default: the backend does not support it. Otherwise unknown taps, out-of-range
    /// ids or device errors.
    fn inspect(
        &mut self,
        rows: &[Vec<u32>],
        taps: &[String],
    ) -> Result<Inspection, ComponentError> {
        let _ = (rows, taps);
        Err(ComponentError::config(format!(
            "this {} backend does not support inspect",
            self.info().architecture
        )))
    }
}

/// Logits and tap activations of one right-padded forward ([`ModelBackend::inspect`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// Padded length.
    pub seq: usize,
    /// Real tokens per row.
    pub lens: Vec<usize>,
    /// Width of a logits row.
    pub vocab: usize,
    /// `[rows, seq, vocab]` f32 logits, row-major; 0 past each row's end.
    pub logits: Vec<f32>,
    /// One entry per requested tap and layer, taps in request order, layers ascending.
    pub taps: Vec<TapValues>,
}

/// One layer's activations at one tap.
#[derive(Debug, Clone, PartialEq)]
pub struct TapValues {
    /// Tap name.
    pub tap: String,
    /// Layer index.
    pub layer: usize,
    /// Values per position (the tap's width).
    pub width: usize,
    /// `[rows, seq, width]` f32, row-major; 0 past each row's end.
    pub values: Vec<f32>,
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
