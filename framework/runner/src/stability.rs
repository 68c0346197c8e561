//! Selection stability: how much a selected set depends on which items happened to be
//! recorded. The statistics carry Poisson bootstrap replicates (each the statistics of one
//! resample of the items, see `valex_core::Bootstrap`); the scorer runs on each replicate and
//! each label's replicate set is compared with the set selected from all items by the
//! Jaccard index `|A ∩ B| / |A ∪ B|` (1 for two empty sets).
//!
//! Reported per label: the number of replicates, the mean, standard deviation, minimum and
//! maximum Jaccard index, and the mean size of the replicate sets. A mean near 1 says the set
//! hardly depends on the sample; a low mean says many of its neurons are chance picks.

use serde_json::{Value, json};
use valex_core::{ActivationStats, ComponentError, NeuronSet, Scorer};

/// Stability of one label's set.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelStability {
    /// The label.
    pub label: String,
    /// Jaccard index of each replicate's set with the full-data set.
    pub jaccard: Vec<f64>,
    /// Size of each replicate's set.
    pub sizes: Vec<usize>,
}

impl LabelStability {
    /// Summary as JSON: `replicates`, `jaccard_mean`, `jaccard_sd`, `jaccard_min`,
    /// `jaccard_max`, `mean_size`.
    pub fn summary(&self) -> Value {
        let n = self.jaccard.len();
        if n == 0 {
            return json!({"replicates": 0});
        }
        let nf = n as f64;
        let mean = self.jaccard.iter().sum::<f64>() / nf;
        let sd = if n > 1 {
            (self.jaccard.iter().map(|j| (j - mean).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt()
        } else {
            0.0
        };
        json!({
            "replicates": n,
            "jaccard_mean": mean,
            "jaccard_sd": sd,
            "jaccard_min": self.jaccard.iter().copied().fold(f64::INFINITY, f64::min),
            "jaccard_max": self.jaccard.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "mean_size": self.sizes.iter().sum::<usize>() as f64 / nf,
        })
    }
}

/// The Jaccard index of two sets (1 when both are empty).
pub fn jaccard(a: &NeuronSet, b: &NeuronSet) -> f64 {
    let inter = a.intersection_len(b);
    let union = a.len() + b.len() - inter;
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Runs `scorer` on the first `max_replicates` (all when `None`) bootstrap replicates of
/// `stats` and compares each label's set with `full` (the sets selected from `stats`).
///
/// # Errors
/// Statistics without replicates, or a scorer error on a replicate (e.g. a resample that
/// drew fewer than two items of a label, which a variance-based scorer cannot score).
pub fn selection_stability(
    scorer: &dyn Scorer,
    stats: &ActivationStats,
    labels: &[String],
    full: &[(String, NeuronSet)],
    max_replicates: Option<usize>,
) -> Result<Vec<LabelStability>, ComponentError> {
    let boot = stats
        .bootstrap
        .as_ref()
        .filter(|b| !b.replicates.is_empty())
        .ok_or_else(|| {
            ComponentError::input(
                "selection stability needs bootstrap replicates in the statistics; record them \
             with record.bootstrap = N",
            )
        })?;
    let n = max_replicates.map_or(boot.replicates.len(), |m| m.min(boot.replicates.len()));
    let mut out: Vec<LabelStability> = full
        .iter()
        .map(|(label, _)| LabelStability {
            label: label.clone(),
            jaccard: Vec::with_capacity(n),
            sizes: Vec::with_capacity(n),
        })
        .collect();
    for (b, rep) in boot.replicates.iter().take(n).enumerate() {
        let _span = tracing::debug_span!("bootstrap_replicate", index = b).entered();
        let sets = scorer.score(rep, labels).map_err(|e| {
            ComponentError::stage(format!("selection stability, bootstrap replicate {b}: {e}"))
        })?;
        for ((s, (_, full_set)), (_, rep_set)) in out.iter_mut().zip(full).zip(&sets.sets) {
            s.jaccard.push(jaccard(full_set, rep_set));
            s.sizes.push(rep_set.len());
        }
    }
    Ok(out)
}

/// `{label: summary}` for reports and provenance.
pub fn stability_json(stability: &[LabelStability]) -> Value {
    Value::Object(
        stability
            .iter()
            .map(|s| (s.label.clone(), s.summary()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use valex_core::ScoreOutput;

    /// Selects, per label, the neurons whose item-level mean exceeds 0.5.
    struct AboveHalf;
    impl Scorer for AboveHalf {
        fn score(
            &self,
            stats: &ActivationStats,
            labels: &[String],
        ) -> Result<ScoreOutput, ComponentError> {
            let sets = labels
                .iter()
                .map(|name| {
                    let l = &stats.labels[stats.label_index(name).expect("known label")];
                    let mut layers = vec![Vec::new(); stats.n_layers];
                    for (i, s) in l.item_sum.iter().enumerate() {
                        if s / l.items as f64 > 0.5 {
                            layers[i / stats.n_neurons]
                                .push(u32::try_from(i % stats.n_neurons).expect("small"));
                        }
                    }
                    (name.clone(), NeuronSet::from_layers(layers))
                })
                .collect();
            Ok(ScoreOutput {
                sets,
                details: Value::Null,
            })
        }
    }

    fn stats(replicates: usize) -> ActivationStats {
        let mut s =
            ActivationStats::new("t", 1, 4, &["a".to_owned()]).with_bootstrap(3, replicates);
        // Neuron 0 is always high, neuron 1 never, neurons 2 and 3 are high in one item of 20.
        for key in 0..20_u64 {
            s.count_item(0, key, 1.0);
            let x2 = if key == 0 { 20.0 } else { 0.0 };
            let x3 = if key == 1 { 12.0 } else { 0.0 };
            s.add_item_layer(
                0,
                key,
                0,
                1.0,
                &[1.0, 0.0, 1.0, 1.0],
                &[1.0, 0.0, x2, x3],
                &[1.0, 0.0, x2 * x2, x3 * x3],
            );
        }
        s
    }

    #[test]
    fn stable_neurons_score_one_and_chance_neurons_less() {
        let s = stats(30);
        let labels = vec!["a".to_owned()];
        let full = AboveHalf.score(&s, &labels).expect("scores").sets;
        // Full data: neuron 0 (mean 1), 2 (mean 1.0), 3 (mean 0.6).
        assert_eq!(full[0].1.layers(), &[vec![0, 2, 3]]);
        let st = selection_stability(&AboveHalf, &s, &labels, &full, None).expect("stability");
        assert_eq!(st[0].jaccard.len(), 30);
        let sum = st[0].summary();
        let mean = sum["jaccard_mean"].as_f64().expect("mean");
        assert!(mean > 0.34 && mean < 1.0, "{sum}");
        assert!(
            st[0].jaccard.iter().any(|&j| j < 1.0),
            "resamples that miss item 0 or 1 drop neurons"
        );
        assert_eq!(
            selection_stability(&AboveHalf, &s, &labels, &full, Some(4)).expect("ok")[0]
                .jaccard
                .len(),
            4
        );
    }

    #[test]
    fn without_replicates_stability_is_an_error() {
        let s = stats(0);
        let labels = vec!["a".to_owned()];
        let full = AboveHalf.score(&s, &labels).expect("scores").sets;
        let e = selection_stability(&AboveHalf, &s, &labels, &full, None).expect_err("none");
        assert!(e.to_string().contains("record.bootstrap"), "{e}");
        assert_eq!(jaccard(&NeuronSet::empty(2), &NeuronSet::empty(2)), 1.0);
    }
}
