//! Interventions at every tap: equivalences with weight edits, and where an edit shows.

use valex_backend_candle::{CandleLoader, Padding, Tap};
use valex_core::{ModelBackend, NeuronEdit, NeuronOp};

use crate::fixture::Tiny;
use crate::parity::fixture_dir;
use crate::{load, max_diff};

fn edit(tap: &str, layer: usize, pairs: &[(u32, f32)]) -> NeuronEdit {
    let mut layers = vec![Vec::new(); layer + 1];
    layers[layer] = pairs.to_vec();
    NeuronEdit::multiply(tap, layers)
}

#[test]
fn zeroing_a_gate_act_neuron_equals_zeroing_its_down_projection_column() {
    let m = Tiny::llama();
    let (_d, b) = load(&m, 8);
    let (layer, j) = (1, 17);
    let ids = vec![vec![1, 3, 4, 5, 6, 7, 8], vec![1, 9, 10]];
    let edited = b
        .forward_taps(
            &ids,
            "mlp.gate_act",
            Some(&edit("mlp.gate_act", layer, &[(j, 0.0)])),
        )
        .unwrap();
    let mut t = m.tensors();
    let down = t
        .iter_mut()
        .find(|x| x.0 == format!("model.layers.{layer}.mlp.down_proj.weight"))
        .unwrap();
    for row in 0..m.hidden {
        down.2[row * m.inter + j as usize] = 0.0; // [hidden, inter]: column j
    }
    let dir = m.temp_dir();
    std::fs::write(
        dir.path().join("model.safetensors"),
        crate::fixture::safetensors_bytes(&t),
    )
    .unwrap();
    let cut = CandleLoader::for_dir(dir.path()).load_backend().unwrap();
    let plain = cut.forward_taps(&ids, "mlp.gate_act", None).unwrap();
    for r in 0..2 {
        let d = max_diff(&edited.logits[r], &plain.logits[r]);
        assert!(d < 1e-5, "row {r}: {d}");
    }
    let unedited = b.forward_taps(&ids, "mlp.gate_act", None).unwrap();
    assert!(
        max_diff(&unedited.logits[0], &plain.logits[0]) > 1e-4,
        "the edit matters"
    );
}

#[test]
fn zeroing_a_gpt2_act_neuron_equals_zeroing_its_c_proj_row() {
    let src = fixture_dir("gpt2");
    let b = CandleLoader::for_dir(&src).load_backend().unwrap();
    let (layer, j) = (0, 5_usize);
    let ids = vec![vec![1, 5, 14, 15, 11, 12]];
    let edited = b
        .forward_taps(
            &ids,
            "mlp.act",
            Some(&edit("mlp.act", layer, &[(j as u32, 0.0)])),
        )
        .unwrap();
    assert!(edited.taps[layer][0].iter().all(|pos| pos[j] == 0.0));
    // Conv1D c_proj weight is [inter, hidden]: neuron j is row j.
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let target = format!("transformer.h.{layer}.mlp.c_proj.weight");
    let mut owned: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (name, v) in st.tensors() {
        let mut data: Vec<f32> = v
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        if name == target {
            let h = v.shape()[1];
            data[j * h..(j + 1) * h].fill(0.0);
        }
        owned.push((name, v.shape().to_vec(), data));
    }
    std::fs::write(
        dir.path().join("model.safetensors"),
        crate::fixture::safetensors_bytes(&owned),
    )
    .unwrap();
    let cut = CandleLoader::for_dir(dir.path()).load_backend().unwrap();
    let plain = cut.forward_taps(&ids, "mlp.act", None).unwrap();
    let d = max_diff(&edited.logits[0], &plain.logits[0]);
    assert!(d < 1e-5, "{d}");
}

#[test]
fn an_edit_shows_at_its_tap_and_downstream_only() {
    let m = Tiny::qwen2();
    let (_d, b) = load(&m, 8);
    let rows = vec![vec![1, 3, 4, 5, 6, 7]];
    let all = Tap::LLAMA.to_vec();
    let base = b.forward_dump(&rows, &all, None, Padding::Right).unwrap();
    let value = |d: &valex_backend_candle::Dump, tap: Tap, layer: usize, pos: usize, j: usize| {
        let (_, _, w, v) = d
            .taps
            .iter()
            .find(|(t, l, ..)| *t == tap && *l == layer)
            .unwrap();
        v[pos * w + j]
    };
    let j = 9;
    for tap in Tap::LLAMA {
        let e = edit(tap.name(), 0, &[(j as u32, 2.0)]);
        let d = b
            .forward_dump(&rows, &all, Some(&e), Padding::Right)
            .unwrap();
        for pos in 0..rows[0].len() {
            let want = 2.0 * value(&base, tap, 0, pos, j);
            let got = value(&d, tap, 0, pos, j);
            assert!((got - want).abs() < 1e-5, "{}: {got} vs {want}", tap.name());
            // Taps computed before the edited one in layer 0 are unchanged.
            let at = Tap::LLAMA.iter().position(|&t| t == tap).unwrap();
            for &earlier in &Tap::LLAMA[..at] {
                assert_eq!(
                    value(&d, earlier, 0, pos, j),
                    value(&base, earlier, 0, pos, j)
                );
            }
        }
        let moved = d
            .logits
            .iter()
            .zip(&base.logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(moved > 1e-5, "{}: the edit reaches the logits", tap.name());
    }
}

#[test]
fn edits_at_foreign_taps_are_config_errors() {
    let (_d, mut b) = load(&Tiny::llama(), 8);
    let e = b
        .score(
            &[valex_core::ScoreRequest {
                context: vec![1, 3],
                continuation: vec![4],
            }],
            Some(&edit("mlp.act", 0, &[(0, 0.0)])),
        )
        .unwrap_err();
    assert_eq!(e.class, valex_core::ErrorClass::Config);
    assert!(e.to_string().contains("edit: tap \"mlp.act\""), "{e}");
}

#[test]
fn shift_and_clamp_ops_show_at_the_tap_and_leave_other_neurons_alone() {
    let m = Tiny::llama();
    let (_d, b) = load(&m, 8);
    let ids = vec![vec![1, 3, 4, 5, 6, 7, 8], vec![1, 9, 10]];
    let plain = b.forward_taps(&ids, "mlp.gate_act", None).unwrap();
    let mut e = edit("mlp.gate_act", 1, &[]);
    e.layers[1] = vec![
        (17, NeuronOp::constant(0.75)),
        (3, NeuronOp::clamp(Some(-0.01), Some(0.01))),
    ];
    let dump = b.forward_taps(&ids, "mlp.gate_act", Some(&e)).unwrap();
    assert_eq!(dump.taps[0], plain.taps[0], "layer 0 is not edited");
    let mut clamped = 0;
    for (row, plain_row) in dump.taps[1].iter().zip(&plain.taps[1]) {
        for (pos, plain_pos) in row.iter().zip(plain_row) {
            assert_eq!(pos[17], 0.75, "the mean op replaces the activation");
            assert_eq!(pos[3], plain_pos[3].clamp(-0.01, 0.01));
            clamped += usize::from(pos[3] != plain_pos[3]);
            for (j, (x, y)) in pos.iter().zip(plain_pos).enumerate() {
                if j != 3 && j != 17 {
                    assert_eq!(x, y, "neuron {j} is untouched, bit for bit");
                }
            }
        }
    }
    assert!(clamped > 0, "the bounds bind somewhere");
    assert!(
        max_diff(&dump.logits[0], &plain.logits[0]) > 1e-5,
        "the edit matters"
    );
    // A constant 0 is zeroing: the same logits as a factor of 0.
    e.layers[1] = vec![(17, NeuronOp::constant(0.0))];
    let c0 = b.forward_taps(&ids, "mlp.gate_act", Some(&e)).unwrap();
    let z = b
        .forward_taps(
            &ids,
            "mlp.gate_act",
            Some(&edit("mlp.gate_act", 1, &[(17, 0.0)])),
        )
        .unwrap();
    assert_eq!(c0.logits, z.logits);
}
