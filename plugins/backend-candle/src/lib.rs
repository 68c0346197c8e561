//! valex-backend-candle: the `backend/candle` model backend, Llama-family models
//! (`llama`, `qwen2`, `mistral`) from HF safetensors, run with candle on the CPU or (with the
//! `cuda` feature) a CUDA device.
//!
//! It owns model loading ([`files`], [`config`]), the forward pass ([`models::llama`]), taps
//! and edits ([`tap`]), batching, statistics and scoring ([`backend`]) and registration
//! ([`loader`]). It depends only on valex-core among workspace crates (plus the built-in
//! demo model's bytes).
//!
//! # Taps
//! Every tap is read inside each layer's MLP, `down(act(gate(x)) * up(x))` with
//! `x = post_attention_layernorm(h)`. Shapes are `[batch * seq, intermediate]` inside the
//! model; statistics and test dumps are f32 whatever the compute dtype.
//! - `mlp.gate_act`: `SiLU(x W_gate^T)`, after any [`valex_core::NeuronEdit`] (so a zeroed
//!   neuron records 0). This is what LAPE counts (`act > 0`). The only edit tap.
//! - `mlp.gate_pre`: `x W_gate^T`, before the activation (and before edits).
//! - `mlp.up`: `x W_up^T`.
//! - `mlp.act_x_up`: `gate_act * up` (edited), the input of `down_proj`.
//!
//! # Padding convention
//! Rows of a batch are right-padded with token id 0 to the longest row; every row's real
//! tokens sit at positions `0..len`, so position ids are `0..len` for every row. The
//! attention mask lets query `q` see key `k` only when `k <= q` (causal), `k < len`
//! (key padding) and, for mistral's `sliding_window` `w`, `q - k < w` (so Mistral is exact at
//! any length). Masked scores get a large finite negative ([`models::llama::MASK_NEG`]) and
//! softmax runs in f32. Padding positions never enter statistics; a text alone and inside a
//! padded batch give the same logits and taps (within float rounding, ~1e-6 in f32).
//!
//! # Batching
//! `record` and `score` sort rows by length and run at most `batch_size` rows per forward.
//! `record` cuts each row after its last counted position (later tokens cannot influence
//! earlier ones), reduces each layer on the device to per-label `[n_neurons]` counts, sums
//! and sums of squares with one `[labels, batch * seq]` indicator matmul each, and skips the
//! final norm and LM head. `score` applies the LM head only at the positions that predict a
//! continuation token.

pub mod backend;
pub mod config;
pub mod files;
pub mod loader;
pub mod models;
pub mod tap;

pub use backend::CandleBackend;
pub use config::ModelConfig;
pub use files::{MemoryModel, ModelSource};
pub use loader::{CandleConfig, CandleLoader, CandlePlugin, DTypeName, DeviceSpec};
