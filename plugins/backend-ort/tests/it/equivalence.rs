//! The same planted-neuron demo model through candle (safetensors) and ONNX Runtime (the
//! fixture, same weight bytes): taps, logits, statistics and scores agree.

use valex_core::{ActivationStats, ModelBackend, NeuronEdit, RecordBatch, ScoreRequest};

use crate::common::{candle, demo_dir, ort, ort_ready, rel_diff};

/// Relative tolerance of the issue (f32).
const TOL: f64 = 1e-4;

/// Stories of the demo set, encoded.
fn texts(b: &dyn ModelBackend, n: usize) -> Vec<Vec<u32>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/value-study/data/demo.jsonl");
    let body = std::fs::read_to_string(path).expect("demo.jsonl is committed");
    body.lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let story = v["story"].as_str().expect("a story");
            b.encode(story).expect("the demo tokenizer encodes").ids
        })
        .collect()
}

fn planted_edit() -> NeuronEdit {
    let mut layers = vec![Vec::new(); 4];
    for (_, neurons) in valex_demo_model::planted_neurons().into_iter().take(3) {
        for (layer, j) in neurons {
            layers[layer].push((j, 0.0));
        }
    }
    layers[0].push((5, 2.5));
    NeuronEdit::multiply("mlp.gate_act", layers)
}

#[test]
fn taps_and_logits_match_candle_within_1e_4() {
    if !ort_ready("taps_and_logits_match_candle_within_1e_4") {
        return;
    }
    let d = demo_dir();
    let (mut c, mut o) = (candle(d.path()), ort(d.path()));
    assert_eq!(o.info().n_layers, 4);
    assert_eq!(o.info().n_neurons, 192);
    assert_eq!(
        o.capabilities().taps,
        ["mlp.gate_pre", "mlp.gate_act", "mlp.up", "mlp.act_x_up"]
    );
    let rows = texts(&c, 6);
    let taps: Vec<String> = o.capabilities().taps;
    let a = c.inspect(&rows, &taps).expect("candle inspects");
    let b = o.inspect(&rows, &taps).expect("ort inspects");
    assert_eq!((a.seq, &a.lens, a.vocab), (b.seq, &b.lens, b.vocab));
    let dl = rel_diff(&b.logits, &a.logits);
    eprintln!("logits: max rel diff {dl:.2e}");
    assert!(dl <= TOL, "logits differ by {dl:.2e}");
    assert_eq!(a.taps.len(), 16);
    for (x, y) in b.taps.iter().zip(&a.taps) {
        assert_eq!((&x.tap, x.layer, x.width), (&y.tap, y.layer, y.width));
        let d = rel_diff(&x.values, &y.values);
        eprintln!("{} layer {}: max rel diff {d:.2e}", x.tap, x.layer);
        assert!(d <= TOL, "{} layer {} differs by {d:.2e}", x.tap, x.layer);
    }
}

fn record(
    b: &mut dyn ModelBackend,
    rows: &[Vec<u32>],
    edit: Option<&NeuronEdit>,
) -> ActivationStats {
    let labels = vec!["a".to_owned(), "b".to_owned()];
    let mut stats = ActivationStats::new("mlp.gate_act", 4, 192, &labels).with_item_means();
    // Skip the first token of every row and the last two of odd rows.
    let positions: Vec<Vec<bool>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let cut = if i % 2 == 1 { r.len() - 2 } else { r.len() };
            (0..r.len()).map(|t| t > 0 && t < cut).collect()
        })
        .collect();
    for (i, p) in positions.iter().enumerate() {
        stats.count_item(i % 2, i as u64, p.iter().filter(|&&x| x).count() as f64);
    }
    let batch = RecordBatch {
        ids: rows.to_vec(),
        positions,
        labels: (0..rows.len()).map(|i| i % 2).collect(),
        keys: (0..rows.len() as u64).collect(),
    };
    b.record("mlp.gate_act", &batch, edit, &mut stats)
        .expect("record runs");
    stats
}

fn compare_stats(a: &ActivationStats, b: &ActivationStats) {
    for (x, y) in b.labels.iter().zip(&a.labels) {
        let flips = x
            .active
            .iter()
            .zip(&y.active)
            .filter(|(p, q)| p != q)
            .count();
        assert_eq!(
            flips, 0,
            "label {}: {flips} counts of act > 0 differ",
            x.name
        );
        let f = |v: &[f64]| v.iter().map(|&z| z as f32).collect::<Vec<f32>>();
        for (what, p, q) in [
            ("sum", &x.sum, &y.sum),
            ("sum_sq", &x.sum_sq, &y.sum_sq),
            ("item_sum", &x.item_sum, &y.item_sum),
        ] {
            let d = rel_diff(&f(p), &f(q));
            eprintln!("label {} {what}: max rel diff {d:.2e}", x.name);
            assert!(d <= TOL, "label {} {what} differs by {d:.2e}", x.name);
        }
        assert_eq!((x.tokens, x.items), (y.tokens, y.items));
    }
}

#[test]
fn statistics_match_candle_with_and_without_an_edit() {
    if !ort_ready("statistics_match_candle_with_and_without_an_edit") {
        return;
    }
    let d = demo_dir();
    let (mut c, mut o) = (candle(d.path()), ort(d.path()));
    let rows = texts(&c, 10);
    compare_stats(&record(&mut c, &rows, None), &record(&mut o, &rows, None));
    let edit = planted_edit();
    let (a, b) = (
        record(&mut c, &rows, Some(&edit)),
        record(&mut o, &rows, Some(&edit)),
    );
    compare_stats(&a, &b);
    let plain = record(&mut o, &rows, None);
    assert_ne!(
        plain.labels[0].sum, b.labels[0].sum,
        "the edit changes the statistics"
    );
}

#[test]
fn scores_match_candle_with_and_without_an_edit() {
    if !ort_ready("scores_match_candle_with_and_without_an_edit") {
        return;
    }
    let d = demo_dir();
    let (mut c, mut o) = (candle(d.path()), ort(d.path()));
    let rows = texts(&c, 8);
    let requests: Vec<ScoreRequest> = rows
        .iter()
        .map(|r| {
            let k = r.len() / 2;
            ScoreRequest {
                context: r[..k].to_vec(),
                continuation: r[k..].to_vec(),
            }
        })
        .collect();
    let edit = planted_edit();
    for e in [None, Some(&edit)] {
        let a = c.score(&requests, e).expect("candle scores");
        let b = o.score(&requests, e).expect("ort scores");
        let d = rel_diff(&b.concat(), &a.concat());
        eprintln!("scores (edit: {}): max rel diff {d:.2e}", e.is_some());
        assert!(d <= TOL, "scores differ by {d:.2e}");
        assert_eq!(
            a.iter().map(Vec::len).collect::<Vec<_>>(),
            b.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }
}
