//! Neuron-set files: `{"neurons": {"<label>": [[layer 0 indices], [layer 1], ...], ...},
//! "provenance": {...}}`, labels in the order given to the writer, indices sorted per layer.
//!
//! The per-layer lists are LAPE's mask layout, so a file converts 1:1 to and from
//! `List[K][L]` index tensors.

use std::path::Path;

use serde_json::{Map, Value, json};
use valex_core::NeuronSet;

use crate::atomic::write_atomic;
use crate::error::{FileKind, StatsIoError, StatsIoErrorKind};
use crate::st_reader::Source;

/// Writes `sets` (in order) and `provenance` to `path` atomically, pretty-printed.
///
/// # Errors
/// A duplicate label, or an I/O failure naming the file.
pub fn write_neuron_sets(
    path: &Path,
    sets: &[(String, NeuronSet)],
    provenance: &Value,
) -> Result<(), StatsIoError> {
    let err = |k: StatsIoErrorKind| StatsIoError::new(FileKind::NeuronSets, path, k);
    let mut neurons = Map::new();
    for (label, set) in sets {
        if neurons.contains_key(label) {
            return Err(err(StatsIoErrorKind::Invalid(format!(
                "label {label} appears twice"
            ))));
        }
        neurons.insert(label.clone(), json!(set.layers()));
    }
    let doc = json!({"neurons": neurons, "provenance": provenance});
    let mut bytes =
        serde_json::to_vec_pretty(&doc).map_err(|e| err(StatsIoErrorKind::Json).with_source(e))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes).map_err(|e| err(StatsIoErrorKind::Write).with_source(e))
}

/// Reads a neuron-set file: the sets in file order and the provenance (`null` if absent).
/// Each layer's indices are sorted and de-duplicated on read.
///
/// # Errors
/// A missing file, invalid JSON, or a `neurons` entry that is not a list of lists of
/// non-negative 32-bit integers (the message names the label and layer).
pub fn read_neuron_sets(path: &Path) -> Result<(Vec<(String, NeuronSet)>, Value), StatsIoError> {
    read_neuron_sets_from(path, Source::Disk)
}

/// [`read_neuron_sets`] of a file already in memory (`bytes`; `path` names it in messages):
/// the same parsing and checks (it is what the fuzz target calls).
///
/// # Errors
/// As [`read_neuron_sets`].
pub fn read_neuron_sets_from_bytes(
    path: &Path,
    bytes: &[u8],
) -> Result<(Vec<(String, NeuronSet)>, Value), StatsIoError> {
    read_neuron_sets_from(path, Source::Bytes(bytes))
}

fn read_neuron_sets_from(
    path: &Path,
    file: Source<'_>,
) -> Result<(Vec<(String, NeuronSet)>, Value), StatsIoError> {
    let err = |k: StatsIoErrorKind| StatsIoError::new(FileKind::NeuronSets, path, k);
    let key_err = |key: String, message: &str| {
        err(StatsIoErrorKind::Key {
            key,
            message: message.into(),
        })
    };
    let raw = file
        .read(path)
        .map_err(|e| err(StatsIoErrorKind::Read).with_source(e))?;
    let mut doc: Value =
        serde_json::from_slice(&raw).map_err(|e| err(StatsIoErrorKind::Json).with_source(e))?;
    let neurons = doc
        .get("neurons")
        .and_then(Value::as_object)
        .ok_or_else(|| key_err("neurons".into(), "missing or not an object"))?;
    let mut sets = Vec::with_capacity(neurons.len());
    for (label, layers) in neurons {
        let layers = layers
            .as_array()
            .ok_or_else(|| key_err(format!("neurons.{label}"), "not a list of per-layer lists"))?;
        let mut parsed = Vec::with_capacity(layers.len());
        for (l, layer) in layers.iter().enumerate() {
            let idx: Option<Vec<u32>> = layer.as_array().and_then(|a| {
                a.iter()
                    .map(|v| v.as_u64().and_then(|v| u32::try_from(v).ok()))
                    .collect()
            });
            parsed.push(idx.ok_or_else(|| {
                key_err(
                    format!("neurons.{label}[{l}]"),
                    "not a list of neuron indices (integers 0..2^32)",
                )
            })?);
        }
        sets.push((label.clone(), NeuronSet::from_layers(parsed)));
    }
    let provenance = doc
        .as_object_mut()
        .and_then(|o| o.remove("provenance"))
        .unwrap_or(Value::Null);
    Ok((sets, provenance))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets() -> Vec<(String, NeuronSet)> {
        vec![
            (
                "诚信/support".to_owned(),
                NeuronSet::from_layers(vec![vec![5, 1], vec![], vec![7]]),
            ),
            (
                "a/conflict".to_owned(),
                NeuronSet::from_layers(vec![vec![], vec![2], vec![]]),
            ),
        ]
    }

    #[test]
    fn round_trips_sets_order_and_provenance() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("sets.json");
        let prov = json!({"scorer": "scorer/lape", "top_rate": 0.01});
        write_neuron_sets(&p, &sets(), &prov).expect("writes");
        let (back, prov_back) = read_neuron_sets(&p).expect("reads");
        assert_eq!(back, sets());
        assert_eq!(prov_back, prov);
        let text = std::fs::read_to_string(&p).expect("read");
        // Labels keep the writer's order (not sorted), indices are sorted.
        assert!(text.find("诚信/support") < text.find("a/conflict"));
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["neurons"]["诚信/support"], json!([[1, 5], [], [7]]));
    }

    #[test]
    fn bad_indices_name_label_and_layer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("bad.json");
        std::fs::write(&p, r#"{"neurons": {"x": [[1], [-3]]}}"#).expect("write");
        let err = read_neuron_sets(&p).expect_err("negative index");
        assert_eq!(
            err.to_string(),
            format!(
                "neuron-set file {}: key neurons.x[1]: not a list of neuron indices (integers 0..2^32)",
                p.display()
            )
        );
        std::fs::write(&p, r#"{"sets": {}}"#).expect("write");
        let err = read_neuron_sets(&p).expect_err("no neurons key");
        assert!(
            err.to_string()
                .ends_with("key neurons: missing or not an object")
        );
    }

    #[test]
    fn duplicate_labels_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = sets();
        s.push(s[0].clone());
        let err =
            write_neuron_sets(&dir.path().join("d.json"), &s, &Value::Null).expect_err("duplicate");
        assert!(
            err.to_string()
                .ends_with("label 诚信/support appears twice")
        );
    }

    // See: #10 (the fuzz target reads through `read_neuron_sets_from_bytes`)
    #[test]
    fn from_bytes_reads_like_the_file() {
        let bytes = br#"{"neurons": {"x": [[3, 1, 3], []]}, "provenance": {"a": 1}}"#;
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("n.json");
        std::fs::write(&p, bytes).expect("write");
        let from_bytes = read_neuron_sets_from_bytes(&p, bytes).expect("reads");
        assert_eq!(from_bytes, read_neuron_sets(&p).expect("reads"));
        assert_eq!(from_bytes.0[0].1.layers()[0], [1, 3]);
        let e = read_neuron_sets_from_bytes(Path::new("a/n.json"), b"[").unwrap_err();
        assert!(e.to_string().contains("a/n.json"), "{e}");
    }
}
