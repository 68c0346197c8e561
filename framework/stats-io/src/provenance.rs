//! [`SetProvenance`]: what every neuron-set file records about where its sets came from —
//! scorer id and params, the selection rule, the labels compared, the sha256 of the
//! statistics file, the model and dataset hashes recorded with the statistics, the source
//! layout, the selection stability and the scorer's report.

use serde_json::{Map, Value, json};
use valex_core::VALEX_VERSION;

/// Provenance of a neuron-set file. [`SetProvenance::to_json`] gives the `provenance` object
/// that [`crate::write_neuron_sets`] stores.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetProvenance {
    /// Scorer id (`scorer/welch-t`).
    pub scorer: String,
    /// Scorer params as given.
    pub params: Value,
    /// The labels compared, in order.
    pub labels: Vec<String>,
    /// The scorer's report (`ScoreOutput::details`).
    pub details: Value,
    /// sha256 of the statistics tensors file (or of the released counts tensors).
    pub statistics_sha256: Option<String>,
    /// sha256 over the model files, as recorded with the statistics.
    pub model_sha256: Option<String>,
    /// `{dataset file: sha256}`, as recorded with the statistics.
    pub dataset_sha256: Value,
    /// Where the statistics came from (`{"layout": "valex-stats" | "released-counts", ..}`).
    pub source: Value,
    /// Selection stability per label (`null` when not computed).
    pub stability: Value,
}

impl SetProvenance {
    /// The selection rule in a scorer's report: `details.selection` for the contrast scorers,
    /// LAPE's thresholds for `scorer/lape`, else `null`.
    pub fn selection_of(details: &Value) -> Value {
        if let Some(s) = details.get("selection") {
            return s.clone();
        }
        if details.get("method").and_then(Value::as_str) == Some("lape") {
            let mut m = Map::new();
            m.insert("rule".into(), json!("lape"));
            for k in [
                "top_rate",
                "filter_rate",
                "activation_bar_ratio",
                "normalize_by",
            ] {
                m.insert(k.into(), details.get(k).cloned().unwrap_or(Value::Null));
            }
            return Value::Object(m);
        }
        Value::Null
    }

    /// The model and dataset hashes stored in a statistics sidecar by the record stage
    /// (`provenance.provenance.{model_sha256, dataset_sha256}`), if any.
    pub fn recorded_inputs(sidecar: &Value) -> (Option<String>, Value) {
        let p = &sidecar["provenance"]["provenance"];
        (
            p["model_sha256"].as_str().map(str::to_owned),
            p.get("dataset_sha256").cloned().unwrap_or(Value::Null),
        )
    }

    /// The `provenance` object: every field above plus `selection` and `valex_version`.
    pub fn to_json(&self) -> Value {
        json!({
            "scorer": self.scorer,
            "params": self.params,
            "selection": Self::selection_of(&self.details),
            "labels": self.labels,
            "statistics_sha256": self.statistics_sha256,
            "model_sha256": self.model_sha256,
            "dataset_sha256": self.dataset_sha256,
            "source": self.source,
            "stability": self.stability,
            "details": self.details,
            "valex_version": VALEX_VERSION,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_every_field_and_finds_the_selection_rule() {
        let p = SetProvenance {
            scorer: "scorer/welch-t".into(),
            params: json!({"level": "items"}),
            labels: vec!["a".into(), "b".into()],
            details: json!({"method": "welch-t", "selection": {"rule": "fdr", "q": 0.05}}),
            statistics_sha256: Some("ab".into()),
            model_sha256: Some("cd".into()),
            dataset_sha256: json!({"d.jsonl": "ef"}),
            source: json!({"layout": "valex-stats"}),
            stability: Value::Null,
        }
        .to_json();
        assert_eq!(p["selection"], json!({"rule": "fdr", "q": 0.05}));
        assert_eq!(p["statistics_sha256"], "ab");
        assert_eq!(p["dataset_sha256"]["d.jsonl"], "ef");
        assert_eq!(p["valex_version"], VALEX_VERSION);
        let lape = SetProvenance::selection_of(
            &json!({"method": "lape", "top_rate": 0.01, "filter_rate": 0.95, "activation_bar_ratio": 0.95, "normalize_by": "tokens"}),
        );
        assert_eq!(lape["rule"], "lape");
        assert_eq!(lape["filter_rate"], 0.95);
        let side = json!({"provenance": {"provenance": {"model_sha256": "m", "dataset_sha256": {"x": "y"}}}});
        assert_eq!(
            SetProvenance::recorded_inputs(&side),
            (Some("m".into()), json!({"x": "y"}))
        );
    }
}
