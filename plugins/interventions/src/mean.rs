//! `intervention/mean`: replace each selected neuron's activation by its mean activation
//! (mean ablation).
//!
//! The mean is token-level and pooled over labels: `μ = Σ_labels sum / Σ_labels tokens`,
//! where `sum` is the sum of the neuron's activation over the counted tokens of each label and
//! `tokens` their number (the positions `[record] positions` selects). By default the labels
//! are every label of the run's recorded statistics; `labels` restricts the pool and
//! `statistics` names another statistics file (read by the host).

use std::path::PathBuf;

use serde::Deserialize;
use valex_core::{
    ActivationStats, ComponentError, ConfigError, EditContext, FactoryContext, Intervention,
    ModelInfo, NeuronEdit, NeuronOp, NeuronSet, StatisticsSource,
};

use crate::edit::edit_each;

/// Params of `intervention/mean`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeanConfig {
    /// A statistics file (`.safetensors`, its `.json` sidecar or their stem), relative to the
    /// manifest's folder; default: the run's own statistics.
    #[serde(default)]
    pub statistics: Option<String>,
    /// Labels whose tokens are pooled into the mean; default: every label.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
}

/// Replaces the selected neurons' activations by their pooled token-level mean.
#[derive(Debug, Clone)]
pub struct MeanAblation {
    file: Option<PathBuf>,
    labels: Option<Vec<String>>,
}

/// Token-level means `Σ sum / Σ tokens` over `labels` (all labels when `None`), one per
/// neuron, flat `[n_layers * n_neurons]`.
///
/// # Errors
/// An unknown label, statistics without activation sums (released counts), or no tokens.
pub fn pooled_token_means(
    stats: &ActivationStats,
    labels: Option<&[String]>,
) -> Result<Vec<f64>, ComponentError> {
    let n = stats.n_layers * stats.n_neurons;
    let chosen: Vec<&valex_core::LabelStats> = match labels {
        None => stats.labels.iter().collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                stats
                    .label_index(name)
                    .map(|i| &stats.labels[i])
                    .ok_or_else(|| {
                        ComponentError::config(format!(
                            "intervention/mean: labels: the statistics have no label {name:?}; they have {}",
                            stats.label_names().join(", ")
                        ))
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    if let Some(l) = chosen.iter().find(|l| !l.has_token_sums(n)) {
        return Err(ComponentError::config(format!(
            "intervention/mean: label {:?} of the statistics has no activation sums (released counts hold counts only)",
            l.name
        )));
    }
    let tokens: f64 = chosen.iter().map(|l| l.tokens).sum();
    if tokens <= 0.0 {
        return Err(ComponentError::config(
            "intervention/mean: the statistics count no tokens for the pooled labels",
        ));
    }
    Ok((0..n)
        .map(|i| chosen.iter().map(|l| l.sum[i]).sum::<f64>() / tokens)
        .collect())
}

impl Intervention for MeanAblation {
    fn edit(
        &self,
        set: &NeuronSet,
        tap: &str,
        info: &ModelInfo,
        cx: &EditContext<'_>,
    ) -> Result<NeuronEdit, ComponentError> {
        let stats = cx.stats.ok_or_else(|| {
            ComponentError::config(
                "intervention/mean needs activation statistics (a [record] stage or params.statistics)",
            )
        })?;
        if stats.tap != tap {
            return Err(ComponentError::config(format!(
                "intervention/mean: the statistics were recorded at tap {} but the edit is at {tap}",
                stats.tap
            )));
        }
        if (stats.n_layers, stats.n_neurons) != (info.n_layers, info.n_neurons) {
            return Err(ComponentError::config(format!(
                "intervention/mean: the statistics have {} layers x {} neurons, the model {} x {}",
                stats.n_layers, stats.n_neurons, info.n_layers, info.n_neurons
            )));
        }
        let means = pooled_token_means(stats, self.labels.as_deref())?;
        #[expect(
            clippy::cast_possible_truncation,
            reason = "activations are f32 on the backend"
        )]
        edit_each(set, tap, info, |l, n| {
            Ok(NeuronOp::constant(
                means[l * info.n_neurons + n as usize] as f32,
            ))
        })
    }

    fn statistics(&self) -> StatisticsSource {
        match &self.file {
            Some(p) => StatisticsSource::File(p.clone()),
            None => StatisticsSource::Run,
        }
    }
}

/// Builds `intervention/mean`.
///
/// # Errors
/// Unknown params, an empty `statistics` path or an empty `labels` list.
pub fn factory(
    params: &serde_json::Value,
    cx: &FactoryContext,
) -> Result<Box<dyn Intervention>, ConfigError> {
    let c: MeanConfig = ConfigError::parse_params(params)?;
    if c.statistics.as_deref() == Some("") {
        return Err(ConfigError::new(
            Some("statistics"),
            "must be a file path, found an empty string",
        ));
    }
    if c.labels.as_ref().is_some_and(Vec::is_empty) {
        return Err(ConfigError::new(
            Some("labels"),
            "must name at least one label (leave it out to pool every label)",
        ));
    }
    Ok(Box::new(MeanAblation {
        file: c.statistics.as_deref().map(|p| cx.resolve(p)),
        labels: c.labels,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::info;

    /// Two labels over a 2 x 4 model: label a has 2 tokens, b has 6.
    fn stats() -> ActivationStats {
        let mut s = ActivationStats::new("mlp.gate_act", 2, 4, &["a".into(), "b".into()]);
        let ones = [1.0_f64; 4];
        s.count_item(0, 0, 2.0);
        s.add_item_layer(0, 0, 0, 2.0, &ones, &[2.0, 4.0, 0.0, -2.0], &ones);
        s.add_item_layer(0, 0, 1, 2.0, &ones, &[0.0; 4], &ones);
        s.count_item(1, 0, 6.0);
        s.add_item_layer(1, 0, 0, 6.0, &ones, &[6.0, 0.0, 0.0, 6.0], &ones);
        s.add_item_layer(1, 0, 1, 6.0, &ones, &[1.0, 2.0, 3.0, 8.0], &ones);
        s
    }

    #[test]
    fn means_are_token_level_and_pooled_over_labels() {
        let s = stats();
        let m = pooled_token_means(&s, None).unwrap();
        assert_eq!(m[..4], [1.0, 0.5, 0.0, 0.5]);
        assert_eq!(m[7], 1.0);
        let only_a = pooled_token_means(&s, Some(&["a".to_owned()])).unwrap();
        assert_eq!(only_a[..4], [1.0, 2.0, 0.0, -1.0]);
        let e = pooled_token_means(&s, Some(&["c".to_owned()])).unwrap_err();
        assert!(e.to_string().contains("no label \"c\""), "{e}");
    }

    #[test]
    fn mean_edit_replaces_by_the_neurons_mean() {
        let s = stats();
        let m = factory(&serde_json::json!({}), &FactoryContext::default()).unwrap();
        assert_eq!(m.statistics(), StatisticsSource::Run);
        let set = NeuronSet::from_layers(vec![vec![0, 1], vec![3]]);
        let e = m
            .edit(
                &set,
                "mlp.gate_act",
                &info(),
                &EditContext::default().with_stats(&s),
            )
            .unwrap();
        assert_eq!(
            e.layers,
            vec![
                vec![(0, NeuronOp::constant(1.0)), (1, NeuronOp::constant(0.5))],
                vec![(3, NeuronOp::constant(1.0))]
            ]
        );
        assert_eq!(e.layers[0][0].1.apply(123.0), 1.0);
    }

    #[test]
    fn mean_edit_needs_matching_statistics() {
        let s = stats();
        let m = factory(&serde_json::json!({}), &FactoryContext::default()).unwrap();
        let set = NeuronSet::from_layers(vec![vec![0], vec![]]);
        let e = m
            .edit(&set, "mlp.gate_act", &info(), &EditContext::default())
            .unwrap_err();
        assert!(e.to_string().contains("needs activation statistics"), "{e}");
        let e = m
            .edit(
                &set,
                "mlp.up",
                &info(),
                &EditContext::default().with_stats(&s),
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("recorded at tap mlp.gate_act"),
            "{e}"
        );
        let counts_only = ActivationStats {
            labels: vec![valex_core::LabelStats::counts_only(
                "a",
                2.0,
                1,
                vec![0.0; 8],
            )],
            ..stats()
        };
        let e = m
            .edit(
                &set,
                "mlp.gate_act",
                &info(),
                &EditContext::default().with_stats(&counts_only),
            )
            .unwrap_err();
        assert!(e.to_string().contains("no activation sums"), "{e}");
    }

    #[test]
    fn params_resolve_the_file_and_reject_empty_values() {
        let cx = FactoryContext {
            base_dir: PathBuf::from("/m"),
        };
        let m = factory(&serde_json::json!({"statistics": "s/statistics"}), &cx).unwrap();
        assert_eq!(
            m.statistics(),
            StatisticsSource::File(PathBuf::from("/m/s/statistics"))
        );
        let e = factory(&serde_json::json!({"labels": []}), &cx)
            .err()
            .unwrap();
        assert_eq!(e.key.as_deref(), Some("labels"));
        let e = factory(&serde_json::json!({"statistics": ""}), &cx)
            .err()
            .unwrap();
        assert_eq!(e.key.as_deref(), Some("statistics"));
        let e = factory(&serde_json::json!({"stats": "x"}), &cx)
            .err()
            .unwrap();
        assert!(e.message.contains("unknown field `stats`"), "{}", e.message);
    }
}
