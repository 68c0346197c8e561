//! `scorer/welch-t`: Welch's unequal-variance t-test of each label against the pooled other
//! labels, per neuron (METHOD.md §6.4), with a multiple-testing correction over the label's
//! `L · I` tests and an optional effect-size gate.
//!
//! The score is `t` (positive: higher for the label); p-values are two-sided from statrs's
//! Student's t. The default level is `items` (each item's mean activation is one observation;
//! tokens of one item are not independent, so token-level p-values are far too small). The
//! default selection is `fdr` with `q = 0.05` on the Benjamini–Hochberg adjusted p-values,
//! sign positive. `min_effect = 0.5` additionally requires `|d| ≥ 0.5` (Cohen's d), the gate
//! METHOD.md §6.5 suggests.

use serde::{Deserialize, Serialize};
use serde_json::json;
use valex_core::{
    ActivationStats, ComponentError, ConfigError, FactoryContext, Moments, ScoreOutput, Scorer,
};

use crate::contrast::{LabelScores, Level, LevelData, finish, per_label, resolve_labels};
use crate::multitest::{Correction, adjust_p};
use crate::selection::{RuleName, Selection, SelectionConfig};
use crate::two_sample::welch_and_d;

const ID: &str = "scorer/welch-t";

/// Params of `scorer/welch-t`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WelchConfig {
    /// Item level (default) or token level.
    pub level: Level,
    /// p-value correction over each label's neurons (default `bh`).
    pub correction: Correction,
    /// Keep only neurons with `|d| ≥ min_effect` (Cohen's d; none by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_effect: Option<f64>,
    /// Selection rule (default `fdr`, q = 0.05, sign positive).
    pub selection: SelectionConfig,
}

/// The `scorer/welch-t` component.
#[derive(Debug, Clone, PartialEq)]
pub struct WelchScorer {
    config: WelchConfig,
    selection: Selection,
}

impl WelchScorer {
    /// A scorer with validated params.
    ///
    /// # Errors
    /// A negative or non-finite `min_effect`, or an invalid selection table.
    pub fn new(config: WelchConfig) -> Result<Self, ConfigError> {
        if let Some(m) = config.min_effect
            && !(m.is_finite() && m >= 0.0)
        {
            return Err(ConfigError::new(
                Some("min_effect"),
                format!("min_effect must be finite and >= 0, found {m}"),
            ));
        }
        let selection = config.selection.resolve(RuleName::Fdr, true)?;
        Ok(WelchScorer { config, selection })
    }
}

/// One label's test results, `[L · I]` each.
#[derive(Debug, Clone, PartialEq)]
pub struct WelchTable {
    /// t statistics.
    pub t: Vec<f64>,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: Vec<f64>,
    /// Two-sided p-values.
    pub p: Vec<f64>,
    /// Corrected p-values.
    pub p_adjusted: Vec<f64>,
    /// Cohen's d.
    pub d: Vec<f64>,
}

/// Welch tests of every label (order of `labels`) against the pooled rest, every p-value
/// computed exactly.
///
/// # Errors
/// Unknown, repeated or too few labels; statistics without the level's arrays; fewer than 2
/// observations in a label; a correction on zero neurons.
pub fn welch_tables(
    stats: &ActivationStats,
    labels: &[String],
    level: Level,
    correction: Correction,
) -> Result<Vec<WelchTable>, ComponentError> {
    welch_tables_up_to(stats, labels, level, correction, 1.0)
}

/// Like [`welch_tables`], but p-values above `p_cut` may be left out: a neuron whose normal
/// two-sided tail `2(1 − Φ(|t|))` exceeds `p_cut` gets `p = 1` without evaluating Student's t.
/// This is safe for decisions at levels up to `p_cut`: Student's t tail is never lighter than
/// the normal one (`t_ν` is a scale mixture of normals with `E[√(V/ν)] ≤ 1`, and the tail is
/// convex in the scale), so such a neuron's true p exceeds `p_cut`, and neither its own nor any
/// other neuron's adjusted p-value at or below `p_cut` depends on its exact value (BH, Holm,
/// Bonferroni). Every p-value and adjusted p-value at or below `p_cut` is exact.
///
/// # Errors
/// As [`welch_tables`].
pub fn welch_tables_up_to(
    stats: &ActivationStats,
    labels: &[String],
    level: Level,
    correction: Correction,
    p_cut: f64,
) -> Result<Vec<WelchTable>, ComponentError> {
    // |t| below z_cut has a normal tail above p_cut (a relative margin of 1e-6 keeps the
    // boundary exact whatever the rounding of the inverse CDF).
    let z_cut = if p_cut >= 1.0 {
        0.0
    } else {
        let normal = statrs::distribution::Normal::standard();
        statrs::distribution::ContinuousCDF::inverse_cdf(&normal, 1.0 - p_cut / 2.0) * (1.0 - 1e-6)
    };
    let idx = resolve_labels(stats, labels, ID)?;
    let data = LevelData::new(stats, &idx, level, ID)?;
    per_label(idx.len(), |k| {
        let (rn, rsum, rsq) = data.rest(k);
        let cells = rsum.len();
        let (mut t, mut df, mut p, mut d) = (
            Vec::with_capacity(cells),
            Vec::with_capacity(cells),
            Vec::with_capacity(cells),
            Vec::with_capacity(cells),
        );
        for i in 0..cells {
            let a = data.label(k, i);
            let c = Moments {
                n: rn,
                sum: rsum[i],
                sum_sq: rsq[i],
            };
            let (w, effect) = welch_and_d(a, c, z_cut);
            t.push(w.t);
            df.push(w.df);
            p.push(w.p);
            d.push(effect);
        }
        let p_adjusted = adjust_p(&p, correction)
            .map_err(|e| ComponentError::input(format!("label {}: {e}", labels[k])))?;
        Ok(WelchTable {
            t,
            df,
            p,
            p_adjusted,
            d,
        })
    })
}

impl Scorer for WelchScorer {
    fn score(
        &self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScoreOutput, ComponentError> {
        let c = &self.config;
        // p-values matter only up to the rule's q and the reported 0.05 (see
        // `welch_tables_up_to`); the others are not evaluated.
        let p_cut = match self.selection.rule {
            crate::selection::Rule::Fdr(q) => q.max(0.05),
            _ => 0.05,
        };
        let tables = welch_tables_up_to(stats, labels, c.level, c.correction, p_cut)?;
        let scores = tables
            .into_iter()
            .map(|w| {
                let significant = w.p_adjusted.iter().filter(|&&q| q <= 0.05).count();
                let min_p = w.p.iter().copied().fold(f64::INFINITY, f64::min);
                // p = 1 may stand for "above p_cut, not evaluated".
                let min_p = (min_p <= p_cut).then_some(min_p);
                let eligible = c
                    .min_effect
                    .map(|m| w.d.iter().map(|d| d.abs() >= m).collect());
                LabelScores {
                    score: w.t,
                    adjusted_p: Some(w.p_adjusted),
                    eligible,
                    report: json!({
                        "significant_at_0.05": significant,
                        "min_p": min_p,
                        "p_evaluated_up_to": p_cut,
                    }),
                }
            })
            .collect();
        let details = json!({
            "method": "welch-t",
            "level": c.level.as_str(),
            "correction": c.correction.as_str(),
            "tests_per_label": stats.n_layers * stats.n_neurons,
            "min_effect": c.min_effect,
            "score": "t (label vs pooled other labels), two-sided p from Student's t",
        });
        Ok(finish(stats, labels, scores, &self.selection, details))
    }
}

/// Factory of `scorer/welch-t`.
///
/// # Errors
/// Unknown keys, wrong types, a bad `min_effect` or an invalid selection table.
pub fn welch_factory(
    params: &serde_json::Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Scorer>, ConfigError> {
    let config: WelchConfig = ConfigError::parse_params(params)?;
    Ok(Box::new(WelchScorer::new(config)?))
}
