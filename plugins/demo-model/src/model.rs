//! The three HF files of the demo model, built in memory, and helpers to write them.

use std::path::Path;

use crate::arch::config_json;
use crate::tokenizer::tokenizer_json;
use crate::vocab::{VALUES, vocabulary};
use crate::weights::{build_tensors, planted_layout, serialize};

/// The bytes of an HF model directory: `config.json`, `tokenizer.json`, `model.safetensors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// `config.json` (LlamaForCausalLM, float32).
    pub config_json: Vec<u8>,
    /// `tokenizer.json` (HF tokenizers, WordLevel).
    pub tokenizer_json: Vec<u8>,
    /// `model.safetensors` (f32 tensors, HF names, sorted).
    pub safetensors: Vec<u8>,
}

/// Builds the demo model. Deterministic: the same bytes on every call and every machine
/// (integer PRNG, no platform math functions, little-endian tensors, sorted names).
pub fn build() -> ModelFiles {
    let vocab = vocabulary();
    ModelFiles {
        config_json: config_json(vocab.len()),
        tokenizer_json: tokenizer_json(&vocab),
        safetensors: serialize(&build_tensors(&vocab)),
    }
}

/// The planted value neurons: per value (Chinese name, in [`VALUES`] order), its
/// `(layer, neuron)` pairs sorted by layer then neuron.
pub fn planted_neurons() -> Vec<(String, Vec<(usize, u32)>)> {
    let layout = planted_layout();
    VALUES
        .iter()
        .enumerate()
        .map(|(v, (name, _))| {
            let mut ns: Vec<(usize, u32)> = layout
                .iter()
                .filter(|p| p.value == v)
                .map(|p| {
                    (
                        p.layer,
                        u32::try_from(p.neuron).expect("neuron index fits in u32"),
                    )
                })
                .collect();
            ns.sort_unstable();
            ((*name).to_owned(), ns)
        })
        .collect()
}

/// Writes `config.json`, `tokenizer.json` and `model.safetensors` into `dir` (created if
/// missing), making it a model directory any HF-layout loader can read.
///
/// # Errors
/// Fails when the directory cannot be created or a file cannot be written.
pub fn write_dir(dir: &Path) -> std::io::Result<()> {
    let files = build();
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), &files.config_json)?;
    std::fs::write(dir.join("tokenizer.json"), &files.tokenizer_json)?;
    std::fs::write(dir.join("model.safetensors"), &files.safetensors)?;
    Ok(())
}
