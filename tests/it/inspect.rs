//! `valex inspect`: the written file matches the HF reference of the committed parity
//! fixtures (tests/fixtures/hf), tensor names and shapes as documented.

use std::collections::HashMap;

use valex_test_support::{Case, repo_root};

fn read(path: &std::path::Path) -> HashMap<String, (Vec<usize>, Vec<f64>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            let data: Vec<f64> = match v.dtype() {
                safetensors::Dtype::F32 => v
                    .data()
                    .chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
                    .collect(),
                safetensors::Dtype::I64 => v
                    .data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                other => panic!("{name}: dtype {other:?}"),
            };
            (name, (v.shape().to_vec(), data))
        })
        .collect()
}

#[test]
fn inspect_matches_the_hf_reference_of_each_fixture() {
    for arch in ["gpt2", "qwen2"] {
        let dir = repo_root().join("tests/fixtures/hf").join(arch);
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
        let mut args = vec![
            "inspect".to_owned(),
            "--model".to_owned(),
            dir.display().to_string(),
            "--out".to_owned(),
            "dump.safetensors".to_owned(),
        ];
        for t in meta["texts"].as_array().unwrap() {
            args.push("--text".to_owned());
            args.push(t.as_str().unwrap().to_owned());
        }
        let case = Case::new().args(&args);
        let out = case.assert_exit(0);
        assert!(out.stdout.starts_with("wrote "), "{}", out.stdout);
        let got = read(&case.path().join("dump.safetensors"));
        let want = read(&dir.join("reference.safetensors"));
        assert_eq!(got["input_ids"], want["right.input_ids"], "{arch}");
        let mask = &got["attention_mask"];
        assert_eq!(mask, &want["right.attention_mask"], "{arch}");
        let mut compared = 0;
        for (name, (shape, values)) in &got {
            if name == "input_ids" || name == "attention_mask" {
                continue;
            }
            let (wshape, wvalues) = &want[&format!("right.{name}")];
            assert_eq!(shape, wshape, "{arch} {name}");
            let width = shape[2];
            let (mut diff, mut scale) = (0.0_f64, 0.0_f64);
            for (i, &m) in mask.1.iter().enumerate() {
                let range = i * width..(i + 1) * width;
                if m == 1.0 {
                    for (a, b) in values[range.clone()].iter().zip(&wvalues[range]) {
                        diff = diff.max((a - b).abs());
                        scale = scale.max(b.abs());
                    }
                } else {
                    assert!(values[range].iter().all(|&x| x == 0.0), "padding is 0");
                }
            }
            assert!(
                diff / scale <= 1e-4,
                "{arch} {name}: relative error {}",
                diff / scale
            );
            compared += 1;
        }
        let taps = if arch == "gpt2" { 2 } else { 4 };
        assert_eq!(
            compared,
            1 + 2 * taps,
            "{arch}: logits and every layer x tap"
        );
        // No overwrite without --force; unknown taps are usage errors.
        case.assert_exit(2);
        let bad = Case::new().args([
            "inspect",
            "--model",
            dir.to_str().unwrap(),
            "--text",
            "the cat",
            "--taps",
            "mlp.nope",
            "--out",
            "x.safetensors",
        ]);
        let out = bad.assert_exit(2);
        assert!(out.stderr.contains("tap \"mlp.nope\""), "{}", out.stderr);
        assert!(!bad.path().join("x.safetensors").exists());
    }
}
