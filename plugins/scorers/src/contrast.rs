//! What the contrast scorers compare: each requested label (group A, "aligned") against the
//! pooled statistics of the other requested labels (group C, "contrast"), at the token or
//! the item level.
//!
//! Pooling is exact: the statistics of the union of samples are the sums of their statistics,
//! so the rest of label `k` sums the other labels left to right (no subtraction, hence no
//! cancellation). With two labels (support / conflict) the contrast of each is the other.

use serde::{Deserialize, Serialize};
use valex_core::{ActivationStats, ComponentError, LabelStats, Moments};

/// Which sample a test treats as independent observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Each item's mean activation over its counted tokens (default: tokens within an item
    /// are not independent).
    #[default]
    Items,
    /// Each counted token (the classical pooled statistics; `n` = tokens).
    Tokens,
}

impl Level {
    /// The name used in params and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Items => "items",
            Level::Tokens => "tokens",
        }
    }
}

/// Resolves `labels` to indices into `stats.labels`.
///
/// # Errors
/// Fewer than two labels, an unknown label (listing the available ones) or a repeated one.
pub fn resolve_labels(
    stats: &ActivationStats,
    labels: &[String],
    scorer: &str,
) -> Result<Vec<usize>, ComponentError> {
    if labels.len() < 2 {
        return Err(ComponentError::config(format!(
            "{scorer} compares each label with the others and needs at least two labels, \
             found {}",
            labels.len()
        )));
    }
    let mut idx = Vec::with_capacity(labels.len());
    for (j, name) in labels.iter().enumerate() {
        if labels[..j].contains(name) {
            return Err(ComponentError::config(format!(
                "label {name} is listed twice for {scorer}"
            )));
        }
        idx.push(stats.label_index(name).ok_or_else(|| {
            ComponentError::config(format!(
                "unknown label {name}; available: {}",
                stats.label_names().join(", ")
            ))
        })?);
    }
    Ok(idx)
}

/// Per-label sample sizes and sums at one level, checked for shape.
#[derive(Debug, Clone)]
pub struct LevelData<'a> {
    /// Sample size per label (tokens or items).
    pub n: Vec<f64>,
    /// Sum per label, `[L · I]` each.
    pub sum: Vec<&'a [f64]>,
    /// Sum of squares per label, `[L · I]` each.
    pub sum_sq: Vec<&'a [f64]>,
}

impl<'a> LevelData<'a> {
    /// The data of `idx` at `level`.
    ///
    /// # Errors
    /// A label without the arrays of that level (released counts have no sums; files of
    /// issue 2 no item level), or a label with fewer than 2 observations.
    pub fn new(
        stats: &'a ActivationStats,
        idx: &[usize],
        level: Level,
        scorer: &str,
    ) -> Result<Self, ComponentError> {
        let cells = stats.n_layers * stats.n_neurons;
        let mut out = LevelData {
            n: Vec::new(),
            sum: Vec::new(),
            sum_sq: Vec::new(),
        };
        for &i in idx {
            let l: &'a LabelStats = &stats.labels[i];
            let (n, sum, sum_sq) = match level {
                Level::Items => {
                    if !l.has_item_stats(cells) {
                        return Err(ComponentError::input(format!(
                            "label {}: {scorer} at level items needs item-level statistics, \
                             which these statistics lack (released counts or a file without \
                             item level); record again or set level = \"tokens\"",
                            l.name
                        )));
                    }
                    #[expect(clippy::cast_precision_loss, reason = "item counts << 2^53")]
                    let n = l.items as f64;
                    (n, &l.item_sum[..], &l.item_sum_sq[..])
                }
                Level::Tokens => {
                    if !l.has_token_sums(cells) {
                        return Err(ComponentError::input(format!(
                            "label {}: {scorer} at level tokens needs activation sums, which \
                             these statistics lack (released counts carry only counts)",
                            l.name
                        )));
                    }
                    (l.tokens, &l.sum[..], &l.sum_sq[..])
                }
            };
            if n < 2.0 {
                return Err(ComponentError::input(format!(
                    "label {}: {scorer} needs at least 2 {} per label, found {n}",
                    l.name,
                    level.as_str()
                )));
            }
            out.n.push(n);
            out.sum.push(sum);
            out.sum_sq.push(sum_sq);
        }
        Ok(out)
    }

    /// Moments of label `k` (position in `idx`) at neuron `i`.
    pub fn label(&self, k: usize, i: usize) -> Moments {
        Moments {
            n: self.n[k],
            sum: self.sum[k][i],
            sum_sq: self.sum_sq[k][i],
        }
    }

    /// The pooled rest of label `k`: `(n, sum, sum_sq)` arrays summed over the other labels
    /// in order.
    pub fn rest(&self, k: usize) -> (f64, Vec<f64>, Vec<f64>) {
        let cells = self.sum[0].len();
        let (mut n, mut sum, mut sum_sq) = (0.0, vec![0.0; cells], vec![0.0; cells]);
        for j in (0..self.n.len()).filter(|&j| j != k) {
            n += self.n[j];
            for (acc, v) in sum.iter_mut().zip(self.sum[j]) {
                *acc += v;
            }
            for (acc, v) in sum_sq.iter_mut().zip(self.sum_sq[j]) {
                *acc += v;
            }
        }
        (n, sum, sum_sq)
    }
}

/// Runs `f(k)` for every label `k` in `0..n_labels`, spread over the available cores (label
/// `k` on thread `k mod threads`; the per-label work is independent), and returns the results
/// in label order.
pub fn per_label<T: Send>(
    n_labels: usize,
    f: impl Fn(usize) -> Result<T, ComponentError> + Sync,
) -> Result<Vec<T>, ComponentError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(n_labels.max(1));
    if threads <= 1 {
        return (0..n_labels).map(&f).collect();
    }
    let f = &f;
    type Slot<T> = Option<Result<T, ComponentError>>;
    let mut slots: Vec<Slot<T>> = (0..n_labels).map(|_| None).collect();
    let mut parts: Vec<Vec<(usize, &mut Slot<T>)>> = (0..threads).map(|_| Vec::new()).collect();
    for (k, slot) in slots.iter_mut().enumerate() {
        parts[k % threads].push((k, slot));
    }
    std::thread::scope(|s| {
        for part in parts {
            s.spawn(move || {
                for (k, slot) in part {
                    *slot = Some(f(k));
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|s| s.expect("every label slot is filled by its thread"))
        .collect()
}

/// One label's scores, ready for selection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelScores {
    /// Score per neuron, `[L · I]` (positive: more active for the label).
    pub score: Vec<f64>,
    /// Adjusted p-values, for scorers that test.
    pub adjusted_p: Option<Vec<f64>>,
    /// Neurons allowed into the selection (all when `None`).
    pub eligible: Option<Vec<bool>>,
    /// Scorer-specific facts about this label, merged into its report entry.
    pub report: serde_json::Value,
}

/// Selects a set per label and assembles the [`ScoreOutput`]: `details` gets `labels`,
/// `selection` (the resolved rule), `per_label` (selected, candidates, smallest kept key,
/// plus each label's own report) and `overlaps` between the selected sets.
pub fn finish(
    stats: &ActivationStats,
    labels: &[String],
    tables: Vec<LabelScores>,
    selection: &crate::selection::Selection,
    mut details: serde_json::Value,
) -> valex_core::ScoreOutput {
    let mut sets = Vec::with_capacity(labels.len());
    let mut per_label = Vec::with_capacity(labels.len());
    for (label, t) in labels.iter().zip(tables) {
        let s = selection.select(
            &t.score,
            t.adjusted_p.as_deref(),
            t.eligible.as_deref(),
            stats.n_layers,
            stats.n_neurons,
        );
        if s.set.is_empty() {
            tracing::warn!(label = %label, rule = %selection.describe(), "selection kept no neuron");
        }
        let mut entry = serde_json::json!({
            "label": label,
            "selected": s.set.len(),
            "candidates": s.n_candidates,
            "min_selected_key": s.min_key.filter(|k| k.is_finite()),
        });
        if let (Some(e), Some(r)) = (entry.as_object_mut(), t.report.as_object()) {
            for (k, v) in r {
                e.insert(k.clone(), v.clone());
            }
        }
        per_label.push(entry);
        sets.push((label.clone(), s.set));
    }
    details["labels"] = serde_json::json!(labels);
    details["selection"] = selection.describe();
    details["per_label"] = serde_json::Value::Array(per_label);
    details["overlaps"] = crate::selection::overlaps(&sets);
    valex_core::ScoreOutput { sets, details }
}
