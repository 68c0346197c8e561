//! The valex statistics file: what the record stage writes and `valex score` reads.
//!
//! Layout, for a stem `dir/stats`:
//! - `dir/stats.safetensors`, tensors sorted by name (so equal statistics give equal bytes):
//!   - `F64` `<label>/active`, `<label>/sum`, `<label>/sum_sq`, each `[n_layers, n_neurons]`
//!     (token level);
//!   - when `item_level`: `F64` `<label>/item_sum`, `<label>/item_sum_sq` (item level: sums of
//!     each item's mean activation and of its square);
//!   - when `item_means`: `F32` `<label>/item_means` `[items, n_layers, n_neurons]` and `U64`
//!     `<label>/item_keys` `[items]`;
//!   - per bootstrap replicate `b`: `bootstrap/<b>/<label>/<field>` for the token- and
//!     item-level fields above (replicate item means are not stored: they are the main ones
//!     repeated by their Poisson weights, which the reader recomputes from the seed);
//! - `dir/stats.json`: `{"format": "valex-stats", "version": 1, "tap", "n_layers",
//!   "n_neurons", "labels": [{"name", "tokens", "items"}], "item_level": bool,
//!   "item_means": bool, "bootstrap": {"seed", "replicates": [{"labels": [..]}]},
//!   "provenance": {..}}`. `item_level`, `item_means` and `bootstrap` are absent in files of
//!   valex 0.1 issue 2, which read as statistics without item level (version 1 is kept: old
//!   readers ignore the new keys and tensors).
//!
//! Both files are replaced atomically; the tensors file is written first, so a reader that
//! finds the sidecar also finds its tensors. Statistics without sums (e.g. from
//! [`crate::read_released_counts`]) cannot be written in this format.

use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, serialize};
use serde_json::{Value, json};
use valex_core::{ActivationStats, Bootstrap, ItemMeans, LabelStats, poisson_weights};

use crate::atomic::write_atomic;
use crate::error::{FileKind, StatsIoError, StatsIoErrorKind};
use crate::st_reader::{Source, StReader};

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
    let item_level = stats.labels.iter().any(|l| l.has_item_stats(n));
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    push_label_tensors(stats, "", item_level, &mut buffers).map_err(invalid)?;
    if stats.keep_item_means {
        for l in &stats.labels {
            let keys: Vec<u8> = l
                .item_means
                .iter()
                .flat_map(|m| m.key.to_le_bytes())
                .collect();
            let mut means = Vec::with_capacity(4 * n * l.item_means.len());
            for m in &l.item_means {
                if m.means.len() != n {
                    return Err(invalid(format!(
                        "label {}: item {} has {} means, expected {n}",
                        l.name,
                        m.key,
                        m.means.len()
                    )));
                }
                means.extend(m.means.iter().flat_map(|v| v.to_le_bytes()));
            }
            let k = l.item_means.len();
            buffers.push((format!("{}/item_keys", l.name), Dtype::U64, vec![k], keys));
            buffers.push((
                format!("{}/item_means", l.name),
                Dtype::F32,
                vec![k, stats.n_layers, stats.n_neurons],
                means,
            ));
        }
    }
    let mut boot_doc = Value::Null;
    if let Some(b) = &stats.bootstrap {
        let mut reps = Vec::with_capacity(b.replicates.len());
        for (i, r) in b.replicates.iter().enumerate() {
            if r.label_names() != stats.label_names() {
                return Err(invalid(format!(
                    "bootstrap replicate {i} has labels {:?}, expected {:?}",
                    r.label_names(),
                    stats.label_names()
                )));
            }
            push_label_tensors(r, &format!("bootstrap/{i}/"), item_level, &mut buffers)
                .map_err(invalid)?;
            reps.push(json!({"labels": label_entries(r)}));
        }
        boot_doc = json!({"seed": b.seed, "replicates": reps});
    }
    let views = buffers
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes).map(|v| (name.as_str(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("cannot build tensor views".into()).with_source(e))?;
    let tensors = serialize(views, None)
        .map_err(|e| invalid("cannot serialise tensors".into()).with_source(e))?;
    let mut sidecar = json!({
        "format": STATS_FORMAT,
        "version": STATS_VERSION,
        "tap": stats.tap,
        "n_layers": stats.n_layers,
        "n_neurons": stats.n_neurons,
        "labels": label_entries(stats),
        "item_level": item_level,
        "item_means": stats.keep_item_means,
    });
    if !boot_doc.is_null() {
        sidecar["bootstrap"] = boot_doc;
    }
    sidecar["provenance"] = provenance.clone();
    let mut sidecar = serde_json::to_vec_pretty(&sidecar)
        .map_err(|e| invalid("cannot serialise the sidecar".into()).with_source(e))?;
    sidecar.push(b'\n');
    Ok(EncodedStats { tensors, sidecar })
}

fn label_entries(stats: &ActivationStats) -> Vec<Value> {
    stats
        .labels
        .iter()
        .map(|l| json!({"name": l.name, "tokens": l.tokens, "items": l.items}))
        .collect()
}

/// Appends the `F64` arrays of every label of `stats` as `<prefix><label>/<field>`.
fn push_label_tensors(
    stats: &ActivationStats,
    prefix: &str,
    item_level: bool,
    out: &mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
) -> Result<(), String> {
    let n = stats.n_layers * stats.n_neurons;
    let shape = vec![stats.n_layers, stats.n_neurons];
    for (i, l) in stats.labels.iter().enumerate() {
        if l.name.is_empty() {
            return Err(format!("label {i} has an empty name"));
        }
        if stats.labels[..i].iter().any(|o| o.name == l.name) {
            return Err(format!("label {} appears twice", l.name));
        }
        let mut fields = vec![
            ("active", &l.active),
            ("sum", &l.sum),
            ("sum_sq", &l.sum_sq),
        ];
        if item_level {
            fields.push(("item_sum", &l.item_sum));
            fields.push(("item_sum_sq", &l.item_sum_sq));
        }
        for (field, values) in fields {
            if values.len() != n {
                return Err(format!(
                    "label {}: {field} has {} values, expected {n} ({} layers x {} neurons)",
                    l.name,
                    values.len(),
                    stats.n_layers,
                    stats.n_neurons
                ));
            }
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            out.push((
                format!("{prefix}{}/{field}", l.name),
                Dtype::F64,
                shape.clone(),
                bytes,
            ));
        }
    }
    Ok(())
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
    read_stats_from(path, Source::Disk, Source::Disk)
}

/// [`read_stats`] of files already in memory: `sidecar` holds the `.json` file and `tensors`
/// the `.safetensors` file of the statistics at `path`, which only names them in messages.
/// The same parsing and checks as [`read_stats`] (it is what the fuzz target calls).
///
/// # Errors
/// As [`read_stats`].
pub fn read_stats_from_bytes(
    path: &Path,
    sidecar: &[u8],
    tensors: &[u8],
) -> Result<(ActivationStats, Value), StatsIoError> {
    read_stats_from(path, Source::Bytes(sidecar), Source::Bytes(tensors))
}

fn read_stats_from(
    path: &Path,
    sidecar_file: Source<'_>,
    tensors_file: Source<'_>,
) -> Result<(ActivationStats, Value), StatsIoError> {
    let paths = stats_paths(path);
    let side_err = |k: StatsIoErrorKind| StatsIoError::new(FileKind::Statistics, &paths.sidecar, k);
    let key_err = |key: &str, message: &str| {
        side_err(StatsIoErrorKind::Key {
            key: key.into(),
            message: message.into(),
        })
    };
    let raw = sidecar_file
        .read(&paths.sidecar)
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
    // Each label's arrays hold n_layers x n_neurons values; a product that does not fit is
    // no real file (issue 10).
    if n_layers.checked_mul(n_neurons).is_none() {
        return Err(key_err(
            "n_neurons",
            &format!("n_layers x n_neurons ({n_layers} x {n_neurons}) overflows"),
        ));
    }
    let item_level = flag(&sidecar, "item_level").map_err(|m| key_err("item_level", m))?;
    let keep_means = flag(&sidecar, "item_means").map_err(|m| key_err("item_means", m))?;
    let labels = parse_labels(&sidecar["labels"], "labels").map_err(|(k, m)| key_err(&k, &m))?;
    let duplicate = labels
        .iter()
        .enumerate()
        .find(|(i, l)| labels[..*i].iter().any(|o| o.name == l.name));
    if let Some((_, l)) = duplicate {
        return Err(side_err(StatsIoErrorKind::Invalid(format!(
            "label {} appears twice",
            l.name
        ))));
    }
    let mut reader = tensors_file.safetensors(&paths.tensors, FileKind::Statistics)?;
    let shape = [n_layers, n_neurons];
    let mut stats = ActivationStats::new(tap, n_layers, n_neurons, &[]);
    stats.labels = labels;
    stats.keep_item_means = keep_means;
    read_label_tensors(&mut reader, &mut stats.labels, "", &shape, item_level)?;
    if keep_means {
        for l in &mut stats.labels {
            let keys = reader
                .entry(&format!("{}/item_keys", l.name))?
                .shape
                .clone();
            let k = keys.first().copied().unwrap_or(0);
            let keys = reader.read_u64(&format!("{}/item_keys", l.name), &[k], "U64")?;
            let means =
                reader.read_f32(&format!("{}/item_means", l.name), &[k, n_layers, n_neurons])?;
            let n = n_layers * n_neurons;
            l.item_means = keys
                .iter()
                .enumerate()
                .map(|(i, &key)| ItemMeans {
                    key,
                    means: means[i * n..(i + 1) * n].to_vec(),
                })
                .collect();
        }
    }
    if let Some(b) = sidecar.get("bootstrap").filter(|b| !b.is_null()) {
        let seed = b
            .get("seed")
            .and_then(Value::as_u64)
            .ok_or_else(|| key_err("bootstrap.seed", "missing or not an integer"))?;
        let reps = b
            .get("replicates")
            .and_then(Value::as_array)
            .ok_or_else(|| key_err("bootstrap.replicates", "missing or not an array"))?;
        let mut replicates = Vec::with_capacity(reps.len());
        for (i, r) in reps.iter().enumerate() {
            let at = format!("bootstrap.replicates[{i}].labels");
            let mut labels = parse_labels(&r["labels"], &at).map_err(|(k, m)| key_err(&k, &m))?;
            if labels
                .iter()
                .map(|l| &l.name)
                .ne(stats.labels.iter().map(|l| &l.name))
            {
                return Err(key_err(&at, "labels differ from the main labels"));
            }
            read_label_tensors(
                &mut reader,
                &mut labels,
                &format!("bootstrap/{i}/"),
                &shape,
                item_level,
            )?;
            let mut rep = ActivationStats::new(tap, n_layers, n_neurons, &[]);
            rep.labels = labels;
            rep.keep_item_means = keep_means;
            replicates.push(rep);
        }
        if keep_means {
            for (li, l) in stats.labels.iter().enumerate() {
                for m in &l.item_means {
                    let w = poisson_weights(seed, &l.name, m.key, replicates.len());
                    for (rep, &w) in replicates.iter_mut().zip(&w) {
                        for _ in 0..w {
                            rep.labels[li].item_means.push(m.clone());
                        }
                    }
                }
            }
        }
        stats.bootstrap = Some(Bootstrap { seed, replicates });
    }
    Ok((stats, sidecar))
}

/// An optional boolean sidecar key (absent = false).
fn flag(sidecar: &Value, key: &str) -> Result<bool, &'static str> {
    match sidecar.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(v) => v.as_bool().ok_or("not a boolean"),
    }
}

/// `[{"name", "tokens", "items"}]` at `at` into labels without arrays.
fn parse_labels(v: &Value, at: &str) -> Result<Vec<LabelStats>, (String, String)> {
    let entries = v
        .as_array()
        .ok_or_else(|| (at.to_owned(), "missing or not an array".to_owned()))?;
    let mut labels = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let missing =
            |k: &str, what: &str| (format!("{at}[{i}].{k}"), format!("missing or not {what}"));
        let name = e
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("name", "a string"))?;
        let tokens = e
            .get("tokens")
            .and_then(Value::as_f64)
            .ok_or_else(|| missing("tokens", "a number"))?;
        let items = e
            .get("items")
            .and_then(Value::as_u64)
            .ok_or_else(|| missing("items", "an integer"))?;
        labels.push(LabelStats::counts_only(name, tokens, items, Vec::new()));
    }
    Ok(labels)
}

fn read_label_tensors(
    reader: &mut StReader,
    labels: &mut [LabelStats],
    prefix: &str,
    shape: &[usize; 2],
    item_level: bool,
) -> Result<(), StatsIoError> {
    for l in labels {
        let name = |field: &str| format!("{prefix}{}/{field}", l.name);
        l.active = reader.read_f64(&name("active"), shape, "F64")?;
        l.sum = reader.read_f64(&name("sum"), shape, "F64")?;
        l.sum_sq = reader.read_f64(&name("sum_sq"), shape, "F64")?;
        if item_level {
            l.item_sum = reader.read_f64(&name("item_sum"), shape, "F64")?;
            l.item_sum_sq = reader.read_f64(&name("item_sum_sq"), shape, "F64")?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "stats_file_tests.rs"]
mod tests;
