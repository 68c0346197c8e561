//! The HF `config.json` of a supported model, parsed and validated.
//!
//! Owns the mapping from the supported `model_type`s (`llama`, `qwen2`, `mistral`, `gpt2`)
//! to the switches the model code needs (family, biases, tied embeddings, sliding window,
//! RoPE frequencies, activation). It reads no files: callers hand it the bytes and a label
//! for messages.

use serde::Deserialize;
use valex_core::ComponentError;

use crate::tap::Family;

/// `model_type`s this backend can run.
pub const SUPPORTED_MODEL_TYPES: [&str; 4] = ["llama", "qwen2", "mistral", "gpt2"];

/// The MLP activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(x)` (Llama family).
    Silu,
    /// GELU with the tanh approximation (`gelu_new`, `gelu_pytorch_tanh`; GPT-2).
    GeluTanh,
    /// Exact GELU with erf (`gelu`).
    GeluErf,
    /// `max(x, 0)`.
    Relu,
}

/// The subset of an HF `config.json` the model code reads; other keys are ignored.
#[derive(Debug, Clone, Deserialize)]
struct RawConfig {
    model_type: String,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    vocab_size: usize,
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_scaling: Option<serde_json::Value>,
    rope_parameters: Option<serde_json::Value>,
    tie_word_embeddings: Option<bool>,
    hidden_act: Option<String>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    sliding_window: Option<usize>,
    use_sliding_window: Option<bool>,
    eos_token_id: Option<serde_json::Value>,
}

/// A validated model configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// `model_type` from config.json.
    pub model_type: String,
    /// The model family (which forward pass and which taps).
    pub family: Family,
    /// The MLP activation.
    pub activation: Activation,
    /// Hidden size.
    pub hidden_size: usize,
    /// FFN width (neurons per layer).
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (GQA); divides `n_heads`.
    pub n_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Epsilon of the norms (RMSNorm for the Llama family, LayerNorm for GPT-2).
    pub norm_eps: f64,
    /// Whether q/k/v projections carry a bias (qwen2 always, llama with `attention_bias`).
    pub qkv_bias: bool,
    /// Whether o_proj carries a bias (llama with `attention_bias`).
    pub o_bias: bool,
    /// Whether the LM head reuses the embedding matrix (no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// Mistral's sliding attention window, if any.
    pub sliding_window: Option<usize>,
    /// RoPE inverse frequencies, `[head_dim / 2]`, llama3 scaling already applied (empty
    /// for GPT-2, which learns absolute positions).
    pub inv_freq: Vec<f32>,
    /// Length of the learned position table (GPT-2 `n_positions`); longer inputs are errors.
    pub max_positions: Option<usize>,
    /// Attention scores are divided by `sqrt(head_dim)` (GPT-2 `scale_attn_weights`; always
    /// true for the Llama family).
    pub scale_attn_weights: bool,
    /// GPT-2 `scale_attn_by_inverse_layer_idx`: scores of layer `l` are further divided by
    /// `l + 1`.
    pub scale_attn_by_inverse_layer_idx: bool,
    /// `eos_token_id` of config.json (a number or a list; empty when absent): generation stops
    /// at these ids.
    pub eos_token_ids: Vec<u32>,
}

/// `eos_token_id` as HF writes it: a number, a list of numbers, or null.
fn eos_ids(v: Option<&serde_json::Value>) -> Vec<u32> {
    let one = |v: &serde_json::Value| v.as_u64().and_then(|x| u32::try_from(x).ok());
    match v {
        Some(serde_json::Value::Array(list)) => list.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

impl ModelConfig {
    /// Parses and validates config.json bytes; `label` (e.g. `config /x/config.json`) starts
    /// every error message.
    ///
    /// # Errors
    /// Malformed JSON, missing keys, unsupported `model_type`, activation or RoPE scaling,
    /// or inconsistent head counts.
    pub fn from_json(label: &str, bytes: &[u8]) -> Result<Self, ComponentError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| ComponentError::input(format!("{label} is not valid JSON: {e}")))?;
        // Check model_type first so an unsupported architecture is named even when its
        // config lacks keys that Llama configs have.
        let model_type = value
            .get("model_type")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| ComponentError::input(format!("{label}: missing key model_type")))?;
        if !SUPPORTED_MODEL_TYPES.contains(&model_type) {
            return Err(ComponentError::input(format!(
                "{label}: key model_type is {model_type:?}; supported: {}",
                SUPPORTED_MODEL_TYPES.join(", ")
            )));
        }
        if model_type == "gpt2" {
            let raw: RawGpt2Config = serde_json::from_value(value).map_err(|e| {
                ComponentError::input(format!("{label}: {}", serde_key_message(&e)))
            })?;
            return Self::validate_gpt2(label, raw);
        }
        let raw: RawConfig = serde_json::from_value(value)
            .map_err(|e| ComponentError::input(format!("{label}: {}", serde_key_message(&e))))?;
        Self::validate(label, raw)
    }

    fn validate(label: &str, raw: RawConfig) -> Result<Self, ComponentError> {
        let bad =
            |key: &str, msg: String| ComponentError::input(format!("{label}: key {key} {msg}"));
        if let Some(act) = &raw.hidden_act
            && act != "silu"
        {
            return Err(bad(
                "hidden_act",
                format!("is {act:?}; only \"silu\" is supported"),
            ));
        }
        if raw.mlp_bias == Some(true) {
            return Err(bad(
                "mlp_bias",
                "is true; MLP biases are not supported".into(),
            ));
        }
        for (key, v) in [
            ("hidden_size", raw.hidden_size),
            ("intermediate_size", raw.intermediate_size),
            ("num_hidden_layers", raw.num_hidden_layers),
            ("num_attention_heads", raw.num_attention_heads),
            ("vocab_size", raw.vocab_size),
        ] {
            if v == 0 {
                return Err(bad(key, "is 0".into()));
            }
        }
        let n_kv_heads = raw.num_key_value_heads.unwrap_or(raw.num_attention_heads);
        if n_kv_heads == 0 || !raw.num_attention_heads.is_multiple_of(n_kv_heads) {
            return Err(bad(
                "num_key_value_heads",
                format!(
                    "is {n_kv_heads}, which does not divide num_attention_heads {}",
                    raw.num_attention_heads
                ),
            ));
        }
        let head_dim = match raw.head_dim {
            Some(d) => d,
            None => {
                if !raw.hidden_size.is_multiple_of(raw.num_attention_heads) {
                    return Err(bad(
                        "hidden_size",
                        format!(
                            "is not divisible by num_attention_heads {}",
                            raw.num_attention_heads
                        ),
                    ));
                }
                raw.hidden_size / raw.num_attention_heads
            }
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(bad(
                "head_dim",
                format!("is {head_dim}; RoPE needs an even head size"),
            ));
        }
        let is_qwen2 = raw.model_type == "qwen2";
        if is_qwen2 && raw.use_sliding_window == Some(true) {
            return Err(bad(
                "use_sliding_window",
                "is true; qwen2 sliding-window attention is not supported".into(),
            ));
        }
        let attention_bias = raw.attention_bias.unwrap_or(false) && raw.model_type == "llama";
        // transformers >= 5 writes `rope_parameters` (theta and scaling in one table) where
        // older configs have `rope_theta` and `rope_scaling`.
        let params = raw.rope_parameters.as_ref().filter(|v| !v.is_null());
        let rope_theta = params
            .and_then(|p| p.get("rope_theta"))
            .and_then(serde_json::Value::as_f64)
            .or(raw.rope_theta)
            .unwrap_or(10_000.0);
        let scaling = raw
            .rope_scaling
            .as_ref()
            .filter(|v| !v.is_null())
            .or(params);
        let mut inv_freq = rope_inv_freq(rope_theta, head_dim);
        apply_rope_scaling(label, scaling, &mut inv_freq)?;
        Ok(ModelConfig {
            eos_token_ids: eos_ids(raw.eos_token_id.as_ref()),
            family: Family::Llama,
            activation: Activation::Silu,
            max_positions: None,
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            sliding_window: if raw.model_type == "mistral" {
                raw.sliding_window
            } else {
                None
            },
            model_type: raw.model_type,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            n_layers: raw.num_hidden_layers,
            n_heads: raw.num_attention_heads,
            n_kv_heads,
            head_dim,
            vocab_size: raw.vocab_size,
            norm_eps: raw.rms_norm_eps,
            qkv_bias: is_qwen2 || attention_bias,
            o_bias: attention_bias,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            inv_freq,
        })
    }
}

/// The subset of a GPT-2 `config.json` the model code reads; other keys are ignored.
#[derive(Debug, Clone, Deserialize)]
struct RawGpt2Config {
    n_embd: usize,
    n_layer: usize,
    n_head: usize,
    n_inner: Option<usize>,
    n_positions: usize,
    vocab_size: usize,
    layer_norm_epsilon: Option<f64>,
    activation_function: Option<String>,
    scale_attn_weights: Option<bool>,
    scale_attn_by_inverse_layer_idx: Option<bool>,
    eos_token_id: Option<serde_json::Value>,
}

impl ModelConfig {
    fn validate_gpt2(label: &str, raw: RawGpt2Config) -> Result<Self, ComponentError> {
        let bad =
            |key: &str, msg: String| ComponentError::input(format!("{label}: key {key} {msg}"));
        for (key, v) in [
            ("n_embd", raw.n_embd),
            ("n_layer", raw.n_layer),
            ("n_head", raw.n_head),
            ("n_positions", raw.n_positions),
            ("vocab_size", raw.vocab_size),
        ] {
            if v == 0 {
                return Err(bad(key, "is 0".into()));
            }
        }
        if !raw.n_embd.is_multiple_of(raw.n_head) {
            return Err(bad(
                "n_embd",
                format!("is not divisible by n_head {}", raw.n_head),
            ));
        }
        let act = raw.activation_function.as_deref().unwrap_or("gelu_new");
        let activation = match act {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "gelu" => Activation::GeluErf,
            "relu" => Activation::Relu,
            other => {
                return Err(bad(
                    "activation_function",
                    format!(
                        "is {other:?}; supported: gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, relu"
                    ),
                ));
            }
        };
        Ok(ModelConfig {
            eos_token_ids: eos_ids(raw.eos_token_id.as_ref()),
            model_type: "gpt2".into(),
            family: Family::Gpt2,
            activation,
            hidden_size: raw.n_embd,
            intermediate_size: raw.n_inner.unwrap_or(4 * raw.n_embd),
            n_layers: raw.n_layer,
            n_heads: raw.n_head,
            n_kv_heads: raw.n_head,
            head_dim: raw.n_embd / raw.n_head,
            vocab_size: raw.vocab_size,
            norm_eps: raw.layer_norm_epsilon.unwrap_or(1e-5),
            qkv_bias: true,
            o_bias: true,
            tie_word_embeddings: true,
            sliding_window: None,
            inv_freq: Vec::new(),
            max_positions: Some(raw.n_positions),
            scale_attn_weights: raw.scale_attn_weights.unwrap_or(true),
            scale_attn_by_inverse_layer_idx: raw.scale_attn_by_inverse_layer_idx.unwrap_or(false),
        })
    }
}

/// serde_json's message without the trailing " at line L column C" and backticks, with
/// "missing field" said as "missing key" (the key is what matters).
fn serde_key_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let s = s.find(" at line ").map_or(s.as_str(), |i| &s[..i]);
    s.replace('`', "").replace("missing field", "missing key")
}

/// Standard RoPE inverse frequencies `theta^(-2i/d)` for `i in 0..d/2`, in f64 then f32.
pub fn rope_inv_freq(theta: f64, head_dim: usize) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| (1.0 / theta.powf(2.0 * i as f64 / head_dim as f64)) as f32)
        .collect()
}

/// Applies `rope_scaling` to `inv_freq` in place. Supports none/`default` and `llama3`.
fn apply_rope_scaling(
    label: &str,
    scaling: Option<&serde_json::Value>,
    inv_freq: &mut [f32],
) -> Result<(), ComponentError> {
    let Some(s) = scaling.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let kind = s
        .get("rope_type")
        .or_else(|| s.get("type"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("default");
    match kind {
        "default" => Ok(()),
        "llama3" => {
            let num = |key: &str| {
                s.get(key)
                    .and_then(serde_json::Value::as_f64)
                    .ok_or_else(|| {
                        ComponentError::input(format!("{label}: key rope_scaling.{key} is missing"))
                    })
            };
            let factor = num("factor")?;
            let low = num("low_freq_factor")?;
            let high = num("high_freq_factor")?;
            let old_ctx = num("original_max_position_embeddings")?;
            if high <= low {
                return Err(ComponentError::input(format!(
                    "{label}: key rope_scaling.high_freq_factor must exceed low_freq_factor"
                )));
            }
            llama3_scale(inv_freq, factor, low, high, old_ctx);
            Ok(())
        }
        other => Err(ComponentError::input(format!(
            "{label}: key rope_scaling.rope_type is {other:?}; supported: default, llama3"
        ))),
    }
}

/// Llama 3.1 frequency scaling: long wavelengths are divided by `factor`, short ones kept,
/// the band between interpolated smoothly.
fn llama3_scale(inv_freq: &mut [f32], factor: f64, low: f64, high: f64, old_ctx: f64) {
    let low_wavelen = old_ctx / low;
    let high_wavelen = old_ctx / high;
    for f in inv_freq.iter_mut() {
        let freq = f64::from(*f);
        let wavelen = 2.0 * std::f64::consts::PI / freq;
        let scaled = if wavelen < high_wavelen {
            freq
        } else if wavelen > low_wavelen {
            freq / factor
        } else {
            let smooth = (old_ctx / wavelen - low) / (high - low);
            (1.0 - smooth) * freq / factor + smooth * freq
        };
        *f = scaled as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 50, "rms_norm_eps": 1e-5, "rope_theta": 10000.0
        })
    }

    fn parse(v: &serde_json::Value) -> Result<ModelConfig, ComponentError> {
        ModelConfig::from_json("config /m/config.json", v.to_string().as_bytes())
    }

    #[test]
    fn parses_llama_with_gqa_and_derived_head_dim() {
        let c = parse(&base()).unwrap();
        assert_eq!((c.n_heads, c.n_kv_heads, c.head_dim), (4, 2, 8));
        assert!(!c.qkv_bias && !c.tie_word_embeddings);
        assert_eq!(c.inv_freq.len(), 4);
        assert!((c.inv_freq[1] - 0.1).abs() < 1e-7, "10000^(-2/8) = 0.1");
    }

    #[test]
    fn qwen2_has_qkv_bias_but_no_o_bias() {
        let mut v = base();
        v["model_type"] = "qwen2".into();
        v["tie_word_embeddings"] = true.into();
        let c = parse(&v).unwrap();
        assert!(c.qkv_bias && !c.o_bias && c.tie_word_embeddings);
    }

    #[test]
    fn rejects_unsupported_model_type_listing_supported_ones() {
        let mut v = base();
        v["model_type"] = "gpt_neox".into();
        let e = parse(&v).unwrap_err().to_string();
        assert_eq!(
            e,
            "config /m/config.json: key model_type is \"gpt_neox\"; supported: llama, qwen2, mistral, gpt2"
        );
    }

    #[test]
    fn missing_key_is_named() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("intermediate_size");
        let e = parse(&v).unwrap_err().to_string();
        assert_eq!(e, "config /m/config.json: missing key intermediate_size");
    }

    #[test]
    fn rejects_heads_not_divisible_by_kv_heads() {
        let mut v = base();
        v["num_key_value_heads"] = 3.into();
        let e = parse(&v).unwrap_err().to_string();
        assert!(e.contains("key num_key_value_heads is 3"), "{e}");
    }

    #[test]
    fn llama3_scaling_keeps_short_and_divides_long_wavelengths() {
        let mut f = vec![1.0_f32, 1e-4];
        // wavelengths: 2*pi (short) and ~62832 (long); old ctx 8192, low 1, high 4.
        llama3_scale(&mut f, 8.0, 1.0, 4.0, 8192.0);
        assert_eq!(f[0], 1.0);
        assert!((f[1] - 1.25e-5).abs() < 1e-10);
        // In the band: wavelen 4096 lies between 8192/4 = 2048 and 8192/1.
        let mut g = vec![(2.0 * std::f64::consts::PI / 4096.0) as f32];
        llama3_scale(&mut g, 8.0, 1.0, 4.0, 8192.0);
        let freq = 2.0 * std::f64::consts::PI / 4096.0;
        let smooth = (8192.0 / 4096.0 - 1.0) / 3.0;
        let want = (1.0 - smooth) * freq / 8.0 + smooth * freq;
        assert!((f64::from(g[0]) - want).abs() < 1e-9);
    }

    #[test]
    fn parses_gpt2_with_defaults_and_rejects_unknown_activation() {
        let v = serde_json::json!({
            "model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64,
            "vocab_size": 50, "n_inner": null
        });
        let c = parse(&v).unwrap();
        assert_eq!(c.family, Family::Gpt2);
        assert_eq!((c.intermediate_size, c.head_dim, c.n_kv_heads), (128, 8, 4));
        assert_eq!(c.activation, Activation::GeluTanh);
        assert!(c.tie_word_embeddings && c.qkv_bias && c.o_bias && c.inv_freq.is_empty());
        assert_eq!((c.max_positions, c.norm_eps), (Some(64), 1e-5));
        let mut w = v.clone();
        w["activation_function"] = "swish".into();
        let e = parse(&w).unwrap_err().to_string();
        assert!(e.contains("key activation_function is \"swish\""), "{e}");
        let mut w = v;
        w.as_object_mut().unwrap().remove("n_positions");
        let e = parse(&w).unwrap_err().to_string();
        assert_eq!(e, "config /m/config.json: missing key n_positions");
    }

    #[test]
    fn reads_transformers_5_rope_parameters() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("rope_theta");
        v["rope_parameters"] = serde_json::json!({"rope_theta": 100.0, "rope_type": "default"});
        let c = parse(&v).unwrap();
        assert_eq!(c.inv_freq, rope_inv_freq(100.0, 8));
        v["rope_parameters"] = serde_json::json!({"rope_theta": 100.0, "rope_type": "llama3",
            "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64});
        let scaled = parse(&v).unwrap();
        assert_ne!(scaled.inv_freq, c.inv_freq);
        assert_eq!(
            scaled.inv_freq[0], c.inv_freq[0],
            "short wavelengths are kept"
        );
    }

    #[test]
    fn rejects_unknown_rope_scaling_type() {
        let mut v = base();
        v["rope_scaling"] = serde_json::json!({"type": "yarn", "factor": 4.0});
        let e = parse(&v).unwrap_err().to_string();
        assert!(e.contains("rope_scaling.rope_type is \"yarn\""), "{e}");
        v["rope_scaling"] = serde_json::Value::Null;
        assert!(parse(&v).is_ok());
    }
}
