//! `scorer/mean-diff`: mean activation difference of each label against the pooled other
//! labels (METHOD.md §6.3, §6.5), as one of several statistics:
//! - `raw`: `μ_A − μ_C`;
//! - `normalized`: `(μ_A − μ_C) / (|μ_A| + |μ_C| + ε)`;
//! - `cohens-d`: `(μ_A − μ_C) / s_p` (pooled standard deviation);
//! - `hedges-g`: `d · (1 − 3 / (4(n_A + n_C) − 9))`;
//! - `glass-delta`: `(μ_A − μ_C) / s_C`;
//! - `layer-z`: the raw difference z-scored across the neurons of its layer.
//!
//! Means and variances come from the item level by default (each item's mean activation is one
//! observation) or from the token level (`level = "tokens"`).

use serde::{Deserialize, Serialize};
use serde_json::json;
use valex_core::{
    ActivationStats, ComponentError, ConfigError, FactoryContext, Moments, ScoreOutput, Scorer,
};

use crate::contrast::{LabelScores, Level, LevelData, finish, per_label, resolve_labels};
use crate::selection::{RuleName, Selection, SelectionConfig};
use crate::two_sample::{cohens_d, glass_delta, hedges_g};

const ID: &str = "scorer/mean-diff";

/// Which difference statistic is the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Statistic {
    /// `μ_A − μ_C`.
    #[default]
    Raw,
    /// `(μ_A − μ_C) / (|μ_A| + |μ_C| + ε)`.
    Normalized,
    /// Cohen's d.
    CohensD,
    /// Hedges' g.
    HedgesG,
    /// Glass's Δ.
    GlassDelta,
    /// Raw difference z-scored within its layer.
    LayerZ,
}

impl Statistic {
    fn as_str(self) -> &'static str {
        match self {
            Statistic::Raw => "raw",
            Statistic::Normalized => "normalized",
            Statistic::CohensD => "cohens-d",
            Statistic::HedgesG => "hedges-g",
            Statistic::GlassDelta => "glass-delta",
            Statistic::LayerZ => "layer-z",
        }
    }
}

/// Params of `scorer/mean-diff`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeanDiffConfig {
    /// Item level (default) or token level.
    pub level: Level,
    /// The statistic (default `raw`).
    pub statistic: Statistic,
    /// `ε` of `normalized` (≥ 0).
    pub epsilon: f64,
    /// Selection rule (default `top-rate` 0.01, sign positive).
    pub selection: SelectionConfig,
}

impl Default for MeanDiffConfig {
    fn default() -> Self {
        MeanDiffConfig {
            level: Level::Items,
            statistic: Statistic::Raw,
            epsilon: 1e-8,
            selection: SelectionConfig::default(),
        }
    }
}

/// The `scorer/mean-diff` component.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanDiffScorer {
    config: MeanDiffConfig,
    selection: Selection,
}

impl MeanDiffScorer {
    /// A scorer with validated params.
    ///
    /// # Errors
    /// A negative or non-finite `epsilon`, or an invalid selection table.
    pub fn new(config: MeanDiffConfig) -> Result<Self, ConfigError> {
        if !(config.epsilon.is_finite() && config.epsilon >= 0.0) {
            return Err(ConfigError::new(
                Some("epsilon"),
                format!("epsilon must be finite and >= 0, found {}", config.epsilon),
            ));
        }
        let selection = config.selection.resolve(RuleName::TopRate, false)?;
        Ok(MeanDiffScorer { config, selection })
    }
}

/// The chosen statistic per label (order of `labels`), `[L · I]` each.
///
/// # Errors
/// Unknown, repeated or too few labels; statistics without the level's arrays; fewer than 2
/// observations in a label.
pub fn mean_diff_scores(
    stats: &ActivationStats,
    labels: &[String],
    level: Level,
    statistic: Statistic,
    epsilon: f64,
) -> Result<Vec<Vec<f64>>, ComponentError> {
    let idx = resolve_labels(stats, labels, ID)?;
    let data = LevelData::new(stats, &idx, level, ID)?;
    let n_neurons = stats.n_neurons;
    per_label(idx.len(), |k| {
        let (rn, rsum, rsq) = data.rest(k);
        let mut out: Vec<f64> = (0..rsum.len())
            .map(|i| {
                let a = data.label(k, i);
                let c = Moments {
                    n: rn,
                    sum: rsum[i],
                    sum_sq: rsq[i],
                };
                match statistic {
                    Statistic::Raw | Statistic::LayerZ => a.mean() - c.mean(),
                    Statistic::Normalized => {
                        (a.mean() - c.mean()) / (a.mean().abs() + c.mean().abs() + epsilon)
                    }
                    Statistic::CohensD => cohens_d(a, c),
                    Statistic::HedgesG => hedges_g(a, c),
                    Statistic::GlassDelta => glass_delta(a, c),
                }
            })
            .collect();
        if statistic == Statistic::LayerZ {
            for layer in out.chunks_mut(n_neurons) {
                z_score(layer);
            }
        }
        Ok(out)
    })
}

/// Replaces `xs` by `(x − mean) / sd` (sample sd; all zeros when sd is 0).
fn z_score(xs: &mut [f64]) {
    #[expect(clippy::cast_precision_loss, reason = "layer widths << 2^53")]
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    for x in xs.iter_mut() {
        *x = if sd > 0.0 { (*x - mean) / sd } else { 0.0 };
    }
}

impl Scorer for MeanDiffScorer {
    fn score(
        &self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScoreOutput, ComponentError> {
        let c = &self.config;
        let scores = mean_diff_scores(stats, labels, c.level, c.statistic, c.epsilon)?;
        let tables = scores
            .into_iter()
            .map(|score| LabelScores {
                score,
                ..LabelScores::default()
            })
            .collect();
        let details = json!({
            "method": "mean-diff",
            "level": c.level.as_str(),
            "statistic": c.statistic.as_str(),
            "epsilon": c.epsilon,
        });
        Ok(finish(stats, labels, tables, &self.selection, details))
    }
}

/// Factory of `scorer/mean-diff`.
///
/// # Errors
/// Unknown keys, wrong types, a bad `epsilon` or an invalid selection table.
pub fn mean_diff_factory(
    params: &serde_json::Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Scorer>, ConfigError> {
    let config: MeanDiffConfig = ConfigError::parse_params(params)?;
    Ok(Box::new(MeanDiffScorer::new(config)?))
}
