//! my-scorer: a valex scorer plugin.
//!
//! `scorer/my-scorer` selects, for each label, the `top_k` neurons whose mean activation
//! exceeds the mean over the other labels by the most. Replace the formula with yours.

use serde::Deserialize;
use valex_plugin_sdk::{
    ActivationStats, Component, NeuronSet, PluginError, ScorerComponent, ScorerOutput,
    export_plugin, parse_params,
};

/// The params a manifest may set under `[score] params`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeanDiffConfig {
    /// Neurons selected per label.
    #[serde(default = "default_top_k")]
    top_k: usize,
}

fn default_top_k() -> usize {
    8
}

/// The scorer.
struct MeanDiff {
    top_k: usize,
}

/// Builds the scorer from its params (`null` reads as `{}`).
fn mean_diff(params: &serde_json::Value) -> Result<Box<dyn ScorerComponent>, PluginError> {
    let c: MeanDiffConfig = parse_params(params)?;
    if c.top_k == 0 {
        return Err(PluginError::bad_params("top_k: must be at least 1, found 0"));
    }
    Ok(Box::new(MeanDiff { top_k: c.top_k }))
}

impl ScorerComponent for MeanDiff {
    fn score(
        &mut self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScorerOutput, PluginError> {
        tracing::info!(labels = labels.len(), top_k = self.top_k, "my-scorer scoring");
        let n = stats.n_layers * stats.n_neurons;
        let mut idx = Vec::new();
        for l in labels {
            let i = stats.label_index(l).ok_or_else(|| {
                PluginError::new("scorer.unknown_label", format!("label {l} is not in the statistics"))
            })?;
            let s = &stats.labels[i];
            if s.sum.len() != n || s.tokens <= 0.0 {
                return Err(PluginError::new(
                    "scorer.missing_statistics",
                    format!("label {l}: needs sums over at least one token"),
                ));
            }
            idx.push(i);
        }
        let mut out = ScorerOutput::default();
        for (&i, label) in idx.iter().zip(labels) {
            let me = &stats.labels[i];
            let others: Vec<_> = idx.iter().filter(|&&j| j != i).map(|&j| &stats.labels[j]).collect();
            let rest_tokens: f64 = others.iter().map(|o| o.tokens).sum();
            let scores: Vec<f64> = (0..n)
                .map(|k| {
                    let rest: f64 = others.iter().map(|o| o.sum[k]).sum();
                    let rest_mean = if rest_tokens > 0.0 { rest / rest_tokens } else { 0.0 };
                    me.sum[k] / me.tokens - rest_mean
                })
                .collect();
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            let mut set = NeuronSet::empty(stats.n_layers);
            for &k in order.iter().take(self.top_k) {
                let neuron = u32::try_from(k % stats.n_neurons)
                    .map_err(|_| PluginError::new("scorer.too_large", "neuron index exceeds u32"))?;
                set.insert(k / stats.n_neurons, neuron);
            }
            out.sets.push((label.clone(), set));
            out.scores.push((label.clone(), scores));
        }
        out.details = serde_json::json!({ "top_k": self.top_k });
        Ok(out)
    }
}

export_plugin! {
    name: "my-scorer",
    version: env!("CARGO_PKG_VERSION"),
    components: [
        Component::scorer(
            "scorer/my-scorer",
            "0.1.0",
            "largest mean activation difference of each label against the others",
            mean_diff,
        ),
    ],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_the_neuron_each_label_raises() {
        let labels = vec!["a".to_owned(), "b".to_owned()];
        let mut stats = ActivationStats::new("mlp.gate_act", 1, 3, &labels);
        stats.labels[0].tokens = 2.0;
        stats.labels[0].sum = vec![4.0, 1.0, 0.0];
        stats.labels[1].tokens = 2.0;
        stats.labels[1].sum = vec![0.0, 1.0, 4.0];
        let mut scorer = mean_diff(&serde_json::json!({ "top_k": 1 })).unwrap();
        let out = scorer.score(&stats, &labels).unwrap();
        assert_eq!(out.sets[0].1.layers(), &[vec![0]]);
        assert_eq!(out.sets[1].1.layers(), &[vec![2]]);
    }
}
