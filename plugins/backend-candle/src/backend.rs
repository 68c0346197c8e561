//! [`CandleBackend`]: the [`ModelBackend`] implementation over a [`Model`].
//!
//! Owns the on-device statistics reduction of the recording pass, continuation scoring with
//! log-softmax at the needed positions only, and tokenization (with the optional chat
//! template). Grouping rows into forwards lives in `batching.rs`, activation dumps
//! (`inspect`) in `inspect.rs`, file reading in `files.rs`, the forward passes in `models/`.

use candle_core::Tensor;
use tokenizers::Tokenizer;
use valex_core::{
    ActivationStats, Capabilities, ComponentError, Encoding, Inspection, ModelBackend, ModelInfo,
    NeuronEdit, RecordBatch, ScoreRequest,
};

use crate::batching::BatchPolicy;
use crate::chat::ChatTemplate;
use crate::models::{Model, Padding};
use crate::profile::section;
use crate::reduce::RowReducer;
use crate::tap::{LayerMultipliers, Tap, TapSet};

/// A loaded model with its tokenizer.
pub struct CandleBackend {
    pub(crate) model: Model,
    pub(crate) tokenizer: Tokenizer,
    info: ModelInfo,
    pub(crate) policy: BatchPolicy,
    chat: Option<ChatTemplate>,
    /// The model's end-of-sequence ids: config.json `eos_token_id` plus the chat template's
    /// `eos_token` (tokenizer_config.json), deduplicated.
    pub(crate) eos_ids: Vec<u32>,
}

pub(crate) fn device_error(what: String) -> impl FnOnce(candle_core::Error) -> ComponentError {
    move |e| ComponentError::stage(what).with_source(e)
}

impl CandleBackend {
    /// Wraps a model; `policy` groups rows into forwards.
    pub fn new(
        model: Model,
        tokenizer: Tokenizer,
        content_sha256: String,
        policy: BatchPolicy,
    ) -> Self {
        let c = model.config();
        let info = ModelInfo {
            architecture: c.model_type.clone(),
            n_layers: c.n_layers,
            n_neurons: c.intermediate_size,
            hidden_size: c.hidden_size,
            vocab_size: c.vocab_size,
            content_sha256,
        };
        let eos_ids = c
            .eos_token_ids
            .iter()
            .copied()
            .filter(|&id| (id as usize) < c.vocab_size)
            .collect();
        CandleBackend {
            model,
            tokenizer,
            info,
            policy,
            chat: None,
            eos_ids,
        }
    }

    /// Wraps every encoded text in `chat` (see [`ChatTemplate`]); the template's end token
    /// (e.g. `<|im_end|>`) joins the end-of-sequence ids.
    #[must_use]
    pub fn with_chat_template(mut self, chat: ChatTemplate) -> Self {
        if let Some(id) = self.tokenizer.token_to_id(chat.eos_token())
            && (id as usize) < self.info.vocab_size
            && !self.eos_ids.contains(&id)
        {
            self.eos_ids.push(id);
        }
        self.chat = Some(chat);
        self
    }

    /// The ids at which generation stops when a request asks for the model's end of sequence.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// How rows are grouped into forwards.
    pub fn policy(&self) -> BatchPolicy {
        self.policy
    }

    /// Parses a tap name for this model's family.
    ///
    /// # Errors
    /// A config-class error listing the supported taps.
    pub fn tap(&self, name: &str) -> Result<Tap, ComponentError> {
        Tap::parse(name, self.model.config().family)
    }

    pub(crate) fn check_ids(
        &self,
        what: &str,
        row: usize,
        ids: &[u32],
    ) -> Result<(), ComponentError> {
        valex_core::model::check_token_ids(what, row, ids, self.info.vocab_size)
    }

    pub(crate) fn multipliers(
        &self,
        edit: Option<&NeuronEdit>,
    ) -> Result<LayerMultipliers, ComponentError> {
        LayerMultipliers::build(
            edit,
            self.model.config().family,
            self.info.n_layers,
            self.info.n_neurons,
            self.model.dtype(),
            self.model.device(),
        )
    }

    fn check_record_batch(
        &self,
        batch: &RecordBatch,
        stats: &ActivationStats,
    ) -> Result<(), ComponentError> {
        if stats.n_layers != self.info.n_layers || stats.n_neurons != self.info.n_neurons {
            return Err(ComponentError::stage(format!(
                "statistics are shaped [{} x {}] but the model has [{} x {}]",
                stats.n_layers, stats.n_neurons, self.info.n_layers, self.info.n_neurons
            )));
        }
        let n = batch.ids.len();
        if batch.positions.len() != n || batch.labels.len() != n || batch.keys.len() != n {
            return Err(ComponentError::stage(format!(
                "record batch has {n} id rows, {} position rows, {} labels and {} keys",
                batch.positions.len(),
                batch.labels.len(),
                batch.keys.len()
            )));
        }
        for (i, ((ids, pos), &label)) in batch
            .ids
            .iter()
            .zip(&batch.positions)
            .zip(&batch.labels)
            .enumerate()
        {
            if ids.len() != pos.len() {
                return Err(ComponentError::stage(format!(
                    "record row {i}: {} ids but {} position flags",
                    ids.len(),
                    pos.len()
                )));
            }
            if label >= stats.labels.len() {
                return Err(ComponentError::stage(format!(
                    "record row {i}: label {label} is out of range ({} labels)",
                    stats.labels.len()
                )));
            }
            self.check_ids("record row", i, ids)?;
        }
        Ok(())
    }
}

impl ModelBackend for CandleBackend {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn capabilities(&self) -> Capabilities {
        let taps: Vec<String> = Tap::of(self.model.config().family)
            .iter()
            .map(|t| t.name().to_owned())
            .collect();
        Capabilities {
            intervention_taps: taps.clone(),
            taps,
        }
    }

    fn encode(&self, text: &str) -> Result<Encoding, ComponentError> {
        match &self.chat {
            None => crate::chat::encode_plain(&self.tokenizer, text, true),
            Some(chat) => chat.encode(&self.tokenizer, text, ""),
        }
    }

    fn encode_chat(&self, system: Option<&str>, user: &str) -> Result<Encoding, ComponentError> {
        match &self.chat {
            None => {
                let text = match system {
                    Some(s) => format!("{s}\n\n{user}"),
                    None => user.to_owned(),
                };
                crate::chat::encode_plain(&self.tokenizer, &text, true)
            }
            // Offsets point into the rendered text (generation does not map them back).
            Some(chat) => crate::chat::encode_plain(
                &self.tokenizer,
                &chat.render_with(system, user.trim())?,
                false,
            ),
        }
    }

    fn generate(
        &mut self,
        requests: &[valex_core::GenerateRequest],
        edit: Option<&NeuronEdit>,
    ) -> Result<Vec<valex_core::Generated>, ComponentError> {
        self.generate_cached(requests, edit)
    }

    fn encode_reply(&self, prompt: &str, reply: &str) -> Result<Encoding, ComponentError> {
        match &self.chat {
            None => crate::chat::encode_plain(&self.tokenizer, &format!("{prompt}{reply}"), true),
            Some(chat) => chat.encode(&self.tokenizer, prompt, reply),
        }
    }

    fn inspect(
        &mut self,
        rows: &[Vec<u32>],
        taps: &[String],
    ) -> Result<Inspection, ComponentError> {
        let taps = taps
            .iter()
            .map(|t| self.tap(t))
            .collect::<Result<Vec<_>, _>>()?;
        self.inspection(rows, &taps)
    }

    fn record(
        &mut self,
        tap: &str,
        batch: &RecordBatch,
        edit: Option<&NeuronEdit>,
        stats: &mut ActivationStats,
    ) -> Result<(), ComponentError> {
        let tap = self.tap(tap)?;
        self.check_record_batch(batch, stats)?;
        // Recorded rows are all prompt: a generated-only edit applies nowhere.
        let edit = edit.filter(|e| e.positions.applies(false));
        let mult = self.multipliers(edit)?;
        // Causal attention: tokens after a row's last counted position cannot change the
        // counted ones, so each row is cut there (rows with nothing counted are skipped).
        let lens: Vec<usize> = batch
            .positions
            .iter()
            .map(|p| p.iter().rposition(|&b| b).map_or(0, |i| i + 1))
            .collect();
        for (ci, chunk) in self.policy.chunks(&lens).into_iter().enumerate() {
            let _span =
                tracing::trace_span!("record_chunk", index = ci, rows = chunk.len()).entered();
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| &batch.ids[i][..lens[i]]).collect();
            // Counted tokens per row: each row is reduced on its own (a masked sum over its
            // positions, in position order) so that the statistics get each item's sums and
            // hence its mean, and so that an item's sums do not depend on which other rows
            // share its batch: sharded, resumed and differently batched recordings then agree
            // to the last bit of f32 (the f64 accumulation order is the only difference).
            let counted: Vec<f64> = chunk
                .iter()
                .map(|&i| batch.positions[i].iter().filter(|&&on| on).count() as f64)
                .collect();
            let run = |stats: &mut ActivationStats| -> candle_core::Result<()> {
                let input = self.model.pad(&rows, Padding::Right)?;
                let counted_at: Vec<Vec<usize>> = chunk
                    .iter()
                    .enumerate()
                    .map(|(b, &i)| {
                        batch.positions[i][..lens[i]]
                            .iter()
                            .enumerate()
                            .filter(|(_, on)| **on)
                            .map(|(t, _)| input.index(b, t))
                            .collect()
                    })
                    .collect();
                // Each layer's reduction is queued on the device; the results come back
                // once, after the last layer (one synchronisation per chunk on CUDA).
                let mut reducer = RowReducer::new(&counted_at, input.batch, input.seq)?;
                let mut layers = Vec::with_capacity(self.info.n_layers);
                self.model.forward_layers(
                    &input,
                    &mult,
                    TapSet::one(tap),
                    &mut |layer, _, act| {
                        reducer.push(act)?;
                        layers.push(layer);
                        Ok(())
                    },
                    false,
                )?;
                let host = section("stats.copy", input.ids.device(), || reducer.finish())?;
                let items: Vec<(usize, u64, f64)> = chunk
                    .iter()
                    .enumerate()
                    .map(|(b, &i)| (batch.labels[i], batch.keys[i], counted[b]))
                    .collect();
                section("stats.host", input.ids.device(), || {
                    stats.add_items_layers(&items, &layers, &host);
                    Ok(())
                })
            };
            run(stats).map_err(device_error(format!(
                "record forward failed on a chunk of {} rows",
                rows.len()
            )))?;
        }
        Ok(())
    }

    fn score(
        &mut self,
        requests: &[ScoreRequest],
        edit: Option<&NeuronEdit>,
    ) -> Result<Vec<Vec<f32>>, ComponentError> {
        ScoreRequest::check_all(requests, self.info.vocab_size)?;
        let mult = self.multipliers(edit)?;
        // The last continuation token is only a target, never an input.
        let inputs: Vec<Vec<u32>> = requests
            .iter()
            .map(|r| {
                let mut v = r.context.clone();
                v.extend_from_slice(&r.continuation[..r.continuation.len() - 1]);
                v
            })
            .collect();
        let lens: Vec<usize> = inputs.iter().map(Vec::len).collect();
        let mut out = vec![Vec::new(); requests.len()];
        for chunk in self.policy.chunks(&lens) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| inputs[i].as_slice()).collect();
            let run = || -> candle_core::Result<Vec<f32>> {
                let mut input = self.model.pad(&rows, Padding::Right)?;
                if let Some(e) = edit.filter(|e| !e.positions.is_all()) {
                    // Input token t of a request is a continuation token from t = context.
                    input.restrict_edit(|b, t| {
                        e.positions.applies(t >= requests[chunk[b]].context.len())
                    })?;
                }
                let hidden = self
                    .model
                    .forward_layers(&input, &mult, TapSet::EMPTY, &mut |_, _, _| Ok(()), true)?
                    .ok_or_else(|| candle_core::Error::Msg("no hidden states".into()))?;
                let mut picked = Vec::new();
                let mut targets = Vec::new();
                for (b, &i) in chunk.iter().enumerate() {
                    let r = &requests[i];
                    let c = r.context.len();
                    for (k, &tok) in r.continuation.iter().enumerate() {
                        picked.push(input.index(b, c - 1 + k) as u32);
                        targets.push(tok);
                    }
                }
                let logits = self.model.logits_rows(&hidden, &picked)?;
                let logp = candle_nn::ops::log_softmax(&logits, 1)?;
                let idx = Tensor::from_vec(targets, (picked.len(), 1), self.model.device())?;
                logp.gather(&idx, 1)?.flatten_all()?.to_vec1()
            };
            let flat = run().map_err(device_error(format!(
                "score forward failed on a chunk of {} requests",
                rows.len()
            )))?;
            let mut at = 0;
            for &i in &chunk {
                let n = requests[i].continuation.len();
                out[i] = flat[at..at + n].to_vec();
                at += n;
            }
        }
        Ok(out)
    }
}
