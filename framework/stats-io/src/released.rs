//! The released activation-count layout of the C-voice follow-up code
//! (`xuyuemei/Value-neuron-main2`, converted without Python):
//! - `over_zero.safetensors`: one `I32` tensor `[layers, neurons]` per label
//!   `<value>/<condition>`, counting tokens with `SiLU(gate) > 0`;
//! - `counts.json`: per label `{"token_num": float, "question_num": int}`.
//!
//! Only counts are released: the statistics returned here have **empty** `sum`, `sum_sq` and
//! item-level vectors (not zeros), so a scorer that needs activation sums fails on their length instead
//! of silently using zeros. LAPE needs only counts.

use std::path::Path;

use serde_json::Value;
use valex_core::{ActivationStats, LabelStats};

use crate::error::{FileKind, StatsIoError, StatsIoErrorKind};
use crate::st_reader::StReader;

/// File name of the counts tensors inside a released folder.
pub const RELEASED_TENSORS: &str = "over_zero.safetensors";
/// File name of the per-label token and item counts inside a released folder.
pub const RELEASED_COUNTS: &str = "counts.json";
/// The tap the released counts describe.
pub const RELEASED_TAP: &str = "mlp.gate_act";

/// Reads released counts from `dir`: all labels (in `counts.json` order) or only `labels`
/// (in the order given; only those tensors are read from disk).
///
/// `active` = counts, `tokens` = `token_num`, `items` = `question_num`; `sum` and `sum_sq`
/// are empty because the layout does not carry them.
///
/// # Errors
/// Missing or malformed files, an unknown label (listing the available ones), a label whose
/// tensor is missing, or tensors that are not `I32` or differ in shape.
pub fn read_released_counts(
    dir: &Path,
    labels: Option<&[String]>,
) -> Result<ActivationStats, StatsIoError> {
    let counts_path = dir.join(RELEASED_COUNTS);
    let err = |k: StatsIoErrorKind| StatsIoError::new(FileKind::ReleasedCounts, &counts_path, k);
    let raw =
        std::fs::read(&counts_path).map_err(|e| err(StatsIoErrorKind::Read).with_source(e))?;
    let counts: serde_json::Map<String, Value> =
        serde_json::from_slice(&raw).map_err(|e| err(StatsIoErrorKind::Json).with_source(e))?;
    let wanted: Vec<String> = match labels {
        Some(l) => l.to_vec(),
        None => counts.keys().cloned().collect(),
    };
    let mut out: Vec<LabelStats> = Vec::with_capacity(wanted.len());
    for name in &wanted {
        let entry = counts.get(name).ok_or_else(|| {
            err(StatsIoErrorKind::UnknownLabel {
                label: name.clone(),
                available: counts.keys().cloned().collect::<Vec<_>>().join(", "),
            })
        })?;
        let key_err = |key: &str, m: &str| {
            err(StatsIoErrorKind::Key {
                key: format!("{name}.{key}"),
                message: m.into(),
            })
        };
        let tokens = entry
            .get("token_num")
            .and_then(Value::as_f64)
            .ok_or_else(|| key_err("token_num", "missing or not a number"))?;
        let items = entry
            .get("question_num")
            .and_then(Value::as_u64)
            .ok_or_else(|| key_err("question_num", "missing or not an integer"))?;
        if out.iter().any(|l| &l.name == name) {
            return Err(err(StatsIoErrorKind::Invalid(format!(
                "label {name} is requested twice"
            ))));
        }
        out.push(LabelStats::counts_only(name, tokens, items, Vec::new()));
    }

    let mut reader = StReader::open(&dir.join(RELEASED_TENSORS), FileKind::ReleasedCounts)?;
    // The first requested tensor fixes the shape; every other must match it.
    let shape = match out.first() {
        Some(l) => reader.entry(&l.name)?.shape.clone(),
        None => vec![0, 0],
    };
    if shape.len() != 2 {
        return Err(StatsIoError::new(
            FileKind::ReleasedCounts,
            &dir.join(RELEASED_TENSORS),
            StatsIoErrorKind::Invalid(format!(
                "tensor {} has shape {shape:?}, expected [layers, neurons]",
                out[0].name
            )),
        ));
    }
    for l in &mut out {
        l.active = reader.read_f64(&l.name, &shape, "I32")?;
    }
    let mut stats = ActivationStats::new(RELEASED_TAP, shape[0], shape[1], &[]);
    stats.labels = out;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    /// A released-style folder with labels `v/support` [2, 3] and `v/conflict` [2, 3] plus
    /// an odd `w/support` [2, 4].
    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let a: Vec<u8> = (0..6_i32).flat_map(i32::to_le_bytes).collect();
        let b: Vec<u8> = (10..16_i32).flat_map(i32::to_le_bytes).collect();
        let c: Vec<u8> = (0..8_i32).flat_map(i32::to_le_bytes).collect();
        let views = vec![
            (
                "v/support",
                TensorView::new(safetensors::Dtype::I32, vec![2, 3], &a),
            ),
            (
                "v/conflict",
                TensorView::new(safetensors::Dtype::I32, vec![2, 3], &b),
            ),
            (
                "w/support",
                TensorView::new(safetensors::Dtype::I32, vec![2, 4], &c),
            ),
        ]
        .into_iter()
        .map(|(n, v)| (n, v.expect("view")))
        .collect::<Vec<_>>();
        let bytes = safetensors::serialize(views, None).expect("serialise");
        std::fs::write(dir.path().join(RELEASED_TENSORS), bytes).expect("write");
        let counts = serde_json::json!({
            "v/support": {"token_num": 100.0, "question_num": 4},
            "v/conflict": {"token_num": 90.0, "question_num": 4},
            "w/support": {"token_num": 5.0, "question_num": 1},
        });
        std::fs::write(dir.path().join(RELEASED_COUNTS), counts.to_string()).expect("write");
        dir
    }

    #[test]
    fn reads_requested_labels_with_counts_and_no_sums() {
        let dir = folder();
        let labels = vec!["v/conflict".to_owned(), "v/support".to_owned()];
        let s = read_released_counts(dir.path(), Some(&labels)).expect("reads");
        assert_eq!((s.n_layers, s.n_neurons), (2, 3));
        assert_eq!(s.label_names(), labels);
        assert_eq!(s.labels[0].active, vec![10.0, 11.0, 12.0, 13.0, 14.0, 15.0]);
        assert_eq!(s.labels[0].tokens, 90.0);
        assert_eq!(s.labels[1].items, 4);
        assert!(s.labels[1].sum.is_empty() && s.labels[1].sum_sq.is_empty());
    }

    #[test]
    fn unknown_label_lists_available_ones() {
        let dir = folder();
        let err =
            read_released_counts(dir.path(), Some(&["v/neutral".to_owned()])).expect_err("unknown");
        assert!(
            err.to_string().ends_with(
                "counts.json: unknown label v/neutral; available: v/support, v/conflict, w/support"
            ),
            "{err}"
        );
    }

    #[test]
    fn labels_of_other_shapes_are_refused() {
        let dir = folder();
        let err = read_released_counts(dir.path(), None).expect_err("w has another shape");
        assert!(
            err.to_string().ends_with(
                "over_zero.safetensors: tensor w/support has shape [2, 4], expected [2, 3]"
            ),
            "{err}"
        );
    }
}
