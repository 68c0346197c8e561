//! [`CandleBackend`]: the [`ModelBackend`] implementation over [`LlamaModel`].
//!
//! Owns batching (rows sorted by length, split into `batch_size` chunks, right-padded), the
//! on-device statistics reduction of the recording pass, continuation scoring with
//! log-softmax at the needed positions only, and tokenization. File reading lives in
//! `files.rs`, the forward pass in `models/llama.rs`.

use candle_core::{DType, Tensor};
use tokenizers::Tokenizer;
use valex_core::{
    ActivationStats, Capabilities, ComponentError, Encoding, ModelBackend, ModelInfo, NeuronEdit,
    RecordBatch, ScoreRequest,
};

use crate::models::llama::LlamaModel;
use crate::tap::{EDIT_TAP, LayerMultipliers, Tap};

/// A loaded model with its tokenizer.
pub struct CandleBackend {
    model: LlamaModel,
    tokenizer: Tokenizer,
    info: ModelInfo,
    batch_size: usize,
}

/// Activations of one padded forward, trimmed to each row's real tokens (test helper).
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct TapDump {
    /// `[row][position][vocab]` f32 logits.
    pub logits: Vec<Vec<Vec<f32>>>,
    /// `[layer][row][position][neuron]` f32 tap values.
    pub taps: Vec<Vec<Vec<Vec<f32>>>>,
}

fn device_error(what: String) -> impl FnOnce(candle_core::Error) -> ComponentError {
    move |e| ComponentError::stage(what).with_source(e)
}

impl CandleBackend {
    /// Wraps a model. `batch_size` is the most rows per forward (at least 1).
    pub fn new(
        model: LlamaModel,
        tokenizer: Tokenizer,
        content_sha256: String,
        batch_size: usize,
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
        CandleBackend {
            model,
            tokenizer,
            info,
            batch_size: batch_size.max(1),
        }
    }

    /// The model.
    pub fn model(&self) -> &LlamaModel {
        &self.model
    }

    fn check_ids(&self, what: &str, row: usize, ids: &[u32]) -> Result<(), ComponentError> {
        let v = self.info.vocab_size;
        match ids.iter().find(|&&id| id as usize >= v) {
            Some(id) => Err(ComponentError::input(format!(
                "{what} {row}: token id {id} is out of range for vocab size {v}"
            ))),
            None => Ok(()),
        }
    }

    fn multipliers(&self, edit: Option<&NeuronEdit>) -> Result<LayerMultipliers, ComponentError> {
        LayerMultipliers::build(
            edit,
            self.info.n_layers,
            self.info.n_neurons,
            self.model.dtype(),
            self.model.device(),
        )
    }

    /// Runs `rows` as one right-padded batch and returns full logits and every layer's `tap`
    /// for the real tokens of each row. For tests of padding invariance.
    ///
    /// # Errors
    /// Unknown tap, bad edit, out-of-range ids, device errors.
    #[doc(hidden)]
    pub fn forward_taps(
        &self,
        rows: &[Vec<u32>],
        tap: &str,
        edit: Option<&NeuronEdit>,
    ) -> Result<TapDump, ComponentError> {
        let tap = Tap::parse(tap)?;
        for (i, r) in rows.iter().enumerate() {
            self.check_ids("row", i, r)?;
        }
        let mult = self.multipliers(edit)?;
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let run = || -> candle_core::Result<TapDump> {
            let input = self.model.pad(&refs)?;
            let seq = input.seq;
            let trim = |t: &Tensor| -> candle_core::Result<Vec<Vec<Vec<f32>>>> {
                let all: Vec<Vec<f32>> = t.to_dtype(DType::F32)?.to_vec2()?;
                Ok(rows
                    .iter()
                    .enumerate()
                    .map(|(b, r)| all[b * seq..b * seq + r.len()].to_vec())
                    .collect())
            };
            let mut taps = Vec::new();
            let hidden = self
                .model
                .forward_layers(
                    &input,
                    &mult,
                    Some(tap),
                    &mut |_, act| {
                        taps.push(trim(act)?);
                        Ok(())
                    },
                    true,
                )?
                .ok_or_else(|| candle_core::Error::Msg("no hidden states".into()))?;
            let all_rows: Vec<u32> = (0..(input.batch * seq) as u32).collect();
            let logits = self.model.logits_rows(&hidden, &all_rows)?;
            Ok(TapDump {
                logits: trim(&logits)?,
                taps,
            })
        };
        run().map_err(device_error(format!(
            "forward of {} rows failed",
            rows.len()
        )))
    }

    /// Row indices sorted by decreasing length, in chunks of at most `batch_size`.
    fn chunks(&self, lens: &[usize]) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..lens.len()).filter(|&i| lens[i] > 0).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lens[i]));
        order
            .chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect()
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
        if batch.positions.len() != n || batch.labels.len() != n {
            return Err(ComponentError::stage(format!(
                "record batch has {n} id rows, {} position rows and {} labels",
                batch.positions.len(),
                batch.labels.len()
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
        Capabilities {
            taps: Tap::ALL.iter().map(|t| t.name().to_owned()).collect(),
            intervention_taps: vec![EDIT_TAP.to_owned()],
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
        let tap = Tap::parse(tap)?;
        self.check_record_batch(batch, stats)?;
        let mult = self.multipliers(edit)?;
        // Causal attention: tokens after a row's last counted position cannot change the
        // counted ones, so each row is cut there (rows with nothing counted are skipped).
        let lens: Vec<usize> = batch
            .positions
            .iter()
            .map(|p| p.iter().rposition(|&b| b).map_or(0, |i| i + 1))
            .collect();
        for (ci, chunk) in self.chunks(&lens).into_iter().enumerate() {
            let _span =
                tracing::trace_span!("record_chunk", index = ci, rows = chunk.len()).entered();
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| &batch.ids[i][..lens[i]]).collect();
            let mut labels: Vec<usize> = chunk.iter().map(|&i| batch.labels[i]).collect();
            labels.sort_unstable();
            labels.dedup();
            let run = |stats: &mut ActivationStats| -> candle_core::Result<()> {
                let input = self.model.pad(&rows)?;
                let seq = input.seq;
                let mut m = vec![0.0_f32; labels.len() * input.batch * seq];
                for (b, &i) in chunk.iter().enumerate() {
                    let li = labels
                        .binary_search(&batch.labels[i])
                        .expect("every row label of a chunk is in the chunk label list");
                    let base = li * input.batch * seq + b * seq;
                    for (t, &on) in batch.positions[i][..lens[i]].iter().enumerate() {
                        if on {
                            m[base + t] = 1.0;
                        }
                    }
                }
                let m =
                    Tensor::from_vec(m, (labels.len(), input.batch * seq), self.model.device())?;
                let n = self.info.n_neurons;
                self.model.forward_layers(
                    &input,
                    &mult,
                    Some(tap),
                    &mut |layer, act| {
                        let a = act.to_dtype(DType::F32)?;
                        let active = m.matmul(&a.gt(0.0_f32)?.to_dtype(DType::F32)?)?;
                        let sum = m.matmul(&a)?;
                        let sum_sq = m.matmul(&a.sqr()?)?;
                        let host: Vec<Vec<f32>> =
                            Tensor::cat(&[active, sum, sum_sq], 1)?.to_vec2()?;
                        for (li, &label) in labels.iter().enumerate() {
                            let r = &host[li];
                            stats.add_layer(label, layer, &r[..n], &r[n..2 * n], &r[2 * n..]);
                        }
                        Ok(())
                    },
                    false,
                )?;
                Ok(())
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
            self.check_ids("score request", i, &r.context)?;
            self.check_ids("score request", i, &r.continuation)?;
        }
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
        for chunk in self.chunks(&lens) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| inputs[i].as_slice()).collect();
            let run = || -> candle_core::Result<Vec<f32>> {
                let input = self.model.pad(&rows)?;
                let hidden = self
                    .model
                    .forward_layers(&input, &mult, None, &mut |_, _| Ok(()), true)?
                    .ok_or_else(|| candle_core::Error::Msg("no hidden states".into()))?;
                let mut picked = Vec::new();
                let mut targets = Vec::new();
                for (b, &i) in chunk.iter().enumerate() {
                    let r = &requests[i];
                    let c = r.context.len();
                    for (k, &tok) in r.continuation.iter().enumerate() {
                        picked.push((b * input.seq + c - 1 + k) as u32);
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
