//! Load errors name the file and the tensor or key; sharded checkpoints; config variants.

use std::path::Path;

use valex_backend_candle::CandleLoader;
use valex_core::ErrorClass;

use crate::fixture::{Tiny, safetensors_bytes, tokenizer_json};
use crate::max_diff;

fn load_err(dir: &Path) -> valex_core::ComponentError {
    match CandleLoader::for_dir(dir).load_backend() {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => {
            assert_eq!(e.class, ErrorClass::Input, "{e}");
            assert!(!e.message.contains('\n'), "one line: {e}");
            e
        }
    }
}

fn write_weights(dir: &Path, t: &[(String, Vec<usize>, Vec<f32>)]) {
    std::fs::write(dir.join("model.safetensors"), safetensors_bytes(t)).unwrap();
}

#[test]
fn wrong_tensor_shape_names_file_tensor_and_shapes() {
    let m = Tiny::llama();
    let dir = m.temp_dir();
    let mut t = m.tensors();
    let g = t
        .iter_mut()
        .find(|x| x.0 == "model.layers.1.mlp.gate_proj.weight")
        .unwrap();
    g.1 = vec![32, 64];
    write_weights(dir.path(), &t);
    let e = load_err(dir.path());
    assert_eq!(
        e.message,
        format!(
            "model file {}: tensor model.layers.1.mlp.gate_proj.weight has shape [32, 64], expected [64, 32]",
            dir.path().join("model.safetensors").display()
        )
    );
}

#[test]
fn missing_tensor_is_named() {
    let m = Tiny::llama();
    let dir = m.temp_dir();
    let t: Vec<_> = m
        .tensors()
        .into_iter()
        .filter(|x| x.0 != "lm_head.weight")
        .collect();
    write_weights(dir.path(), &t);
    let e = load_err(dir.path());
    assert_eq!(
        e.message,
        format!(
            "model file {}: tensor lm_head.weight is missing",
            dir.path().join("model.safetensors").display()
        )
    );
    // qwen2 without q bias.
    let q = Tiny::qwen2();
    let dir = q.temp_dir();
    let t: Vec<_> = q
        .tensors()
        .into_iter()
        .filter(|x| x.0 != "model.layers.0.self_attn.q_proj.bias")
        .collect();
    write_weights(dir.path(), &t);
    assert!(
        load_err(dir.path())
            .message
            .ends_with("tensor model.layers.0.self_attn.q_proj.bias is missing")
    );
}

#[test]
fn unsupported_model_type_lists_supported_ones() {
    let m = Tiny::llama();
    let dir = m.temp_dir();
    let mut c = m.config_json();
    c["model_type"] = "gpt_neox".into();
    std::fs::write(dir.path().join("config.json"), c.to_string()).unwrap();
    let e = load_err(dir.path());
    assert_eq!(
        e.message,
        format!(
            "config {}: key model_type is \"gpt_neox\"; supported: llama, qwen2, mistral, gpt2",
            dir.path().join("config.json").display()
        )
    );
}

#[test]
fn pickle_only_directory_asks_for_safetensors() {
    let m = Tiny::llama();
    let dir = m.temp_dir();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("pytorch_model.bin"), b"not loaded").unwrap();
    let e = load_err(dir.path());
    assert!(
        e.message.starts_with(&format!(
            "model directory {} has only PyTorch pickle",
            dir.path().display()
        )),
        "{e}"
    );
    assert!(
        e.message.contains("pytorch_model.bin")
            && e.message.contains("convert them to safetensors"),
        "{e}"
    );
    std::fs::remove_file(dir.path().join("pytorch_model.bin")).unwrap();
    assert!(
        load_err(dir.path())
            .message
            .ends_with("no model.safetensors or model.safetensors.index.json")
    );
}

#[test]
fn unreadable_tokenizer_names_the_file() {
    let m = Tiny::llama();
    let dir = m.temp_dir();
    let tok = dir.path().join("tokenizer.json");
    std::fs::write(&tok, "{\"model\": 3}").unwrap();
    let e = load_err(dir.path());
    assert_eq!(
        e.message,
        format!("tokenizer {} could not be read", tok.display())
    );
    assert!(
        std::error::Error::source(&e).is_some(),
        "the parser's cause is kept"
    );
    std::fs::remove_file(&tok).unwrap();
    let e = load_err(dir.path());
    assert_eq!(
        e.message,
        format!("tokenizer {} could not be read", tok.display())
    );
}

#[test]
fn missing_directory_and_bad_config_json_are_named() {
    let e = load_err(Path::new("/nonexistent/valex-model"));
    assert_eq!(
        e.message,
        "model directory /nonexistent/valex-model does not exist or is not a directory"
    );
    let m = Tiny::llama();
    let dir = m.temp_dir();
    std::fs::write(dir.path().join("config.json"), "{").unwrap();
    let e = load_err(dir.path());
    assert!(e.message.starts_with(&format!(
        "config {} is not valid JSON",
        dir.path().join("config.json").display()
    )));
}

fn write_sharded(
    m: &Tiny,
    dir: &Path,
    drop_from_index: Option<&str>,
    drop_from_shard: Option<&str>,
) {
    let t = m.tensors();
    let (a, b) = t.split_at(t.len() / 2);
    let names = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    let mut map = serde_json::Map::new();
    for (part, name) in [a, b].iter().zip(names) {
        for x in part.iter() {
            if Some(x.0.as_str()) != drop_from_index {
                map.insert(x.0.clone(), name.into());
            }
        }
        let kept: Vec<_> = part
            .iter()
            .filter(|x| Some(x.0.as_str()) != drop_from_shard)
            .cloned()
            .collect();
        std::fs::write(dir.join(name), safetensors_bytes(&kept)).unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("config.json"), m.config_json().to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json().to_string()).unwrap();
}

#[test]
fn sharded_checkpoint_loads_like_a_single_file() {
    let m = Tiny::llama();
    let single = m.temp_dir();
    let sharded = tempfile::tempdir().unwrap();
    write_sharded(&m, sharded.path(), None, None);
    let ids = vec![vec![1, 3, 4, 5, 6]];
    let a = CandleLoader::for_dir(single.path()).load_backend().unwrap();
    let loader = CandleLoader::for_dir(sharded.path());
    use valex_core::BackendLoader;
    let files = loader.input_files();
    assert_eq!(files.len(), 4, "config, two shards, tokenizer: {files:?}");
    assert!(files[1].ends_with("model-00001-of-00002.safetensors"));
    let b = loader.load_backend().unwrap();
    let da = a.forward_taps(&ids, "mlp.gate_act", None).unwrap();
    let db = b.forward_taps(&ids, "mlp.gate_act", None).unwrap();
    assert_eq!(max_diff(&da.logits[0], &db.logits[0]), 0.0);
}

#[test]
fn sharded_errors_name_index_or_shard() {
    let m = Tiny::llama();
    let dir = tempfile::tempdir().unwrap();
    write_sharded(&m, dir.path(), Some("model.norm.weight"), None);
    let e = load_err(dir.path());
    assert_eq!(
        e.message,
        format!(
            "model index {}: tensor model.norm.weight is missing from weight_map",
            dir.path().join("model.safetensors.index.json").display()
        )
    );
    let dir = tempfile::tempdir().unwrap();
    write_sharded(
        &m,
        dir.path(),
        None,
        Some("model.layers.0.mlp.up_proj.weight"),
    );
    let e = load_err(dir.path());
    assert_eq!(
        e.message,
        format!(
            "model file {}: tensor model.layers.0.mlp.up_proj.weight is missing",
            dir.path()
                .join("model-00001-of-00002.safetensors")
                .display()
        )
    );
}

#[test]
fn mistral_sliding_window_limits_attention_span() {
    let m = Tiny {
        model_type: "mistral",
        ..Tiny::llama()
    };
    let dir = m.temp_dir();
    let ids = vec![vec![1, 3, 4, 5, 6, 7, 8, 9]];
    let full = CandleLoader::for_dir(dir.path()).load_backend().unwrap();
    let full = full.forward_taps(&ids, "mlp.gate_act", None).unwrap();
    let mut c = m.config_json();
    c["sliding_window"] = 3.into();
    std::fs::write(dir.path().join("config.json"), c.to_string()).unwrap();
    let windowed = CandleLoader::for_dir(dir.path()).load_backend().unwrap();
    let win = windowed.forward_taps(&ids, "mlp.gate_act", None).unwrap();
    // Positions 0..3 see at most 3 keys either way; later ones lose their early keys.
    assert!(max_diff(&full.logits[0][..3], &win.logits[0][..3]) < 1e-6);
    assert!(max_diff(&full.logits[0][3..], &win.logits[0][3..]) > 1e-3);
}

#[test]
fn llama3_rope_scaling_is_accepted_and_unknown_scaling_rejected() {
    let m = Tiny::llama();
    let dir = m.temp_dir();
    let mut c = m.config_json();
    c["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 16});
    std::fs::write(dir.path().join("config.json"), c.to_string()).unwrap();
    assert!(CandleLoader::for_dir(dir.path()).load_backend().is_ok());
    c["rope_scaling"] = serde_json::json!({"rope_type": "dynamic", "factor": 2.0});
    std::fs::write(dir.path().join("config.json"), c.to_string()).unwrap();
    assert!(
        load_err(dir.path())
            .message
            .contains("key rope_scaling.rope_type is \"dynamic\"; supported: default, llama3")
    );
}
