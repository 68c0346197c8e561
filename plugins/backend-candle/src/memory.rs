//! Memory check before loading (issue 10, item 4): estimates the bytes a run of this model
//! needs and refuses to load when they exceed the memory available, instead of letting the
//! OS kill the process halfway through loading.
//!
//! The estimate has three parts, all computed from config.json and the safetensors headers
//! (no tensor data is read):
//! - **weights**: every tensor of the weight files, at the manifest's `dtype` (candle converts
//!   on load), plus the file bytes themselves while they are read (the loader reads each file
//!   whole before converting it; the largest file counts);
//! - **activations** of the largest forward: `batch_size` rows of `max_batch_tokens /
//!   batch_size` tokens each (without a token budget, [`ASSUMED_ROW_TOKENS`] per row): per
//!   token the hidden states, the MLP intermediates, one layer's tap values (f32) and one
//!   row of logits (f32), plus the attention scores of one layer (f32);
//! - **statistics**: the per-label arrays the record stage keeps (five f64 arrays of
//!   `n_layers x intermediate` per label). The backend does not know the number of labels
//!   before the dataset is read, so one label's arrays are counted; each further label adds
//!   as much (see docs/reliability.md).
//!
//! Available memory is `MemAvailable` of /proc/meminfo, lowered to what the cgroup v2 limit
//! (`memory.max` minus `memory.current`) leaves when one is set. On CUDA the weights and
//! activations live in device memory, which this check does not measure: it is skipped there.
//! Params `memory_check = false` turn the check off; `memory_limit_mib` replaces the detected
//! amount (for tests, or to leave room for other processes).
//!
//! Depends on nothing of the backend but its config parser.

use std::io::Read;
use std::path::Path;

use candle_core::DType;
use valex_core::ComponentError;

use crate::batching::BatchPolicy;
use crate::config::ModelConfig;
use crate::files::ModelSource;

/// Row length assumed when the manifest sets no `max_batch_tokens`.
pub const ASSUMED_ROW_TOKENS: usize = 512;

/// A safetensors header larger than this is not read (the loader reports the file).
const MAX_HEADER_BYTES: u64 = 100 << 20;

/// Bytes one run needs, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Weights at the compute dtype, plus the largest weight file while it is read.
    pub weights: u64,
    /// Activations of the largest forward.
    pub activations: u64,
    /// Statistics arrays of one label.
    pub statistics: u64,
    /// Rows and tokens per row the activations assume.
    pub rows: usize,
    /// Tokens per row the activations assume.
    pub row_tokens: usize,
}

impl MemoryEstimate {
    /// The sum of the parts.
    pub fn total(&self) -> u64 {
        self.weights
            .saturating_add(self.activations)
            .saturating_add(self.statistics)
    }
}

/// Element counts and on-disk bytes of every tensor in one safetensors file, from its header.
/// `None` when the header cannot be read or parsed: the loader then reports the file itself.
pub fn header_elements(mut reader: impl Read) -> Option<(u64, u64)> {
    let mut len = [0u8; 8];
    reader.read_exact(&mut len).ok()?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES {
        return None;
    }
    let mut header = vec![0u8; usize::try_from(n).ok()?];
    reader.read_exact(&mut header).ok()?;
    let doc: serde_json::Value = serde_json::from_slice(&header).ok()?;
    let (mut elements, mut data_end) = (0u64, 0u64);
    for (name, t) in doc.as_object()? {
        if name == "__metadata__" {
            continue;
        }
        let count = t
            .get("shape")?
            .as_array()?
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(d.as_u64()?))?;
        elements = elements.checked_add(count)?;
        let end = t.get("data_offsets")?.as_array()?.get(1)?.as_u64()?;
        data_end = data_end.max(end);
    }
    Some((elements, data_end.checked_add(8 + n)?))
}

/// The estimate for `cfg` with `weight_elements` weights in all, the largest weight file of
/// `largest_file` bytes, computed in `dtype` with `policy`.
pub fn estimate(
    cfg: &ModelConfig,
    weight_elements: u64,
    largest_file: u64,
    dtype: DType,
    policy: &BatchPolicy,
) -> MemoryEstimate {
    let dsize = dtype.size_in_bytes() as u64;
    let rows = policy.max_rows.max(1);
    let row_tokens = policy
        .max_tokens
        .map_or(ASSUMED_ROW_TOKENS, |t| (t / rows).max(1));
    let tokens = (rows * row_tokens) as u64;
    let (h, i, l, v) = (
        cfg.hidden_size as u64,
        cfg.intermediate_size as u64,
        cfg.n_layers as u64,
        cfg.vocab_size as u64,
    );
    // Per token: residual, normed input, attention output and q/k/v (about 4 hidden-sized
    // buffers) and gate, up and their product (3 intermediate-sized) at the compute dtype;
    // one layer's tap values in f32 (each layer is reduced on the device as it passes); one
    // row of f32 logits.
    let per_token = (4 * h + 3 * i) * dsize + i * 4 + v * 4;
    let attention = rows as u64 * cfg.n_heads as u64 * (row_tokens as u64).pow(2) * 4;
    MemoryEstimate {
        weights: weight_elements
            .saturating_mul(dsize)
            .saturating_add(largest_file),
        activations: tokens.saturating_mul(per_token).saturating_add(attention),
        statistics: 5 * l * i * 8,
        rows,
        row_tokens,
    }
}

/// Bytes this process may still allocate: `MemAvailable`, lowered to the cgroup v2 room
/// (`memory.max - memory.current`) when a limit is set. `None` when neither can be read.
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let mem = meminfo.as_deref().and_then(mem_available);
    let read = |f: &str| std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(f)).ok();
    let cgroup = cgroup_room(
        read("memory.max").as_deref(),
        read("memory.current").as_deref(),
    );
    match (mem, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `MemAvailable` of /proc/meminfo, in bytes.
pub fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `memory.max - memory.current` of a cgroup v2; `None` without a limit (`max`).
pub fn cgroup_room(max: Option<&str>, current: Option<&str>) -> Option<u64> {
    let max: u64 = max?.trim().parse().ok()?;
    let current: u64 = current.and_then(|c| c.trim().parse().ok()).unwrap_or(0);
    Some(max.saturating_sub(current))
}

/// `1.5 GiB`, `12.0 MiB`, `4.0 KiB`.
fn human(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= 1024.0 * MIB {
        format!("{:.1} GiB", b / (1024.0 * MIB))
    } else if b >= MIB {
        format!("{:.1} MiB", b / MIB)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// Refuses `est` when it exceeds `available` bytes (`source` says where that number came
/// from), with one line: the parts, what is available and the params to change.
///
/// # Errors
/// An input error (exit 4) naming `model` when the estimate does not fit.
pub fn check(
    model: &str,
    est: &MemoryEstimate,
    available: u64,
    source: &str,
) -> Result<(), ComponentError> {
    if est.total() <= available {
        return Ok(());
    }
    Err(ComponentError::input(format!(
        "model {model} needs about {} (weights {} + activations {} for {} rows x {} tokens + statistics {} per label) but {} is available ({source}); lower batch_size or max_batch_tokens, use dtype = \"bf16\" or \"f16\", or a model with fewer layers; memory_check = false skips this check",
        human(est.total()),
        human(est.weights),
        human(est.activations),
        est.rows,
        est.row_tokens,
        human(est.statistics),
        human(available),
    )))
}

/// What the memory check of one load uses: the params `memory_check` and `memory_limit_mib`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCheck {
    /// False: no check (`memory_check = false`).
    pub enabled: bool,
    /// Bytes to compare against instead of the detected amount (`memory_limit_mib`).
    pub limit: Option<u64>,
}

impl Default for MemoryCheck {
    fn default() -> Self {
        MemoryCheck {
            enabled: true,
            limit: None,
        }
    }
}

impl MemoryCheck {
    /// Estimates what loading and running `source` needs and refuses it when that does not
    /// fit. Unreadable or malformed files are not this check's business: it lets them
    /// through, and loading reports them with their own messages.
    ///
    /// # Errors
    /// The refusal of [`check`].
    pub fn run(
        &self,
        source: &ModelSource,
        dtype: DType,
        policy: &BatchPolicy,
        on_cuda: bool,
    ) -> Result<(), ComponentError> {
        if !self.enabled || (on_cuda && self.limit.is_none()) {
            return Ok(());
        }
        let (name, cfg, elements, largest) = match source {
            ModelSource::Dir(dir) => {
                let Ok(bytes) = std::fs::read(dir.join("config.json")) else {
                    return Ok(());
                };
                let Ok(cfg) = ModelConfig::from_json("config.json", &bytes) else {
                    return Ok(());
                };
                let (mut elements, mut largest) = (0u64, 0u64);
                for f in crate::files::input_files(dir)
                    .iter()
                    .filter(|f| f.extension().is_some_and(|e| e == "safetensors"))
                {
                    let Some((n, _)) = std::fs::File::open(f).ok().and_then(header_elements) else {
                        return Ok(());
                    };
                    let size = std::fs::metadata(f).map_or(0, |m| m.len());
                    elements = elements.saturating_add(n);
                    largest = largest.max(size);
                }
                (dir.display().to_string(), cfg, elements, largest)
            }
            ModelSource::Memory(m) => {
                let Ok(cfg) = ModelConfig::from_json("config.json", &m.config_json) else {
                    return Ok(());
                };
                let Some((n, _)) = header_elements(&m.safetensors[..]) else {
                    return Ok(());
                };
                // In memory already: no file bytes to add.
                (m.name.clone(), cfg, n, 0)
            }
        };
        let est = estimate(&cfg, elements, largest, dtype, policy);
        let (available, from) = match self.limit {
            Some(l) => (l, "memory_limit_mib"),
            None => match available_bytes() {
                Some(a) => (a, "MemAvailable and the cgroup limit"),
                None => return Ok(()),
            },
        };
        tracing::debug!(
            model = %name,
            weights_bytes = est.weights,
            activations_bytes = est.activations,
            statistics_bytes = est.statistics,
            available_bytes = available,
            "memory estimate"
        );
        check(&name, &est, available, from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> Vec<u8> {
        let mut b = (json.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(json.as_bytes());
        b
    }

    #[test]
    fn header_elements_sum_every_tensor_and_skip_metadata() {
        let b = header(
            r#"{"__metadata__":{"a":"b"},"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"y":{"dtype":"F32","shape":[4],"data_offsets":[24,40]}}"#,
        );
        let n = b.len() as u64 - 8;
        assert_eq!(header_elements(&b[..]), Some((10, 40 + 8 + n)));
        assert_eq!(header_elements(&b[..5]), None, "truncated length");
        assert_eq!(header_elements(&header("{not json")[..]), None);
        let huge = header(r#"{"x":{"shape":[4294967296,4294967296,2],"data_offsets":[0,1]}}"#);
        assert_eq!(header_elements(&huge[..]), None, "overflowing shape");
    }

    #[test]
    fn meminfo_and_cgroup_are_parsed() {
        let m = "MemTotal:       16000000 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(mem_available(m), Some(8_000_000 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
        assert_eq!(cgroup_room(Some("max\n"), Some("10\n")), None);
        assert_eq!(cgroup_room(Some("1000\n"), Some("300\n")), Some(700));
        assert_eq!(cgroup_room(Some("1000\n"), Some("3000\n")), Some(0));
        assert_eq!(cgroup_room(None, Some("1")), None);
    }

    fn cfg() -> ModelConfig {
        let json = br#"{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":4,"vocab_size":100,"rms_norm_eps":1e-5,"rope_theta":10000.0}"#;
        ModelConfig::from_json("config.json", json).expect("a valid llama config")
    }

    #[test]
    fn estimate_follows_dtype_batch_and_token_budget() {
        let c = cfg();
        let f32 = estimate(&c, 1000, 4000, DType::F32, &BatchPolicy::rows(8));
        assert_eq!(f32.weights, 1000 * 4 + 4000);
        assert_eq!((f32.rows, f32.row_tokens), (8, ASSUMED_ROW_TOKENS));
        let per_token = (4 * 64 + 3 * 128) * 4 + 128 * 4 + 100 * 4;
        let tokens = 8 * ASSUMED_ROW_TOKENS as u64;
        let attention = 8 * 4 * (ASSUMED_ROW_TOKENS as u64).pow(2) * 4;
        assert_eq!(f32.activations, tokens * per_token + attention);
        assert_eq!(f32.statistics, 5 * 2 * 128 * 8);
        let bf16 = estimate(&c, 1000, 4000, DType::BF16, &BatchPolicy::rows(8));
        assert_eq!(bf16.weights, 1000 * 2 + 4000);
        assert!(bf16.activations < f32.activations);
        let budget = BatchPolicy {
            max_rows: 8,
            max_tokens: Some(256),
        };
        let small = estimate(&c, 1000, 4000, DType::F32, &budget);
        assert_eq!((small.rows, small.row_tokens), (8, 32));
        assert!(small.activations < f32.activations);
    }

    #[test]
    fn refusal_names_parts_available_memory_and_knobs() {
        let est = MemoryEstimate {
            weights: 3 << 30,
            activations: 512 << 20,
            statistics: 1 << 20,
            rows: 8,
            row_tokens: 512,
        };
        assert!(check("m", &est, est.total(), "MemAvailable").is_ok());
        let e = check("models/x", &est, 1 << 30, "MemAvailable").unwrap_err();
        assert_eq!(e.class, valex_core::ErrorClass::Input);
        let text = e.to_string();
        assert_eq!(
            text,
            "model models/x needs about 3.5 GiB (weights 3.0 GiB + activations 512.0 MiB for 8 rows x 512 tokens + statistics 1.0 MiB per label) but 1.0 GiB is available (MemAvailable); lower batch_size or max_batch_tokens, use dtype = \"bf16\" or \"f16\", or a model with fewer layers; memory_check = false skips this check"
        );
        assert!(!text.contains('\n'));
        assert_eq!(human(4096), "4.0 KiB");
        assert_eq!(human(3 << 19), "1.5 MiB");
    }
}
