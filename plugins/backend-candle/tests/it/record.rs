//! record(): per-label statistics against hand-computed ones, and interventions.

use valex_core::{ActivationStats, ModelBackend, NeuronEdit, RecordBatch};

use crate::fixture::Tiny;
use crate::load;

fn batch() -> RecordBatch {
    RecordBatch {
        ids: vec![
            vec![1, 3, 4, 5, 6, 7],
            vec![1, 9, 10],
            vec![1, 12, 13, 14, 15, 16, 17, 18, 3],
            vec![1, 8, 4],
        ],
        positions: vec![
            vec![false, true, true, true, false, true],
            vec![true, true, true],
            vec![false, false, true, true, true, false, true, false, false],
            vec![false, false, false],
        ],
        labels: vec![0, 1, 0, 2],
        keys: vec![0, 0, 1, 0],
    }
}

fn labels() -> Vec<String> {
    ["a", "b", "c"].map(str::to_owned).to_vec()
}

/// Statistics from one unpadded forward per row, over marked positions only.
fn by_hand(
    b: &valex_backend_candle::CandleBackend,
    batch: &RecordBatch,
    tap: &str,
    edit: Option<&NeuronEdit>,
) -> ActivationStats {
    let info = b.info().clone();
    let mut s = ActivationStats::new(tap, info.n_layers, info.n_neurons, &labels());
    for (((ids, pos), &label), &key) in batch
        .ids
        .iter()
        .zip(&batch.positions)
        .zip(&batch.labels)
        .zip(&batch.keys)
    {
        let counted = pos.iter().filter(|&&p| p).count();
        if counted == 0 {
            continue;
        }
        let dump = b
            .forward_taps(std::slice::from_ref(ids), tap, edit)
            .unwrap();
        for (layer, rows) in dump.taps.iter().enumerate() {
            let n = info.n_neurons;
            let (mut a, mut sm, mut sq) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            for (t, v) in rows[0].iter().enumerate() {
                if pos[t] {
                    for j in 0..n {
                        a[j] += f32::from(v[j] > 0.0);
                        sm[j] += v[j];
                        sq[j] += v[j] * v[j];
                    }
                }
            }
            s.add_item_layer(label, key, layer, counted as f64, &a, &sm, &sq);
        }
    }
    s
}

fn assert_close(got: &ActivationStats, want: &ActivationStats) {
    for (g, w) in got.labels.iter().zip(&want.labels) {
        assert_eq!(g.active, w.active, "label {}: counts", g.name);
        for (x, y) in g
            .sum
            .iter()
            .zip(&w.sum)
            .chain(g.sum_sq.iter().zip(&w.sum_sq))
            .chain(g.item_sum.iter().zip(&w.item_sum))
            .chain(g.item_sum_sq.iter().zip(&w.item_sum_sq))
        {
            assert!((x - y).abs() < 1e-4, "label {}: {x} vs {y}", g.name);
        }
    }
}

#[test]
fn record_equals_statistics_computed_row_by_row() {
    for m in [Tiny::llama(), Tiny::qwen2()] {
        // batch_size 2: the batch is split and padded in chunks.
        let (_d, mut b) = load(&m, 2);
        for tap in ["mlp.gate_act", "mlp.act_x_up"] {
            let info = b.info().clone();
            let mut got = ActivationStats::new(tap, info.n_layers, info.n_neurons, &labels());
            b.record(tap, &batch(), None, &mut got).unwrap();
            let want = by_hand(&b, &batch(), tap, None);
            assert_close(&got, &want);
            // Label a: 3 + 4 marked tokens; label b: 3; label c: none (all unmarked).
            let n = info.n_neurons;
            let a_count: f64 = got.labels[0].active[..n].iter().sum();
            assert!(a_count > 0.0 && a_count < 7.0 * n as f64, "{a_count}");
            assert!(got.labels[1].active[..n].iter().all(|&c| c <= 3.0));
            // Label b holds one item of 3 counted tokens: its item mean is sum / 3.
            for (m, s) in got.labels[1].item_sum.iter().zip(&got.labels[1].sum) {
                assert!((m - s / 3.0).abs() < 1e-6, "{m} vs {s}/3");
            }
            assert!(
                got.labels[2].sum.iter().all(|&x| x == 0.0),
                "unmarked rows add nothing"
            );
            assert_ne!(
                got.labels[0].sum, got.labels[1].sum,
                "labels are kept apart"
            );
        }
    }
}

#[test]
fn padding_and_unmarked_positions_add_nothing() {
    let (_d, mut b) = load(&Tiny::llama(), 8);
    let info = b.info().clone();
    let one = RecordBatch {
        ids: vec![vec![1, 9, 10]],
        positions: vec![vec![true, true, true]],
        labels: vec![1],
        keys: vec![0],
    };
    let mut alone = ActivationStats::new("mlp.gate_act", info.n_layers, info.n_neurons, &labels());
    b.record("mlp.gate_act", &one, None, &mut alone).unwrap();
    let mut in_batch =
        ActivationStats::new("mlp.gate_act", info.n_layers, info.n_neurons, &labels());
    b.record("mlp.gate_act", &batch(), None, &mut in_batch)
        .unwrap();
    // Row 1 is the only row of label b; in the batch it is padded to length 6 (rows are cut
    // after their last marked position) and shares a forward with longer rows.
    assert_eq!(alone.labels[1].active, in_batch.labels[1].active);
    for (x, y) in alone.labels[1].sum.iter().zip(&in_batch.labels[1].sum) {
        assert!((x - y).abs() < 1e-5);
    }
}

#[test]
fn zeroing_a_neuron_zeroes_its_statistics_and_changes_scores() {
    let (_d, mut b) = load(&Tiny::llama(), 8);
    let info = b.info().clone();
    let (layer, j) = (1, 17);
    let zero = NeuronEdit::multiply("mlp.gate_act", vec![vec![], vec![(j as u32, 0.0)]]);
    let mut plain = ActivationStats::new("mlp.gate_act", info.n_layers, info.n_neurons, &labels());
    b.record("mlp.gate_act", &batch(), None, &mut plain)
        .unwrap();
    let mut edited = ActivationStats::new("mlp.gate_act", info.n_layers, info.n_neurons, &labels());
    b.record("mlp.gate_act", &batch(), Some(&zero), &mut edited)
        .unwrap();
    let k = layer * info.n_neurons + j;
    assert!(
        plain.labels[0].sum[k] != 0.0,
        "the neuron is active before the edit"
    );
    assert_eq!(
        (edited.labels[0].sum[k], edited.labels[0].active[k]),
        (0.0, 0.0)
    );
    assert_eq!(edited.labels[0].sum_sq[k], 0.0);
    // Layer 0 comes before the edit and is unchanged; with the edit matching the reference.
    assert_eq!(
        plain.labels[0].active[..info.n_neurons],
        edited.labels[0].active[..info.n_neurons]
    );
    assert_close(&edited, &by_hand(&b, &batch(), "mlp.gate_act", Some(&zero)));

    let req = [valex_core::ScoreRequest {
        context: vec![1, 3, 4],
        continuation: vec![5, 6, 7],
    }];
    let base = b.score(&req, None).unwrap();
    let zeroed = b.score(&req, Some(&zero)).unwrap();
    assert_ne!(base, zeroed, "zeroing changes the log-probabilities");
    let ones = NeuronEdit::multiply("mlp.gate_act", vec![vec![(3, 1.0)], vec![(j as u32, 1.0)]]);
    assert_eq!(
        base,
        b.score(&req, Some(&ones)).unwrap(),
        "factor 1.0 changes nothing"
    );
    let mut ones_stats =
        ActivationStats::new("mlp.gate_act", info.n_layers, info.n_neurons, &labels());
    b.record("mlp.gate_act", &batch(), Some(&ones), &mut ones_stats)
        .unwrap();
    assert_eq!(ones_stats, plain);
}

#[test]
fn record_rejects_bad_batches_and_taps() {
    let (_d, mut b) = load(&Tiny::llama(), 8);
    let info = b.info().clone();
    let mut s = ActivationStats::new("x", info.n_layers, info.n_neurons, &labels());
    let e = b.record("attn.q", &batch(), None, &mut s).unwrap_err();
    assert!(
        e.to_string().contains("tap \"attn.q\" is not supported"),
        "{e}"
    );
    let mut bad = batch();
    bad.positions[2].pop();
    let e = b.record("mlp.gate_act", &bad, None, &mut s).unwrap_err();
    assert_eq!(e.to_string(), "record row 2: 9 ids but 8 position flags");
    let mut bad = batch();
    bad.keys.pop();
    let e = b.record("mlp.gate_act", &bad, None, &mut s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "record batch has 4 id rows, 4 position rows, 4 labels and 3 keys"
    );
    let mut bad = batch();
    bad.ids[0][2] = 99;
    let e = b.record("mlp.gate_act", &bad, None, &mut s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "record row 0: token id 99 is out of range for vocab size 24"
    );
    let mut wrong = ActivationStats::new("x", info.n_layers, info.n_neurons + 1, &labels());
    assert!(
        b.record("mlp.gate_act", &batch(), None, &mut wrong)
            .is_err()
    );
}
