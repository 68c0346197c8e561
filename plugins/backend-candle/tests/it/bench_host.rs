//! Host-side cost of the statistics at the 7B shape (a benchmark, not a test: ignored).
//!
//! `valex bench --shape qwen2_7b` needs a GPU; this measures on any machine what its `stats`
//! mode adds on the host per batch of 16 rows: the f64 accumulation of 28 layers' per-row
//! results, into a statistics object made once (as a run does) or made fresh for the batch
//! (as the bench's `stats` mode did before it kept one object per mode), item by item
//! (`add_item_layer`) or all layers at once (`add_items_layers`, what `record` calls).

use std::time::Instant;

use valex_core::ActivationStats;

const LAYERS: usize = 28;
const NEURONS: usize = 18_944;
const ROWS: usize = 16;

fn items(batch: u64) -> Vec<(usize, u64, f64)> {
    (0..ROWS)
        .map(|b| (b, batch * ROWS as u64 + b as u64, 512.0))
        .collect()
}

fn add_batch_at_once(s: &mut ActivationStats, batch: u64, rows: &[Vec<Vec<f32>>]) {
    let layers: Vec<usize> = (0..LAYERS).collect();
    s.add_items_layers(&items(batch), &layers, rows);
}

fn add_batch(s: &mut ActivationStats, batch: u64, row: &[f32]) {
    let n = NEURONS;
    for layer in 0..LAYERS {
        for b in 0..ROWS {
            s.add_item_layer(
                b,
                batch * ROWS as u64 + b as u64,
                layer,
                512.0,
                &row[..n],
                &row[n..2 * n],
                &row[2 * n..],
            );
        }
    }
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn bench_host_statistics_per_batch_at_the_7b_shape() {
    let labels: Vec<String> = (0..ROWS).map(|i| format!("r{i}")).collect();
    let row: Vec<f32> = (0..3 * NEURONS).map(|i| (i % 97) as f32 * 0.01).collect();
    let new = || ActivationStats::new("mlp.gate_act", LAYERS, NEURONS, &labels);
    let rows = vec![vec![row.clone(); ROWS]; LAYERS];
    let mut kept = new();
    add_batch(&mut kept, 0, &row);
    let mut at_once = new();
    add_batch_at_once(&mut at_once, 0, &rows);
    let (mut best_kept, mut best_fresh, mut best_at_once) =
        (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for batch in 1..6 {
        let t = Instant::now();
        add_batch(&mut kept, batch, &row);
        best_kept = best_kept.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        add_batch_at_once(&mut at_once, batch, &rows);
        best_at_once = best_at_once.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut fresh = new();
        add_batch(&mut fresh, batch, &row);
        drop(fresh);
        best_fresh = best_fresh.min(t.elapsed().as_secs_f64());
    }
    eprintln!(
        "{LAYERS} layers x {NEURONS} neurons, {ROWS} rows (one label each) per batch, best of 5, \
         {} threads: item by item into a fresh object {:.1} ms, into a kept object {:.1} ms; \
         all layers at once into a kept object {:.1} ms",
        rayon::current_num_threads(),
        best_fresh * 1e3,
        best_kept * 1e3,
        best_at_once * 1e3
    );
    // Six batches went into the kept objects: each label's sums are six rows' sums, and both
    // ways of adding agree to the bit.
    let want = 6.0 * f64::from(row[NEURONS + 1]);
    assert!((kept.labels[3].sum[1] - want).abs() < 1e-9 * want.abs().max(1.0));
    assert!(
        kept == at_once,
        "add_items_layers differs from add_item_layer"
    );
}
