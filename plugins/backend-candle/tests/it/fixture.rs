//! Tiny seeded random-weight models written as HF directories, plus a naive reference forward.

use std::path::Path;

use valex_core::SplitMix64;

/// Words of the test tokenizer (id = index); ids 0..3 are special.
pub const WORDS: [&str; 20] = [
    "<unk>", "<s>", "</s>", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "big",
    "red", "house", "and", "你好", "世界", "。", "!",
];

/// Shape and architecture switches of a tiny model.
#[derive(Debug, Clone)]
pub struct Tiny {
    pub model_type: &'static str,
    pub hidden: usize,
    pub inter: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub vocab: usize,
    pub tie: bool,
    pub qkv_bias: bool,
    pub seed: u64,
}

impl Tiny {
    pub fn llama() -> Self {
        Tiny {
            model_type: "llama",
            hidden: 32,
            inter: 64,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            vocab: 24,
            tie: false,
            qkv_bias: false,
            seed: 7,
        }
    }

    pub fn qwen2() -> Self {
        Tiny {
            model_type: "qwen2",
            hidden: 48,
            inter: 96,
            heads: 6,
            kv_heads: 2,
            tie: true,
            qkv_bias: true,
            seed: 11,
            ..Tiny::llama()
        }
    }

    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    pub fn config_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["X"],
            "model_type": self.model_type,
            "hidden_size": self.hidden,
            "intermediate_size": self.inter,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "vocab_size": self.vocab,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "hidden_act": "silu",
            "max_position_embeddings": 128,
            "tie_word_embeddings": self.tie,
            "torch_dtype": "float32"
        })
    }

    /// Seeded weights: `(name, shape, values)` in HF naming.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut rng = SplitMix64::new(self.seed);
        let mut uni = |n: usize, scale: f32, offset: f32| -> Vec<f32> {
            (0..n)
                .map(|_| offset + scale * (2.0 * rng.next_f64() as f32 - 1.0))
                .collect()
        };
        let (h, i, d) = (self.hidden, self.inter, self.head_dim());
        let (q, kv) = (self.heads * d, self.kv_heads * d);
        let w = 1.7 / (h as f32).sqrt();
        let mut t = vec![(
            "model.embed_tokens.weight".to_owned(),
            vec![self.vocab, h],
            uni(self.vocab * h, 1.0, 0.0),
        )];
        for l in 0..self.layers {
            let p = format!("model.layers.{l}");
            t.push((
                format!("{p}.input_layernorm.weight"),
                vec![h],
                uni(h, 0.2, 1.0),
            ));
            t.push((
                format!("{p}.self_attn.q_proj.weight"),
                vec![q, h],
                uni(q * h, w, 0.0),
            ));
            t.push((
                format!("{p}.self_attn.k_proj.weight"),
                vec![kv, h],
                uni(kv * h, w, 0.0),
            ));
            t.push((
                format!("{p}.self_attn.v_proj.weight"),
                vec![kv, h],
                uni(kv * h, w, 0.0),
            ));
            t.push((
                format!("{p}.self_attn.o_proj.weight"),
                vec![h, q],
                uni(h * q, w, 0.0),
            ));
            if self.qkv_bias {
                t.push((
                    format!("{p}.self_attn.q_proj.bias"),
                    vec![q],
                    uni(q, 0.3, 0.0),
                ));
                t.push((
                    format!("{p}.self_attn.k_proj.bias"),
                    vec![kv],
                    uni(kv, 0.3, 0.0),
                ));
                t.push((
                    format!("{p}.self_attn.v_proj.bias"),
                    vec![kv],
                    uni(kv, 0.3, 0.0),
                ));
            }
            t.push((
                format!("{p}.post_attention_layernorm.weight"),
                vec![h],
                uni(h, 0.2, 1.0),
            ));
            t.push((
                format!("{p}.mlp.gate_proj.weight"),
                vec![i, h],
                uni(i * h, w, 0.0),
            ));
            t.push((
                format!("{p}.mlp.up_proj.weight"),
                vec![i, h],
                uni(i * h, w, 0.0),
            ));
            let wd = 1.7 / (i as f32).sqrt();
            t.push((
                format!("{p}.mlp.down_proj.weight"),
                vec![h, i],
                uni(h * i, wd, 0.0),
            ));
        }
        t.push(("model.norm.weight".to_owned(), vec![h], uni(h, 0.2, 1.0)));
        if !self.tie {
            t.push((
                "lm_head.weight".to_owned(),
                vec![self.vocab, h],
                uni(self.vocab * h, w, 0.0),
            ));
        }
        t
    }

    /// Writes config.json, model.safetensors and tokenizer.json into `dir`.
    pub fn write_dir(&self, dir: &Path) {
        std::fs::write(dir.join("config.json"), self.config_json().to_string()).unwrap();
        std::fs::write(
            dir.join("model.safetensors"),
            safetensors_bytes(&self.tensors()),
        )
        .unwrap();
        std::fs::write(dir.join("tokenizer.json"), tokenizer_json().to_string()).unwrap();
    }

    /// A fresh temp dir holding this model.
    pub fn temp_dir(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        self.write_dir(dir.path());
        dir
    }
}

pub fn safetensors_bytes(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| {
            (
                n.clone(),
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .unwrap();
            (n.clone(), view)
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// A WordLevel tokenizer over [`WORDS`] with a whitespace pre-tokenizer that prepends `<s>`.
pub fn tokenizer_json() -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> = WORDS
        .iter()
        .enumerate()
        .map(|(i, w)| ((*w).to_owned(), serde_json::Value::from(i)))
        .collect();
    let special = |id: usize, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                           "rstrip": false, "normalized": false, "special": true})
    };
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    })
}
