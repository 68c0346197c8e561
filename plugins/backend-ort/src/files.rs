//! The files of an ONNX model folder: which `.onnx` file, tokenizer and config a `path`
//! means ([`ModelPaths`]), the shape facts `config.json` adds ([`ConfigFacts`]), and the
//! content hash over every file read.
//!
//! Layout: `path` is a folder holding `model.onnx` (or exactly one `*.onnx`),
//! `tokenizer.json` and optionally `config.json` (as optimum and `save_pretrained` write
//! them), or an `.onnx` file with those files beside it. It reads no graph.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use valex_core::ComponentError;

/// Where a model's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPaths {
    /// The `.onnx` file.
    pub onnx: PathBuf,
    /// `tokenizer.json`.
    pub tokenizer: PathBuf,
    /// `config.json`, when present.
    pub config: Option<PathBuf>,
}

impl ModelPaths {
    /// Resolves `path` (a folder or an `.onnx` file); `tokenizer` overrides the tokenizer
    /// file. Files that must exist are checked when the model loads, not here.
    pub fn resolve(path: &Path, tokenizer: Option<PathBuf>) -> Self {
        let (dir, onnx) = if path.extension().is_some_and(|e| e == "onnx") {
            (
                path.parent().unwrap_or(Path::new(".")).to_owned(),
                path.to_owned(),
            )
        } else {
            (path.to_owned(), find_onnx(path))
        };
        let config = dir.join("config.json");
        ModelPaths {
            onnx,
            tokenizer: tokenizer.unwrap_or_else(|| dir.join("tokenizer.json")),
            config: config.is_file().then_some(config),
        }
    }
}

/// `dir/model.onnx`, else the one `*.onnx` in `dir`, else `dir/model.onnx` (reported missing
/// at load).
fn find_onnx(dir: &Path) -> PathBuf {
    let default = dir.join("model.onnx");
    if default.is_file() {
        return default;
    }
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
                .collect()
        })
        .unwrap_or_default();
    match found.as_slice() {
        [one] => one.clone(),
        _ => default,
    }
}

/// The shape facts of an HF `config.json` (Llama-family or GPT-2 keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFacts {
    /// `model_type`.
    pub model_type: Option<String>,
    /// `num_hidden_layers` / `n_layer`.
    pub n_layers: Option<usize>,
    /// `intermediate_size` / `n_inner` (GPT-2: `4 * n_embd` when null).
    pub n_neurons: Option<usize>,
    /// `hidden_size` / `n_embd`.
    pub hidden_size: Option<usize>,
    /// `vocab_size`.
    pub vocab_size: Option<usize>,
}

impl ConfigFacts {
    /// Reads `config.json`.
    ///
    /// # Errors
    /// Unreadable file or invalid JSON.
    pub fn read(path: &Path) -> Result<Self, ComponentError> {
        let bytes = std::fs::read(path).map_err(|e| {
            ComponentError::input(format!("config {} could not be read", path.display()))
                .with_source(e)
        })?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ComponentError::input(format!("config {} is not valid JSON", path.display()))
                .with_source(e)
        })?;
        let num = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| v.get(*k).and_then(serde_json::Value::as_u64))
                .and_then(|n| usize::try_from(n).ok())
        };
        let hidden_size = num(&["hidden_size", "n_embd"]);
        let gpt2_inner = (v.get("model_type").and_then(serde_json::Value::as_str) == Some("gpt2"))
            .then(|| hidden_size.map(|h| 4 * h))
            .flatten();
        Ok(ConfigFacts {
            model_type: v
                .get("model_type")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            n_layers: num(&["num_hidden_layers", "n_layer"]),
            n_neurons: num(&["intermediate_size", "n_inner"]).or(gpt2_inner),
            hidden_size,
            vocab_size: num(&["vocab_size"]),
        })
    }
}

/// sha256 (hex) over `files` in order, each prefixed by its byte length.
///
/// # Errors
/// A file that cannot be read.
pub fn content_sha256(files: &[PathBuf]) -> Result<String, ComponentError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for f in files {
        let mut file = std::fs::File::open(f).map_err(|e| {
            ComponentError::input(format!("model file {} could not be read", f.display()))
                .with_source(e)
        })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        h.update(len.to_le_bytes());
        loop {
            let n = file.read(&mut buf).map_err(|e| {
                ComponentError::input(format!("model file {} could not be read", f.display()))
                    .with_source(e)
            })?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_folder_single_onnx_and_file_paths() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("decoder.onnx"), b"x").unwrap();
        let p = ModelPaths::resolve(d.path(), None);
        assert_eq!(p.onnx, d.path().join("decoder.onnx"), "the one .onnx file");
        assert_eq!(p.tokenizer, d.path().join("tokenizer.json"));
        assert_eq!(p.config, None);
        std::fs::write(d.path().join("model.onnx"), b"x").unwrap();
        std::fs::write(d.path().join("config.json"), b"{}").unwrap();
        let p = ModelPaths::resolve(d.path(), Some("/t/tok.json".into()));
        assert_eq!(p.onnx, d.path().join("model.onnx"), "model.onnx wins");
        assert_eq!(p.tokenizer, PathBuf::from("/t/tok.json"));
        assert_eq!(p.config, Some(d.path().join("config.json")));
        let f = ModelPaths::resolve(&d.path().join("decoder.onnx"), None);
        assert_eq!(f.onnx, d.path().join("decoder.onnx"));
    }

    #[test]
    fn reads_llama_and_gpt2_config_facts() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(&p, r#"{"model_type":"llama","num_hidden_layers":4,"intermediate_size":192,"hidden_size":64,"vocab_size":100}"#).unwrap();
        let c = ConfigFacts::read(&p).unwrap();
        assert_eq!(
            (c.n_layers, c.n_neurons, c.hidden_size, c.vocab_size),
            (Some(4), Some(192), Some(64), Some(100))
        );
        std::fs::write(
            &p,
            r#"{"model_type":"gpt2","n_layer":2,"n_inner":null,"n_embd":16,"vocab_size":50}"#,
        )
        .unwrap();
        let c = ConfigFacts::read(&p).unwrap();
        assert_eq!((c.n_layers, c.n_neurons), (Some(2), Some(64)));
        std::fs::write(&p, b"{").unwrap();
        let e = ConfigFacts::read(&p).unwrap_err();
        assert_eq!(
            e.message,
            format!("config {} is not valid JSON", p.display())
        );
    }

    #[test]
    fn content_hash_depends_on_every_file_and_its_order() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::write(&a, b"ab").unwrap();
        std::fs::write(&b, b"c").unwrap();
        let ab = content_sha256(&[a.clone(), b.clone()]).unwrap();
        assert_ne!(ab, content_sha256(&[b.clone(), a.clone()]).unwrap());
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"bc").unwrap();
        assert_ne!(
            ab,
            content_sha256(&[a, b]).unwrap(),
            "lengths separate the files"
        );
    }
}
