//! The planted-neuron demo model that ships with valex.
//!
//! A genuine HF-layout Llama model (`config.json` + `model.safetensors` + `tokenizer.json`,
//! loadable by `LlamaForCausalLM` in principle) whose weights are *constructed*, not trained:
//! 4 layers, hidden 64, 192 FFN neurons per layer, 4 heads / 2 kv heads of width 16, and a
//! word-level zh/en vocabulary covering `experiments/value-study/data/demo.jsonl`.
//!
//! 72 **planted value neurons** (2 per value in each of layers 1–3; [`planted_neurons`])
//! fire when the context is about their value (its keywords, [`KEYWORDS`]) and raise the
//! likelihood of that value's keywords, so the value-aligned option of a dilemma outscores
//! the violating one; zeroing them removes the advantage. All other neurons fire on random
//! token subsets independent of the value. See `weights.rs` for the construction and
//! `README.md` in this crate's folder for measured numbers.
//!
//! LAPE with `top_rate` = [`PLANTED_TOP_RATE`] (72 / 768) selects as many neurons as were
//! planted.
//!
//! This crate depends only on safetensors, serde and serde_json; it must not depend on a
//! tensor library or on other valex crates.

mod arch;
mod model;
mod rng;
mod tokenizer;
mod vocab;
mod weights;

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

pub use arch::{
    HEAD_DIM, HIDDEN_SIZE, INTERMEDIATE_SIZE, MAX_POSITION_EMBEDDINGS, N_HEADS, N_KV_HEADS,
    N_LAYERS, N_PLANTED, PLANTED_LAYERS, PLANTED_PER_VALUE_PER_LAYER, PLANTED_TOP_RATE,
    RMS_NORM_EPS, ROPE_THETA,
};
pub use model::{ModelFiles, build, planted_neurons, write_dir};
pub use vocab::{
    BOS_ID, EOS_ID, EXTRA_TEXT, KEYWORDS, PAD_ID, SPECIAL_TOKENS, UNK_ID, VALUES, ValueKeywords,
    vocabulary,
};
