//! `scorer/max-smd`: for each label, the neurons whose mean activation differs most from the
//! other labels', in units of their pooled standard deviation.
//!
//! For label `l` among the requested labels and neuron `n`, with `rest` the pooled
//! statistics of the other requested labels (token level, population moments):
//!
//! ```text
//! mean = sum / tokens          var = sum_sq / tokens - mean²  (clamped at 0)
//! smd  = (mean_l - mean_rest) / sqrt((var_l + var_rest) / 2)   (0 when the root is 0)
//! ```
//!
//! The `top_k` neurons with the largest `smd` above `min_smd` form the label's set (ties go
//! to the lower flat index `layer * n_neurons + neuron`).

use serde::Deserialize;
use serde_json::json;
use valex_plugin_sdk::{
    ActivationStats, NeuronSet, PluginError, ScorerComponent, ScorerOutput, parse_params,
};

/// Params of `scorer/max-smd`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmdConfig {
    /// Neurons selected per label (at least 1).
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Only neurons with `smd` strictly above this are selected.
    #[serde(default)]
    pub min_smd: f64,
}

fn default_top_k() -> usize {
    16
}

/// The scorer.
#[derive(Debug, Clone)]
pub struct MaxSmd {
    config: SmdConfig,
}

/// Builds `scorer/max-smd` from its params.
///
/// # Errors
/// Unknown params, `top_k = 0`, a non-finite `min_smd`.
pub fn factory(params: &serde_json::Value) -> Result<Box<dyn ScorerComponent>, PluginError> {
    let config: SmdConfig = parse_params(params)?;
    if config.top_k == 0 {
        return Err(
            PluginError::bad_params("top_k: must be at least 1, found 0")
                .with_help("set score.params.top_k to the number of neurons to select per label"),
        );
    }
    if !config.min_smd.is_finite() {
        return Err(PluginError::bad_params(format!(
            "min_smd: must be finite, found {}",
            config.min_smd
        )));
    }
    Ok(Box::new(MaxSmd { config }))
}

/// Per-neuron standardised mean differences of `labels[i]` against the other labels,
/// row-major `[n_layers * n_neurons]`, one vector per label.
///
/// # Errors
/// Unknown labels, fewer than two labels, missing sums, labels without tokens.
pub fn smd(stats: &ActivationStats, labels: &[String]) -> Result<Vec<Vec<f64>>, PluginError> {
    if labels.len() < 2 {
        return Err(PluginError::new(
            "scorer.too_few_labels",
            format!(
                "max-smd compares labels against each other; got {}",
                labels.len()
            ),
        ));
    }
    let n = stats.n_layers * stats.n_neurons;
    let mut idx = Vec::with_capacity(labels.len());
    for l in labels {
        let i = stats.label_index(l).ok_or_else(|| {
            PluginError::new(
                "scorer.unknown_label",
                format!("label {l} is not in the statistics"),
            )
        })?;
        let s = &stats.labels[i];
        if s.sum.len() != n || s.sum_sq.len() != n {
            return Err(PluginError::new(
                "scorer.missing_statistics",
                format!("label {l}: max-smd needs sums and sums of squares"),
            )
            .with_help("record statistics with valex (released counts hold only act > 0 counts)"));
        }
        if s.tokens <= 0.0 {
            return Err(PluginError::new(
                "scorer.no_tokens",
                format!("label {l} has no counted tokens"),
            ));
        }
        idx.push(i);
    }
    let moments = |t: f64, s: f64, q: f64| {
        let mean = s / t;
        (mean, (q / t - mean * mean).max(0.0))
    };
    let mut out = Vec::with_capacity(idx.len());
    for &i in &idx {
        let me = &stats.labels[i];
        let rest_tokens: f64 = idx
            .iter()
            .filter(|&&j| j != i)
            .map(|&j| stats.labels[j].tokens)
            .sum();
        let mut scores = vec![0.0; n];
        for (k, score) in scores.iter_mut().enumerate() {
            let (rest_sum, rest_sq) = idx
                .iter()
                .filter(|&&j| j != i)
                .fold((0.0, 0.0), |(a, b), &j| {
                    (a + stats.labels[j].sum[k], b + stats.labels[j].sum_sq[k])
                });
            let (m1, v1) = moments(me.tokens, me.sum[k], me.sum_sq[k]);
            let (m2, v2) = moments(rest_tokens, rest_sum, rest_sq);
            let sd = ((v1 + v2) / 2.0).sqrt();
            *score = if sd > 0.0 { (m1 - m2) / sd } else { 0.0 };
        }
        out.push(scores);
    }
    Ok(out)
}

/// The `top_k` flat indexes with the largest score above `min`, ties to the lower index.
pub fn top_k(scores: &[f64], k: usize, min: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).filter(|&i| scores[i] > min).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

impl ScorerComponent for MaxSmd {
    fn score(
        &mut self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScorerOutput, PluginError> {
        tracing::info!(
            labels = labels.len(),
            top_k = self.config.top_k,
            "max-smd scoring"
        );
        let all = smd(stats, labels)?;
        let mut sets = Vec::with_capacity(labels.len());
        let mut per_label = Vec::with_capacity(labels.len());
        for (label, scores) in labels.iter().zip(&all) {
            let chosen = top_k(scores, self.config.top_k, self.config.min_smd);
            let mut set = NeuronSet::empty(stats.n_layers);
            for &f in &chosen {
                let neuron = u32::try_from(f % stats.n_neurons).map_err(|_| {
                    PluginError::new("scorer.too_large", "neuron index does not fit u32")
                })?;
                set.insert(f / stats.n_neurons, neuron);
            }
            let max = chosen.first().map(|&f| scores[f]);
            let kth = chosen.last().map(|&f| scores[f]);
            per_label.push(
                json!({"label": label, "selected": set.len(), "max_smd": max, "kth_smd": kth}),
            );
            sets.push((label.clone(), set));
        }
        Ok(ScorerOutput {
            sets,
            scores: labels.iter().cloned().zip(all).collect(),
            details: json!({"top_k": self.config.top_k, "min_smd": self.config.min_smd, "labels": per_label}),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> ActivationStats {
        let names = vec!["a".to_owned(), "b".to_owned()];
        let mut s = ActivationStats::new("t", 1, 3, &names);
        // a: neuron 0 high, b: neuron 2 high; neuron 1 equal.
        s.labels[0].tokens = 4.0;
        s.labels[0].sum = vec![8.0, 4.0, 0.0];
        s.labels[0].sum_sq = vec![20.0, 8.0, 2.0];
        s.labels[1].tokens = 4.0;
        s.labels[1].sum = vec![0.0, 4.0, 8.0];
        s.labels[1].sum_sq = vec![2.0, 8.0, 20.0];
        s
    }

    #[test]
    fn selects_the_neuron_each_label_raises() {
        let mut scorer = factory(&json!({"top_k": 1})).unwrap();
        let out = scorer
            .score(&stats(), &["a".to_owned(), "b".to_owned()])
            .unwrap();
        assert_eq!(out.sets[0].1.layers(), &[vec![0]]);
        assert_eq!(out.sets[1].1.layers(), &[vec![2]]);
        // a, neuron 0: mean 2 var 1 vs mean 0 var 0.5 -> 2 / sqrt(0.75)
        assert!((out.scores[0].1[0] - 2.0 / 0.75f64.sqrt()).abs() < 1e-12);
        assert_eq!(out.scores[0].1[1], 0.0);
    }

    #[test]
    fn rejects_zero_top_k_and_unknown_labels() {
        let e = factory(&json!({"top_k": 0})).err().unwrap();
        assert_eq!(e.code, "bad_params");
        let e = smd(&stats(), &["a".to_owned(), "zz".to_owned()]).unwrap_err();
        assert_eq!(e.code, "scorer.unknown_label");
    }

    #[test]
    fn ties_go_to_the_lower_index() {
        assert_eq!(top_k(&[1.0, 3.0, 3.0, -1.0], 2, 0.0), vec![1, 2]);
        assert_eq!(top_k(&[1.0, 3.0, 3.0, -1.0], 9, 0.0), vec![1, 2, 0]);
    }
}
