//! The SDK side of the ABI's data schema (docs/plugin-abi.md, "Methods"): decoding `invoke`
//! inputs (JSON plus borrowed tensors) into valex types and encoding outputs as JSON.
//!
//! Safe code only: `rt.rs` turns raw views into [`TensorRef`]s first.

use serde_json::{Value, json};
use valex_core::{ActivationStats, LabelStats, NeuronEdit, NeuronSet, OutputFile};
use valex_plugin_abi::{VX_DTYPE_F64, dtype_size};

use crate::component::{ModelShape, PluginError, ScorerOutput};

/// A borrowed tensor, already checked against its byte length.
#[derive(Debug, Clone, Copy)]
pub struct TensorRef<'a> {
    /// `VX_DTYPE_*`.
    pub dtype: u32,
    /// Dimensions.
    pub shape: &'a [u64],
    /// `product(shape) * size(dtype)` bytes.
    pub bytes: &'a [u8],
}

fn bad_input(message: impl Into<String>) -> PluginError {
    PluginError::new("plugin.bad_input", message)
}

/// The per-label `[n_layers, n_neurons]` arrays of [`LabelStats`], by the names the ABI uses.
fn label_array_mut<'a>(l: &'a mut LabelStats, name: &str) -> Option<&'a mut Vec<f64>> {
    match name {
        "active" => Some(&mut l.active),
        "sum" => Some(&mut l.sum),
        "sum_sq" => Some(&mut l.sum_sq),
        "item_sum" => Some(&mut l.item_sum),
        "item_sum_sq" => Some(&mut l.item_sum_sq),
        _ => None,
    }
}

/// Copies an f64 tensor of `expect` elements.
fn f64_values(t: &TensorRef<'_>, expect: usize, what: &str) -> Result<Vec<f64>, PluginError> {
    if t.dtype != VX_DTYPE_F64 {
        return Err(bad_input(format!(
            "tensor {what}: expected dtype f64 ({VX_DTYPE_F64}), found {}",
            t.dtype
        )));
    }
    let n = t.bytes.len() / dtype_size(VX_DTYPE_F64).unwrap_or(8);
    if n != expect {
        return Err(bad_input(format!(
            "tensor {what}: expected {expect} values, found {n}"
        )));
    }
    Ok(t.bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("chunks_exact(8) yields 8 bytes")))
        .collect())
}

fn get_usize(v: &Value, key: &str) -> Result<usize, PluginError> {
    v.get(key)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| bad_input(format!("input: {key} must be a non-negative integer")))
}

/// Decodes a `score` input into statistics, the requested labels and whether the host wants
/// the per-neuron scores back.
///
/// # Errors
/// Malformed JSON fields, tensor indexes out of range, wrong dtypes or sizes.
pub fn decode_score_input(
    input: &Value,
    tensors: &[TensorRef<'_>],
) -> Result<(ActivationStats, Vec<String>, bool), PluginError> {
    let tap = input.get("tap").and_then(Value::as_str).unwrap_or_default();
    let n_layers = get_usize(input, "n_layers")?;
    let n_neurons = get_usize(input, "n_neurons")?;
    let entries = input
        .get("stats")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_input("input: stats must be an array"))?;
    let mut names = Vec::with_capacity(entries.len());
    for e in entries {
        let name = e
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_input("input: every stats entry needs a name"))?;
        names.push(name.to_owned());
    }
    let mut stats = ActivationStats::new(tap, n_layers, n_neurons, &names);
    let n = n_layers * n_neurons;
    for (e, slot) in entries.iter().zip(stats.labels.iter_mut()) {
        let mut scalars = e.clone();
        let index = scalars
            .as_object_mut()
            .and_then(|o| o.remove("tensors"))
            .unwrap_or_else(|| json!({}));
        let mut label: LabelStats = serde_json::from_value(scalars)
            .map_err(|err| bad_input(format!("input: stats entry {}: {err}", slot.name)))?;
        // Arrays the host did not send stay empty (e.g. sums of released counts).
        for array in ["active", "sum", "sum_sq", "item_sum", "item_sum_sq"] {
            if let Some(v) = label_array_mut(&mut label, array) {
                v.clear();
            }
        }
        let label_name = label.name.clone();
        for (array, i) in index.as_object().into_iter().flatten() {
            let Some(dst) = label_array_mut(&mut label, array) else {
                continue; // an array this SDK does not know: newer host, ignored
            };
            let t = i
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| tensors.get(i))
                .ok_or_else(|| {
                    bad_input(format!(
                        "input: {label_name}.{array}: tensor index {i} out of range"
                    ))
                })?;
            *dst = f64_values(t, n, &format!("{label_name}.{array}"))?;
        }
        *slot = label;
    }
    let labels = match input.get("labels").and_then(Value::as_array) {
        Some(a) => a
            .iter()
            .map(|l| l.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad_input("input: labels must be strings"))?,
        None => stats.label_names(),
    };
    let want_scores = input
        .get("want_scores")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((stats, labels, want_scores))
}

/// Encodes a scorer's output (scores only when `want_scores`).
pub fn encode_score_output(out: &ScorerOutput, want_scores: bool) -> Value {
    let mut v = json!({
        "sets": out.sets.iter().map(|(label, set)| json!({"label": label, "layers": set.layers()})).collect::<Vec<_>>(),
        "details": out.details,
    });
    if want_scores {
        v["scores"] = out
            .scores
            .iter()
            .map(|(label, values)| json!({"label": label, "values": values}))
            .collect();
    }
    v
}

/// Decodes an `edit` input: the neuron set, the tap and the model's shape.
///
/// # Errors
/// Missing or malformed fields.
pub fn decode_edit_input(input: &Value) -> Result<(NeuronSet, String, ModelShape), PluginError> {
    let layers: Vec<Vec<u32>> =
        serde_json::from_value(input.get("set").cloned().unwrap_or_default())
            .map_err(|e| bad_input(format!("input: set: {e}")))?;
    let tap = input
        .get("tap")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_input("input: tap must be a string"))?;
    let model: ModelShape = serde_json::from_value(input.get("model").cloned().unwrap_or_default())
        .map_err(|e| bad_input(format!("input: model: {e}")))?;
    Ok((NeuronSet::from_layers(layers), tap.to_owned(), model))
}

/// Encodes an intervention's edit as ABI v1 `[neuron, factor]` pairs.
///
/// # Errors
/// An edit whose ops shift or clamp: ABI v1 carries multiplicative edits only
/// (docs/plugin-abi.md).
pub fn encode_edit_output(edit: &NeuronEdit) -> Result<Value, PluginError> {
    let factors = edit.factors().ok_or_else(|| {
        PluginError::new(
            "intervention.unsupported_edit",
            "plugin ABI v1 carries multiplicative edits only ([neuron, factor] pairs); this edit shifts or clamps activations",
        )
    })?;
    Ok(json!({ "tap": edit.tap, "layers": factors }))
}

/// Decodes a `report` input: the results document.
///
/// # Errors
/// A missing `results` field.
pub fn decode_report_input(input: &Value) -> Result<&Value, PluginError> {
    input
        .get("results")
        .ok_or_else(|| bad_input("input: results is missing"))
}

/// Encodes a reporter's files; every file must be UTF-8.
///
/// # Errors
/// A file whose bytes are not UTF-8.
pub fn encode_report_output(files: &[OutputFile]) -> Result<Value, PluginError> {
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let text = std::str::from_utf8(&f.bytes).map_err(|_| {
            PluginError::new(
                "reporter.not_utf8",
                format!(
                    "file {}: plugin reporters may only write UTF-8 text",
                    f.name
                ),
            )
        })?;
        out.push(json!({"name": f.name, "text": text}));
    }
    Ok(json!({ "files": out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn decodes_stats_from_json_and_tensors() {
        let (a, s) = (bytes(&[1.0, 0.0, 2.0, 3.0]), bytes(&[0.5, 0.0, 1.0, 1.5]));
        let shape = [2u64, 2];
        let tensors = [
            TensorRef {
                dtype: VX_DTYPE_F64,
                shape: &shape,
                bytes: &a,
            },
            TensorRef {
                dtype: VX_DTYPE_F64,
                shape: &shape,
                bytes: &s,
            },
        ];
        let input = json!({
            "tap": "mlp.gate_act", "n_layers": 2, "n_neurons": 2, "labels": ["x"],
            "stats": [{"name": "x", "tokens": 4.0, "items": 2, "tensors": {"active": 0, "sum": 1, "item_sum": 1, "future": 7}}],
        });
        let (stats, labels, want) = decode_score_input(&input, &tensors).unwrap();
        assert_eq!(labels, vec!["x"]);
        assert!(!want);
        assert_eq!(stats.labels[0].active, vec![1.0, 0.0, 2.0, 3.0]);
        assert_eq!(stats.labels[0].sum, vec![0.5, 0.0, 1.0, 1.5]);
        assert!(stats.labels[0].sum_sq.is_empty());
        assert_eq!(stats.labels[0].item_sum, vec![0.5, 0.0, 1.0, 1.5]);
        assert!(stats.labels[0].item_sum_sq.is_empty());
        assert_eq!(stats.labels[0].items, 2);
    }

    #[test]
    fn rejects_tensors_of_the_wrong_size() {
        let a = bytes(&[1.0]);
        let shape = [1u64];
        let tensors = [TensorRef {
            dtype: VX_DTYPE_F64,
            shape: &shape,
            bytes: &a,
        }];
        let input = json!({"n_layers": 2, "n_neurons": 2,
            "stats": [{"name": "x", "tokens": 1.0, "items": 1, "tensors": {"active": 0}}]});
        let e = decode_score_input(&input, &tensors).unwrap_err();
        assert_eq!(e.message, "tensor x.active: expected 4 values, found 1");
    }

    #[test]
    fn edits_encode_as_v1_factor_pairs_and_refuse_shifts() {
        let mut e = NeuronEdit::multiply("mlp.up", vec![vec![(2, 0.5)], vec![]]);
        assert_eq!(
            encode_edit_output(&e).unwrap(),
            json!({"tap": "mlp.up", "layers": [[[2, 0.5]], []]})
        );
        e.layers[1].push((0, valex_core::NeuronOp::constant(1.0)));
        let err = encode_edit_output(&e).unwrap_err();
        assert!(
            err.to_string().contains("multiplicative edits only"),
            "{err}"
        );
    }
}
