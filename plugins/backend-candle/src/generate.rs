//! Greedy generation for [`CandleBackend`]: a KV-cached decoder (prefill the left-padded
//! prompts once, then one token per row per step) and an uncached reference that re-runs the
//! full forward every step (tests and benchmarks compare the two).
//!
//! Owns the decode loop, stop handling (end-of-sequence ids, stop ids, stop strings, the
//! new-token limit) and position-restricted edits during generation (prompt tokens vs new
//! tokens, [`valex_core::EditPositions`]). It does not know evaluators or prompt formats.

use candle_core::Tensor;
use valex_core::{
    ComponentError, GenerateRequest, Generated, ModelBackend, NeuronEdit, StopReason,
};

use crate::backend::{CandleBackend, device_error};
use crate::models::{KvCache, MASK_NEG, PaddedBatch, Padding};
use crate::tap::LayerMultipliers;

/// The row's argmax (ties go to the lowest id).
fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    u32::try_from(best).expect("vocab ids fit u32")
}

/// One row's decode state.
struct Row<'a> {
    req: &'a GenerateRequest,
    /// New tokens the position table leaves this row.
    room: usize,
    tokens: Vec<u32>,
    stop: Option<StopReason>,
    text: Option<String>,
}

impl CandleBackend {
    /// The number of new tokens the model's position table leaves after a prompt of `len`
    /// tokens (GPT-2's learned table; unlimited for RoPE models).
    fn position_room(&self, len: usize) -> Result<usize, ComponentError> {
        match self.model.config().max_positions {
            None => Ok(usize::MAX),
            Some(n) if len < n => Ok(n - len),
            Some(n) => Err(ComponentError::input(format!(
                "a generate prompt of {len} tokens leaves no room in the model's {n} positions"
            ))),
        }
    }

    fn decode(&self, ids: &[u32]) -> Result<String, ComponentError> {
        self.tokenizer.decode(ids, true).map_err(|e| {
            let mut err = ComponentError::stage(format!("could not decode {} tokens", ids.len()));
            err.source = Some(e);
            err
        })
    }

    /// Records `next` for a row still running and decides whether it stops.
    fn push(&self, row: &mut Row<'_>, next: u32) -> Result<(), ComponentError> {
        if row.stop.is_some() {
            return Ok(());
        }
        row.tokens.push(next);
        let r = row.req;
        if (r.stop_at_eos && self.eos_ids.contains(&next)) || r.stop_ids.contains(&next) {
            row.stop = Some(StopReason::StopToken);
            return Ok(());
        }
        if !r.stop_strings.is_empty() {
            let text = self.decode(&row.tokens)?;
            let cut = r
                .stop_strings
                .iter()
                .filter_map(|s| text.find(s.as_str()))
                .min();
            if let Some(at) = cut {
                row.text = Some(text[..at].to_owned());
                row.stop = Some(StopReason::StopString);
                return Ok(());
            }
        }
        if row.tokens.len() >= r.max_new_tokens.min(row.room) {
            row.stop = Some(StopReason::MaxTokens);
        }
        Ok(())
    }

    fn finish(&self, rows: Vec<Row<'_>>) -> Result<Vec<Generated>, ComponentError> {
        rows.into_iter()
            .map(|row| {
                let text = match row.text {
                    Some(t) => t,
                    None => self.decode(&row.tokens)?,
                };
                Ok(Generated {
                    tokens: row.tokens,
                    text,
                    stop: row.stop.unwrap_or(StopReason::MaxTokens),
                })
            })
            .collect()
    }

    fn start_rows<'a>(
        &self,
        requests: &'a [GenerateRequest],
        chunk: &[usize],
    ) -> Result<Vec<Row<'a>>, ComponentError> {
        chunk
            .iter()
            .map(|&i| {
                Ok(Row {
                    req: &requests[i],
                    room: self.position_room(requests[i].prompt.len())?,
                    tokens: Vec::new(),
                    // A request for no tokens is finished before it starts.
                    stop: (requests[i].max_new_tokens == 0).then_some(StopReason::MaxTokens),
                    text: None,
                })
            })
            .collect()
    }

    /// Greedy generation with a KV cache: each group of rows (grouped by the batch policy,
    /// counting prompt plus new tokens) is left-padded and run through the model once, then
    /// every step feeds one token per row, attending to the cached keys and values. Rows that
    /// stopped keep being fed (their outputs are ignored) until every row of the group stops.
    ///
    /// # Errors
    /// Bad requests (empty prompt, ids out of range, a prompt filling GPT-2's position table)
    /// or device errors.
    pub fn generate_cached(
        &mut self,
        requests: &[GenerateRequest],
        edit: Option<&NeuronEdit>,
    ) -> Result<Vec<Generated>, ComponentError> {
        GenerateRequest::check_all(requests, self.info().vocab_size)?;
        let mult = self.multipliers(edit)?;
        let positions = edit.map(|e| e.positions).filter(|p| !p.is_all());
        let budget: Vec<usize> = requests
            .iter()
            .map(|r| r.prompt.len() + r.max_new_tokens)
            .collect();
        let mut out: Vec<Option<Generated>> = vec![None; requests.len()];
        for chunk in self.policy.chunks(&budget) {
            let _span = tracing::trace_span!("generate_chunk", rows = chunk.len()).entered();
            let prompts: Vec<&[u32]> = chunk
                .iter()
                .map(|&i| requests[i].prompt.as_slice())
                .collect();
            let mut rows = self.start_rows(requests, &chunk)?;
            if rows.iter().all(|r| r.stop.is_some()) {
                for (g, &i) in self.finish(rows)?.into_iter().zip(&chunk) {
                    out[i] = Some(g);
                }
                continue;
            }
            let mut cache = KvCache::new();
            let step = |input: &PaddedBatch,
                        cache: &mut KvCache,
                        last: &[u32]|
             -> candle_core::Result<Vec<u32>> {
                let hidden = self.model.forward_cached(input, &mult, cache)?;
                let logits = self.model.logits_rows(&hidden, last)?;
                let rows: Vec<Vec<f32>> = logits.to_vec2()?;
                Ok(rows.iter().map(|r| argmax(r)).collect())
            };
            let fail = |what: &str| {
                device_error(format!("generate {what} failed on {} rows", chunk.len()))
            };
            // Prefill: the prompts, left-padded so that every row's next token is in the same
            // column.
            let mut input = self
                .model
                .pad(&prompts, Padding::Left)
                .map_err(fail("prefill"))?;
            if let Some(p) = positions {
                input
                    .restrict_edit(|_, _| p.applies(false))
                    .map_err(fail("prefill"))?;
            }
            let seq = input.seq;
            let last: Vec<u32> = (0..chunk.len())
                .map(|b| u32::try_from(b * seq + seq - 1).expect("batch fits u32"))
                .collect();
            let mut next = step(&input, &mut cache, &last).map_err(fail("prefill"))?;
            let starts = input.starts.clone();
            let lens = input.lens.clone();
            drop(input);
            let window = self.model.config().sliding_window;
            let limit = self.model.config().max_positions.unwrap_or(usize::MAX);
            let device = self.model.device().clone();
            let all_last: Vec<u32> = (0..u32::try_from(chunk.len()).expect("fits")).collect();
            for s in 1.. {
                for (row, &t) in rows.iter_mut().zip(&next) {
                    self.push(row, t)?;
                }
                if rows.iter().all(|r| r.stop.is_some()) {
                    break;
                }
                // Step s feeds the token chosen at step s - 1, at column seq + s - 1.
                let keys = seq + s;
                let q = keys - 1;
                let b = chunk.len();
                let mut mask = vec![MASK_NEG; b * keys];
                for (r, &start) in starts.iter().enumerate() {
                    let lo = window.map_or(start, |w| start.max((q + 1).saturating_sub(w)));
                    mask[r * keys + lo..(r + 1) * keys].fill(0.0);
                }
                // Rows that stopped at GPT-2's table end keep its last position (their
                // outputs are ignored).
                let pos: Vec<u32> = lens
                    .iter()
                    .map(|&l| {
                        let p = (l + s - 1).min(limit - 1);
                        u32::try_from(p).expect("positions fit u32")
                    })
                    .collect();
                let build = || -> candle_core::Result<PaddedBatch> {
                    let edit_rows = match positions {
                        Some(p) => Some(Tensor::from_vec(
                            vec![u8::from(p.applies(true)); b],
                            (b, 1),
                            &device,
                        )?),
                        None => None,
                    };
                    Ok(PaddedBatch {
                        batch: b,
                        seq: 1,
                        starts: vec![0; b],
                        lens: vec![1; b],
                        ids: Tensor::from_vec(next.clone(), b, &device)?,
                        positions: Tensor::from_vec(pos, b, &device)?,
                        mask: Tensor::from_vec(mask, (b, 1, 1, keys), &device)?,
                        edit_rows,
                    })
                };
                let input = build().map_err(fail("step"))?;
                next = step(&input, &mut cache, &all_last).map_err(fail("step"))?;
            }
            for (g, &i) in self.finish(rows)?.into_iter().zip(&chunk) {
                out[i] = Some(g);
            }
        }
        Ok(out
            .into_iter()
            .map(|g| g.expect("every request belongs to one chunk"))
            .collect())
    }

    /// Greedy generation without a cache: every step re-runs the full forward over each row's
    /// prompt and new tokens (right-padded, the same path as `score`) and takes the argmax at
    /// the row's last token. Quadratic in the length; the reference the cached decoder is
    /// tested against.
    ///
    /// # Errors
    /// As [`Self::generate_cached`].
    pub fn generate_uncached(
        &mut self,
        requests: &[GenerateRequest],
        edit: Option<&NeuronEdit>,
    ) -> Result<Vec<Generated>, ComponentError> {
        GenerateRequest::check_all(requests, self.info().vocab_size)?;
        let mult: LayerMultipliers = self.multipliers(edit)?;
        let positions = edit.map(|e| e.positions).filter(|p| !p.is_all());
        let all: Vec<usize> = (0..requests.len()).collect();
        let mut rows = self.start_rows(requests, &all)?;
        loop {
            let live: Vec<usize> = (0..rows.len())
                .filter(|&i| rows[i].stop.is_none())
                .collect();
            if live.is_empty() {
                break;
            }
            let texts: Vec<Vec<u32>> = live
                .iter()
                .map(|&i| {
                    let mut v = rows[i].req.prompt.clone();
                    v.extend_from_slice(&rows[i].tokens);
                    v
                })
                .collect();
            let refs: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
            let run = || -> candle_core::Result<Vec<u32>> {
                let mut input = self.model.pad(&refs, Padding::Right)?;
                if let Some(p) = positions {
                    input.restrict_edit(|b, t| p.applies(t >= rows[live[b]].req.prompt.len()))?;
                }
                let hidden = self
                    .model
                    .forward_layers(
                        &input,
                        &mult,
                        crate::tap::TapSet::EMPTY,
                        &mut |_, _, _| Ok(()),
                        true,
                    )?
                    .ok_or_else(|| candle_core::Error::Msg("no hidden states".into()))?;
                let last: Vec<u32> = (0..live.len())
                    .map(|b| u32::try_from(input.index(b, input.lens[b] - 1)).expect("fits"))
                    .collect();
                let logits: Vec<Vec<f32>> = self.model.logits_rows(&hidden, &last)?.to_vec2()?;
                Ok(logits.iter().map(|r| argmax(r)).collect())
            };
            let next = run().map_err(device_error(format!(
                "uncached generate step failed on {} rows",
                live.len()
            )))?;
            for (&i, t) in live.iter().zip(next) {
                self.push(&mut rows[i], t)?;
            }
        }
        self.finish(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, -1.0]), 1);
        assert_eq!(argmax(&[5.0]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY, -3.0]), 1);
    }
}
