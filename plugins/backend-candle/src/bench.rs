//! Throughput benchmark on random-weight models of public shapes (`valex bench`).
//!
//! Owns the shape table (the same shapes as `shared/bench/torch_baseline.py`, plus `mid`, a
//! shape that fits two CPU cores), random weights built directly on the device, and the timing
//! of each mode over the same inputs as the PyTorch baseline: `batch` rows of `seq` random
//! tokens, the first quarter of the rows half padding. Tokens per second count real tokens.
//!
//! Modes:
//! - `plain`: the full forward with logits at every position (what `model(ids, mask)` does);
//! - `layers`: the forward a statistics pass runs (the layers up to the last layer's
//!   `mlp.gate_act`, no LM head), without the statistics;
//! - `stats`: `record()` of `mlp.gate_act` with every real token counted, one label per row
//!   (the layers plus the on-device statistics), every iteration's rows new items of one
//!   statistics object, as in a recording run (so the statistics' memory shows whether it
//!   grows with the tokens: it must not);
//! - `ablate`: `plain` with 1 % of each layer's neurons zeroed at `mlp.gate_act`.
//!
//! Nothing here is a test: timings depend on the machine.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use valex_core::{
    ActivationStats, ComponentError, ModelBackend, NeuronEdit, RecordBatch, SplitMix64,
};

use crate::backend::{CandleBackend, device_error};
use crate::batching::BatchPolicy;
use crate::config::ModelConfig;
use crate::models::{Model, Padding, weight_spec};
use crate::tap::{Tap, TapSet};

/// A model shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Shape {
    /// Name in the table.
    pub name: &'static str,
    /// Hidden size.
    pub hidden: usize,
    /// FFN width.
    pub inter: usize,
    /// Layers.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Vocabulary.
    pub vocab: usize,
    /// qkv biases (qwen2).
    pub qkv_bias: bool,
    /// Tied embeddings.
    pub tie: bool,
}

/// The shapes `valex bench --shape` knows (those of torch_baseline.py plus `mid`).
pub const SHAPES: [Shape; 5] = [
    Shape {
        name: "tiny",
        hidden: 64,
        inter: 256,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        vocab: 512,
        qkv_bias: false,
        tie: false,
    },
    Shape {
        name: "mid",
        hidden: 512,
        inter: 1536,
        layers: 4,
        heads: 8,
        kv_heads: 4,
        vocab: 8192,
        qkv_bias: false,
        tie: false,
    },
    Shape {
        name: "qwen2_0_5b",
        hidden: 896,
        inter: 4864,
        layers: 24,
        heads: 14,
        kv_heads: 2,
        vocab: 151_936,
        qkv_bias: true,
        tie: true,
    },
    Shape {
        name: "qwen2_7b",
        hidden: 3584,
        inter: 18944,
        layers: 28,
        heads: 28,
        kv_heads: 4,
        vocab: 152_064,
        qkv_bias: true,
        tie: false,
    },
    Shape {
        name: "llama3_8b",
        hidden: 4096,
        inter: 14336,
        layers: 32,
        heads: 32,
        kv_heads: 8,
        vocab: 128_256,
        qkv_bias: false,
        tie: false,
    },
];

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// The shape.
    pub shape: Shape,
    /// Rows per batch.
    pub batch: usize,
    /// Padded length.
    pub seq: usize,
    /// Timed iterations per mode (after 1 warm-up).
    pub iters: usize,
    /// Compute dtype.
    pub dtype: DType,
    /// Device.
    pub device: Device,
    /// Modes, among `plain`, `layers`, `stats`, `ablate`.
    pub modes: Vec<String>,
    /// Also run each mode with its sections timed ([`crate::profile`]).
    pub profile: bool,
}

/// A mode's profiled run: the wall time of the run (slower than the timed one: the device is
/// waited for around every section) and the sections' totals.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModeProfile {
    /// Wall seconds of the profiled iterations.
    pub seconds: f64,
    /// Sections by decreasing time.
    pub sections: Vec<crate::profile::SectionTime>,
}

/// One mode's timing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchRow {
    /// Mode.
    pub mode: String,
    /// Seconds for all timed iterations.
    pub seconds: f64,
    /// Real tokens processed in them.
    pub tokens: usize,
    /// `tokens / seconds`.
    pub tokens_per_s: f64,
    /// The process's peak resident memory so far (Linux `VmHWM`, MiB), read after this mode:
    /// run one mode per process to attribute it. `None` where the OS does not say.
    pub peak_rss_mib: Option<f64>,
    /// With [`BenchSpec::profile`]: where the time goes.
    pub profile: Option<ModeProfile>,
}

/// The process's peak resident set size in MiB (`VmHWM` of /proc/self/status), on Linux.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn config(s: &Shape) -> ModelConfig {
    let json = serde_json::json!({
        "model_type": if s.qkv_bias { "qwen2" } else { "llama" },
        "hidden_size": s.hidden, "intermediate_size": s.inter, "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads, "num_key_value_heads": s.kv_heads,
        "vocab_size": s.vocab, "rms_norm_eps": 1e-6, "rope_theta": 1e6,
        "tie_word_embeddings": s.tie,
    });
    ModelConfig::from_json("bench shape", json.to_string().as_bytes())
        .expect("the bench shapes are valid configs")
}

/// A random-weight backend of `shape` (weights uniform in ±1/sqrt(fan in), norms 1).
///
/// # Errors
/// Device errors (e.g. out of memory).
pub fn random_backend(
    shape: &Shape,
    dtype: DType,
    device: &Device,
    policy: BatchPolicy,
) -> Result<CandleBackend, ComponentError> {
    let cfg = config(shape);
    let build = || -> candle_core::Result<Model> {
        let mut t = HashMap::new();
        for (name, dims) in weight_spec(&cfg) {
            let w = if name.ends_with("norm.weight") {
                Tensor::ones(dims.as_slice(), DType::F32, device)?
            } else {
                let fan_in = *dims.last().unwrap_or(&1) as f32;
                let a = 1.0 / fan_in.sqrt();
                Tensor::rand(-a, a, dims.as_slice(), device)?
            };
            t.insert(name, w.to_dtype(dtype)?);
        }
        Model::from_tensors(&cfg, t, dtype, device)
    };
    let model = build().map_err(device_error(format!("random {} weights", shape.name)))?;
    let tokenizer = tokenizers::Tokenizer::from_bytes(
        br#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
            "pre_tokenizer":null,"post_processor":null,"decoder":null,
            "model":{"type":"WordLevel","vocab":{"<unk>":0},"unk_token":"<unk>"}}"#,
    )
    .map_err(|e| {
        let mut err = ComponentError::stage("bench tokenizer");
        err.source = Some(e);
        err
    })?;
    Ok(CandleBackend::new(model, tokenizer, String::new(), policy))
}

/// The baseline's inputs: `batch` rows of random ids, the first quarter half as long.
pub fn inputs(shape: &Shape, batch: usize, seq: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = SplitMix64::new(seed);
    (0..batch)
        .map(|b| {
            let len = if b < batch / 4 { seq / 2 } else { seq };
            (0..len)
                .map(|_| (rng.next_u64() % shape.vocab as u64) as u32)
                .collect()
        })
        .collect()
}

/// Threads candle's CPU kernels use (RAYON_NUM_THREADS when set, else the core count): the
/// number a CPU benchmark runs on, not the machine's core count.
pub fn compute_threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// Runs every mode of `spec` and returns one row per mode.
///
/// # Errors
/// Unknown modes or device errors.
pub fn run(spec: &BenchSpec) -> Result<Vec<BenchRow>, ComponentError> {
    let policy = BatchPolicy::rows(spec.batch);
    let mut b = random_backend(&spec.shape, spec.dtype, &spec.device, policy)?;
    let batches: Vec<Vec<Vec<u32>>> = (0..3)
        .map(|i| inputs(&spec.shape, spec.batch, spec.seq, i))
        .collect();
    let n = spec.shape.inter;
    let mut rng = SplitMix64::new(2);
    let ablate = NeuronEdit::multiply(
        "mlp.gate_act",
        (0..spec.shape.layers)
            .map(|_| {
                (0..(n / 100).max(1))
                    .map(|_| ((rng.next_u64() % n as u64) as u32, 0.0))
                    .collect()
            })
            .collect(),
    );
    let labels: Vec<String> = (0..spec.batch).map(|i| format!("r{i}")).collect();
    let mut out = Vec::new();
    for mode in &spec.modes {
        // One statistics object per mode, made before the clock starts, as a run makes one.
        let mut stats =
            ActivationStats::new("mlp.gate_act", spec.shape.layers, spec.shape.inter, &labels);
        run_mode(&mut b, mode, &batches[0], &ablate, &mut stats, 0)?;
        b.synchronize()?;
        let t = Instant::now();
        let mut tokens = 0;
        for it in 0..spec.iters {
            let rows = &batches[it % 3];
            run_mode(&mut b, mode, rows, &ablate, &mut stats, it as u64 + 1)?;
            tokens += rows.iter().map(Vec::len).sum::<usize>();
        }
        b.synchronize()?;
        let seconds = t.elapsed().as_secs_f64();
        let peak = peak_rss_mib();
        let profile = if spec.profile {
            crate::profile::take();
            crate::profile::enable(true);
            let t = Instant::now();
            let run = (0..spec.iters).try_for_each(|it| {
                let it_key = (spec.iters + it) as u64 + 1;
                run_mode(&mut b, mode, &batches[it % 3], &ablate, &mut stats, it_key)
            });
            let synced = b.synchronize();
            crate::profile::enable(false);
            run?;
            synced?;
            Some(ModeProfile {
                seconds: t.elapsed().as_secs_f64(),
                sections: crate::profile::take(),
            })
        } else {
            None
        };
        out.push(BenchRow {
            mode: mode.clone(),
            seconds,
            tokens,
            tokens_per_s: tokens as f64 / seconds,
            peak_rss_mib: peak,
            profile,
        });
    }
    Ok(out)
}

/// One iteration of `mode`; `stats` mode adds the rows to `stats` as the items of iteration
/// `iter` (keys `iter * rows + row`).
fn run_mode(
    b: &mut CandleBackend,
    mode: &str,
    rows: &[Vec<u32>],
    ablate: &NeuronEdit,
    stats: &mut ActivationStats,
    iter: u64,
) -> Result<(), ComponentError> {
    match mode {
        "plain" => b.full_forward(rows, None),
        "ablate" => b.full_forward(rows, Some(ablate)),
        "layers" => b.layers_forward(rows),
        "stats" => {
            let n = rows.len() as u64;
            let batch = RecordBatch {
                ids: rows.to_vec(),
                positions: rows.iter().map(|r| vec![true; r.len()]).collect(),
                labels: (0..rows.len()).collect(),
                keys: (0..n).map(|r| iter * n + r).collect(),
            };
            b.record("mlp.gate_act", &batch, None, stats)
        }
        other => Err(ComponentError::config(format!(
            "bench mode {other:?} is not one of plain, layers, stats, ablate"
        ))),
    }
}

impl CandleBackend {
    /// The full forward with logits at every (padded) position, as HF computes them.
    fn full_forward(
        &self,
        rows: &[Vec<u32>],
        edit: Option<&NeuronEdit>,
    ) -> Result<(), ComponentError> {
        let mult = self.multipliers(edit)?;
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let run = || -> candle_core::Result<()> {
            let input = self.model.pad(&refs, Padding::Right)?;
            let hidden = self
                .model
                .forward_layers(&input, &mult, TapSet::EMPTY, &mut |_, _, _| Ok(()), true)?
                .ok_or_else(|| candle_core::Error::Msg("no hidden states".into()))?;
            let all: Vec<u32> = (0..(input.batch * input.seq) as u32).collect();
            let logits = self.model.logits_rows(&hidden, &all)?;
            // Force the computation on lazy devices.
            logits.sum_all()?.to_scalar::<f32>()?;
            Ok(())
        };
        run().map_err(device_error("bench forward".into()))
    }

    /// The forward of a statistics pass without the statistics: the layers up to the last
    /// layer's `mlp.gate_act`, whose values are only touched.
    fn layers_forward(&self, rows: &[Vec<u32>]) -> Result<(), ComponentError> {
        let mult = self.multipliers(None)?;
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let run = || -> candle_core::Result<()> {
            let input = self.model.pad(&refs, Padding::Right)?;
            let mut last = None;
            self.model.forward_layers(
                &input,
                &mult,
                TapSet::one(Tap::GateAct),
                &mut |_, _, act| {
                    last = Some(act.clone());
                    Ok(())
                },
                false,
            )?;
            if let Some(a) = last {
                a.sum_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()?;
            }
            Ok(())
        };
        run().map_err(device_error("bench forward".into()))
    }

    /// Waits for queued device work.
    fn synchronize(&self) -> Result<(), ComponentError> {
        self.model
            .device()
            .synchronize()
            .map_err(device_error("device synchronize".into()))
    }
}
