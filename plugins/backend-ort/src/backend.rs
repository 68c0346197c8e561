//! [`OrtBackend`]: the [`ModelBackend`] implementation over ONNX Runtime sessions.
//!
//! Owns the sessions (one per graph [`Variant`], built on first use and kept; `inspect`
//! sessions are dropped after use), feeding padded batches (`input_ids`, `attention_mask`,
//! `position_ids` as the graph declares them, the count mask, edit masks, picked positions),
//! and turning outputs into statistics and log-probabilities. Graph building lives in
//! `rewrite.rs`, feeding helpers in `feed.rs`.

use std::collections::HashMap;

use ort::session::Session;
use tokenizers::Tokenizer;
use valex_core::{
    ActivationStats, Capabilities, ComponentError, Encoding, Inspection, ModelBackend, ModelInfo,
    NeuronEdit, RecordBatch, ScoreRequest, TapValues,
};

use crate::batching::BatchPolicy;
use crate::feed::{Feed, Padded};
use crate::model_file::OnnxModel;
use crate::pattern::{FfnSite, Tap};
use crate::rewrite::{self, Logits, Variant};
use crate::session::SessionOptions;

/// One f32 output: its shape and row-major values.
type Output = (Vec<i64>, Vec<f32>);

/// A loaded ONNX model with its tokenizer and sessions.
pub struct OrtBackend {
    model: OnnxModel,
    sites: Vec<FfnSite>,
    taps: Vec<Tap>,
    primary: Tap,
    tokenizer: Tokenizer,
    info: ModelInfo,
    policy: BatchPolicy,
    options: SessionOptions,
    sessions: HashMap<Variant, Session>,
}

/// What [`OrtBackend::new`] needs besides the model.
pub struct Parts {
    /// The checked model.
    pub model: OnnxModel,
    /// One site per layer.
    pub sites: Vec<FfnSite>,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// Shape and identity.
    pub info: ModelInfo,
    /// Batching.
    pub policy: BatchPolicy,
    /// Session settings.
    pub options: SessionOptions,
}

impl OrtBackend {
    /// Wraps a checked model and its sites, and builds the statistics session of the
    /// primary tap (`mlp.gate_act` or `mlp.act`), checking that ONNX Runtime accepts the
    /// instrumented graph and produces the statistics.
    ///
    /// # Errors
    /// No tap offered at every layer, or ONNX Runtime rejects the graph.
    pub fn new(parts: Parts) -> Result<Self, ComponentError> {
        let taps: Vec<Tap> = Tap::ALL
            .into_iter()
            .filter(|t| parts.sites.iter().all(|s| s.taps.contains_key(t)))
            .collect();
        let primary = [Tap::GateAct, Tap::Act]
            .into_iter()
            .find(|t| taps.contains(t))
            .ok_or_else(|| {
                ComponentError::input(format!(
                    "model {}: no tap is found at every layer",
                    parts.model.path.display()
                ))
            })?;
        let mut b = OrtBackend {
            model: parts.model,
            sites: parts.sites,
            taps,
            primary,
            tokenizer: parts.tokenizer,
            info: parts.info,
            policy: parts.policy,
            options: parts.options,
            sessions: HashMap::new(),
        };
        b.session(&b.record_variant(primary, None)?)?;
        Ok(b)
    }

    /// The taps offered at every layer.
    pub fn taps(&self) -> &[Tap] {
        &self.taps
    }

    /// The tensor behind each tap, per layer.
    pub fn sites(&self) -> &[FfnSite] {
        &self.sites
    }

    /// Parses a tap name this model offers.
    ///
    /// # Errors
    /// A config error listing the offered taps.
    pub fn tap(&self, name: &str) -> Result<Tap, ComponentError> {
        Tap::from_name(name)
            .filter(|t| self.taps.contains(t))
            .ok_or_else(|| {
                ComponentError::config(format!(
                    "tap {name:?} is not offered by backend/ort for this model; offered: {}",
                    self.taps
                        .iter()
                        .map(|t| t.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    fn edit_tap(&self, edit: Option<&NeuronEdit>, default: Tap) -> Result<Tap, ComponentError> {
        match edit {
            Some(e) => self
                .tap(&e.tap)
                .map_err(|err| ComponentError::config(format!("edit: {}", err.message))),
            None => Ok(default),
        }
    }

    fn record_variant(
        &self,
        tap: Tap,
        edit: Option<&NeuronEdit>,
    ) -> Result<Variant, ComponentError> {
        Ok(Variant {
            taps: Vec::new(),
            reduce: Some(tap),
            edit: Some(self.edit_tap(edit, tap)?),
            logits: Logits::Drop,
        })
    }

    /// The session of `variant`, built on first use; checks that it has the outputs the
    /// variant promises.
    fn session(&mut self, variant: &Variant) -> Result<&mut Session, ComponentError> {
        if !self.sessions.contains_key(variant) {
            let s = self.build_session(variant)?;
            self.sessions.insert(variant.clone(), s);
        }
        Ok(self.sessions.get_mut(variant).expect("inserted above"))
    }

    fn build_session(&self, variant: &Variant) -> Result<Session, ComponentError> {
        let proto = rewrite::build(&self.model, &self.sites, variant)?;
        let bytes = prost::Message::encode_to_vec(&proto);
        let label = format!(
            "the instrumented model {} ({variant:?})",
            self.model.path.display()
        );
        let s = self.options.build(&bytes, self.model.dir(), &label)?;
        let have: Vec<&str> = s.outputs().iter().map(|o| o.name()).collect();
        let mut want: Vec<String> = Vec::new();
        if variant.reduce.is_some() {
            want.push(rewrite::STATS.to_owned());
        }
        for &t in &variant.taps {
            want.extend((0..self.sites.len()).map(|l| rewrite::tap_output(t, l)));
        }
        if let Some(missing) = want.iter().find(|w| !have.contains(&w.as_str())) {
            return Err(ComponentError::input(format!(
                "{label}: onnx runtime does not produce {missing}"
            )));
        }
        tracing::debug!(variant = ?variant, nodes = proto.graph.as_ref().map_or(0, |g| g.node.len()), "onnx runtime session built");
        Ok(s)
    }

    /// Per-layer multipliers of `edit` (all ones without an edit).
    fn masks(&self, edit: Option<&NeuronEdit>) -> Result<Vec<Vec<f32>>, ComponentError> {
        let (l, n) = (self.info.n_layers, self.info.n_neurons);
        let mut out = vec![vec![1.0_f32; n]; l];
        let Some(edit) = edit else { return Ok(out) };
        if edit.layers.len() > l {
            return Err(ComponentError::config(format!(
                "edit has {} layers but the model has {l}",
                edit.layers.len()
            )));
        }
        // The graph's mask input is per neuron, not per position: an edit restricted to
        // prompt or generated tokens cannot be expressed (issue 7).
        if !edit.positions.is_all() {
            return Err(ComponentError::config(format!(
                "backend/ort applies edits at every position only; this edit has positions = \"{}\": use backend/candle or positions = \"all\"",
                edit.positions.as_str()
            )));
        }
        // The rewritten graph multiplies each tap by a mask input; it has no add or clamp
        // inputs, so edits that shift or clamp (intervention/mean, intervention/clamp) are
        // refused here rather than applied wrongly (docs/backend-ort.md).
        let Some(factors) = edit.factors() else {
            return Err(ComponentError::config(
                "backend/ort applies multiplicative edits only (intervention/zero, intervention/scale); \
                 this edit shifts or clamps activations (intervention/mean, intervention/clamp): use backend/candle",
            ));
        };
        for (layer, pairs) in factors.iter().enumerate() {
            for &(j, factor) in pairs {
                let j = j as usize;
                if j >= n {
                    return Err(ComponentError::config(format!(
                        "edit neuron {j} of layer {layer} is out of range (layer has {n} neurons)"
                    )));
                }
                out[layer][j] *= factor;
            }
        }
        Ok(out)
    }

    fn check_ids(&self, what: &str, row: usize, ids: &[u32]) -> Result<(), ComponentError> {
        valex_core::model::check_token_ids(what, row, ids, self.info.vocab_size)
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
        for (i, (ids, pos)) in batch.ids.iter().zip(&batch.positions).enumerate() {
            if ids.len() != pos.len() {
                return Err(ComponentError::stage(format!(
                    "record row {i}: {} ids but {} position flags",
                    ids.len(),
                    pos.len()
                )));
            }
            if batch.labels[i] >= stats.labels.len() {
                return Err(ComponentError::stage(format!(
                    "record row {i}: label {} is out of range ({} labels)",
                    batch.labels[i],
                    stats.labels.len()
                )));
            }
            self.check_ids("record row", i, ids)?;
        }
        Ok(())
    }

    /// Runs `variant` on `feed`; returns the named f32 outputs (shape, values).
    fn run(
        &mut self,
        variant: &Variant,
        feed: Feed,
        outputs: &[String],
    ) -> Result<Vec<Output>, ComponentError> {
        let path = self.model.path.display().to_string();
        let session = self.session(variant)?;
        let inputs = feed.into_inputs(session)?;
        let out = session.run(inputs).map_err(|e| {
            ComponentError::stage(format!("onnx runtime forward of {path} failed")).with_source(e)
        })?;
        outputs
            .iter()
            .map(|name| {
                let v = out.get(name.as_str()).ok_or_else(|| {
                    ComponentError::stage(format!("onnx runtime returned no output {name}"))
                })?;
                let (shape, data) = v.try_extract_tensor::<f32>().map_err(|e| {
                    ComponentError::stage(format!("output {name} is not an f32 tensor"))
                        .with_source(e)
                })?;
                Ok((shape.to_vec(), data.to_vec()))
            })
            .collect()
    }
}

impl ModelBackend for OrtBackend {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn capabilities(&self) -> Capabilities {
        let taps: Vec<String> = self.taps.iter().map(|t| t.name().to_owned()).collect();
        Capabilities {
            intervention_taps: taps.clone(),
            taps,
        }
    }

    fn encode(&self, text: &str) -> Result<Encoding, ComponentError> {
        let enc = self.tokenizer.encode(text, true).map_err(|e| {
            let mut err =
                ComponentError::input(format!("tokenizer rejected a text of {} bytes", text.len()));
            err.source = Some(e);
            err
        })?;
        Ok(Encoding {
            ids: enc.get_ids().to_vec(),
            offsets: enc.get_offsets().to_vec(),
        })
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
        let variant = self.record_variant(tap, edit)?;
        let masks = self.masks(edit)?;
        // Causal attention: tokens after a row's last counted position cannot change the
        // counted ones, so each row is cut there (rows with nothing counted are skipped).
        let lens: Vec<usize> = batch
            .positions
            .iter()
            .map(|p| p.iter().rposition(|&b| b).map_or(0, |i| i + 1))
            .collect();
        let (n, n_layers) = (self.info.n_neurons, self.info.n_layers);
        for (ci, chunk) in self.policy.chunks(&lens).into_iter().enumerate() {
            let _span =
                tracing::trace_span!("record_chunk", index = ci, rows = chunk.len()).entered();
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| &batch.ids[i][..lens[i]]).collect();
            let padded = Padded::right(&rows);
            self.model.check_batch_shape(padded.rows, padded.seq)?;
            let mut count = vec![false; padded.rows * padded.seq];
            for (b, &i) in chunk.iter().enumerate() {
                for (t, &on) in batch.positions[i][..lens[i]].iter().enumerate() {
                    count[b * padded.seq + t] = on;
                }
            }
            let feed = Feed::new(&self.model.inputs, &padded)
                .with_count_mask(count, padded.rows, padded.seq)
                .with_masks(&masks);
            let mut out = self.run(&variant, feed, &[rewrite::STATS.to_owned()])?;
            let (shape, data) = out.pop().expect("one output requested");
            if shape != [n_layers as i64, chunk.len() as i64, 3 * n as i64] {
                return Err(ComponentError::stage(format!(
                    "statistics output has shape {shape:?}, expected [{n_layers}, {}, {}]; the tap is not {n} wide",
                    chunk.len(),
                    3 * n
                )));
            }
            for (b, &i) in chunk.iter().enumerate() {
                let counted = batch.positions[i].iter().filter(|&&on| on).count() as f64;
                for layer in 0..n_layers {
                    let r = &data[(layer * chunk.len() + b) * 3 * n..][..3 * n];
                    stats.add_item_layer(
                        batch.labels[i],
                        batch.keys[i],
                        layer,
                        counted,
                        &r[..n],
                        &r[n..2 * n],
                        &r[2 * n..],
                    );
                }
            }
        }
        Ok(())
    }

    fn score(
        &mut self,
        requests: &[ScoreRequest],
        edit: Option<&NeuronEdit>,
    ) -> Result<Vec<Vec<f32>>, ComponentError> {
        ScoreRequest::check_all(requests, self.info.vocab_size)?;
        let variant = Variant {
            taps: Vec::new(),
            reduce: None,
            edit: Some(self.edit_tap(edit, self.primary)?),
            logits: Logits::Picked,
        };
        let masks = self.masks(edit)?;
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
            let padded = Padded::right(&rows);
            self.model.check_batch_shape(padded.rows, padded.seq)?;
            let (mut pick, mut target) = (Vec::new(), Vec::new());
            for (b, &i) in chunk.iter().enumerate() {
                let r = &requests[i];
                let c = r.context.len();
                for (k, &tok) in r.continuation.iter().enumerate() {
                    pick.push((b * padded.seq + c - 1 + k) as i64);
                    target.push(i64::from(tok));
                }
            }
            let feed = Feed::new(&self.model.inputs, &padded)
                .with_picks(pick, target)
                .with_masks(&masks);
            let (_, flat) = self
                .run(&variant, feed, &[rewrite::LOGP.to_owned()])?
                .pop()
                .expect("one output requested");
            let mut at = 0;
            for &i in &chunk {
                let n = requests[i].continuation.len();
                out[i] = flat[at..at + n].to_vec();
                at += n;
            }
        }
        Ok(out)
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
        for (i, r) in rows.iter().enumerate() {
            self.check_ids("inspect row", i, r)?;
        }
        let variant = Variant {
            taps: taps.clone(),
            reduce: None,
            edit: None,
            logits: Logits::Full,
        };
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let padded = Padded::right(&refs);
        self.model.check_batch_shape(padded.rows, padded.seq)?;
        let mut names = vec![rewrite::LOGITS.to_owned()];
        for &t in &taps {
            names.extend((0..self.info.n_layers).map(|l| rewrite::tap_output(t, l)));
        }
        let feed = Feed::new(&self.model.inputs, &padded);
        let result = self.run(&variant, feed, &names);
        // Inspection is for debugging: its session is not kept.
        self.sessions.remove(&variant);
        let mut out = result?.into_iter();
        let (shape, mut logits) = out.next().expect("logits requested first");
        let vocab = shape.last().copied().unwrap_or(0) as usize;
        padded.zero_past_ends(&mut logits, vocab);
        let mut tap_values = Vec::new();
        for &t in &taps {
            for layer in 0..self.info.n_layers {
                let (shape, mut values) = out.next().expect("one output per tap and layer");
                let width = shape.last().copied().unwrap_or(0) as usize;
                padded.zero_past_ends(&mut values, width);
                tap_values.push(TapValues {
                    tap: t.name().to_owned(),
                    layer,
                    width,
                    values,
                });
            }
        }
        Ok(Inspection {
            seq: padded.seq,
            lens: padded.lens.clone(),
            vocab,
            logits,
            taps: tap_values,
        })
    }
}
