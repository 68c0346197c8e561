//! Forward pass: agreement with the naive reference, padding invariance, dtypes, encoding.

use valex_backend_candle::CandleLoader;
use valex_core::{ModelBackend, NeuronEdit};

use crate::fixture::Tiny;
use crate::{load, max_diff, reference};

fn to_f32(v: &[Vec<f64>]) -> Vec<Vec<f32>> {
    v.iter()
        .map(|r| r.iter().map(|x| *x as f32).collect())
        .collect()
}

#[test]
fn llama_and_qwen2_match_the_naive_reference_forward() {
    for m in [Tiny::llama(), Tiny::qwen2()] {
        let (_d, b) = load(&m, 8);
        let ids = vec![1, 3, 4, 5, 6, 3, 7, 19];
        let dump = b
            .forward_taps(std::slice::from_ref(&ids), "mlp.gate_act", None)
            .unwrap();
        let r = reference::forward(&m, &ids, &[]);
        let dl = max_diff(&dump.logits[0], &to_f32(&r.logits));
        assert!(dl < 1e-4, "{}: logits differ by {dl}", m.model_type);
        for l in 0..m.layers {
            let dt = max_diff(&dump.taps[l][0], &to_f32(&r.gate_act[l]));
            assert!(
                dt < 1e-4,
                "{}: layer {l} gate_act differs by {dt}",
                m.model_type
            );
        }
        // The reference depends on position: a permuted input must give other logits.
        let other = reference::forward(&m, &[1, 4, 3, 5, 6, 3, 7, 19], &[]);
        assert!(max_diff(&dump.logits[0], &to_f32(&other.logits)) > 1e-3);
    }
}

#[test]
fn a_text_alone_and_in_a_padded_batch_give_the_same_logits_and_taps() {
    for m in [Tiny::llama(), Tiny::qwen2()] {
        let (_d, b) = load(&m, 8);
        let short = vec![1, 4, 5, 6];
        let long = vec![1, 3, 12, 13, 14, 15, 9, 10, 11, 7, 16];
        let mid = vec![1, 17, 18, 8, 9, 3, 4];
        for tap in ["mlp.gate_act", "mlp.gate_pre", "mlp.up", "mlp.act_x_up"] {
            let alone = b
                .forward_taps(std::slice::from_ref(&short), tap, None)
                .unwrap();
            let batch = b
                .forward_taps(&[long.clone(), short.clone(), mid.clone()], tap, None)
                .unwrap();
            let dl = max_diff(&alone.logits[0], &batch.logits[1]);
            assert!(dl < 1e-5, "{} {tap}: logits differ by {dl}", m.model_type);
            for l in 0..m.layers {
                let dt = max_diff(&alone.taps[l][0], &batch.taps[l][1]);
                assert!(
                    dt < 1e-5,
                    "{} {tap}: layer {l} differs by {dt}",
                    m.model_type
                );
            }
            assert_eq!(
                batch.taps[0][1].len(),
                short.len(),
                "taps trimmed to real tokens"
            );
        }
    }
}

#[test]
fn gate_act_edit_matches_the_reference_and_changes_logits() {
    let m = Tiny::llama();
    let (_d, b) = load(&m, 8);
    let ids = vec![1, 3, 4, 5, 6, 7];
    let edit = NeuronEdit::multiply(
        "mlp.gate_act",
        vec![vec![(5, 0.0), (9, 3.0)], vec![(2, 0.5)]],
    );
    let dump = b
        .forward_taps(std::slice::from_ref(&ids), "mlp.gate_act", Some(&edit))
        .unwrap();
    let r = reference::forward(&m, &ids, &[(0, 5, 0.0), (0, 9, 3.0), (1, 2, 0.5)]);
    assert!(max_diff(&dump.logits[0], &to_f32(&r.logits)) < 1e-4);
    assert!(dump.taps[0][0].iter().all(|row| row[5] == 0.0));
    let plain = b.forward_taps(&[ids], "mlp.gate_act", None).unwrap();
    assert!(max_diff(&dump.logits[0], &plain.logits[0]) > 1e-3);
}

#[test]
fn bf16_and_f16_stay_close_to_f32() {
    let m = Tiny::qwen2();
    let dir = m.temp_dir();
    let ids = vec![vec![1, 3, 4, 5, 6, 7, 8], vec![1, 16, 17]];
    let f32_dump = CandleLoader::for_dir(dir.path())
        .load_backend()
        .unwrap()
        .forward_taps(&ids, "mlp.gate_act", None)
        .unwrap();
    for dtype in [candle_core::DType::BF16, candle_core::DType::F16] {
        let b = CandleLoader::for_dir(dir.path())
            .with_dtype(dtype)
            .load_backend()
            .unwrap();
        let d = b.forward_taps(&ids, "mlp.gate_act", None).unwrap();
        for row in 0..2 {
            let dl = max_diff(&f32_dump.logits[row], &d.logits[row]);
            assert!(dl < 0.15, "{dtype:?}: logits differ by {dl}");
            assert!(
                dl > 0.0,
                "{dtype:?}: reduced precision must change something"
            );
        }
    }
}

#[test]
fn encode_returns_byte_offsets_and_bos() {
    let (_d, b) = load(&Tiny::llama(), 8);
    let text = "你好 世界 。 the cat";
    let e = b.encode(text).unwrap();
    assert_eq!(e.ids, [1, 16, 17, 18, 3, 4]);
    assert_eq!(
        e.offsets,
        [(0, 0), (0, 6), (7, 13), (14, 17), (18, 21), (22, 25)]
    );
    assert_eq!(&text[e.offsets[2].0..e.offsets[2].1], "世界");
    assert_eq!(
        b.encode("zebra").unwrap().ids,
        [1, 0],
        "unknown words map to <unk>"
    );
}

#[test]
fn capabilities_and_info_describe_the_model() {
    let m = Tiny::qwen2();
    let (dir, b) = load(&m, 8);
    let caps = b.capabilities();
    assert!(caps.taps.contains(&"mlp.gate_act".to_owned()));
    assert_eq!(
        caps.taps,
        ["mlp.gate_pre", "mlp.gate_act", "mlp.up", "mlp.act_x_up"]
    );
    assert_eq!(caps.intervention_taps, caps.taps, "every tap accepts edits");
    let info = b.info();
    assert_eq!(
        (
            info.architecture.as_str(),
            info.n_layers,
            info.n_neurons,
            info.hidden_size,
            info.vocab_size
        ),
        ("qwen2", 2, 96, 48, 24)
    );
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        h.update(std::fs::read(dir.path().join(f)).unwrap());
    }
    assert_eq!(info.content_sha256, hex::encode(h.finalize()));
}

#[test]
fn builtin_planted_demo_loads_through_the_same_path() {
    use valex_core::{FactoryContext, ScoreRequest};
    let mut b = valex_core::RegistryBuilder::new();
    b.add_plugin(&valex_backend_candle::CandlePlugin).unwrap();
    let loader = b
        .build()
        .backend(
            "backend/candle",
            &serde_json::json!({"path": "builtin:planted-demo"}),
            &FactoryContext::default(),
        )
        .unwrap();
    assert!(loader.input_files().is_empty());
    let mut m = loader.load().unwrap();
    let info = m.info().clone();
    assert_eq!(
        (info.architecture.as_str(), info.n_layers, info.n_neurons),
        ("llama", 4, 192)
    );
    use sha2::Digest;
    let f = valex_demo_model::build();
    let mut h = sha2::Sha256::new();
    for part in [&f.config_json, &f.safetensors, &f.tokenizer_json] {
        h.update(part);
    }
    assert_eq!(info.content_sha256, hex::encode(h.finalize()));
    let e = m.encode("诚信").unwrap();
    assert!(e.ids.len() >= 2, "{e:?}");
    let s = m
        .score(
            &[ScoreRequest {
                context: e.ids.clone(),
                continuation: e.ids[1..].to_vec(),
            }],
            None,
        )
        .unwrap();
    assert!(s[0].iter().all(|x| x.is_finite() && *x <= 0.0), "{s:?}");
}
