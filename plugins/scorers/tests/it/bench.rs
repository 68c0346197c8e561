//! Timing of every scorer on statistics of Qwen2.5-7B's shape (28 layers x 18944 neurons) with
//! 12 labels — not a timed test: `#[ignore]`d, run it in release mode and read the printout:
//!
//! ```text
//! cargo test --release -p valex-scorers --test it bench -- --ignored --nocapture
//! ```
//!
//! docs/performance.md records the numbers (target: each scorer under 1 s on 2 cores).

use std::time::Instant;

use serde_json::json;
use valex_core::{ActivationStats, FactoryContext, RegistryBuilder, SplitMix64};
use valex_scorers::ScorersPlugin;

/// Random statistics of 12 labels with 200 items of 250 tokens each (item and token level),
/// filled directly (a recording of that size would take hours on a CPU). 95% of the neurons
/// behave the same under every label; 5% are shifted for some labels.
fn qwen_shaped() -> ActivationStats {
    let labels: Vec<String> = (0..12).map(|k| format!("value{k}")).collect();
    let mut s = ActivationStats::new("mlp.gate_act", 28, 18944, &labels);
    let cells = 28 * 18944;
    let mut rng = SplitMix64::new(1);
    let base: Vec<(f64, f64, f64)> = (0..cells)
        .map(|_| {
            (
                rng.next_f64(),
                rng.next_f64() * 0.2 - 0.05,
                0.05 + rng.next_f64() * 0.1,
            )
        })
        .collect();
    for l in &mut s.labels {
        l.items = 200;
        l.tokens = 50_000.0;
        for (i, &(p, mean, sd)) in base.iter().enumerate() {
            let shift = if rng.next_f64() < 0.05 {
                sd * rng.next_f64()
            } else {
                0.0
            };
            // Sampling noise of an item mean: sd / sqrt(200).
            let mean = mean + shift + (rng.next_f64() - 0.5) * sd * 0.12;
            l.active[i] = (p * 50_000.0).round();
            l.sum[i] = mean * 50_000.0;
            l.sum_sq[i] = 50_000.0 * (sd * sd * 4.0 + mean * mean);
            l.item_sum[i] = mean * 200.0;
            l.item_sum_sq[i] = 199.0 * sd * sd + 200.0 * mean * mean;
        }
    }
    s
}

/// CPU seconds (user + system) of this process so far, from /proc/self/stat (Linux; 0
/// elsewhere): on a shared machine CPU time, unlike wall time, hardly depends on the load.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is field 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // rest starts at field 3 (state, not numeric, skipped by the parse filter): utime and
    // stime are then f[10] and f[11]; clock ticks are 100 per second on Linux.
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / 100.0
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn bench_scorers_on_qwen_shaped_statistics() {
    let stats = qwen_shaped();
    let labels = stats.label_names();
    let mut b = RegistryBuilder::new();
    b.add_plugin(&ScorersPlugin).expect("registers");
    let r = b.build();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    eprintln!("28 x 18944 neurons x 12 labels, {threads} hardware threads");
    for (id, params) in [
        ("scorer/lape", json!({})),
        ("scorer/act-prob-diff", json!({})),
        ("scorer/mean-diff", json!({})),
        ("scorer/mean-diff", json!({"statistic": "cohens-d"})),
        ("scorer/welch-t", json!({})),
        (
            "scorer/welch-t",
            json!({"level": "tokens", "correction": "holm"}),
        ),
        ("scorer/auroc", json!({})),
    ] {
        let scorer = r
            .scorer(id, &params, &FactoryContext::default())
            .expect("builds");
        let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
        let mut selected = 0;
        for _ in 0..3 {
            let (t, cpu) = (Instant::now(), cpu_seconds());
            let out = scorer.score(&stats, &labels).expect("scores");
            best = best.min(t.elapsed().as_secs_f64());
            best_cpu = best_cpu.min(cpu_seconds() - cpu);
            selected = out.sets.iter().map(|(_, s)| s.len()).sum::<usize>();
        }
        eprintln!(
            "{id:<22} {params:<45} best of 3: wall {best:.3} s, cpu {best_cpu:.2} s \
             ({selected} neurons selected)"
        );
    }
}
