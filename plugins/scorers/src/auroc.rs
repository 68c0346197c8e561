//! `scorer/auroc`: how well each neuron's item-level activation separates a label's items
//! from the other labels' items, as the area under the ROC curve (AurA lineage, Suau et al.
//! 2024, METHOD.md §6.6). The score is `AUROC − 0.5` (positive: higher for the label).
//!
//! Two methods:
//! - `ranks`: the exact AUROC, `(R_A − n_A(n_A+1)/2) / (n_A · n_C)` with midranks for ties
//!   (the Mann–Whitney statistic; equals `sklearn.metrics.roc_auc_score`). Needs the kept item
//!   means (`record.keep_item_means = true`); uses their `f32` values.
//! - `binormal`: `Φ((μ_A − μ_C) / √(s_A² + s_C²))` from the item-level moments, exact when
//!   both groups are normal, an approximation otherwise; needs only the statistics.
//!
//! `auto` (default) takes `ranks` when the item means are kept, else `binormal`. AurA scores
//! the max over an item's tokens; valex uses the item mean, which is what the statistics hold.

use serde::{Deserialize, Serialize};
use serde_json::json;
use valex_core::{
    ActivationStats, ComponentError, ConfigError, FactoryContext, Moments, ScoreOutput, Scorer,
};

use crate::contrast::{LabelScores, Level, LevelData, finish, per_label, resolve_labels};
use crate::selection::{RuleName, Selection, SelectionConfig};
use crate::two_sample::auroc_binormal;

const ID: &str = "scorer/auroc";

/// How the AUROC is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AurocMethod {
    /// Ranks when item means are kept, else binormal.
    #[default]
    Auto,
    /// Exact, from kept item means.
    Ranks,
    /// Binormal, from item-level moments.
    Binormal,
}

/// Params of `scorer/auroc`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AurocConfig {
    /// The method (default `auto`).
    pub method: AurocMethod,
    /// Selection rule (default `top-rate` 0.01, sign positive).
    pub selection: SelectionConfig,
}

/// The `scorer/auroc` component.
#[derive(Debug, Clone, PartialEq)]
pub struct AurocScorer {
    config: AurocConfig,
    selection: Selection,
}

impl AurocScorer {
    /// A scorer with validated params.
    ///
    /// # Errors
    /// An invalid selection table.
    pub fn new(config: AurocConfig) -> Result<Self, ConfigError> {
        let selection = config.selection.resolve(RuleName::TopRate, false)?;
        Ok(AurocScorer { config, selection })
    }
}

/// The exact AUROC of `a` (positives) against `c` (negatives), midranks for ties; equals
/// `sklearn.metrics.roc_auc_score([1]*len(a) + [0]*len(c), a + c)`. NaN when a side is empty.
pub fn auroc_ranks(a: &[f64], c: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&v| (v, true))
        .chain(c.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let rank_sum = rank_sums(
        &all.iter().map(|x| x.0).collect::<Vec<_>>(),
        |i| usize::from(all[i].1),
        2,
    )[1];
    mann_whitney_auroc(rank_sum, a.len(), c.len())
}

/// `(R_A − n_A(n_A+1)/2) / (n_A n_C)`.
fn mann_whitney_auroc(rank_sum: f64, n_a: usize, n_c: usize) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "item counts << 2^53")]
    let (na, nc) = (n_a as f64, n_c as f64);
    (rank_sum - na * (na + 1.0) / 2.0) / (na * nc)
}

/// Sums of midranks (1-based) per group over `sorted` values; `group(i)` is the group of the
/// i-th sorted value.
fn rank_sums(sorted: &[f64], group: impl Fn(usize) -> usize, n_groups: usize) -> Vec<f64> {
    let mut sums = vec![0.0; n_groups];
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j] == sorted[i] {
            j += 1;
        }
        // Positions i..j (0-based) share the midrank ((i+1) + j) / 2.
        #[expect(clippy::cast_precision_loss, reason = "item counts << 2^53")]
        let mid = (i + 1 + j) as f64 / 2.0;
        for r in i..j {
            sums[group(r)] += mid;
        }
        i = j;
    }
    sums
}

/// AUROC per label (order of `labels`) against the pooled rest, `[L · I]` each, and the
/// method used.
///
/// # Errors
/// Unknown, repeated or too few labels; `ranks` without kept item means; `binormal` without
/// item-level statistics; fewer than 2 items in a label.
pub fn auroc_tables(
    stats: &ActivationStats,
    labels: &[String],
    method: AurocMethod,
) -> Result<(Vec<Vec<f64>>, AurocMethod), ComponentError> {
    let idx = resolve_labels(stats, labels, ID)?;
    let cells = stats.n_layers * stats.n_neurons;
    let kept = idx.iter().all(|&i| {
        let l = &stats.labels[i];
        u64::try_from(l.item_means.len()) == Ok(l.items)
            && l.item_means.iter().all(|m| m.means.len() == cells)
    });
    let method = match method {
        AurocMethod::Auto if stats.keep_item_means && kept => AurocMethod::Ranks,
        AurocMethod::Auto => AurocMethod::Binormal,
        m => m,
    };
    if method == AurocMethod::Binormal {
        let data = LevelData::new(stats, &idx, Level::Items, ID)?;
        let tables = per_label(idx.len(), |k| {
            let (rn, rsum, rsq) = data.rest(k);
            Ok((0..cells)
                .map(|i| {
                    let c = Moments {
                        n: rn,
                        sum: rsum[i],
                        sum_sq: rsq[i],
                    };
                    auroc_binormal(data.label(k, i), c)
                })
                .collect())
        })?;
        return Ok((tables, method));
    }
    if !kept {
        return Err(ComponentError::input(format!(
            "{ID} with method ranks needs every item's mean (record with keep_item_means = \
             true); these statistics do not keep them"
        )));
    }
    let mut group = Vec::new();
    let mut rows: Vec<&[f32]> = Vec::new();
    let mut sizes = vec![0_usize; idx.len()];
    for (k, &i) in idx.iter().enumerate() {
        for m in &stats.labels[i].item_means {
            group.push(k);
            rows.push(&m.means);
        }
        sizes[k] = stats.labels[i].item_means.len();
    }
    let total = rows.len();
    if let Some(k) = sizes.iter().position(|&s| s == 0) {
        return Err(ComponentError::input(format!(
            "label {}: {ID} needs at least one item per label",
            labels[k]
        )));
    }
    // One sort per neuron serves every label: rank sums per label, then each label's AUROC
    // against the rest.
    let per_neuron = |i: usize| -> Vec<f64> {
        let mut order: Vec<usize> = (0..total).collect();
        order.sort_by(|&x, &y| rows[x][i].total_cmp(&rows[y][i]));
        let sorted: Vec<f64> = order.iter().map(|&x| f64::from(rows[x][i])).collect();
        let sums = rank_sums(&sorted, |r| group[order[r]], idx.len());
        (0..idx.len())
            .map(|k| mann_whitney_auroc(sums[k], sizes[k], total - sizes[k]))
            .collect()
    };
    // Neurons in 8 contiguous blocks, spread over the cores like labels.
    let n_blocks = 8;
    let blocks = per_label(n_blocks, |h| {
        let range = h * cells / n_blocks..(h + 1) * cells / n_blocks;
        Ok(range.map(per_neuron).collect::<Vec<_>>())
    })?;
    let mut tables = vec![Vec::with_capacity(cells); idx.len()];
    for row in blocks.into_iter().flatten() {
        for (k, v) in row.into_iter().enumerate() {
            tables[k].push(v);
        }
    }
    Ok((tables, method))
}

impl Scorer for AurocScorer {
    fn score(
        &self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScoreOutput, ComponentError> {
        let (tables, method) = auroc_tables(stats, labels, self.config.method)?;
        let scores = tables
            .into_iter()
            .map(|auc| {
                let max = auc.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                LabelScores {
                    score: auc.iter().map(|a| a - 0.5).collect(),
                    report: json!({"max_auroc": max}),
                    ..LabelScores::default()
                }
            })
            .collect();
        let details = json!({
            "method": "auroc",
            "auroc_method": match method {
                AurocMethod::Ranks => "ranks",
                _ => "binormal",
            },
            "level": "items",
            "score": "AUROC - 0.5 (label items vs pooled other labels' items)",
        });
        Ok(finish(stats, labels, scores, &self.selection, details))
    }
}

/// Factory of `scorer/auroc`.
///
/// # Errors
/// Unknown keys, wrong types or an invalid selection table.
pub fn auroc_factory(
    params: &serde_json::Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Scorer>, ConfigError> {
    let config: AurocConfig = ConfigError::parse_params(params)?;
    Ok(Box::new(AurocScorer::new(config)?))
}
