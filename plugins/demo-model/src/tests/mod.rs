//! Tests of the shipped files, the tokenizer and the dataset; `circuit.rs` checks the
//! planted circuit with the reference forward.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::*;

mod circuit;
mod dataset;

/// One line of demo.jsonl (mirrors `valex_core::Item`, which this crate must not depend on).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DemoItem {
    pub id: String,
    pub value: String,
    pub language: String,
    pub kind: String,
    pub story: String,
    pub rationale: Option<String>,
    pub aligned: String,
    pub violating: String,
    pub conflict_motive: Option<String>,
    pub parallel_id: Option<String>,
}

/// `experiments/value-study/data/demo.jsonl`.
pub(crate) fn demo_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/value-study/data/demo.jsonl")
}

/// The raw lines of the dataset.
pub(crate) fn demo_lines() -> Vec<String> {
    let text = std::fs::read_to_string(demo_path())
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", demo_path().display()));
    text.lines().map(str::to_owned).collect()
}

/// The dataset, parsed.
pub(crate) fn demo_items() -> Vec<DemoItem> {
    demo_lines()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("demo.jsonl line {}: {e}", i + 1))
        })
        .collect()
}

/// The model, built once per test binary.
pub(crate) fn files() -> &'static ModelFiles {
    static FILES: OnceLock<ModelFiles> = OnceLock::new();
    FILES.get_or_init(build)
}

/// The demo tokenizer through `tokenizers` 0.23.
pub(crate) fn tokenizer() -> &'static tokenizers::Tokenizer {
    static TOK: OnceLock<tokenizers::Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        tokenizers::Tokenizer::from_bytes(&files().tokenizer_json).expect("tokenizer.json loads")
    })
}

/// Token ids of `text`, with `<s>` when `bos`.
pub(crate) fn encode(text: &str, bos: bool) -> Vec<u32> {
    tokenizer()
        .encode(text, bos)
        .expect("encoding succeeds")
        .get_ids()
        .to_vec()
}

/// Tokens (strings) of `text` with `<s>`.
fn tokens(text: &str) -> Vec<String> {
    tokenizer()
        .encode(text, true)
        .expect("encoding succeeds")
        .get_tokens()
        .to_vec()
}

/// FNV-1a (64-bit) over the three files, separated by their lengths.
fn fingerprint(f: &ModelFiles) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for part in [&f.config_json, &f.tokenizer_json, &f.safetensors] {
        for b in (part.len() as u64).to_le_bytes().iter().chain(part.iter()) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3);
        }
    }
    h
}

/// The model's fingerprint on the machine that last changed the construction. A different
/// value elsewhere means the build is not machine-independent; after a deliberate change
/// (weights, vocab.txt), update it together with the numbers in README.md.
const FINGERPRINT: u64 = 0xb9b0_bb7b_516d_955a;

#[test]
fn build_is_deterministic_and_matches_the_recorded_fingerprint() {
    let (a, b) = (build(), build());
    assert!(a == b, "two builds differ");
    assert_eq!(
        fingerprint(&a),
        FINGERPRINT,
        "model bytes changed: fingerprint {:#018x}",
        fingerprint(&a)
    );
}

#[test]
fn config_json_has_llama_fields() {
    let cfg: serde_json::Value =
        serde_json::from_slice(&files().config_json).expect("config parses");
    assert_eq!(cfg["model_type"], "llama");
    assert_eq!(cfg["architectures"][0], "LlamaForCausalLM");
    assert_eq!(cfg["hidden_size"], HIDDEN_SIZE);
    assert_eq!(cfg["intermediate_size"], INTERMEDIATE_SIZE);
    assert_eq!(cfg["num_hidden_layers"], N_LAYERS);
    assert_eq!(cfg["num_attention_heads"], N_HEADS);
    assert_eq!(cfg["num_key_value_heads"], N_KV_HEADS);
    assert_eq!(cfg["head_dim"], HEAD_DIM);
    assert_eq!(cfg["hidden_act"], "silu");
    assert_eq!(cfg["tie_word_embeddings"], false);
    assert_eq!(cfg["torch_dtype"], "float32");
    assert_eq!(cfg["bos_token_id"], BOS_ID);
    assert_eq!(cfg["eos_token_id"], EOS_ID);
    assert_eq!(cfg["vocab_size"], vocabulary().len());
    assert_eq!(cfg["rope_theta"].as_f64(), Some(10_000.0));
    assert!((cfg["rms_norm_eps"].as_f64().expect("eps") - 1e-6).abs() < 1e-12);
}

#[test]
fn safetensors_holds_every_llama_tensor_with_hf_shapes() {
    let st = safetensors::SafeTensors::deserialize(&files().safetensors).expect("parses");
    let v = vocabulary().len();
    let (h, i) = (HIDDEN_SIZE, INTERMEDIATE_SIZE);
    let mut expected = vec![
        ("model.embed_tokens.weight".to_owned(), vec![v, h]),
        ("model.norm.weight".to_owned(), vec![h]),
        ("lm_head.weight".to_owned(), vec![v, h]),
    ];
    for l in 0..N_LAYERS {
        let p = format!("model.layers.{l}");
        expected.extend([
            (
                format!("{p}.self_attn.q_proj.weight"),
                vec![N_HEADS * HEAD_DIM, h],
            ),
            (
                format!("{p}.self_attn.k_proj.weight"),
                vec![N_KV_HEADS * HEAD_DIM, h],
            ),
            (
                format!("{p}.self_attn.v_proj.weight"),
                vec![N_KV_HEADS * HEAD_DIM, h],
            ),
            (
                format!("{p}.self_attn.o_proj.weight"),
                vec![h, N_HEADS * HEAD_DIM],
            ),
            (format!("{p}.mlp.gate_proj.weight"), vec![i, h]),
            (format!("{p}.mlp.up_proj.weight"), vec![i, h]),
            (format!("{p}.mlp.down_proj.weight"), vec![h, i]),
            (format!("{p}.input_layernorm.weight"), vec![h]),
            (format!("{p}.post_attention_layernorm.weight"), vec![h]),
        ]);
    }
    assert_eq!(st.len(), expected.len());
    for (name, shape) in expected {
        let t = st.tensor(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
        assert_eq!(t.shape(), shape.as_slice(), "{name}");
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&files().safetensors).expect("header");
    assert_eq!(
        meta.metadata()
            .as_ref()
            .and_then(|m| m.get("format"))
            .map(String::as_str),
        Some("pt")
    );
}

#[test]
fn planted_neurons_are_six_distinct_per_value_in_layers_one_to_three() {
    let p = planted_neurons();
    assert_eq!(p.len(), 12);
    let mut all = std::collections::HashSet::new();
    for ((name, ns), (zh, _)) in p.iter().zip(VALUES) {
        assert_eq!(name, zh);
        assert_eq!(ns.len(), PLANTED_LAYERS.len() * PLANTED_PER_VALUE_PER_LAYER);
        for &(l, n) in ns {
            assert!(PLANTED_LAYERS.contains(&l) && (n as usize) < INTERMEDIATE_SIZE);
            assert!(all.insert((l, n)), "({l}, {n}) planted twice");
        }
    }
    assert_eq!(all.len(), N_PLANTED);
    assert_eq!(
        (PLANTED_TOP_RATE * (N_LAYERS * INTERMEDIATE_SIZE) as f64).round() as usize,
        N_PLANTED
    );
}

#[test]
fn write_dir_writes_the_three_files() {
    let dir = std::env::temp_dir().join(format!("valex-demo-model-test-{}", std::process::id()));
    write_dir(&dir).expect("write_dir");
    assert_eq!(
        std::fs::read(dir.join("config.json")).expect("config"),
        files().config_json
    );
    assert_eq!(
        std::fs::read(dir.join("tokenizer.json")).expect("tokenizer"),
        files().tokenizer_json
    );
    assert_eq!(
        std::fs::read(dir.join("model.safetensors")).expect("weights"),
        files().safetensors
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn tokenizer_keeps_chinese_keywords_whole_and_splits_other_han_characters() {
    assert_eq!(
        tokens("小王一向诚实，不说假话。"),
        [
            "<s>", "小", "王", "一", "向", "诚实", ",", "不", "说", "假", "话", "。"
        ]
    );
    assert_eq!(
        tokens("兢兢业业的工人"),
        ["<s>", "兢兢业业", "的", "工", "人"]
    );
}

#[test]
fn tokenizer_lowercases_english_and_isolates_punctuation() {
    assert_eq!(
        tokens("Tell the TRUTH, honestly!"),
        ["<s>", "tell", "the", "truth", ",", "honestly", "!"]
    );
    assert_eq!(tokens("Reason: fair"), ["<s>", "reason", ":", "fair"]);
}

#[test]
fn tokenizer_prepends_bos_and_maps_unknown_text_to_unk() {
    let ids = encode("zzqx 龘", true);
    assert_eq!(ids, [BOS_ID, UNK_ID, UNK_ID]);
    assert_eq!(encode("honest", false).len(), 1);
}

#[test]
fn demo_items_encode_without_unk() {
    for item in demo_items() {
        let texts = [
            Some(&item.story),
            item.rationale.as_ref(),
            Some(&item.aligned),
            Some(&item.violating),
        ];
        for t in texts.into_iter().flatten() {
            assert!(
                !encode(t, true).contains(&UNK_ID),
                "{}: [UNK] in {t:?}",
                item.id
            );
        }
    }
    for template in [
        "\n理由：",
        "\nReason: ",
        "情境：\nA. \nB. \n我的选择：",
        "Situation: \nA. \nB. \nMy choice:",
        "选项A：选项B：",
        "Which option would you choose? Answer:",
    ] {
        assert!(
            !encode(template, true).contains(&UNK_ID),
            "[UNK] in prompt text {template:?}"
        );
    }
}
