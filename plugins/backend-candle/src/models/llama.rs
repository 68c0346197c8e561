//! The Llama decoder family (llama, qwen2, mistral) with MLP taps and neuron edits.
//!
//! Owns the forward pass: embedding, RMSNorm, RoPE attention (positions from the batch's
//! position ids, so left padding is exact) with GQA, the SiLU-gated MLP with its taps and
//! edits, the final norm and the LM head applied to selected rows only. Architecture
//! differences are config switches ([`ModelConfig`]): q/k/v biases (qwen2), tied
//! embeddings, sliding window (mistral, in the mask). Tokens are processed as a flat
//! `[batch * seq, hidden]` matrix; attention reshapes per head. Padding and masks live in
//! [`super::PaddedBatch`].

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor};

use super::{KvCache, Linear, PaddedBatch, Take, attention};
use crate::config::ModelConfig;
use crate::files::TensorSpec;
use crate::profile::section;
use crate::tap::{Hooks, LayerMultipliers, Tap, TapSet, TapVisitor};

/// The HF tensor names and shapes a model with `cfg` needs.
pub fn weight_spec(cfg: &ModelConfig) -> Vec<TensorSpec> {
    let (h, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let q_out = cfg.n_heads * cfg.head_dim;
    let kv_out = cfg.n_kv_heads * cfg.head_dim;
    let mut s: Vec<TensorSpec> = vec![("model.embed_tokens.weight".into(), vec![v, h])];
    for l in 0..cfg.n_layers {
        let p = format!("model.layers.{l}");
        s.push((format!("{p}.input_layernorm.weight"), vec![h]));
        s.push((format!("{p}.self_attn.q_proj.weight"), vec![q_out, h]));
        s.push((format!("{p}.self_attn.k_proj.weight"), vec![kv_out, h]));
        s.push((format!("{p}.self_attn.v_proj.weight"), vec![kv_out, h]));
        s.push((format!("{p}.self_attn.o_proj.weight"), vec![h, q_out]));
        if cfg.qkv_bias {
            s.push((format!("{p}.self_attn.q_proj.bias"), vec![q_out]));
            s.push((format!("{p}.self_attn.k_proj.bias"), vec![kv_out]));
            s.push((format!("{p}.self_attn.v_proj.bias"), vec![kv_out]));
        }
        if cfg.o_bias {
            s.push((format!("{p}.self_attn.o_proj.bias"), vec![h]));
        }
        s.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
        s.push((format!("{p}.mlp.gate_proj.weight"), vec![i, h]));
        s.push((format!("{p}.mlp.up_proj.weight"), vec![i, h]));
        s.push((format!("{p}.mlp.down_proj.weight"), vec![h, i]));
    }
    s.push(("model.norm.weight".into(), vec![h]));
    if !cfg.tie_word_embeddings {
        s.push(("lm_head.weight".into(), vec![v, h]));
    }
    s
}

#[derive(Debug, Clone)]
struct Layer {
    input_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    post_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// A loaded Llama-family decoder.
#[derive(Debug, Clone)]
pub struct LlamaModel {
    cfg: ModelConfig,
    dtype: DType,
    device: Device,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Tensor,
    /// `[1, head_dim / 2]`, f32.
    inv_freq: Tensor,
}

impl LlamaModel {
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
        let embed = t.take("model.embed_tokens.weight")?;
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let p = format!("model.layers.{l}");
            let mut lin = |name: &str, bias: bool| -> Result<Linear> {
                let weight = t.take(&format!("{p}.{name}.weight"))?;
                let bias = if bias {
                    Some(t.take(&format!("{p}.{name}.bias"))?)
                } else {
                    None
                };
                Ok(Linear::new(weight, bias))
            };
            let q = lin("self_attn.q_proj", cfg.qkv_bias)?;
            let k = lin("self_attn.k_proj", cfg.qkv_bias)?;
            let v = lin("self_attn.v_proj", cfg.qkv_bias)?;
            let o = lin("self_attn.o_proj", cfg.o_bias)?;
            let gate = lin("mlp.gate_proj", false)?;
            let up = lin("mlp.up_proj", false)?;
            let down = lin("mlp.down_proj", false)?;
            layers.push(Layer {
                input_norm: t.take(&format!("{p}.input_layernorm.weight"))?,
                post_norm: t.take(&format!("{p}.post_attention_layernorm.weight"))?,
                q,
                k,
                v,
                o,
                gate,
                up,
                down,
            });
        }
        let norm = t.take("model.norm.weight")?;
        let lm_head = if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            t.take("lm_head.weight")?
        };
        let half = cfg.inv_freq.len();
        let inv_freq = Tensor::from_vec(cfg.inv_freq.clone(), (1, half), device)?;
        Ok(LlamaModel {
            cfg: cfg.clone(),
            dtype,
            device: device.clone(),
            embed,
            layers,
            norm,
            lm_head,
            inv_freq,
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
    /// Device errors, or the visitor's error.
    pub fn forward_layers(
        &self,
        input: &PaddedBatch,
        edits: &LayerMultipliers,
        taps: TapSet,
        visit: &mut TapVisitor<'_>,
        need_output: bool,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Option<Tensor>> {
        let dev = &self.device;
        let (cos, sin) = section("rope_tables", dev, || self.rope_tables(input))?;
        let mut x = section("embed", dev, || self.embed.index_select(&input.ids, 0))?;
        let n_layers = self.layers.len();
        // Without output, the last layer stops after its last requested tap.
        let stop_after = if need_output {
            None
        } else {
            taps.last_in(&Tap::LLAMA)
        };
        let mut hooks = Hooks {
            taps,
            edits,
            visit,
            select: input.edit_rows.as_ref(),
        };
        let eps = self.cfg.norm_eps;
        for (l, layer) in self.layers.iter().enumerate() {
            let _span = tracing::trace_span!("layer", index = l).entered();
            let h = section("norm", dev, || rms_norm(&x, &layer.input_norm, eps))?;
            let slot = cache.as_deref_mut().map(|c| (c, l));
            let attn = self.attention(layer, &h, input, &cos, &sin, slot)?;
            x = section("residual", dev, || x + attn)?;
            let h = section("norm", dev, || rms_norm(&x, &layer.post_norm, eps))?;
            let stop = |tap: Tap| l + 1 == n_layers && stop_after == Some(tap);
            let gate_pre = section("mlp.gate", dev, || layer.gate.forward(&h))?;
            let gate_pre = hooks.at(l, Tap::GatePre, gate_pre)?;
            if stop(Tap::GatePre) {
                return Ok(None);
            }
            let act = section("mlp.act", dev, || gate_pre.silu())?;
            let act = hooks.at(l, Tap::GateAct, act)?;
            drop(gate_pre);
            if stop(Tap::GateAct) {
                return Ok(None);
            }
            let up = section("mlp.up", dev, || layer.up.forward(&h))?;
            let up = hooks.at(l, Tap::Up, up)?;
            if stop(Tap::Up) {
                return Ok(None);
            }
            let prod = section("mlp.mul", dev, || act * up)?;
            let prod = hooks.at(l, Tap::ActXUp, prod)?;
            if stop(Tap::ActXUp) {
                return Ok(None);
            }
            let down = section("mlp.down", dev, || layer.down.forward(&prod))?;
            x = section("residual", dev, || x + down)?;
        }
        Ok(if need_output { Some(x) } else { None })
    }

    /// Final norm + LM head on the selected rows of `hidden` (`[rows, hidden]`), as
    /// `[rows.len(), vocab]` f32 logits.
    ///
    /// # Errors
    /// Device errors or out-of-range rows.
    pub fn logits_rows(&self, hidden: &Tensor, rows: &[u32]) -> Result<Tensor> {
        section("lm_head", &self.device, || {
            let idx = Tensor::from_slice(rows, rows.len(), &self.device)?;
            let h = hidden.index_select(&idx, 0)?;
            let h = rms_norm(&h, &self.norm, self.cfg.norm_eps)?;
            h.matmul(&self.lm_head.t()?)?.to_dtype(DType::F32)
        })
    }

    /// RoPE tables `[batch, seq, head_dim / 2]` for the batch's position ids, computed in
    /// f32 then cast.
    fn rope_tables(&self, input: &PaddedBatch) -> Result<(Tensor, Tensor)> {
        let half = self.cfg.inv_freq.len();
        let pos = input
            .positions
            .to_dtype(DType::F32)?
            .reshape((input.batch * input.seq, 1))?;
        let freqs = pos
            .matmul(&self.inv_freq)?
            .reshape((input.batch, input.seq, half))?;
        Ok((
            freqs.cos()?.to_dtype(self.dtype)?,
            freqs.sin()?.to_dtype(self.dtype)?,
        ))
    }

    fn attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        input: &PaddedBatch,
        cos: &Tensor,
        sin: &Tensor,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Result<Tensor> {
        let (b, t) = (input.batch, input.seq);
        let (nh, nkv, d) = (self.cfg.n_heads, self.cfg.n_kv_heads, self.cfg.head_dim);
        let heads = |y: Tensor, n: usize| -> Result<Tensor> {
            y.reshape((b, t, n, d))?.transpose(1, 2)?.contiguous()
        };
        let dev = &self.device;
        let (q, k, v) = section("attn.qkv", dev, || {
            Ok((
                heads(layer.q.forward(x)?, nh)?,
                heads(layer.k.forward(x)?, nkv)?,
                heads(layer.v.forward(x)?, nkv)?,
            ))
        })?;
        let (q, k) = section("attn.rope", dev, || {
            Ok((
                candle_nn::rotary_emb::rope(&q, cos, sin)?,
                candle_nn::rotary_emb::rope(&k, cos, sin)?,
            ))
        })?;
        let (k, v) = match cache {
            Some((c, l)) => c.append(l, k, v)?,
            None => (k, v),
        };
        let scale = 1.0 / (d as f64).sqrt();
        let out = attention(&q, &k, &v, &input.mask, scale)?;
        section("attn.o", dev, || layer.o.forward(&out))
    }
}

/// RMSNorm over the last dimension, accumulated in f32: `x / sqrt(mean(x^2) + eps) * w`.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    candle_nn::ops::rms_norm(&x.contiguous()?, weight, eps as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_matches_hand_computed_values() {
        // Row [1, 2, 3, 4]: mean of squares 7.5; row [0, 0, 0, 2]: 1.0.
        let x = Tensor::new(
            &[[1.0_f32, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 2.0]],
            &Device::Cpu,
        )
        .unwrap();
        let w = Tensor::new(&[1.0_f32, 1.0, 2.0, 0.5], &Device::Cpu).unwrap();
        let y: Vec<Vec<f32>> = rms_norm(&x, &w, 0.5).unwrap().to_vec2().unwrap();
        let r0 = 1.0 / 8.0_f32.sqrt();
        let r1 = 1.0 / 1.5_f32.sqrt();
        let want = [[r0, 2.0 * r0, 6.0 * r0, 2.0 * r0], [0.0, 0.0, 0.0, r1]];
        for (row, wrow) in y.iter().zip(want) {
            for (a, b) in row.iter().zip(wrow) {
                assert!((a - b).abs() < 1e-6, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn rope_rotates_half_pairs_by_position_times_frequency() {
        // head_dim 4, theta 100: inv_freq [1, 0.1]; pairs are (x0, x2) and (x1, x3).
        let inv = crate::config::rope_inv_freq(100.0, 4);
        assert_eq!(inv, [1.0, 0.1]);
        let x = Tensor::new(&[1.0_f32, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0], &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 2, 4))
            .unwrap();
        let pos = [0.0_f32, 1.0];
        let f: Vec<f32> = pos
            .iter()
            .flat_map(|p| inv.iter().map(move |w| p * w))
            .collect();
        let freqs = Tensor::from_vec(f, (2, 2), &Device::Cpu).unwrap();
        let y = candle_nn::rotary_emb::rope(&x, &freqs.cos().unwrap(), &freqs.sin().unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(&y[..4], &[1.0, 2.0, 3.0, 4.0], "position 0 is the identity");
        let (c1, s1) = (1.0_f32.cos(), 1.0_f32.sin());
        let (c2, s2) = (0.1_f32.cos(), 0.1_f32.sin());
        let want = [
            1.0 * c1 - 3.0 * s1,
            2.0 * c2 - 4.0 * s2,
            3.0 * c1 + 1.0 * s1,
            4.0 * c2 + 2.0 * s2,
        ];
        for (a, b) in y[4..].iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
