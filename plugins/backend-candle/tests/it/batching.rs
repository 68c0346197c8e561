//! Batch invariance: the same statistics and scores whatever the rows per forward and the
//! token budget.

use valex_backend_candle::{BatchPolicy, CandleLoader};
use valex_core::{ActivationStats, ModelBackend, RecordBatch, ScoreRequest};

use crate::fixture::Tiny;
use crate::parity::fixture_dir;

/// 12 rows of lengths 2..=13 in a scrambled order, every other position counted, 3 labels.
fn rows(vocab: u32) -> RecordBatch {
    let mut b = RecordBatch {
        ids: Vec::new(),
        positions: Vec::new(),
        labels: Vec::new(),
        keys: Vec::new(),
    };
    for i in 0..12_u32 {
        let len = 2 + (i * 7) % 12;
        b.ids.push(
            (0..len)
                .map(|t| 1 + (t * 5 + i * 3) % (vocab - 1))
                .collect(),
        );
        b.positions
            .push((0..len).map(|t| (t + i) % 2 == 0).collect());
        b.labels.push((i % 3) as usize);
        b.keys.push(u64::from(i));
    }
    b
}

fn record(dir: &std::path::Path, policy: BatchPolicy, tap: &str) -> ActivationStats {
    let mut b = CandleLoader::for_dir(dir)
        .with_policy(policy)
        .load_backend()
        .unwrap();
    let info = b.info().clone();
    let labels: Vec<String> = ["x", "y", "z"].map(str::to_owned).to_vec();
    let mut s = ActivationStats::new(tap, info.n_layers, info.n_neurons, &labels);
    let batch = rows(info.vocab_size as u32);
    for (i, pos) in batch.positions.iter().enumerate() {
        let n = pos.iter().filter(|&&p| p).count() as f64;
        if n > 0.0 {
            s.count_item(batch.labels[i], batch.keys[i], n);
        }
    }
    b.record(tap, &batch, None, &mut s).unwrap();
    s
}

fn assert_same(a: &ActivationStats, b: &ActivationStats, what: &str) {
    for (x, y) in a.labels.iter().zip(&b.labels) {
        assert_eq!(x.active, y.active, "{what}: counts of {}", x.name);
        for (p, q) in [
            (&x.sum, &y.sum),
            (&x.sum_sq, &y.sum_sq),
            (&x.item_sum, &y.item_sum),
        ] {
            for (u, v) in p.iter().zip(q) {
                assert!(
                    (u - v).abs() <= 1e-5 * (1.0 + v.abs()),
                    "{what}: {} {u} vs {v}",
                    x.name
                );
            }
        }
    }
}

#[test]
fn statistics_are_the_same_for_batch_1_batch_8_and_a_token_budget() {
    let llama = Tiny::llama().temp_dir();
    let cases = [
        (llama.path().to_path_buf(), "mlp.gate_act"),
        (fixture_dir("gpt2"), "mlp.act"),
    ];
    for (dir, tap) in cases {
        let one = record(&dir, BatchPolicy::rows(1), tap);
        let eight = record(&dir, BatchPolicy::rows(8), tap);
        let budget = record(
            &dir,
            BatchPolicy {
                max_rows: 8,
                max_tokens: Some(24),
            },
            tap,
        );
        assert!(one.labels[0].sum.iter().any(|&x| x != 0.0));
        assert_same(&eight, &one, &format!("{tap} batch 8 vs 1"));
        assert_same(&budget, &one, &format!("{tap} budget 24 vs batch 1"));
    }
}

#[test]
fn scores_are_the_same_for_batch_1_and_batch_8() {
    let dir = fixture_dir("qwen2");
    let batch = rows(40);
    let reqs: Vec<ScoreRequest> = batch
        .ids
        .iter()
        .map(|r| ScoreRequest {
            context: r[..1].to_vec(),
            continuation: r[1..].to_vec(),
        })
        .collect();
    let score = |p: BatchPolicy| {
        CandleLoader::for_dir(&dir)
            .with_policy(p)
            .load_backend()
            .unwrap()
            .score(&reqs, None)
            .unwrap()
    };
    let one = score(BatchPolicy::rows(1));
    let eight = score(BatchPolicy {
        max_rows: 8,
        max_tokens: Some(30),
    });
    for (a, b) in one.iter().zip(&eight) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }
}
