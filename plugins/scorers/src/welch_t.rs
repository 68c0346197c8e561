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
use crate::two_sample::{PWindow, welch_and_d, windowed_p};

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
    /// How many `p` hold an upper bound at or below the floor instead of the exact value
    /// ([`welch_tables_between`]).
    pub n_bounded: usize,
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
    tables(stats, labels, level, correction, 0.0, p_cut, false)
}

/// The decisions of [`welch_tables`] at every level in `[alpha, p_cut]`, with as few exact
/// p-values as that allows (what `scorer/welch-t` uses). Decisions `p_adjusted ≤ level` are
/// exactly those of the all-exact computation, for BH, Holm, Bonferroni and none; `t`, `df`
/// and `d` are exact; a p-value is exact where it was evaluated. Two kinds are not evaluated:
///
/// - **Certainly not significant at `p_cut`** (`p = 1` stored): let `R` be the number of the
///   label's `m = L · I` neurons whose normal tail is `≤ p_cut` (no other neuron can have
///   `p ≤ p_cut`, as Student's t tail is never lighter than the normal one). A neuron `i` with
///   `p_i ≤ p_cut` has rank `≤ R`, so it is rejected only if `p_i ≤ p_cut/(m − R + 1)` (Holm),
///   `p_cut · R/m` (BH: the step-up index is `≤ R`), `p_cut/m` (Bonferroni) or `p_cut` (none).
///   Where even the normal tail exceeds that threshold, `p_i` does too; storing 1 moves such a
///   neuron to the end of the order, which lowers the rank of larger p-values by one, but each
///   of those exceeds the same threshold at any rank `≤ R`, so no decision changes.
/// - **Certainly significant at `alpha`** (an upper bound stored): where the rigorous bound
///   [`crate::two_sample::two_sided_p_upper_bound`] is `≤ alpha/m`, it stands for `p`. Both the
///   true and the stored value are `≤ alpha/m`, so the adjusted p is `≤ alpha` either way; every
///   neuron above `alpha/m` keeps its rank (the bounded ones sort before it in both orders),
///   and the bounded terms of Holm's running maximum stay `≤ alpha`.
///
/// # Errors
/// As [`welch_tables`].
pub fn welch_tables_between(
    stats: &ActivationStats,
    labels: &[String],
    level: Level,
    correction: Correction,
    alpha: f64,
    p_cut: f64,
) -> Result<Vec<WelchTable>, ComponentError> {
    tables(stats, labels, level, correction, alpha, p_cut, true)
}

/// `|t|` below this has a normal two-sided tail above `p` (`0` for `p ≥ 1`, `inf` for
/// `p ≤ 0`); a relative margin of 1e-6 keeps the boundary safe whatever the rounding of the
/// inverse CDF.
fn z_above(p: f64) -> f64 {
    if p >= 1.0 {
        return 0.0;
    }
    if p <= 0.0 {
        return f64::INFINITY;
    }
    let normal = statrs::distribution::Normal::standard();
    -statrs::distribution::ContinuousCDF::inverse_cdf(&normal, p / 2.0) * (1.0 - 1e-6)
}

/// The one implementation behind [`welch_tables_up_to`] (`decisions_only = false`: every p
/// at or below `p_cut` exact) and [`welch_tables_between`].
fn tables(
    stats: &ActivationStats,
    labels: &[String],
    level: Level,
    correction: Correction,
    alpha: f64,
    p_cut: f64,
    decisions_only: bool,
) -> Result<Vec<WelchTable>, ComponentError> {
    let z_cut = z_above(p_cut);
    let m = stats.n_layers * stats.n_neurons;
    #[expect(clippy::cast_precision_loss, reason = "test counts are far below 2^53")]
    let m_f = m.max(1) as f64;
    let p_floor = if decisions_only { alpha / m_f } else { 0.0 };
    let idx = resolve_labels(stats, labels, ID)?;
    let data = LevelData::new(stats, &idx, level, ID)?;
    per_label(idx.len(), |k| {
        let (rn, rsum, rsq) = data.rest(k);
        let cells = rsum.len();
        let (mut t, mut df, mut d) = (
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
            // p later, once the threshold is known.
            let (w, effect, _) = welch_and_d(a, c, PWindow::SKIP);
            t.push(w.t);
            df.push(w.df);
            d.push(effect);
        }
        let z = if decisions_only && p_cut < 1.0 {
            let r = t.iter().filter(|x| x.abs() >= z_cut).count();
            #[expect(clippy::cast_precision_loss, reason = "test counts are far below 2^53")]
            let r_f = r as f64;
            let threshold = match correction {
                Correction::Holm => p_cut / (m_f - r_f + 1.0),
                Correction::Bh => p_cut * r_f / m_f,
                Correction::Bonferroni => p_cut / m_f,
                Correction::None => p_cut,
            };
            z_cut.max(z_above(threshold))
        } else {
            z_cut
        };
        let window = PWindow { z_cut: z, p_floor };
        let mut n_bounded = 0;
        let p: Vec<f64> = t
            .iter()
            .zip(&df)
            .map(|(&t, &df)| {
                let (p, bounded) = windowed_p(t, df, window);
                n_bounded += usize::from(bounded);
                p
            })
            .collect();
        let p_adjusted = adjust_p(&p, correction)
            .map_err(|e| ComponentError::input(format!("label {}: {e}", labels[k])))?;
        Ok(WelchTable {
            t,
            df,
            p,
            p_adjusted,
            d,
            n_bounded,
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
        // Decisions are made at the rule's q and at the reported 0.05: p-values above the larger
        // or far below the smaller cannot change them and are not evaluated exactly (see
        // `welch_tables_between`).
        let (alpha, p_cut) = match self.selection.rule {
            crate::selection::Rule::Fdr(q) => (q.min(0.05), q.max(0.05)),
            _ => (0.05, 0.05),
        };
        let tables = welch_tables_between(stats, labels, c.level, c.correction, alpha, p_cut)?;
        let scores = tables
            .into_iter()
            .map(|w| {
                let significant = w.p_adjusted.iter().filter(|&&q| q <= 0.05).count();
                let min_p = w.p.iter().copied().fold(f64::INFINITY, f64::min);
                // p = 1 may stand for "above p_cut, not evaluated"; with bounded p-values the
                // smallest stored one is an upper bound of the true minimum.
                let min_p = (min_p <= p_cut && w.n_bounded == 0).then_some(min_p);
                let min_p_at_most =
                    (w.n_bounded > 0).then_some(w.p.iter().copied().fold(f64::INFINITY, f64::min));
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
                        "min_p_at_most": min_p_at_most,
                        "p_evaluated_up_to": p_cut,
                        "p_bounded_below": alpha,
                        "p_bounded": w.n_bounded,
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
