//! GPT-2 with MLP taps and neuron edits.
//!
//! Owns the forward pass: token + learned position embeddings (positions from the batch's
//! position ids, so left padding is exact), pre-LayerNorm blocks with fused-qkv multi-head
//! attention, the non-gated MLP `c_proj(act(c_fc(x)))` with the taps `mlp.pre` and
//! `mlp.act`, the final LayerNorm and the LM head tied to the token embedding. HF stores
//! GPT-2's projections as `Conv1D` with weights `[in, out]`; they are transposed once at load.
//! Padding and masks live in [`super::PaddedBatch`].

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor};

use super::{KvCache, Linear, PaddedBatch, Take, attention};
use crate::config::{Activation, ModelConfig};
use crate::files::TensorSpec;
use crate::tap::{Hooks, LayerMultipliers, Tap, TapSet, TapVisitor};

/// The HF tensor names and shapes a GPT-2 model with `cfg` needs (names as saved by
/// `GPT2LMHeadModel`; checkpoints without the `transformer.` prefix load too).
pub fn weight_spec(cfg: &ModelConfig) -> Vec<TensorSpec> {
    let (h, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let npos = cfg.max_positions.unwrap_or(0);
    let mut s: Vec<TensorSpec> = vec![
        ("transformer.wte.weight".into(), vec![v, h]),
        ("transformer.wpe.weight".into(), vec![npos, h]),
    ];
    for l in 0..cfg.n_layers {
        let p = format!("transformer.h.{l}");
        for (name, shape) in [
            ("ln_1.weight", vec![h]),
            ("ln_1.bias", vec![h]),
            ("attn.c_attn.weight", vec![h, 3 * h]),
            ("attn.c_attn.bias", vec![3 * h]),
            ("attn.c_proj.weight", vec![h, h]),
            ("attn.c_proj.bias", vec![h]),
            ("ln_2.weight", vec![h]),
            ("ln_2.bias", vec![h]),
            ("mlp.c_fc.weight", vec![h, i]),
            ("mlp.c_fc.bias", vec![i]),
            ("mlp.c_proj.weight", vec![i, h]),
            ("mlp.c_proj.bias", vec![h]),
        ] {
            s.push((format!("{p}.{name}"), shape));
        }
    }
    s.push(("transformer.ln_f.weight".into(), vec![h]));
    s.push(("transformer.ln_f.bias".into(), vec![h]));
    s
}

#[derive(Debug, Clone)]
struct Norm {
    weight: Tensor,
    bias: Tensor,
}

#[derive(Debug, Clone)]
struct Block {
    ln_1: Norm,
    c_attn: Linear,
    attn_proj: Linear,
    ln_2: Norm,
    c_fc: Linear,
    mlp_proj: Linear,
}

/// A loaded GPT-2.
#[derive(Debug, Clone)]
pub struct Gpt2Model {
    cfg: ModelConfig,
    dtype: DType,
    device: Device,
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: Norm,
}

impl Gpt2Model {
    /// Builds the model from tensors named as in [`weight_spec`] (already checked).
    ///
    /// # Errors
    /// A tensor of the spec is absent (a bug in the caller) or a device error.
    pub fn from_tensors(
        cfg: &ModelConfig,
        t: HashMap<String, Tensor>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let mut t = Take(t);
        let norm = |t: &mut Take, p: &str| -> Result<Norm> {
            Ok(Norm {
                weight: t.take(&format!("{p}.weight"))?,
                bias: t.take(&format!("{p}.bias"))?,
            })
        };
        let conv = |t: &mut Take, p: &str| -> Result<Linear> {
            let w = t.take(&format!("{p}.weight"))?;
            Linear::from_conv1d(&w, Some(t.take(&format!("{p}.bias"))?))
        };
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let p = format!("transformer.h.{l}");
            blocks.push(Block {
                ln_1: norm(&mut t, &format!("{p}.ln_1"))?,
                c_attn: conv(&mut t, &format!("{p}.attn.c_attn"))?,
                attn_proj: conv(&mut t, &format!("{p}.attn.c_proj"))?,
                ln_2: norm(&mut t, &format!("{p}.ln_2"))?,
                c_fc: conv(&mut t, &format!("{p}.mlp.c_fc"))?,
                mlp_proj: conv(&mut t, &format!("{p}.mlp.c_proj"))?,
            });
        }
        Ok(Gpt2Model {
            cfg: cfg.clone(),
            dtype,
            device: device.clone(),
            wte: t.take("transformer.wte.weight")?,
            wpe: t.take("transformer.wpe.weight")?,
            ln_f: norm(&mut t, "transformer.ln_f")?,
            blocks,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Compute dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// See [`super::Model::forward_layers`]; with `cache`, see
    /// [`super::Model::forward_cached`].
    ///
    /// # Errors
    /// Device errors, rows longer than `n_positions`, or the visitor's error.
    pub fn forward_layers(
        &self,
        input: &PaddedBatch,
        edits: &LayerMultipliers,
        taps: TapSet,
        visit: &mut TapVisitor<'_>,
        need_output: bool,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Option<Tensor>> {
        let npos = self.wpe.dim(0)?;
        if let Some(&longest) = input.lens.iter().max()
            && longest > npos
        {
            candle_core::bail!("a row of {longest} tokens exceeds gpt2 n_positions {npos}");
        }
        if cache.is_some() {
            let top: Vec<u32> = input.positions.to_vec1()?;
            if let Some(&p) = top.iter().max()
                && p as usize >= npos
            {
                candle_core::bail!("position {p} exceeds gpt2 n_positions {npos}");
            }
        }
        let mut x = (self.wte.index_select(&input.ids, 0)?
            + self.wpe.index_select(&input.positions, 0)?)?;
        let n_layers = self.blocks.len();
        let stop_after = if need_output {
            None
        } else {
            taps.last_in(&Tap::GPT2)
        };
        let mut hooks = Hooks {
            taps,
            edits,
            visit,
            select: input.edit_rows.as_ref(),
        };
        for (l, block) in self.blocks.iter().enumerate() {
            let _span = tracing::trace_span!("layer", index = l).entered();
            let h = self.layer_norm(&x, &block.ln_1)?;
            let slot = cache.as_deref_mut();
            x = (x + self.attention(l, block, &h, input, slot)?)?;
            let h = self.layer_norm(&x, &block.ln_2)?;
            let stop = |tap: Tap| l + 1 == n_layers && stop_after == Some(tap);
            let pre = hooks.at(l, Tap::Pre, block.c_fc.forward(&h)?)?;
            if stop(Tap::Pre) {
                return Ok(None);
            }
            let act = match self.cfg.activation {
                Activation::GeluTanh => pre.gelu()?,
                Activation::GeluErf => pre.gelu_erf()?,
                Activation::Relu => pre.relu()?,
                Activation::Silu => pre.silu()?,
            };
            drop(pre);
            let act = hooks.at(l, Tap::Act, act)?;
            if stop(Tap::Act) {
                return Ok(None);
            }
            x = (x + block.mlp_proj.forward(&act)?)?;
        }
        Ok(if need_output { Some(x) } else { None })
    }

    /// Final LayerNorm + tied LM head on the selected rows of `hidden`, as
    /// `[rows.len(), vocab]` f32 logits.
    ///
    /// # Errors
    /// Device errors or out-of-range rows.
    pub fn logits_rows(&self, hidden: &Tensor, rows: &[u32]) -> Result<Tensor> {
        let idx = Tensor::from_slice(rows, rows.len(), &self.device)?;
        let h = self.layer_norm(&hidden.index_select(&idx, 0)?, &self.ln_f)?;
        h.matmul(&self.wte.t()?)?.to_dtype(DType::F32)
    }

    fn layer_norm(&self, x: &Tensor, n: &Norm) -> Result<Tensor> {
        candle_nn::ops::layer_norm(
            &x.contiguous()?,
            &n.weight,
            &n.bias,
            self.cfg.norm_eps as f32,
        )
    }

    fn attention(
        &self,
        l: usize,
        block: &Block,
        x: &Tensor,
        input: &PaddedBatch,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (b, t) = (input.batch, input.seq);
        let (nh, d, h) = (self.cfg.n_heads, self.cfg.head_dim, self.cfg.hidden_size);
        let qkv = block.c_attn.forward(x)?;
        let heads = |i: usize| -> Result<Tensor> {
            qkv.narrow(1, i * h, h)?
                .reshape((b, t, nh, d))?
                .transpose(1, 2)?
                .contiguous()
        };
        let mut scale = if self.cfg.scale_attn_weights {
            1.0 / (d as f64).sqrt()
        } else {
            1.0
        };
        if self.cfg.scale_attn_by_inverse_layer_idx {
            scale /= (l + 1) as f64;
        }
        let (k, v) = match cache {
            Some(c) => c.append(l, heads(1)?, heads(2)?)?,
            None => (heads(1)?, heads(2)?),
        };
        let out = attention(&heads(0)?, &k, &v, &input.mask, scale)?;
        block.attn_proj.forward(&out)
    }
}
