//! The host side of the ABI's data schema (docs/plugin-abi.md, "Methods"): encoding `invoke`
//! inputs (JSON plus tensor views that borrow the host's arrays) and checking every output
//! against the request before it becomes a valex value.
//!
//! Safe code only; errors are plain messages that the proxies wrap as malformed output.

use serde::Deserialize;
use serde_json::{Value, json};
use valex_core::{ActivationStats, LabelStats, ModelInfo, NeuronEdit, NeuronSet, OutputFile};
use valex_plugin_abi::{VX_DTYPE_F64, VX_MAX_RANK, VxTensorView};

/// The `[n_layers, n_neurons]` arrays of a label, by the names the ABI uses. Empty arrays
/// (e.g. sums of released counts) are not sent.
fn label_arrays(l: &LabelStats) -> [(&'static str, &[f64]); 5] {
    [
        ("active", &l.active),
        ("sum", &l.sum),
        ("sum_sq", &l.sum_sq),
        ("item_sum", &l.item_sum),
        ("item_sum_sq", &l.item_sum_sq),
    ]
}

/// A view of `values` shaped `[rows, cols]`; it borrows `values` (keep them alive).
fn view_2d(values: &[f64], rows: usize, cols: usize) -> VxTensorView {
    let mut shape = [0u64; VX_MAX_RANK];
    shape[0] = rows as u64;
    shape[1] = cols as u64;
    VxTensorView {
        dtype: VX_DTYPE_F64,
        rank: 2,
        shape,
        data: values.as_ptr().cast::<u8>(),
        byte_len: std::mem::size_of_val(values) as u64,
    }
}

/// The `score` input: JSON and tensor views that borrow `stats` (valid while `stats` is).
pub(crate) fn encode_score(
    stats: &ActivationStats,
    labels: &[String],
    want_scores: bool,
) -> (String, Vec<VxTensorView>) {
    let n = stats.n_layers * stats.n_neurons;
    let mut views = Vec::new();
    let mut entries = Vec::with_capacity(stats.labels.len());
    for l in &stats.labels {
        // Scalars by name, whatever LabelStats holds (arrays are `serde(skip)`).
        let mut entry = serde_json::to_value(l).unwrap_or_else(|_| json!({"name": l.name}));
        let mut index = serde_json::Map::new();
        for (name, values) in label_arrays(l) {
            if values.len() == n && n > 0 {
                index.insert(name.to_owned(), json!(views.len()));
                views.push(view_2d(values, stats.n_layers, stats.n_neurons));
            }
        }
        entry["tensors"] = Value::Object(index);
        entries.push(entry);
    }
    let input = json!({
        "tap": stats.tap,
        "n_layers": stats.n_layers,
        "n_neurons": stats.n_neurons,
        "labels": labels,
        "want_scores": want_scores,
        "stats": entries,
    });
    (input.to_string(), views)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetJson {
    label: String,
    layers: Vec<Vec<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoresJson {
    label: String,
    values: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreOutputJson {
    sets: Vec<SetJson>,
    #[serde(default)]
    scores: Vec<ScoresJson>,
    #[serde(default)]
    details: Value,
}

/// A decoded scorer output.
pub(crate) struct DecodedScore {
    pub(crate) sets: Vec<(String, NeuronSet)>,
    pub(crate) scores: Vec<(String, Vec<f64>)>,
    pub(crate) details: Value,
}

/// Checks a scorer's output: one set per requested label in request order, layers and
/// neuron indexes inside the model, scores (when present) finite and `[n_layers * n_neurons]`.
pub(crate) fn decode_score(
    bytes: &[u8],
    stats: &ActivationStats,
    labels: &[String],
) -> Result<DecodedScore, String> {
    let o: ScoreOutputJson =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid score JSON: {e}"))?;
    let got: Vec<&str> = o.sets.iter().map(|s| s.label.as_str()).collect();
    if got != labels {
        return Err(format!("sets are for labels {got:?}, expected {labels:?}"));
    }
    let mut sets = Vec::with_capacity(o.sets.len());
    for s in o.sets {
        if s.layers.len() != stats.n_layers {
            return Err(format!(
                "set {} has {} layers, the statistics {}",
                s.label,
                s.layers.len(),
                stats.n_layers
            ));
        }
        for (l, neurons) in s.layers.iter().enumerate() {
            if let Some(&bad) = neurons.iter().find(|&&j| j as usize >= stats.n_neurons) {
                return Err(format!(
                    "set {}: layer {l}: neuron {bad} is outside 0..{}",
                    s.label, stats.n_neurons
                ));
            }
        }
        sets.push((s.label, NeuronSet::from_layers(s.layers)));
    }
    let n = stats.n_layers * stats.n_neurons;
    let mut scores = Vec::with_capacity(o.scores.len());
    for s in o.scores {
        if s.values.len() != n {
            return Err(format!(
                "scores of {}: {} values, expected {n}",
                s.label,
                s.values.len()
            ));
        }
        scores.push((s.label, s.values));
    }
    Ok(DecodedScore {
        sets,
        scores,
        details: o.details,
    })
}

/// The `edit` input.
pub(crate) fn encode_edit(set: &NeuronSet, tap: &str, info: &ModelInfo) -> String {
    json!({
        "set": set,
        "tap": tap,
        "model": {"architecture": info.architecture, "n_layers": info.n_layers, "n_neurons": info.n_neurons},
    })
    .to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditJson {
    tap: String,
    layers: Vec<Vec<(u32, f32)>>,
}

/// Checks an intervention's edit: the requested tap, one list per layer, neurons inside the
/// model, finite factors.
pub(crate) fn decode_edit(bytes: &[u8], tap: &str, info: &ModelInfo) -> Result<NeuronEdit, String> {
    let e: EditJson =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid edit JSON: {e}"))?;
    if e.tap != tap {
        return Err(format!("edit is for tap {}, expected {tap}", e.tap));
    }
    if e.layers.len() != info.n_layers {
        return Err(format!(
            "edit has {} layers, the model {}",
            e.layers.len(),
            info.n_layers
        ));
    }
    for (l, pairs) in e.layers.iter().enumerate() {
        for &(j, f) in pairs {
            if j as usize >= info.n_neurons || !f.is_finite() {
                return Err(format!("layer {l}: bad pair ({j}, {f})"));
            }
        }
    }
    Ok(NeuronEdit::multiply(e.tap, e.layers))
}

/// The `report` input.
pub(crate) fn encode_report(results: &Value) -> String {
    json!({ "results": results }).to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJson {
    name: String,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportJson {
    files: Vec<FileJson>,
}

/// Checks a reporter's files: relative names without `..`.
pub(crate) fn decode_report(bytes: &[u8]) -> Result<Vec<OutputFile>, String> {
    let r: ReportJson =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid report JSON: {e}"))?;
    r.files
        .into_iter()
        .map(|f| {
            let p = std::path::Path::new(&f.name);
            let ok = !f.name.is_empty()
                && p.is_relative()
                && p.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if ok {
                Ok(OutputFile {
                    name: f.name,
                    bytes: f.text.into_bytes(),
                })
            } else {
                Err(format!(
                    "file name {:?} must be relative without `..`",
                    f.name
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> ActivationStats {
        let mut s = ActivationStats::new("t", 2, 3, &["a".to_owned(), "b".to_owned()]);
        s.labels[0].sum.clear(); // e.g. released counts: no sums
        s
    }

    #[test]
    fn encodes_scalars_by_name_and_borrows_non_empty_arrays() {
        let s = stats();
        let (json, views) = encode_score(&s, &["a".to_owned()], false);
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["stats"][0]["tensors"],
            json!({"active": 0, "sum_sq": 1, "item_sum": 2, "item_sum_sq": 3})
        );
        assert_eq!(
            v["stats"][1]["tensors"],
            json!({"active": 4, "sum": 5, "sum_sq": 6, "item_sum": 7, "item_sum_sq": 8})
        );
        assert_eq!(v["stats"][0]["items"], json!(0));
        assert_eq!(views.len(), 9);
        assert_eq!(views[0].byte_len, 48);
        assert_eq!(&views[0].shape[..2], &[2, 3]);
        assert_eq!(views[0].data, s.labels[0].active.as_ptr().cast::<u8>());
    }

    #[test]
    fn rejects_outputs_that_do_not_fit_the_request() {
        let s = stats();
        let labels = ["a".to_owned()];
        let ok = br#"{"sets":[{"label":"a","layers":[[2,0],[]]}],"details":{"x":1}}"#;
        let d = decode_score(ok, &s, &labels).unwrap();
        assert_eq!(d.sets[0].1.layers(), &[vec![0, 2], vec![]]);
        let cases: [(&[u8], &str); 4] = [
            (b"{not json", "invalid score JSON"),
            (
                br#"{"sets":[{"label":"b","layers":[[],[]]}]}"#,
                "expected [\"a\"]",
            ),
            (
                br#"{"sets":[{"label":"a","layers":[[3],[]]}]}"#,
                "neuron 3 is outside 0..3",
            ),
            (br#"{"sets":[{"label":"a","layers":[[]]}]}"#, "has 1 layers"),
        ];
        for (bytes, needle) in cases {
            let e = decode_score(bytes, &s, &labels).err().unwrap();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn report_files_stay_inside_the_run_directory() {
        assert!(decode_report(br#"{"files":[{"name":"a/b.txt","text":"x"}]}"#).is_ok());
        assert!(decode_report(br#"{"files":[{"name":"../b.txt","text":"x"}]}"#).is_err());
        assert!(decode_report(br#"{"files":[{"name":"/b.txt","text":"x"}]}"#).is_err());
    }
}
