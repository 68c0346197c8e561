//! LAPE's mask layout: `List[K][L]` of int64 index tensors (`torch.save`d by the authors'
//! `identify.py`; one list per label, one tensor per layer, indices of the selected neurons).
//!
//! valex writes it as safetensors ([`export_lape_masks`]): `I64` tensors `mask/<k>/<layer>`
//! (shape `[n]`, possibly `[0]`) and metadata `{"format": "valex-lape-mask", "labels": [..],
//! "n_layers": L}`, which Python turns into the authors' object with
//!
//! ```python
//! from safetensors.torch import load_file, safe_open
//! f = load_file(path); meta = safe_open(path, "pt").metadata()
//! K, L = len(json.loads(meta["labels"])), int(meta["n_layers"])
//! torch.save([[f[f"mask/{k}/{l}"] for l in range(L)] for k in range(K)], "activation_mask")
//! ```
//!
//! [`import_lape_masks`] reads that file back, or a JSON dump of the same nesting
//! (`[[[indices of label 0, layer 0], ...], ...]`, e.g. `json.dump([[t.tolist() for t in l]
//! for l in mask])`), optionally wrapped as `{"labels": [..], "masks": [..]}`.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, serialize};
use serde_json::Value;
use valex_core::NeuronSet;

use crate::atomic::write_atomic;
use crate::error::{FileKind, StatsIoError, StatsIoErrorKind};
use crate::st_reader::Source;

/// The metadata `format` of an exported mask file.
pub const LAPE_MASK_FORMAT: &str = "valex-lape-mask";

/// Writes `sets` in LAPE's layout as safetensors (see the module docs), atomically.
///
/// # Errors
/// Sets with different numbers of layers, or I/O failures naming the file.
pub fn export_lape_masks(path: &Path, sets: &[(String, NeuronSet)]) -> Result<(), StatsIoError> {
    let err = |k: StatsIoErrorKind| StatsIoError::new(FileKind::NeuronSets, path, k);
    let n_layers = sets.first().map_or(0, |(_, s)| s.n_layers());
    if let Some((label, s)) = sets.iter().find(|(_, s)| s.n_layers() != n_layers) {
        return Err(err(StatsIoErrorKind::Invalid(format!(
            "label {label} has {} layers, the first label {n_layers}",
            s.n_layers()
        ))));
    }
    let mut buffers: Vec<(String, usize, Vec<u8>)> = Vec::new();
    for (k, (_, set)) in sets.iter().enumerate() {
        for (layer, idx) in set.layers().iter().enumerate() {
            let bytes: Vec<u8> = idx
                .iter()
                .flat_map(|&i| i64::from(i).to_le_bytes())
                .collect();
            buffers.push((format!("mask/{k}/{layer}"), idx.len(), bytes));
        }
    }
    let views = buffers
        .iter()
        .map(|(name, n, bytes)| {
            TensorView::new(Dtype::I64, vec![*n], bytes).map(|v| (name.as_str(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            err(StatsIoErrorKind::Invalid(
                "cannot build tensor views".into(),
            ))
            .with_source(e)
        })?;
    let labels: Vec<&str> = sets.iter().map(|(l, _)| l.as_str()).collect();
    let meta = HashMap::from([
        ("format".to_owned(), LAPE_MASK_FORMAT.to_owned()),
        (
            "labels".to_owned(),
            serde_json::to_string(&labels).expect("strings serialise"),
        ),
        ("n_layers".to_owned(), n_layers.to_string()),
    ]);
    let bytes = serialize(views, Some(meta)).map_err(|e| {
        err(StatsIoErrorKind::Invalid("cannot serialise masks".into())).with_source(e)
    })?;
    write_atomic(path, &bytes).map_err(|e| err(StatsIoErrorKind::Write).with_source(e))
}

/// Reads LAPE masks: a file written by [`export_lape_masks`] (`.safetensors`) or a JSON dump
/// (see the module docs). JSON without label names gets `labels` when given, else `0`, `1`, ...
///
/// # Errors
/// Unreadable or malformed files, a label count that differs from `labels`, indices that are
/// not non-negative 32-bit integers (naming label and layer).
pub fn import_lape_masks(
    path: &Path,
    labels: Option<&[String]>,
) -> Result<Vec<(String, NeuronSet)>, StatsIoError> {
    import_lape_masks_from(path, Source::Disk, labels)
}

/// [`import_lape_masks`] of a file already in memory (`bytes`; `path` names it in messages and
/// its extension picks JSON or safetensors): the same parsing and checks (it is what the fuzz
/// target calls).
///
/// # Errors
/// As [`import_lape_masks`].
pub fn import_lape_masks_from_bytes(
    path: &Path,
    bytes: &[u8],
    labels: Option<&[String]>,
) -> Result<Vec<(String, NeuronSet)>, StatsIoError> {
    import_lape_masks_from(path, Source::Bytes(bytes), labels)
}

fn import_lape_masks_from(
    path: &Path,
    file: Source<'_>,
    labels: Option<&[String]>,
) -> Result<Vec<(String, NeuronSet)>, StatsIoError> {
    let err = |k: StatsIoErrorKind| StatsIoError::new(FileKind::NeuronSets, path, k);
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let (names, layers): (Option<Vec<String>>, Vec<Vec<Vec<u32>>>) = if is_json {
        let raw = file
            .read(path)
            .map_err(|e| err(StatsIoErrorKind::Read).with_source(e))?;
        let doc: Value =
            serde_json::from_slice(&raw).map_err(|e| err(StatsIoErrorKind::Json).with_source(e))?;
        let (names, masks) = match &doc {
            Value::Object(o) => (
                o.get("labels").and_then(Value::as_array).map(|a| {
                    a.iter()
                        .map(|v| v.as_str().unwrap_or_default().to_owned())
                        .collect()
                }),
                o.get("masks").cloned().unwrap_or(Value::Null),
            ),
            other => (None, other.clone()),
        };
        let key_err = |key: String| {
            err(StatsIoErrorKind::Key {
                key,
                message: "not a list of per-layer lists of neuron indices (integers 0..2^32)"
                    .into(),
            })
        };
        let per_label = masks.as_array().ok_or_else(|| key_err("masks".into()))?;
        let mut all = Vec::with_capacity(per_label.len());
        for (k, l) in per_label.iter().enumerate() {
            let layers = l.as_array().ok_or_else(|| key_err(format!("masks[{k}]")))?;
            let mut parsed = Vec::with_capacity(layers.len());
            for (j, layer) in layers.iter().enumerate() {
                let idx: Option<Vec<u32>> = layer.as_array().and_then(|a| {
                    a.iter()
                        .map(|v| v.as_u64().and_then(|v| u32::try_from(v).ok()))
                        .collect()
                });
                parsed.push(idx.ok_or_else(|| key_err(format!("masks[{k}][{j}]")))?);
            }
            all.push(parsed);
        }
        (names, all)
    } else {
        let mut r = file.safetensors(path, FileKind::NeuronSets)?;
        let meta = r.metadata().clone();
        let meta_err = |key: &str| {
            err(StatsIoErrorKind::Key {
                key: format!("__metadata__.{key}"),
                message: format!("missing or invalid (expected a {LAPE_MASK_FORMAT} file)"),
            })
        };
        if meta.get("format").map(String::as_str) != Some(LAPE_MASK_FORMAT) {
            return Err(meta_err("format"));
        }
        let names: Vec<String> = meta
            .get("labels")
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| meta_err("labels"))?;
        let n_layers: usize = meta
            .get("n_layers")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| meta_err("n_layers"))?;
        let mut all = Vec::with_capacity(names.len());
        for k in 0..names.len() {
            let mut layers = Vec::with_capacity(n_layers);
            for layer in 0..n_layers {
                let name = format!("mask/{k}/{layer}");
                let n = r.entry(&name)?.shape.first().copied().unwrap_or(0);
                let idx = r.read_u64(&name, &[n], "I64")?;
                let idx: Option<Vec<u32>> =
                    idx.into_iter().map(|i| u32::try_from(i).ok()).collect();
                layers.push(idx.ok_or_else(|| {
                    err(StatsIoErrorKind::Invalid(format!(
                        "tensor {name} holds an index beyond 2^32"
                    )))
                })?);
            }
            all.push(layers);
        }
        (Some(names), all)
    };
    let names = match (labels, names) {
        (Some(given), _) => {
            if given.len() != layers.len() {
                return Err(err(StatsIoErrorKind::Invalid(format!(
                    "{} labels given for {} masks",
                    given.len(),
                    layers.len()
                ))));
            }
            given.to_vec()
        }
        (None, Some(n)) if n.len() == layers.len() => n,
        (None, _) => (0..layers.len()).map(|k| k.to_string()).collect(),
    };
    Ok(names
        .into_iter()
        .zip(layers)
        .map(|(n, l)| (n, NeuronSet::from_layers(l)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets() -> Vec<(String, NeuronSet)> {
        vec![
            (
                "富强/support".to_owned(),
                NeuronSet::from_layers(vec![vec![3, 1], vec![], vec![7]]),
            ),
            (
                "富强/conflict".to_owned(),
                NeuronSet::from_layers(vec![vec![], vec![], vec![2, 9]]),
            ),
        ]
    }

    #[test]
    fn safetensors_masks_round_trip_with_labels_and_empty_layers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("mask.safetensors");
        export_lape_masks(&p, &sets()).expect("writes");
        assert_eq!(import_lape_masks(&p, None).expect("reads"), sets());
        let renamed =
            import_lape_masks(&p, Some(&["x".to_owned(), "y".to_owned()])).expect("reads");
        assert_eq!(renamed[1].0, "y");
        assert!(import_lape_masks(&p, Some(&["x".to_owned()])).is_err());
    }

    #[test]
    fn json_dumps_of_the_nested_lists_are_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("mask.json");
        std::fs::write(&p, "[[[1, 3], [], [7]], [[], [], [9, 2]]]").expect("write");
        let got = import_lape_masks(&p, None).expect("reads");
        assert_eq!(got[0].1, sets()[0].1);
        assert_eq!(got[1].0, "1");
        std::fs::write(&p, r#"{"labels": ["a", "b"], "masks": [[[1]], [[-1]]]}"#).expect("write");
        let e = import_lape_masks(&p, None).expect_err("negative index");
        assert!(e.to_string().ends_with("key masks[1][0]: not a list of per-layer lists of neuron indices (integers 0..2^32)"), "{e}");
    }

    #[test]
    fn other_safetensors_files_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("x.safetensors");
        let bytes = serialize(Vec::<(&str, TensorView<'_>)>::new(), None).expect("empty file");
        std::fs::write(&p, bytes).expect("write");
        let e = import_lape_masks(&p, None).expect_err("no metadata");
        assert!(e.to_string().contains("key __metadata__.format"), "{e}");
    }

    // See: #10 (the fuzz target reads through `import_lape_masks_from_bytes`)
    #[test]
    fn from_bytes_imports_like_the_file_for_both_formats() {
        let dir = tempfile::tempdir().expect("temp dir");
        let st = dir.path().join("m.safetensors");
        export_lape_masks(&st, &sets()).expect("exports");
        let bytes = std::fs::read(&st).expect("read");
        let from_bytes = import_lape_masks_from_bytes(&st, &bytes, None).expect("imports");
        assert_eq!(from_bytes, import_lape_masks(&st, None).expect("imports"));
        assert_eq!(from_bytes, sets());
        let json = br#"[[[1, 3], [], [7]], [[], [], [9, 2]]]"#;
        let got = import_lape_masks_from_bytes(Path::new("m.json"), json, None).expect("json");
        assert_eq!(got[1].1.layers()[2], [2, 9]);
        let e = import_lape_masks_from_bytes(Path::new("x/m.safetensors"), &bytes[..9], None)
            .unwrap_err();
        assert!(e.to_string().contains("x/m.safetensors"), "{e}");
    }
}
