//! Shape of the demo model and its `config.json` (HF `LlamaForCausalLM` fields).

use serde_json::json;

/// Transformer layers.
pub const N_LAYERS: usize = 4;
/// Residual width.
pub const HIDDEN_SIZE: usize = 64;
/// FFN width: neurons per layer.
pub const INTERMEDIATE_SIZE: usize = 192;
/// Query heads.
pub const N_HEADS: usize = 4;
/// Key/value heads (grouped-query attention: 2 query heads per kv head).
pub const N_KV_HEADS: usize = 2;
/// Width of one head.
pub const HEAD_DIM: usize = 16;
/// RoPE base.
pub const ROPE_THETA: f32 = 10_000.0;
/// RMSNorm epsilon.
pub const RMS_NORM_EPS: f32 = 1e-6;
/// Longest sequence the config admits.
pub const MAX_POSITION_EMBEDDINGS: usize = 1024;

/// Layers that hold planted value neurons.
pub const PLANTED_LAYERS: [usize; 3] = [1, 2, 3];
/// Planted neurons per value in each planted layer.
pub const PLANTED_PER_VALUE_PER_LAYER: usize = 2;
/// All planted neurons: 12 values × 3 layers × 2 = 72.
pub const N_PLANTED: usize = 12 * PLANTED_LAYERS.len() * PLANTED_PER_VALUE_PER_LAYER;
/// The LAPE `top_rate` whose candidate count `round(L·I·top_rate)` equals [`N_PLANTED`]:
/// 72 / (4 · 192) = 0.09375. Use it in the demo manifest (`[score] params.top_rate`).
pub const PLANTED_TOP_RATE: f64 = N_PLANTED as f64 / (N_LAYERS * INTERMEDIATE_SIZE) as f64;

/// `config.json` for a vocabulary of `vocab_size` tokens, pretty-printed.
pub(crate) fn config_json(vocab_size: usize) -> Vec<u8> {
    let doc = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN_SIZE,
        "intermediate_size": INTERMEDIATE_SIZE,
        "num_hidden_layers": N_LAYERS,
        "num_attention_heads": N_HEADS,
        "num_key_value_heads": N_KV_HEADS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "max_position_embeddings": MAX_POSITION_EMBEDDINGS,
        "rms_norm_eps": RMS_NORM_EPS,
        "rope_theta": ROPE_THETA,
        "rope_scaling": null,
        "attention_bias": false,
        "attention_dropout": 0.0,
        "mlp_bias": false,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "tie_word_embeddings": false,
        "use_cache": true,
        "vocab_size": vocab_size,
        "bos_token_id": crate::vocab::BOS_ID,
        "eos_token_id": crate::vocab::EOS_ID,
        "pad_token_id": crate::vocab::PAD_ID,
        "torch_dtype": "float32",
        "transformers_version": "4.46.0"
    });
    serde_json::to_vec_pretty(&doc).expect("a JSON value always serializes")
}
