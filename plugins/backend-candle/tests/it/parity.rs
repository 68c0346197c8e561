//! Parity with HF transformers: the committed fixtures of tests/fixtures/make_reference.py
//! (tiny random-weight models built with the real HF classes) and their reference logits and
//! taps for a right-padded and a left-padded batch.

use std::path::{Path, PathBuf};

use valex_backend_candle::{CandleLoader, Padding, Tap};
use valex_core::ModelBackend;

/// Every fixture architecture; each must be present (they are committed).
const ARCHES: [&str; 5] = ["llama", "qwen2", "mistral", "llama3", "gpt2"];

/// Relative error bound of the issue: `max |ours - hf| / max |hf|` per tensor.
const REL_TOL: f32 = 1e-4;

pub fn fixture_dir(arch: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/hf")
        .join(arch)
}

/// A reference tensor as f32 (or i64 cast to f32) with its shape.
pub struct RefTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

pub fn read_reference(dir: &Path) -> std::collections::HashMap<String, RefTensor> {
    let bytes = std::fs::read(dir.join("reference.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            let data: Vec<f32> = match v.dtype() {
                safetensors::Dtype::F32 => v
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                safetensors::Dtype::I64 => v
                    .data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (
                name,
                RefTensor {
                    shape: v.shape().to_vec(),
                    data,
                },
            )
        })
        .collect()
}

/// Rows (real tokens only) and each row's first real index, from ids + mask.
fn rows_of(ids: &RefTensor, mask: &RefTensor) -> (Vec<Vec<u32>>, Vec<usize>) {
    let (n, seq) = (ids.shape[0], ids.shape[1]);
    let mut rows = Vec::new();
    let mut starts = Vec::new();
    for b in 0..n {
        let r: Vec<usize> = (0..seq)
            .filter(|&t| mask.data[b * seq + t] == 1.0)
            .collect();
        starts.push(r[0]);
        rows.push(r.iter().map(|&t| ids.data[b * seq + t] as u32).collect());
    }
    (rows, starts)
}

/// `max |a - b| / max |b|` over the real positions of every row.
fn rel_err(
    ours: &[f32],
    hf: &[f32],
    width: usize,
    seq: usize,
    starts: &[usize],
    lens: &[usize],
) -> f32 {
    let (mut diff, mut scale) = (0.0_f32, 0.0_f32);
    for (b, (&s, &len)) in starts.iter().zip(lens).enumerate() {
        let range = (b * seq + s) * width..(b * seq + s + len) * width;
        for (x, y) in ours[range.clone()].iter().zip(&hf[range]) {
            diff = diff.max((x - y).abs());
            scale = scale.max(y.abs());
        }
    }
    assert!(scale > 0.1, "reference values are far from zero ({scale})");
    diff / scale
}

#[test]
fn every_architecture_matches_hf_logits_and_taps_with_both_paddings() {
    for arch in ARCHES {
        let dir = fixture_dir(arch);
        let reference = read_reference(&dir);
        let b = CandleLoader::for_dir(&dir).load_backend().unwrap();
        let caps = b.capabilities();
        let taps: Vec<Tap> = caps.taps.iter().map(|t| b.tap(t).unwrap()).collect();
        let n_layers = b.info().n_layers;
        for (side, padding) in [("right", Padding::Right), ("left", Padding::Left)] {
            let ids = &reference[&format!("{side}.input_ids")];
            let mask = &reference[&format!("{side}.attention_mask")];
            let (rows, starts) = rows_of(ids, mask);
            let d = b.forward_dump(&rows, &taps, None, padding).unwrap();
            assert_eq!(d.starts, starts, "{arch} {side}: same padding layout as HF");
            assert_eq!(d.seq, ids.shape[1]);
            let hf = &reference[&format!("{side}.logits")];
            let e = rel_err(&d.logits, &hf.data, d.vocab, d.seq, &d.starts, &d.lens);
            assert!(e <= REL_TOL, "{arch} {side}: logits relative error {e:e}");
            let mut checked = 0;
            for (tap, layer, width, values) in &d.taps {
                let key = format!("{side}.layers.{layer}.{}", tap.name());
                let hf = reference
                    .get(&key)
                    .unwrap_or_else(|| panic!("{arch}: reference lacks {key}"));
                assert_eq!(hf.shape, [rows.len(), d.seq, *width], "{arch} {key}");
                let e = rel_err(values, &hf.data, *width, d.seq, &d.starts, &d.lens);
                assert!(e <= REL_TOL, "{arch} {key}: relative error {e:e}");
                checked += 1;
            }
            assert_eq!(
                checked,
                n_layers * taps.len(),
                "{arch}: every layer and tap"
            );
        }
    }
}

#[test]
fn hf_tokenizers_and_chat_template_give_the_reference_ids() {
    for arch in ARCHES {
        let dir = fixture_dir(arch);
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
        let b = CandleLoader::for_dir(&dir).load_backend().unwrap();
        for (text, row) in meta["texts"]
            .as_array()
            .unwrap()
            .iter()
            .zip(meta["rows"].as_array().unwrap())
        {
            let want: Vec<u32> = serde_json::from_value(row.clone()).unwrap();
            assert_eq!(
                b.encode(text.as_str().unwrap()).unwrap().ids,
                want,
                "{arch}"
            );
        }
        if let Some(prompt) = meta["chat_prompt"].as_str() {
            let want: Vec<u32> = serde_json::from_value(meta["chat_ids"].clone()).unwrap();
            let chat = CandleLoader::for_dir(&dir)
                .with_chat_template(None)
                .load_backend()
                .unwrap();
            let e = chat.encode(prompt).unwrap();
            assert_eq!(e.ids, want, "{arch}: apply_chat_template ids");
            // Offsets of the prompt's tokens point into the prompt.
            let words: Vec<&str> = e
                .offsets
                .iter()
                .filter(|(s, e)| e > s)
                .map(|&(s, e)| &prompt[s..e])
                .collect();
            assert_eq!(words.join(" "), prompt);
            // A reply follows the assistant header; its offsets continue after the prompt.
            let r = chat.encode_reply(prompt, "the cat").unwrap();
            assert_eq!(r.ids[..want.len()], want[..]);
            assert_eq!(r.ids.len(), want.len() + 2);
            let full = format!("{prompt}the cat");
            let last = r.offsets[r.offsets.len() - 1];
            assert_eq!(&full[last.0..last.1], "cat");
        }
    }
}

#[test]
fn inspect_returns_right_padded_tensors_with_zeroed_padding() {
    let dir = fixture_dir("gpt2");
    let mut b = CandleLoader::for_dir(&dir).load_backend().unwrap();
    let rows = vec![vec![1, 5, 6, 7, 8], vec![1, 9]];
    let taps = vec!["mlp.act".to_owned(), "mlp.pre".to_owned()];
    let ins = b.inspect(&rows, &taps).unwrap();
    let info = b.info().clone();
    assert_eq!((ins.seq, ins.lens.clone(), ins.vocab), (5, vec![5, 2], 40));
    assert_eq!(ins.logits.len(), 2 * 5 * 40);
    assert_eq!(ins.taps.len(), 2 * info.n_layers);
    assert_eq!(
        ins.taps
            .iter()
            .map(|t| (t.tap.as_str(), t.layer))
            .collect::<Vec<_>>(),
        [
            ("mlp.act", 0),
            ("mlp.act", 1),
            ("mlp.pre", 0),
            ("mlp.pre", 1)
        ]
    );
    for t in &ins.taps {
        assert_eq!(t.width, info.n_neurons);
        assert_eq!(t.values.len(), 2 * 5 * t.width);
        let pad = &t.values[(5 + 2) * t.width..];
        assert!(pad.iter().all(|&x| x == 0.0), "padding zeroed");
        assert!(t.values[..5 * t.width].iter().any(|&x| x != 0.0));
    }
    // Same numbers as the dump of the row alone.
    let alone = b.forward_taps(&rows[1..], "mlp.act", None).unwrap();
    let got = &ins.taps[0].values[5 * info.n_neurons..6 * info.n_neurons];
    let want = &alone.taps[0][0][0];
    let diff = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-5, "{diff}");
    // The file layout.
    let bytes = valex_backend_candle::inspection_safetensors(&ins, &rows).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("input_ids").unwrap().shape(), [2, 5]);
    assert_eq!(
        st.tensor("attention_mask").unwrap().data()[..8],
        1_i64.to_le_bytes()
    );
    assert_eq!(st.tensor("logits").unwrap().shape(), [2, 5, 40]);
    assert_eq!(st.tensor("layers.1.mlp.pre").unwrap().shape(), [2, 5, 48]);
    let e = b.inspect(&rows, &["mlp.gate_act".to_owned()]).unwrap_err();
    assert!(e.to_string().contains("supported: mlp.pre, mlp.act"), "{e}");
}
