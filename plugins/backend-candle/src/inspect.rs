//! Activation dumps: logits and taps of one padded forward, for `valex inspect`, HF parity
//! tests and self-checks.
//!
//! Owns [`CandleBackend::forward_dump`] (any taps, right or left padding), the
//! [`valex_core::Inspection`] the `inspect` trait method returns, and its safetensors file
//! layout ([`inspection_safetensors`]). Statistics never go through here: dumps hold full
//! activations and are meant for a handful of texts.

use candle_core::{DType, Tensor};
use valex_core::{ComponentError, Inspection, NeuronEdit, TapValues};

use crate::backend::{CandleBackend, device_error};
use crate::models::Padding;
use crate::tap::{Tap, TapSet};

/// Logits and tap values of one padded forward, untrimmed (padding positions included).
#[derive(Debug, Clone)]
pub struct Dump {
    /// Padded length.
    pub seq: usize,
    /// Index of each row's first real token.
    pub starts: Vec<usize>,
    /// Real tokens per row.
    pub lens: Vec<usize>,
    /// Width of a logits row.
    pub vocab: usize,
    /// `[rows * seq * vocab]` f32 logits.
    pub logits: Vec<f32>,
    /// `(tap, layer, width, [rows * seq * width] f32)` in tap order, then layer order.
    pub taps: Vec<(Tap, usize, usize, Vec<f32>)>,
}

impl Dump {
    /// The values of row `b` at its real tokens: `[len][width]` slices of `flat`.
    pub fn real_rows<'a>(&self, flat: &'a [f32], width: usize, b: usize) -> Vec<&'a [f32]> {
        (0..self.lens[b])
            .map(|t| {
                let i = b * self.seq + self.starts[b] + t;
                &flat[i * width..(i + 1) * width]
            })
            .collect()
    }
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

impl CandleBackend {
    /// Runs `rows` as one batch padded on `side` and returns the logits at every position
    /// and every layer's activations at each of `taps`, with `edit` applied.
    ///
    /// # Errors
    /// Bad edit, out-of-range ids, device errors.
    pub fn forward_dump(
        &self,
        rows: &[Vec<u32>],
        taps: &[Tap],
        edit: Option<&NeuronEdit>,
        side: Padding,
    ) -> Result<Dump, ComponentError> {
        for (i, r) in rows.iter().enumerate() {
            self.check_ids("row", i, r)?;
        }
        // Dumped rows are all prompt (as in `record`): a generated-only edit applies nowhere.
        let edit = edit.filter(|e| e.positions.applies(false));
        let mult = self.multipliers(edit)?;
        let set: TapSet = taps.iter().copied().collect();
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let run = || -> candle_core::Result<Dump> {
            let input = self.model.pad(&refs, side)?;
            let flat = |t: &Tensor| -> candle_core::Result<(usize, Vec<f32>)> {
                Ok((t.dim(1)?, t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?))
            };
            let mut seen: Vec<(Tap, usize, usize, Vec<f32>)> = Vec::new();
            let hidden = self
                .model
                .forward_layers(
                    &input,
                    &mult,
                    set,
                    &mut |layer, tap, act| {
                        let (w, v) = flat(act)?;
                        seen.push((tap, layer, w, v));
                        Ok(())
                    },
                    true,
                )?
                .ok_or_else(|| candle_core::Error::Msg("no hidden states".into()))?;
            let all_rows: Vec<u32> = (0..(input.batch * input.seq) as u32).collect();
            let (vocab, logits) = flat(&self.model.logits_rows(&hidden, &all_rows)?)?;
            // Tap order as requested (each tap once), then layers ascending.
            let mut ordered: Vec<(Tap, usize, usize, Vec<f32>)> = Vec::with_capacity(seen.len());
            for (i, &t) in taps.iter().enumerate() {
                if !taps[..i].contains(&t) {
                    ordered.extend(seen.iter().filter(|(s, ..)| *s == t).cloned());
                }
            }
            Ok(Dump {
                seq: input.seq,
                starts: input.starts.clone(),
                lens: input.lens.clone(),
                vocab,
                logits,
                taps: ordered,
            })
        };
        run().map_err(device_error(format!(
            "forward of {} rows failed",
            rows.len()
        )))
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
        let tap = self.tap(tap)?;
        let d = self.forward_dump(rows, &[tap], edit, Padding::Right)?;
        let trim = |flat: &[f32], w: usize| -> Vec<Vec<Vec<f32>>> {
            (0..rows.len())
                .map(|b| {
                    d.real_rows(flat, w, b)
                        .into_iter()
                        .map(<[f32]>::to_vec)
                        .collect()
                })
                .collect()
        };
        Ok(TapDump {
            logits: trim(&d.logits, d.vocab),
            taps: d.taps.iter().map(|(_, _, w, v)| trim(v, *w)).collect(),
        })
    }

    /// The right-padded dump as a [`Inspection`], padding positions zeroed.
    pub(crate) fn inspection(
        &self,
        rows: &[Vec<u32>],
        taps: &[Tap],
    ) -> Result<Inspection, ComponentError> {
        let mut d = self.forward_dump(rows, taps, None, Padding::Right)?;
        let (seq, lens) = (d.seq, d.lens.clone());
        let zero_padding = |flat: &mut [f32], w: usize| {
            for (b, &len) in lens.iter().enumerate() {
                flat[(b * seq + len) * w..(b + 1) * seq * w].fill(0.0);
            }
        };
        zero_padding(&mut d.logits, d.vocab);
        for (_, _, w, v) in &mut d.taps {
            zero_padding(v, *w);
        }
        Ok(Inspection {
            seq,
            lens: d.lens,
            vocab: d.vocab,
            logits: d.logits,
            taps: d
                .taps
                .into_iter()
                .map(|(tap, layer, width, values)| TapValues {
                    tap: tap.name().to_owned(),
                    layer,
                    width,
                    values,
                })
                .collect(),
        })
    }
}

/// The safetensors file of `valex inspect`: `input_ids` and `attention_mask` (I64
/// `[n, seq]`, padding id 0), `logits` (F32 `[n, seq, vocab]`) and `layers.<i>.<tap>` (F32
/// `[n, seq, width]`), with the padded rows `ids`.
///
/// # Errors
/// Shapes that do not add up (a bug) or serialisation failures.
pub fn inspection_safetensors(
    ins: &Inspection,
    ids: &[Vec<u32>],
) -> Result<Vec<u8>, ComponentError> {
    let (n, seq) = (ids.len(), ins.seq);
    let mut input_ids = vec![0_i64; n * seq];
    let mut mask = vec![0_i64; n * seq];
    for (b, row) in ids.iter().enumerate() {
        for (t, &id) in row.iter().enumerate() {
            input_ids[b * seq + t] = i64::from(id);
            mask[b * seq + t] = 1;
        }
    }
    let i64_bytes = |v: &[i64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let f32_bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    use safetensors::Dtype;
    let mut entries: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = vec![
        (
            "input_ids".into(),
            Dtype::I64,
            vec![n, seq],
            i64_bytes(&input_ids),
        ),
        (
            "attention_mask".into(),
            Dtype::I64,
            vec![n, seq],
            i64_bytes(&mask),
        ),
        (
            "logits".into(),
            Dtype::F32,
            vec![n, seq, ins.vocab],
            f32_bytes(&ins.logits),
        ),
    ];
    for t in &ins.taps {
        entries.push((
            format!("layers.{}.{}", t.layer, t.tap),
            Dtype::F32,
            vec![n, seq, t.width],
            f32_bytes(&t.values),
        ));
    }
    let views = entries
        .iter()
        .map(|(name, dt, shape, bytes)| {
            safetensors::tensor::TensorView::new(*dt, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            ComponentError::stage("inspect tensors do not match their shapes").with_source(e)
        })?;
    safetensors::serialize(views, None).map_err(|e| {
        ComponentError::stage("inspect tensors could not be serialised").with_source(e)
    })
}
