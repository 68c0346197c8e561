//! Throughput of backend/ort on an exported model, in the modes of
//! `shared/bench/torch_baseline.py`: `stats` (record: in-graph statistics of the primary tap),
//! `score` (log-probabilities of every token, LM head included) and `ablate` (the same with 1 %
//! of each layer's neurons zeroed). Random token ids, a quarter of the rows half as long (the
//! baseline's padding), real tokens counted, two warm-up batches (they build the sessions).
//!
//! ```text
//! cargo build --release -p valex-backend-ort --example ort_bench [--features cuda]
//! ORT_DYLIB_PATH=... target/release/examples/ort_bench MODEL_DIR [--device cpu|cuda:N]
//!     [--batch 16] [--seq 512] [--iters 10] [--modes stats,score,ablate] [--threads N]
//! ```
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line benchmark prints its table"
)]

use std::time::Instant;

use valex_backend_ort::{BatchPolicy, DeviceSpec, OrtLoader, SessionOptions};
use valex_core::{ActivationStats, ModelBackend, NeuronEdit, RecordBatch, ScoreRequest};

/// One timed forward of a mode.
type Step<'a> = dyn FnMut(&Vec<Vec<u32>>) -> Result<(), valex_core::ComponentError> + 'a;

struct Args {
    model: String,
    device: String,
    batch: usize,
    seq: usize,
    iters: usize,
    modes: Vec<String>,
    threads: Option<usize>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        model: String::new(),
        device: "cpu".into(),
        batch: 16,
        seq: 512,
        iters: 10,
        modes: vec!["stats".into(), "score".into(), "ablate".into()],
        threads: None,
    };
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        let num = |s: String| s.parse::<usize>().map_err(|e| format!("{k}: {e}"));
        match k.as_str() {
            "--device" => a.device = v()?,
            "--batch" => a.batch = num(v()?)?,
            "--seq" => a.seq = num(v()?)?,
            "--iters" => a.iters = num(v()?)?,
            "--threads" => a.threads = Some(num(v()?)?),
            "--modes" => a.modes = v()?.split(',').map(str::to_owned).collect(),
            _ if a.model.is_empty() && !k.starts_with("--") => a.model = k,
            _ => return Err(format!("unknown argument {k}")),
        }
    }
    if a.model.is_empty() || a.batch == 0 || a.seq < 2 || a.iters == 0 {
        return Err("usage: ort_bench MODEL_DIR [--device cpu|cuda:N] [--batch N] [--seq N] [--iters N] [--modes stats,score,ablate] [--threads N]".into());
    }
    Ok(a)
}

/// A fixed pseudo-random stream (SplitMix64).
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let device = DeviceSpec::parse(&a.device, false).unwrap_or_else(|e| {
        eprintln!("--device: {}", e.message);
        std::process::exit(2);
    });
    let options = SessionOptions {
        device,
        intra_threads: a.threads,
        ..SessionOptions::default()
    };
    let t0 = Instant::now();
    let mut b = OrtLoader::for_path(&a.model)
        .with_options(options)
        .with_policy(BatchPolicy::rows(a.batch))
        .load_backend()
        .unwrap_or_else(|e| {
            eprintln!("error: {e:#}");
            std::process::exit(4);
        });
    let info = b.info().clone();
    let tap = b
        .capabilities()
        .taps
        .iter()
        .find(|t| *t == "mlp.gate_act" || *t == "mlp.act")
        .cloned()
        .unwrap_or_default();
    println!(
        "ort_bench {} ({} layers x {} neurons, vocab {}) device {} batch {}x{} iters {} load {:.2} s",
        a.model,
        info.n_layers,
        info.n_neurons,
        info.vocab_size,
        a.device,
        a.batch,
        a.seq,
        a.iters,
        t0.elapsed().as_secs_f64()
    );
    let mut rng = 1_u64;
    let batches: Vec<Vec<Vec<u32>>> = (0..3)
        .map(|_| {
            (0..a.batch)
                .map(|r| {
                    let len = if r < a.batch / 4 { a.seq / 2 } else { a.seq };
                    (0..len)
                        .map(|_| (next(&mut rng) % info.vocab_size as u64) as u32)
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut layers = Vec::new();
    for _ in 0..info.n_layers {
        let k = (info.n_neurons / 100).max(1);
        layers.push(
            (0..k)
                .map(|_| ((next(&mut rng) % info.n_neurons as u64) as u32, 0.0))
                .collect(),
        );
    }
    let ablate = NeuronEdit::multiply(tap.clone(), layers);
    for mode in &a.modes {
        let mut run = |rows: &Vec<Vec<u32>>| -> Result<(), valex_core::ComponentError> {
            match mode.as_str() {
                "stats" => {
                    let mut s = ActivationStats::new(
                        &tap,
                        info.n_layers,
                        info.n_neurons,
                        &["x".to_owned()],
                    );
                    let batch = RecordBatch {
                        ids: rows.clone(),
                        positions: rows.iter().map(|r| vec![true; r.len()]).collect(),
                        labels: vec![0; rows.len()],
                        keys: (0..rows.len() as u64).collect(),
                    };
                    b.record(&tap, &batch, None, &mut s)
                }
                "score" | "ablate" => {
                    let req: Vec<ScoreRequest> = rows
                        .iter()
                        .map(|r| ScoreRequest {
                            context: r[..1].to_vec(),
                            continuation: r[1..].to_vec(),
                        })
                        .collect();
                    let edit = (mode == "ablate").then_some(&ablate);
                    b.score(&req, edit).map(|_| ())
                }
                other => Err(valex_core::ComponentError::config(format!(
                    "unknown mode {other}"
                ))),
            }
        };
        let go = |run: &mut Step<'_>, it: usize| {
            run(&batches[it % 3]).unwrap_or_else(|e| {
                eprintln!("error: {mode}: {e:#}");
                std::process::exit(1);
            });
        };
        go(&mut run, 0);
        go(&mut run, 1);
        let t = Instant::now();
        for it in 0..a.iters {
            go(&mut run, it);
        }
        let secs = t.elapsed().as_secs_f64();
        let tokens: usize = (0..a.iters)
            .map(|it| batches[it % 3].iter().map(Vec::len).sum::<usize>())
            .sum();
        println!(
            "  {mode:7} {:>12.0} tok/s  ({tokens} tokens in {secs:.3} s)",
            tokens as f64 / secs
        );
    }
}
