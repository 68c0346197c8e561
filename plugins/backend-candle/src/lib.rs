//! valex-backend-candle: the `backend/candle` model backend: Llama-family models (`llama`,
//! `qwen2`, `mistral`) and GPT-2 (`gpt2`) from HF safetensors, run with candle on the CPU or
//! (with the `cuda` feature) a CUDA device.
//!
//! It owns model loading ([`files`], [`config`]), the forward passes ([`models`]), taps and
//! edits ([`tap`]), grouping rows into forwards ([`batching`]), chat templates ([`chat`]),
//! statistics and scoring ([`backend`]), greedy generation with a KV cache ([`generate`]),
//! activation dumps ([`inspect`]) and registration
//! ([`loader`]). It depends only on valex-core among workspace crates (plus the built-in
//! demo model's bytes).
//!
//! # Taps
//! Every tap is read inside each layer's MLP. Shapes are `[batch * seq, intermediate]` inside
//! the model (`[rows, seq, intermediate]` in `inspect` dumps); statistics and dumps are f32
//! whatever the compute dtype. Every tap accepts a [`valex_core::NeuronEdit`]: the multiplier
//! is applied where the tap is read, the tap shows the edited value, and everything
//! downstream sees it. A tap nobody records and nobody edits costs nothing.
//!
//! Llama family, `down(act(gate(x)) * up(x))` with `x = post_attention_layernorm(h)`:
//! - `mlp.gate_pre`: `x W_gate^T`, before the activation.
//! - `mlp.gate_act`: `SiLU(gate_pre)`. This is what LAPE counts (`act > 0`).
//! - `mlp.up`: `x W_up^T`.
//! - `mlp.act_x_up`: `gate_act * up`, the input of `down_proj`.
//!
//! GPT-2, `c_proj(act(c_fc(x)))` with `x = ln_2(h)`:
//! - `mlp.pre`: `x W_fc + b_fc`, before the activation.
//! - `mlp.act`: `GELU(pre)` (tanh approximation for `gelu_new`), the input of `c_proj`.
//!
//! # Padding convention
//! `record`, `score` and `inspect` right-pad rows with token id 0 (row `b` holds its tokens at
//! positions `0..len`); parity tests also run left-padded batches ([`models::Padding`]). Each
//! real token's position id is its index within its own row, whatever the padding. The
//! attention mask lets query `q` see key `k` only when `k <= q`, `k` is a real token of the
//! row and, for mistral's `sliding_window` `w`, `q - k < w` (so Mistral is exact at any
//! length). Masked scores get minus infinity ([`models::MASK_NEG`]; every query sees at
//! least one key, so no softmax row is fully masked) and softmax runs in f32. Padding
//! positions never enter statistics; a text alone and inside a padded batch give the same
//! logits and taps (within float rounding, ~1e-6 in f32).
//!
//! # Batching
//! `record` and `score` sort rows by decreasing length (length buckets: rows of similar
//! length share a forward) and cut the sorted list into forwards of at most `batch_size`
//! rows and `max_batch_tokens` padded tokens ([`batching::BatchPolicy`]). Statistics do not
//! depend on the batching beyond float rounding. `record` cuts each row after its last
//! counted position (later tokens cannot influence earlier ones), reduces each layer on the
//! device to per-label `[n_neurons]` counts, sums and sums of squares, and skips the final
//! norm and LM head. `score` applies the LM head only at the positions that predict a
//! continuation token.
//!
//! # Chat templates
//! With `chat_template = true` every text passed to `encode` becomes the user turn of the
//! model's chat template (rendered with the generation prompt), and `encode_reply(prompt,
//! reply)` puts `reply` after the assistant header; see [`chat`].

pub mod backend;
pub use valex_core::batching;
pub mod bench;
pub mod chat;
pub mod config;
pub mod files;
pub mod generate;
pub mod inspect;
pub mod loader;
pub mod memory;
pub mod models;
pub mod profile;
pub mod reduce;
pub mod tap;

pub use backend::CandleBackend;
pub use batching::BatchPolicy;
pub use chat::ChatTemplate;
pub use config::ModelConfig;
pub use files::{MemoryModel, ModelSource};
pub use inspect::{Dump, TapDump, inspection_safetensors};
pub use loader::{CandleConfig, CandleLoader, CandlePlugin, DTypeName, DeviceSpec};
pub use models::{Model, Padding};
pub use tap::Tap;

#[cfg(test)]
pub(crate) mod tests_support {
    //! Helpers of the unit tests.

    /// A WordLevel tokenizer over `words` (id = index) splitting on whitespace, no specials.
    pub fn word_tokenizer(words: &[&str]) -> tokenizers::Tokenizer {
        let vocab: serde_json::Map<String, serde_json::Value> = words
            .iter()
            .enumerate()
            .map(|(i, w)| ((*w).to_owned(), serde_json::Value::from(i)))
            .collect();
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
            "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": words[0]}
        });
        tokenizers::Tokenizer::from_bytes(json.to_string().as_bytes())
            .expect("a valid tokenizer json")
    }
}
