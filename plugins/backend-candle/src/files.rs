//! Reading a model's files: config, safetensors weights (single, sharded or in memory) and
//! tokenizer, with shape checks, dtype/device conversion and the content hash.
//!
//! Owns every load-time error message: each is one line naming the file and the tensor or
//! key. It knows nothing about the forward pass; the tensor names and shapes to load come
//! from the caller as a [`TensorSpec`] list.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};
use tokenizers::Tokenizer;
use valex_core::ComponentError;

use crate::config::ModelConfig;

/// A model held in memory (the built-in demo model), loaded through the same code path as a
/// directory.
#[derive(Debug, Clone)]
pub struct MemoryModel {
    /// Name used in messages in place of a folder (e.g. `builtin:planted-demo`).
    pub name: String,
    /// config.json bytes.
    pub config_json: Vec<u8>,
    /// tokenizer.json bytes.
    pub tokenizer_json: Vec<u8>,
    /// model.safetensors bytes.
    pub safetensors: Vec<u8>,
}

/// Where a model comes from.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// An HF model directory.
    Dir(PathBuf),
    /// In-memory files.
    Memory(MemoryModel),
}

/// One tensor to load: HF name and expected shape.
pub type TensorSpec = (String, Vec<usize>);

/// Everything read from a model's files.
pub struct LoadedFiles {
    /// The validated config.
    pub config: ModelConfig,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// Loaded tensors by name, already on the device in the compute dtype.
    pub tensors: HashMap<String, Tensor>,
    /// sha256 (hex) over config, weight files (sorted by name) and tokenizer bytes.
    pub content_sha256: String,
}

/// The weight files of a directory, sorted by file name, and for sharded checkpoints the
/// file each tensor lives in.
struct WeightLayout {
    files: Vec<PathBuf>,
    /// `None` for a single file: every tensor is in it.
    weight_map: Option<HashMap<String, PathBuf>>,
    index_path: Option<PathBuf>,
}

const PICKLE_EXTENSIONS: [&str; 4] = ["bin", "pt", "pth", "ckpt"];

/// Name prefixes a checkpoint may leave out: the original GPT-2 checkpoints store
/// `h.0.attn...` where `GPT2LMHeadModel` saves `transformer.h.0.attn...`.
const OPTIONAL_PREFIXES: [&str; 1] = ["transformer."];

/// The name under which `name` is stored, given a membership test: `name` itself, else
/// `name` without an optional prefix.
fn stored_name(name: &str, has: impl Fn(&str) -> bool) -> Option<&str> {
    if has(name) {
        return Some(name);
    }
    OPTIONAL_PREFIXES
        .iter()
        .filter_map(|p| name.strip_prefix(p))
        .find(|n| has(n))
}

/// Lists the files a directory model will be read from (config, weights, tokenizer).
///
/// Best effort: when the shard index cannot be read, the index itself is listed.
pub fn input_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.join("config.json")];
    match weight_layout(dir) {
        Ok(l) => out.extend(l.files),
        Err(_) => out.push(dir.join("model.safetensors")),
    }
    out.push(dir.join("tokenizer.json"));
    out
}

/// Reads and checks every file of `source` and loads the tensors named by `spec_of(config)`.
///
/// # Errors
/// One-line messages naming the file and the key or tensor: unreadable files, malformed
/// config, pickle-only checkpoints, missing tensors, wrong shapes or dtypes, unreadable
/// tokenizer, and device errors while moving weights.
pub fn load(
    source: &ModelSource,
    dtype: DType,
    device: &Device,
    spec_of: impl Fn(&ModelConfig) -> Vec<TensorSpec>,
) -> Result<LoadedFiles, ComponentError> {
    let mut hasher = Sha256::new();
    match source {
        ModelSource::Dir(dir) => {
            if !dir.is_dir() {
                return Err(ComponentError::input(format!(
                    "model directory {} does not exist or is not a directory",
                    dir.display()
                )));
            }
            let config_path = dir.join("config.json");
            let config_bytes = read(&config_path, "config")?;
            hasher.update(&config_bytes);
            let config = ModelConfig::from_json(
                &format!("config {}", config_path.display()),
                &config_bytes,
            )?;
            let layout = weight_layout(dir)?;
            let spec = spec_of(&config);
            let mut tensors = HashMap::with_capacity(spec.len());
            if let (Some(map), Some(index)) = (&layout.weight_map, &layout.index_path)
                && let Some((name, _)) = spec
                    .iter()
                    .find(|(n, _)| stored_name(n, |k| map.contains_key(k)).is_none())
            {
                return Err(ComponentError::input(format!(
                    "model index {}: tensor {name} is missing from weight_map",
                    index.display()
                )));
            }
            for file in &layout.files {
                let bytes = read(file, "model file")?;
                hasher.update(&bytes);
                let wanted: Vec<&TensorSpec> = match &layout.weight_map {
                    None => spec.iter().collect(),
                    Some(map) => spec
                        .iter()
                        .filter(|(n, _)| {
                            stored_name(n, |k| map.contains_key(k)).and_then(|k| map.get(k))
                                == Some(file)
                        })
                        .collect(),
                };
                let label = format!("model file {}", file.display());
                load_tensors(&label, &bytes, &wanted, dtype, device, &mut tensors)?;
            }
            let tok_path = dir.join("tokenizer.json");
            let tok_bytes = read(&tok_path, "tokenizer")?;
            hasher.update(&tok_bytes);
            let tokenizer = tokenizer(
                &format!("tokenizer {}", tok_path.display()),
                &tok_bytes,
                config.vocab_size,
            )?;
            Ok(LoadedFiles {
                config,
                tokenizer,
                tensors,
                content_sha256: hex::encode(hasher.finalize()),
            })
        }
        ModelSource::Memory(m) => {
            hasher.update(&m.config_json);
            let config =
                ModelConfig::from_json(&format!("config {}/config.json", m.name), &m.config_json)?;
            let spec = spec_of(&config);
            let wanted: Vec<&TensorSpec> = spec.iter().collect();
            let mut tensors = HashMap::with_capacity(spec.len());
            hasher.update(&m.safetensors);
            let label = format!("model file {}/model.safetensors", m.name);
            load_tensors(&label, &m.safetensors, &wanted, dtype, device, &mut tensors)?;
            hasher.update(&m.tokenizer_json);
            let tokenizer = tokenizer(
                &format!("tokenizer {}/tokenizer.json", m.name),
                &m.tokenizer_json,
                config.vocab_size,
            )?;
            Ok(LoadedFiles {
                config,
                tokenizer,
                tensors,
                content_sha256: hex::encode(hasher.finalize()),
            })
        }
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, ComponentError> {
    std::fs::read(path).map_err(|e| {
        ComponentError::input(format!("{what} {} could not be read", path.display())).with_source(e)
    })
}

/// Parses a tokenizer and checks it against the model's `vocab_size`: a tokenizer with more
/// tokens than the embedding has rows belongs to another model (its extra ids would fail at
/// the first batch that uses them, or worse, index another model's rows). Fewer tokens are
/// normal: HF configs often pad `vocab_size` (Qwen2.5: 151 665 tokens, 151 936 rows).
fn tokenizer(label: &str, bytes: &[u8], vocab_size: usize) -> Result<Tokenizer, ComponentError> {
    let tok = Tokenizer::from_bytes(bytes).map_err(|e| {
        let mut err = ComponentError::input(format!("{label} could not be read"));
        err.source = Some(e);
        err
    })?;
    let n = tok.get_vocab_size(true);
    if n > vocab_size {
        return Err(ComponentError::input(format!(
            "{label} has {n} tokens but the model's config.json has vocab_size {vocab_size}; \
             the tokenizer belongs to another model"
        )));
    }
    Ok(tok)
}

/// Finds the weight files of `dir`: the shard index if present, else `model.safetensors`.
fn weight_layout(dir: &Path) -> Result<WeightLayout, ComponentError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let bytes = read(&index, "model index")?;
        #[derive(serde::Deserialize)]
        struct Index {
            weight_map: BTreeMap<String, String>,
        }
        let parsed: Index = serde_json::from_slice(&bytes).map_err(|e| {
            ComponentError::input(format!(
                "model index {}: key weight_map is missing or malformed",
                index.display()
            ))
            .with_source(e)
        })?;
        let weight_map: HashMap<String, PathBuf> = parsed
            .weight_map
            .into_iter()
            .map(|(name, file)| (name, dir.join(file)))
            .collect();
        let mut files: Vec<PathBuf> = weight_map.values().cloned().collect();
        files.sort();
        files.dedup();
        return Ok(WeightLayout {
            files,
            weight_map: Some(weight_map),
            index_path: Some(index),
        });
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(WeightLayout {
            files: vec![single],
            weight_map: None,
            index_path: None,
        });
    }
    let pickles: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| PICKLE_EXTENSIONS.contains(&x))
                })
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    if pickles.is_empty() {
        Err(ComponentError::input(format!(
            "model directory {}: no model.safetensors or model.safetensors.index.json",
            dir.display()
        )))
    } else {
        let mut pickles = pickles;
        pickles.sort();
        Err(ComponentError::input(format!(
            "model directory {} has only PyTorch pickle checkpoints ({}); pickle files are not \
             loaded, convert them to safetensors (e.g. save_pretrained(..., safe_serialization=True))",
            dir.display(),
            pickles.join(", ")
        )))
    }
}

/// Loads `wanted` tensors from one safetensors buffer, checking names, shapes and dtypes.
fn load_tensors(
    label: &str,
    bytes: &[u8],
    wanted: &[&TensorSpec],
    dtype: DType,
    device: &Device,
    out: &mut HashMap<String, Tensor>,
) -> Result<(), ComponentError> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
        ComponentError::input(format!("{label} is not a valid safetensors file")).with_source(e)
    })?;
    let names: std::collections::HashSet<&str> = st.names().into_iter().collect();
    for (name, shape) in wanted {
        let view = stored_name(name, |k| names.contains(k))
            .and_then(|k| st.tensor(k).ok())
            .ok_or_else(|| ComponentError::input(format!("{label}: tensor {name} is missing")))?;
        if view.shape() != shape.as_slice() {
            return Err(ComponentError::input(format!(
                "{label}: tensor {name} has shape {:?}, expected {shape:?}",
                view.shape()
            )));
        }
        use safetensors::Dtype as S;
        if !matches!(view.dtype(), S::F32 | S::F16 | S::BF16 | S::F64) {
            return Err(ComponentError::input(format!(
                "{label}: tensor {name} has dtype {:?}, expected F32, F16 or BF16",
                view.dtype()
            )));
        }
        let t = view
            .load(&Device::Cpu)
            .and_then(|t| t.to_device(device))
            .and_then(|t| t.to_dtype(dtype))
            .map_err(|e| {
                ComponentError::input(format!("{label}: tensor {name} could not be loaded"))
                    .with_source(e)
            })?;
        out.insert(name.clone(), t);
    }
    Ok(())
}
