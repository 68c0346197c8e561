//! The valex statistics file: what the record stage writes and `valex score` reads.
//!
//! Layout, for a stem `dir/stats`:
//! - `dir/stats.safetensors`: `F64` tensors `<label>/active`, `<label>/sum`, `<label>/sum_sq`,
//!   each `[n_layers, n_neurons]`, sorted by name (so equal statistics give equal bytes);
//! - `dir/stats.json`: `{"format": "valex-stats", "version": 1, "tap", "n_layers",
//!   "n_neurons", "labels": [{"name", "tokens", "items"}], "provenance": {..}}`.
//!
//! Both files are replaced atomically; the tensors file is written first, so a reader that
//! finds the sidecar also finds its tensors. Statistics without sums (e.g. from
//! [`crate::read_released_counts`]) cannot be written in this format.

use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, serialize};
use serde_json::{Value, json};
use valex_core::{ActivationStats, LabelStats};

use crate::atomic::write_atomic;
use crate::error::{FileKind, StatsIoError, StatsIoErrorKind};
use crate::st_reader::StReader;

/// Value of the sidecar's `format` key.
pub const STATS_FORMAT: &str = "valex-stats";
/// The sidecar version this crate reads and writes.
pub const STATS_VERSION: u64 = 1;

/// The two files of a statistics stem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsPaths {
    /// `<stem>.safetensors`.
    pub tensors: PathBuf,
    /// `<stem>.json`.
    pub sidecar: PathBuf,
}

/// The files of the statistics at `path`, which may be the stem, the `.safetensors` or the
/// `.json` file. A stem's own dots are kept (`run.v2` gives `run.v2.safetensors`).
pub fn stats_paths(path: &Path) -> StatsPaths {
    let s = path.as_os_str().to_string_lossy();
    let stem = s
        .strip_suffix(".safetensors")
        .or_else(|| s.strip_suffix(".json"))
        .unwrap_or(&s);
    StatsPaths {
        tensors: PathBuf::from(format!("{stem}.safetensors")),
        sidecar: PathBuf::from(format!("{stem}.json")),
    }
}

/// Encoded statistics: the bytes of both files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedStats {
    /// The `.safetensors` file.
    pub tensors: Vec<u8>,
    /// The `.json` sidecar (pretty-printed, ending in a newline).
    pub sidecar: Vec<u8>,
}

/// Encodes `stats` without writing anything (for hashing or tests). Errors name the file as
/// `<memory>`.
///
/// # Errors
/// Arrays of the wrong length (including absent sums), duplicate or empty label names.
pub fn encode_stats(
    stats: &ActivationStats,
    provenance: &Value,
) -> Result<EncodedStats, StatsIoError> {
    encode(stats, provenance, Path::new("<memory>"))
}

fn encode(
    stats: &ActivationStats,
    provenance: &Value,
    path: &Path,
) -> Result<EncodedStats, StatsIoError> {
    let invalid =
        |m: String| StatsIoError::new(FileKind::Statistics, path, StatsIoErrorKind::Invalid(m));
    let n = stats.n_layers * stats.n_neurons;
    let shape = vec![stats.n_layers, stats.n_neurons];
    let mut buffers: Vec<(String, Vec<u8>)> = Vec::with_capacity(3 * stats.labels.len());
    for (i, l) in stats.labels.iter().enumerate() {
        if l.name.is_empty() {
            return Err(invalid(format!("label {i} has an empty name")));
        }
        if stats.labels[..i].iter().any(|o| o.name == l.name) {
            return Err(invalid(format!("label {} appears twice", l.name)));
        }
        for (field, values) in [
            ("active", &l.active),
            ("sum", &l.sum),
            ("sum_sq", &l.sum_sq),
        ] {
            if values.len() != n {
                return Err(invalid(format!(
                    "label {}: {field} has {} values, expected {n} ({} layers x {} neurons)",
                    l.name,
                    values.len(),
                    stats.n_layers,
                    stats.n_neurons
                )));
            }
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            buffers.push((format!("{}/{field}", l.name), bytes));
        }
    }
    let views = buffers
        .iter()
        .map(|(name, bytes)| {
            TensorView::new(Dtype::F64, shape.clone(), bytes).map(|v| (name.as_str(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("cannot build tensor views".into()).with_source(e))?;
    let tensors = serialize(views, None)
        .map_err(|e| invalid("cannot serialise tensors".into()).with_source(e))?;
    let labels: Vec<Value> = stats
        .labels
        .iter()
        .map(|l| json!({"name": l.name, "tokens": l.tokens, "items": l.items}))
        .collect();
    let sidecar = json!({
        "format": STATS_FORMAT,
        "version": STATS_VERSION,
        "tap": stats.tap,
        "n_layers": stats.n_layers,
        "n_neurons": stats.n_neurons,
        "labels": labels,
        "provenance": provenance,
    });
    let mut sidecar = serde_json::to_vec_pretty(&sidecar)
        .map_err(|e| invalid("cannot serialise the sidecar".into()).with_source(e))?;
    sidecar.push(b'\n');
    Ok(EncodedStats { tensors, sidecar })
}

/// Writes `stats` as `<stem>.safetensors` + `<stem>.json`, each atomically.
///
/// # Errors
/// See [`encode_stats`]; I/O failures name the file.
pub fn write_stats(
    stem_path: &Path,
    stats: &ActivationStats,
    provenance: &Value,
) -> Result<(), StatsIoError> {
    let paths = stats_paths(stem_path);
    let enc = encode(stats, provenance, &paths.tensors)?;
    for (path, bytes) in [
        (&paths.tensors, &enc.tensors),
        (&paths.sidecar, &enc.sidecar),
    ] {
        write_atomic(path, bytes).map_err(|e| {
            StatsIoError::new(FileKind::Statistics, path, StatsIoErrorKind::Write).with_source(e)
        })?;
    }
    Ok(())
}

/// Reads statistics written by [`write_stats`]; `path` may be the stem, the `.safetensors` or
/// the `.json` file. Returns the statistics and the whole sidecar (with its provenance).
///
/// # Errors
/// Missing files, a sidecar with a wrong format, version or key, and missing tensors or
/// tensors of the wrong dtype or shape. Each names the file and the key or tensor.
pub fn read_stats(path: &Path) -> Result<(ActivationStats, Value), StatsIoError> {
    let paths = stats_paths(path);
    let side_err = |k: StatsIoErrorKind| StatsIoError::new(FileKind::Statistics, &paths.sidecar, k);
    let key_err = |key: &str, message: &str| {
        side_err(StatsIoErrorKind::Key {
            key: key.into(),
            message: message.into(),
        })
    };
    let raw = std::fs::read(&paths.sidecar)
        .map_err(|e| side_err(StatsIoErrorKind::Read).with_source(e))?;
    let sidecar: Value = serde_json::from_slice(&raw)
        .map_err(|e| side_err(StatsIoErrorKind::Json).with_source(e))?;
    match sidecar.get("format").and_then(Value::as_str) {
        Some(STATS_FORMAT) => {}
        Some(other) => {
            return Err(key_err(
                "format",
                &format!("expected \"{STATS_FORMAT}\", found \"{other}\""),
            ));
        }
        None => return Err(key_err("format", "missing or not a string")),
    }
    let version = sidecar
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| key_err("version", "missing or not an integer"))?;
    if version != STATS_VERSION {
        return Err(side_err(StatsIoErrorKind::Version {
            found: version,
            expected: STATS_VERSION,
        }));
    }
    let tap = sidecar
        .get("tap")
        .and_then(Value::as_str)
        .ok_or_else(|| key_err("tap", "missing or not a string"))?;
    let dim = |key: &str| -> Result<usize, StatsIoError> {
        sidecar
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| key_err(key, "missing or not an integer"))
    };
    let (n_layers, n_neurons) = (dim("n_layers")?, dim("n_neurons")?);
    let entries = sidecar
        .get("labels")
        .and_then(Value::as_array)
        .ok_or_else(|| key_err("labels", "missing or not an array"))?;
    let mut labels: Vec<LabelStats> = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let name = e
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| key_err(&format!("labels[{i}].name"), "missing or not a string"))?;
        let tokens = e
            .get("tokens")
            .and_then(Value::as_f64)
            .ok_or_else(|| key_err(&format!("labels[{i}].tokens"), "missing or not a number"))?;
        let items = e
            .get("items")
            .and_then(Value::as_u64)
            .ok_or_else(|| key_err(&format!("labels[{i}].items"), "missing or not an integer"))?;
        if labels.iter().any(|l| l.name == name) {
            return Err(side_err(StatsIoErrorKind::Invalid(format!(
                "label {name} appears twice"
            ))));
        }
        labels.push(LabelStats {
            name: name.to_owned(),
            tokens,
            items,
            active: Vec::new(),
            sum: Vec::new(),
            sum_sq: Vec::new(),
        });
    }
    let mut reader = StReader::open(&paths.tensors, FileKind::Statistics)?;
    let shape = [n_layers, n_neurons];
    for l in &mut labels {
        l.active = reader.read_f64(&format!("{}/active", l.name), &shape, "F64")?;
        l.sum = reader.read_f64(&format!("{}/sum", l.name), &shape, "F64")?;
        l.sum_sq = reader.read_f64(&format!("{}/sum_sq", l.name), &shape, "F64")?;
    }
    let stats = ActivationStats {
        tap: tap.to_owned(),
        n_layers,
        n_neurons,
        labels,
    };
    Ok((stats, sidecar))
}

#[cfg(test)]
#[path = "stats_file_tests.rs"]
mod tests;
