//! Model architectures behind one [`Model`] type: the Llama family (llama, qwen2, mistral;
//! [`llama`]) and GPT-2 ([`gpt2`]).
//!
//! Owns what both share: padded batches with their attention masks and position ids
//! ([`PaddedBatch`], right or left padding), the linear layer, and the dispatch from the
//! config's [`Family`] to the architecture's weight list and forward pass. It does not
//! accumulate statistics (see `backend.rs`).

pub mod gpt2;
pub mod llama;

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor};

use crate::config::ModelConfig;
use crate::files::TensorSpec;
use crate::profile::section;
use crate::tap::{Family, LayerMultipliers, Tap, TapSet, TapVisitor};

/// Additive mask value for disallowed keys.
///
/// Minus infinity, not a large finite negative: `exp` of a finite value below about −104
/// takes libm's underflow path (errno and all), which cost 4.5 % of a tiny-shape forward on
/// the CPU, while `exp(−∞)` returns 0 at once. No softmax row is fully masked: every query,
/// padding included, sees at least one key ([`PaddedBatch::new`]; a decode step sees its own
/// token), so the row maximum is finite and masked keys get exactly 0, as before.
pub const MASK_NEG: f32 = f32::NEG_INFINITY;

/// Where a batch puts its padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// Row `b` holds its tokens at positions `0..len(b)` (the default everywhere).
    #[default]
    Right,
    /// Row `b` holds its tokens at positions `seq - len(b)..seq`.
    Left,
}

/// A padded batch ready for the forward pass.
///
/// The token at index `starts[b] + t` of row `b` gets position id `t`, so a text has the
/// same positions whatever padding surrounds it. Padding tokens get id 0 and position 0.
pub struct PaddedBatch {
    /// Rows.
    pub batch: usize,
    /// Padded length.
    pub seq: usize,
    /// Index of each row's first real token.
    pub starts: Vec<usize>,
    /// Real tokens per row.
    pub lens: Vec<usize>,
    /// `[batch * seq]` token ids (padding = 0).
    pub ids: Tensor,
    /// `[batch * seq]` u32 position ids (padding = 0).
    pub positions: Tensor,
    /// `[batch, 1, seq, keys]` additive f32 mask (`keys = seq` without a KV cache; with one,
    /// the cached keys come first).
    pub mask: Tensor,
    /// `[batch * seq, 1]` u8: 1 where the forward's edit applies, `None` for every position
    /// (the edit's `positions = "all"`, bit for bit the unrestricted forward).
    pub edit_rows: Option<Tensor>,
}

impl PaddedBatch {
    /// Pads `rows` on `side` and builds the mask: query index `q` of row `b` may see key
    /// index `k` iff `k <= q`, `k` holds a real token of the row, and (with a sliding
    /// `window` `w`) `q - k < w`.
    ///
    /// # Errors
    /// Device errors.
    pub fn new(
        rows: &[&[u32]],
        side: Padding,
        window: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let batch = rows.len();
        let seq = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0_u32; batch * seq];
        let mut pos = vec![0_u32; batch * seq];
        let mut mask = vec![MASK_NEG; batch * seq * seq];
        let mut starts = Vec::with_capacity(batch);
        for (b, row) in rows.iter().enumerate() {
            let start = match side {
                Padding::Right => 0,
                Padding::Left => seq - row.len(),
            };
            starts.push(start);
            let end = start + row.len();
            ids[b * seq + start..b * seq + end].copy_from_slice(row);
            for (t, p) in pos[b * seq + start..b * seq + end].iter_mut().enumerate() {
                *p = t as u32;
            }
            for q in start..end {
                let base = (b * seq + q) * seq;
                let lo = window.map_or(start, |w| start.max((q + 1).saturating_sub(w)));
                mask[base + lo..=base + q].fill(0.0);
            }
            // Padding queries see the row's first real key (or themselves for an empty
            // row), so every softmax row is well defined; their outputs are never read.
            for q in (0..start).chain(end..seq) {
                let k = if row.is_empty() { q } else { start.min(q) };
                mask[(b * seq + q) * seq + k] = 0.0;
            }
        }
        Ok(PaddedBatch {
            batch,
            seq,
            lens: rows.iter().map(|r| r.len()).collect(),
            starts,
            ids: Tensor::from_vec(ids, batch * seq, device)?,
            positions: Tensor::from_vec(pos, batch * seq, device)?,
            mask: Tensor::from_vec(mask, (batch, 1, seq, seq), device)?,
            edit_rows: None,
        })
    }

    /// Restricts the forward's edit to the real tokens `t` of rows `b` with
    /// `applies(b, t)`; padding never gets the edit.
    ///
    /// # Errors
    /// Device errors.
    pub fn restrict_edit(&mut self, applies: impl Fn(usize, usize) -> bool) -> Result<()> {
        let mut rows = vec![0_u8; self.batch * self.seq];
        for b in 0..self.batch {
            for t in 0..self.lens[b] {
                rows[self.index(b, t)] = u8::from(applies(b, t));
            }
        }
        let device = self.ids.device().clone();
        self.edit_rows = Some(Tensor::from_vec(rows, (self.batch * self.seq, 1), &device)?);
        Ok(())
    }

    /// Flat index (into `[batch * seq]`) of token `t` of row `b`.
    pub fn index(&self, b: usize, t: usize) -> usize {
        b * self.seq + self.starts[b] + t
    }

    /// Whether flat index `i` holds a real token.
    pub fn is_real(&self, i: usize) -> bool {
        let (b, q) = (i / self.seq, i % self.seq);
        q >= self.starts[b] && q < self.starts[b] + self.lens[b]
    }
}

/// `y = x W^T (+ b)` on `[rows, in]` inputs, `W` stored `[out, in]` as in HF `nn.Linear`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// From an HF `nn.Linear` weight `[out, in]`.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Linear { weight, bias }
    }

    /// From an HF GPT-2 `Conv1D` weight `[in, out]` (stored transposed: one copy at load).
    ///
    /// # Errors
    /// Device errors.
    pub fn from_conv1d(weight: &Tensor, bias: Option<Tensor>) -> Result<Self> {
        Ok(Linear {
            weight: weight.t()?.contiguous()?,
            bias,
        })
    }

    /// Applies the layer.
    ///
    /// # Errors
    /// Device errors or shape mismatches.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight.t()?)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// Keys and values of every layer seen so far (`[batch, n_kv_heads, keys, head_dim]` each),
/// for decoding one token per step after a prefill.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        KvCache::default()
    }

    /// Number of cached key positions (0 when empty).
    ///
    /// # Errors
    /// Device errors.
    pub fn len(&self) -> Result<usize> {
        match self.layers.first() {
            Some(Some((k, _))) => k.dim(2),
            _ => Ok(0),
        }
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        !matches!(self.layers.first(), Some(Some(_)))
    }

    /// Appends `k`, `v` (`[batch, n_kv, new, d]`) to layer `layer` and returns the full keys
    /// and values.
    ///
    /// # Errors
    /// Device errors or shape mismatches.
    pub fn append(&mut self, layer: usize, k: Tensor, v: Tensor) -> Result<(Tensor, Tensor)> {
        if self.layers.len() <= layer {
            self.layers.resize(layer + 1, None);
        }
        let kv = match self.layers[layer].take() {
            None => (k, v),
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
        };
        self.layers[layer] = Some(kv.clone());
        Ok(kv)
    }
}

/// Takes tensors out of a loaded map by name.
pub(crate) struct Take(pub HashMap<String, Tensor>);

impl Take {
    /// Removes `name`.
    ///
    /// # Errors
    /// The tensor is absent (a bug in the caller, which checked the spec).
    pub fn take(&mut self, name: &str) -> Result<Tensor> {
        self.0
            .remove(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("tensor {name} was not loaded")))
    }
}

/// A loaded model of any supported family.
#[derive(Debug, Clone)]
pub enum Model {
    /// llama, qwen2, mistral.
    Llama(llama::LlamaModel),
    /// gpt2.
    Gpt2(gpt2::Gpt2Model),
}

/// The HF tensor names and shapes a model with `cfg` needs.
pub fn weight_spec(cfg: &ModelConfig) -> Vec<TensorSpec> {
    match cfg.family {
        Family::Llama => llama::weight_spec(cfg),
        Family::Gpt2 => gpt2::weight_spec(cfg),
    }
}

impl Model {
    /// Builds the model from tensors named as in [`weight_spec`] (already checked).
    ///
    /// # Errors
    /// A tensor of the spec is absent (a bug in the caller) or a device error.
    pub fn from_tensors(
        cfg: &ModelConfig,
        tensors: HashMap<String, Tensor>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        Ok(match cfg.family {
            Family::Llama => Model::Llama(llama::LlamaModel::from_tensors(
                cfg, tensors, dtype, device,
            )?),
            Family::Gpt2 => {
                Model::Gpt2(gpt2::Gpt2Model::from_tensors(cfg, tensors, dtype, device)?)
            }
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        match self {
            Model::Llama(m) => m.config(),
            Model::Gpt2(m) => m.config(),
        }
    }

    /// Compute dtype.
    pub fn dtype(&self) -> DType {
        match self {
            Model::Llama(m) => m.dtype(),
            Model::Gpt2(m) => m.dtype(),
        }
    }

    /// Device.
    pub fn device(&self) -> &Device {
        match self {
            Model::Llama(m) => m.device(),
            Model::Gpt2(m) => m.device(),
        }
    }

    /// Pads `rows` on `side` with this model's attention window.
    ///
    /// # Errors
    /// Device errors.
    pub fn pad(&self, rows: &[&[u32]], side: Padding) -> Result<PaddedBatch> {
        PaddedBatch::new(rows, side, self.config().sliding_window, self.device())
    }

    /// Runs the decoder layers over `input`.
    ///
    /// For every layer and every tap in `taps`, `visit(layer, tap, act)` sees that tap's
    /// activations as `[batch * seq, intermediate]` in the compute dtype (padding rows
    /// included; the visitor must ignore them), after the edit at that tap (if any).
    /// Returns the hidden states after the last layer (`[batch * seq, hidden]`, before the
    /// final norm), or `None` when `need_output` is false: the last layer then stops right
    /// after its last requested tap.
    ///
    /// # Errors
    /// Device errors, positions beyond a learned position table, or the visitor's error.
    pub fn forward_layers(
        &self,
        input: &PaddedBatch,
        edits: &LayerMultipliers,
        taps: TapSet,
        visit: &mut TapVisitor<'_>,
        need_output: bool,
    ) -> Result<Option<Tensor>> {
        match self {
            Model::Llama(m) => m.forward_layers(input, edits, taps, visit, need_output, None),
            Model::Gpt2(m) => m.forward_layers(input, edits, taps, visit, need_output, None),
        }
    }

    /// One forward of `input`'s new tokens after the keys and values in `cache` (empty for a
    /// prefill), appending theirs: `input.mask` is `[batch, 1, seq, cached + seq]` and
    /// `input.positions` the new tokens' position ids. Returns the hidden states
    /// `[batch * seq, hidden]` of the new tokens.
    ///
    /// # Errors
    /// Device errors or shape mismatches.
    pub fn forward_cached(
        &self,
        input: &PaddedBatch,
        edits: &LayerMultipliers,
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        let mut none = |_: usize, _: Tap, _: &Tensor| Ok(());
        let out = match self {
            Model::Llama(m) => {
                m.forward_layers(input, edits, TapSet::EMPTY, &mut none, true, Some(cache))
            }
            Model::Gpt2(m) => {
                m.forward_layers(input, edits, TapSet::EMPTY, &mut none, true, Some(cache))
            }
        }?;
        out.ok_or_else(|| candle_core::Error::Msg("no hidden states".into()))
    }

    /// Final norm + LM head on the selected rows of `hidden` (`[rows, hidden]`), as
    /// `[rows.len(), vocab]` f32 logits.
    ///
    /// # Errors
    /// Device errors or out-of-range rows.
    pub fn logits_rows(&self, hidden: &Tensor, rows: &[u32]) -> Result<Tensor> {
        match self {
            Model::Llama(m) => m.logits_rows(hidden, rows),
            Model::Gpt2(m) => m.logits_rows(hidden, rows),
        }
    }
}

/// Scaled dot-product attention over heads: `q` `[b, nh, t, d]`, `k`/`v` `[b, nkv, tk, d]`
/// (`nh` a multiple of `nkv`: query head `h` uses kv head `h / (nh / nkv)`; `tk = t` without
/// a KV cache), the mask `[b, 1, t, tk]` added to the f32 scores; returns `[b * t, nh * d]`.
///
/// # Errors
/// Device errors or shape mismatches.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, nh, t, d) = q.dims4()?;
    let nkv = k.dim(1)?;
    let tk = k.dim(2)?;
    let rep = nh / nkv;
    let dtype = q.dtype();
    // GQA without copying k/v: the query heads of one kv head are contiguous and share one
    // matmul.
    let dev = q.device();
    let q = q.reshape((b, nkv, rep * t, d))?;
    let scores = section("attn.scores", dev, || q.matmul(&k.t()?)? * scale)?;
    let probs = section("attn.softmax", dev, || {
        let scores = scores.reshape((b, nh, t, tk))?;
        if let Some(p) = cpu_masked_softmax(&scores, mask)? {
            return Ok(p);
        }
        let scores = scores.to_dtype(DType::F32)?.broadcast_add(mask)?;
        candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(dtype)
    })?;
    let out = section("attn.pv", dev, || {
        probs.reshape((b, nkv, rep * t, tk))?.matmul(v)
    })?;
    section("attn.merge", dev, || {
        out.reshape((b, nh, t, d))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * t, nh * d))
    })
}

/// `softmax(scores + mask)` over the last dimension in one pass, for contiguous f32 `scores`
/// `[b, nh, t, tk]` and `mask` `[b, 1, t, tk]` on the CPU; `None` for anything else (the
/// caller then adds and normalises with candle ops).
///
/// Masked keys (−∞) get exactly 0 without an `exp` call, the row maximum is taken over the
/// visible keys (every row has one: see [`MASK_NEG`]), and the row is normalised by division,
/// as candle's `softmax_last_dim` does. Rows are spread over rayon's pool when there are many.
/// The separate add and softmax made a broadcast pass and a second full pass; at the `tiny`
/// bench shape they took 26 % of a statistics pass (docs/performance.md).
fn cpu_masked_softmax(scores: &Tensor, mask: &Tensor) -> Result<Option<Tensor>> {
    use rayon::prelude::*;
    if !scores.device().is_cpu() || scores.dtype() != DType::F32 || mask.dtype() != DType::F32 {
        return Ok(None);
    }
    let (b, nh, t, tk) = scores.dims4()?;
    if mask.dims4()? != (b, 1, t, tk) || t == 0 || tk == 0 {
        return Ok(None);
    }
    let (s_store, s_layout) = scores.storage_and_layout();
    let (m_store, m_layout) = mask.storage_and_layout();
    let (candle_core::Storage::Cpu(sc), candle_core::Storage::Cpu(mc)) = (&*s_store, &*m_store)
    else {
        return Ok(None);
    };
    let (Some((s0, s1)), Some((m0, m1))) =
        (s_layout.contiguous_offsets(), m_layout.contiguous_offsets())
    else {
        return Ok(None);
    };
    let src = &sc.as_slice::<f32>()?[s0..s1];
    let msk = &mc.as_slice::<f32>()?[m0..m1];
    let mut out = vec![0.0_f32; src.len()];
    let row = |(r, dst): (usize, &mut [f32])| {
        // Row r is (batch, head, query) = (r / (nh * t), _, r % t).
        let (bi, q) = (r / (nh * t), r % t);
        let s = &src[r * tk..(r + 1) * tk];
        let m = &msk[(bi * t + q) * tk..(bi * t + q + 1) * tk];
        // Eight running maxima (`>`, not the NaN-aware `f32::max`) so that the pass
        // vectorises; scores are never NaN.
        let mut lanes = [f32::NEG_INFINITY; 8];
        let mut d8 = dst.chunks_exact_mut(8);
        for ((d, x), mv) in (&mut d8).zip(s.chunks_exact(8)).zip(m.chunks_exact(8)) {
            for i in 0..8 {
                let v = x[i] + mv[i];
                d[i] = v;
                lanes[i] = if v > lanes[i] { v } else { lanes[i] };
            }
        }
        let done = tk - tk % 8;
        for ((d, &x), &mv) in d8
            .into_remainder()
            .iter_mut()
            .zip(&s[done..])
            .zip(&m[done..])
        {
            let v = x + mv;
            *d = v;
            lanes[0] = if v > lanes[0] { v } else { lanes[0] };
        }
        let max = lanes
            .iter()
            .fold(f32::NEG_INFINITY, |a, &v| if v > a { v } else { a });
        let mut sum = 0.0_f32;
        for d in dst.iter_mut() {
            let e = if *d == f32::NEG_INFINITY {
                0.0
            } else {
                (*d - max).exp()
            };
            *d = e;
            sum += e;
        }
        for d in dst.iter_mut() {
            *d /= sum;
        }
    };
    /// Below this many scores one thread is faster than handing out rows.
    const PARALLEL_MIN: usize = 1 << 18;
    if out.len() >= PARALLEL_MIN {
        out.par_chunks_mut(tk).enumerate().for_each(row);
    } else {
        out.chunks_mut(tk).enumerate().for_each(row);
    }
    Ok(Some(Tensor::from_vec(
        out,
        (b, nh, t, tk),
        scores.device(),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_rows(p: &PaddedBatch) -> Vec<Vec<Vec<bool>>> {
        let m: Vec<Vec<Vec<f32>>> = p.mask.squeeze(1).unwrap().to_vec3().unwrap();
        m.iter()
            .map(|r| {
                r.iter()
                    .map(|q| q.iter().map(|&x| x == 0.0).collect())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn fused_cpu_softmax_equals_add_then_softmax() {
        // Rows of 13 keys (one 8-lane chunk and a remainder), a left- and a right-padded row,
        // a sliding window: every masking pattern of `PaddedBatch::new`.
        let rows: [&[u32]; 3] = [&[1; 13], &[1; 5], &[1; 9]];
        for (side, window) in [(Padding::Right, None), (Padding::Left, Some(4))] {
            let p = PaddedBatch::new(&rows, side, window, &Device::Cpu).unwrap();
            let (b, nh, t) = (3, 2, 13);
            let v: Vec<f32> = (0..b * nh * t * t)
                .map(|i| ((i * 37) % 101) as f32 * 0.173 - 8.0)
                .collect();
            let scores = Tensor::from_vec(v, (b, nh, t, t), &Device::Cpu).unwrap();
            let got = cpu_masked_softmax(&scores, &p.mask).unwrap().unwrap();
            let want =
                candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&p.mask).unwrap()).unwrap();
            let (g, w): (Vec<f32>, Vec<f32>) = (
                got.flatten_all().unwrap().to_vec1().unwrap(),
                want.flatten_all().unwrap().to_vec1().unwrap(),
            );
            for (i, (a, e)) in g.iter().zip(&w).enumerate() {
                assert!((a - e).abs() <= 1e-6 * e.abs().max(1e-3), "{i}: {a} vs {e}");
                assert_eq!(*a == 0.0, *e == 0.0, "{i}: masked keys get exactly 0");
            }
            for row in g.chunks(t) {
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{sum}");
            }
        }
        // Other dtypes take candle's ops.
        let p = PaddedBatch::new(&rows, Padding::Right, None, &Device::Cpu).unwrap();
        let s = Tensor::zeros((3, 1, 13, 13), DType::BF16, &Device::Cpu).unwrap();
        assert!(cpu_masked_softmax(&s, &p.mask).unwrap().is_none());
    }

    #[test]
    fn left_padding_moves_tokens_right_and_keeps_positions_from_zero() {
        let rows: [&[u32]; 2] = [&[5, 6, 7], &[8]];
        let p = PaddedBatch::new(&rows, Padding::Left, None, &Device::Cpu).unwrap();
        let ids: Vec<u32> = p.ids.to_vec1().unwrap();
        let pos: Vec<u32> = p.positions.to_vec1().unwrap();
        assert_eq!(ids, [5, 6, 7, 0, 0, 8]);
        assert_eq!(pos, [0, 1, 2, 0, 0, 0]);
        assert_eq!(p.starts, [0, 2]);
        assert_eq!(p.index(1, 0), 5);
        assert!(p.is_real(5) && !p.is_real(4));
        let m = mask_rows(&p);
        assert_eq!(
            m[1][2],
            [false, false, true],
            "real query sees only real keys"
        );
        assert_eq!(m[0][1], [true, true, false], "causal");
    }

    #[test]
    fn right_padding_with_a_window_limits_keys() {
        let rows: [&[u32]; 2] = [&[1, 2, 3, 4], &[1, 2]];
        let p = PaddedBatch::new(&rows, Padding::Right, Some(2), &Device::Cpu).unwrap();
        let m = mask_rows(&p);
        assert_eq!(m[0][3], [false, false, true, true]);
        assert_eq!(m[1][1], [true, true, false, false]);
        let pos: Vec<u32> = p.positions.to_vec1().unwrap();
        assert_eq!(pos, [0, 1, 2, 3, 0, 1, 0, 0]);
        for (q, keys) in m[1].iter().enumerate().skip(2) {
            assert!(keys.iter().any(|&x| x), "padding query {q} sees some key");
        }
    }
}
