//! `scorer/act-prob-diff`: activation-probability difference (NPTI / ValueLocate lineage,
//! METHOD.md §6.2): `δ = P_A(act > 0) − P_C(act > 0)`, each probability the count of active
//! tokens divided by that group's tokens (or items), the contrast group being the pooled other
//! labels. It needs only activation counts, so it also runs on released count files.
//!
//! The lineage's own rule (keep the 2,000 largest δ plus any further with δ ≥ 0.1) is
//! `selection = { rule = "top-k-plus-threshold", k = 2000, threshold = 0.1 }`; the default is
//! `top-rate` 0.01, like LAPE, which scales with the model.

use serde::{Deserialize, Serialize};
use serde_json::json;
use valex_core::{
    ActivationStats, ComponentError, ConfigError, FactoryContext, ScoreOutput, Scorer,
};

use crate::contrast::{LabelScores, finish, per_label, resolve_labels};
use crate::lape::NormalizeBy;
use crate::selection::{RuleName, Selection, SelectionConfig};

const ID: &str = "scorer/act-prob-diff";

/// Params of `scorer/act-prob-diff`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActProbDiffConfig {
    /// Divide counts by tokens (default; NPTI divides by generated tokens) or by items.
    pub normalize_by: NormalizeBy,
    /// Selection rule (default `top-rate` 0.01, sign positive).
    pub selection: SelectionConfig,
}

/// The `scorer/act-prob-diff` component.
#[derive(Debug, Clone, PartialEq)]
pub struct ActProbDiffScorer {
    config: ActProbDiffConfig,
    selection: Selection,
}

impl ActProbDiffScorer {
    /// A scorer with validated params.
    ///
    /// # Errors
    /// An invalid selection table.
    pub fn new(config: ActProbDiffConfig) -> Result<Self, ConfigError> {
        let selection = config.selection.resolve(RuleName::TopRate, false)?;
        Ok(ActProbDiffScorer { config, selection })
    }
}

/// `δ` per label (in the order of `labels`), `[L · I]` each.
///
/// # Errors
/// Unknown or repeated labels, fewer than two, a label without tokens (items), or counts of
/// the wrong length.
pub fn act_prob_diff_scores(
    stats: &ActivationStats,
    labels: &[String],
    normalize_by: NormalizeBy,
) -> Result<Vec<Vec<f64>>, ComponentError> {
    let idx = resolve_labels(stats, labels, ID)?;
    let cells = stats.n_layers * stats.n_neurons;
    let mut n = Vec::with_capacity(idx.len());
    for &i in &idx {
        let l = &stats.labels[i];
        #[expect(clippy::cast_precision_loss, reason = "item counts << 2^53")]
        let d = match normalize_by {
            NormalizeBy::Tokens => l.tokens,
            NormalizeBy::Items => l.items as f64,
        };
        if !(d.is_finite() && d > 0.0) {
            return Err(ComponentError::input(format!(
                "label {}: {ID} needs counted tokens and items, found {} tokens and {} items",
                l.name, l.tokens, l.items
            )));
        }
        if l.active.len() != cells {
            return Err(ComponentError::input(format!(
                "label {}: active has {} values, expected {cells} ({} layers x {} neurons)",
                l.name,
                l.active.len(),
                stats.n_layers,
                stats.n_neurons
            )));
        }
        n.push(d);
    }
    per_label(idx.len(), |k| {
        let own = &stats.labels[idx[k]].active;
        let mut rest_active = vec![0.0; cells];
        let mut rest_n = 0.0;
        for (j, &i) in idx.iter().enumerate().filter(|&(j, _)| j != k) {
            rest_n += n[j];
            for (acc, v) in rest_active.iter_mut().zip(&stats.labels[i].active) {
                *acc += v;
            }
        }
        Ok(own
            .iter()
            .zip(&rest_active)
            .map(|(a, r)| a / n[k] - r / rest_n)
            .collect())
    })
}

impl Scorer for ActProbDiffScorer {
    fn score(
        &self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScoreOutput, ComponentError> {
        let deltas = act_prob_diff_scores(stats, labels, self.config.normalize_by)?;
        let tables = deltas
            .into_iter()
            .map(|d| {
                let max = d.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                LabelScores {
                    score: d,
                    report: json!({"max_delta": max}),
                    ..LabelScores::default()
                }
            })
            .collect();
        let details = json!({
            "method": "act-prob-diff",
            "normalize_by": match self.config.normalize_by {
                NormalizeBy::Tokens => "tokens",
                NormalizeBy::Items => "items",
            },
            "score": "P_label(act > 0) - P_rest(act > 0)",
        });
        Ok(finish(stats, labels, tables, &self.selection, details))
    }
}

/// Factory of `scorer/act-prob-diff`.
///
/// # Errors
/// Unknown keys, wrong types or an invalid selection table.
pub fn act_prob_diff_factory(
    params: &serde_json::Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Scorer>, ConfigError> {
    let config: ActProbDiffConfig = ConfigError::parse_params(params)?;
    Ok(Box::new(ActProbDiffScorer::new(config)?))
}
