//! `scorer/lape`: LAPE / VAPE entropy selection (Tang et al. 2024; Hu et al. 2025).
//!
//! This module owns the LAPE parameters, the selection algorithm and the [`Scorer`] wrapper.
//! It reads only [`ActivationStats::labels`]' `active`, `tokens` and `items`; it never needs
//! activation sums, so it also runs on released count files that carry no sums.
//!
//! The algorithm follows the authors' `identify.py` step by step, in `float32` like torch:
//! 1. `P[l,i,k] = f32(active) / f32(n_k)` with `n_k` the label's tokens or items;
//! 2. `P̂ = P / Σ_k P` (NaN → 0), `H = −Σ_k P̂ log P̂` (terms with `P̂ = 0` are 0);
//! 3. `τ_f` = `kthvalue` of all `P` at `round(N · filter_rate)`; neurons with no `P > τ_f`
//!    get `H = +inf`;
//! 4. the `round(L · I · top_rate)` lowest `H` over all layers are selected (CPU `topk`
//!    tie order, see [`crate::torch_compat`]);
//! 5. `τ_b` = `kthvalue` at `round(N · activation_bar_ratio)`; a selected neuron joins the set
//!    of every label `k` with `P[l,i,k] > τ_b`.
//!
//! Differences from the scripts, on purpose: a label that receives no neuron gets an empty
//! set (upstream `split(bincount(..))` silently drops trailing empty labels). For more than
//! two labels, `Σ_k` is summed left to right; torch's vectorised reduction may order the
//! additions differently, which can move a value by one unit in the last place.

use serde::{Deserialize, Serialize};
use serde_json::json;
use valex_core::{
    ActivationStats, ComponentError, ConfigError, FactoryContext, NeuronSet, ScoreOutput, Scorer,
};

use crate::torch_compat::{kthvalue, python_round_count, smallest_k};

/// What activation counts are divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormalizeBy {
    /// Tokens counted per label (LAPE's `n`).
    #[default]
    Tokens,
    /// Items (questions) per label, as the C-voice follow-up script does
    /// (`token_num = question_num`).
    Items,
}

impl NormalizeBy {
    fn as_str(self) -> &'static str {
        match self {
            NormalizeBy::Tokens => "tokens",
            NormalizeBy::Items => "items",
        }
    }
}

/// Params of `scorer/lape`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LapeConfig {
    /// Fraction of all `L · I` neurons to select (lowest entropy first).
    pub top_rate: f64,
    /// Quantile of all `P` values a neuron must exceed for at least one label to be a
    /// candidate (`τ_f`).
    pub filter_rate: f64,
    /// Quantile of all `P` values a selected neuron must exceed for a label to be assigned
    /// to it (`τ_b`).
    pub activation_bar_ratio: f64,
    /// Divide counts by tokens or by items.
    pub normalize_by: NormalizeBy,
}

impl Default for LapeConfig {
    fn default() -> Self {
        LapeConfig {
            top_rate: 0.01,
            filter_rate: 0.95,
            activation_bar_ratio: 0.95,
            normalize_by: NormalizeBy::Tokens,
        }
    }
}

impl LapeConfig {
    /// Checks that every rate lies in `(0, 1]`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the offending key and value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, v) in [
            ("top_rate", self.top_rate),
            ("filter_rate", self.filter_rate),
            ("activation_bar_ratio", self.activation_bar_ratio),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return Err(ConfigError::new(
                    Some(key),
                    format!("{key} must be in (0, 1], found {v}"),
                ));
            }
        }
        Ok(())
    }
}

/// What [`lape_select`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct LapeSelection {
    /// One set per label, in label order.
    pub sets: Vec<NeuronSet>,
    /// `k` of the filter quantile (1-based).
    pub filter_k: usize,
    /// Filter threshold `τ_f`.
    pub tau_f: f32,
    /// `k` of the activation-bar quantile (1-based).
    pub bar_k: usize,
    /// Assignment threshold `τ_b`.
    pub tau_b: f32,
    /// Neurons with `P > τ_f` for at least one label (finite entropy).
    pub n_candidates: usize,
    /// Neurons selected by entropy (`round(L · I · top_rate)`).
    pub n_selected: usize,
    /// Selected neurons that no label received (no `P > τ_b`).
    pub n_unassigned: usize,
    /// Largest entropy among the selected neurons (`None` when none was selected).
    pub max_selected_entropy: Option<f32>,
}

/// Activation probabilities `P` for `labels`, laid out `[n_layers, n_neurons, K]` (label
/// innermost, as torch's `stack(dim=-1)`), in `f32`.
///
/// # Errors
/// An unknown or repeated label, a label with zero tokens/items, or an `active` array of the
/// wrong length.
pub fn activation_probs(
    stats: &ActivationStats,
    labels: &[String],
    normalize_by: NormalizeBy,
) -> Result<Vec<f32>, ComponentError> {
    if labels.is_empty() {
        return Err(ComponentError::config(
            "scorer/lape needs at least one label to compare",
        ));
    }
    let n = stats.n_layers * stats.n_neurons;
    let k = labels.len();
    let mut probs = vec![0.0_f32; n * k];
    for (j, name) in labels.iter().enumerate() {
        if labels[..j].contains(name) {
            return Err(ComponentError::config(format!(
                "label {name} is listed twice for scorer/lape"
            )));
        }
        let idx = stats.label_index(name).ok_or_else(|| {
            ComponentError::config(format!(
                "unknown label {name}; available: {}",
                stats.label_names().join(", ")
            ))
        })?;
        let l = &stats.labels[idx];
        #[expect(
            clippy::cast_precision_loss,
            reason = "torch casts the int64 count tensor to float32 the same way"
        )]
        let denom = match normalize_by {
            NormalizeBy::Tokens => l.tokens as f32,
            NormalizeBy::Items => l.items as f32,
        };
        if !(denom.is_finite() && denom > 0.0) {
            return Err(ComponentError::input(format!(
                "label {name} has {denom} {}; cannot compute activation probabilities",
                normalize_by.as_str()
            )));
        }
        if l.active.len() != n {
            return Err(ComponentError::input(format!(
                "label {name}: active has {} values, expected {} ({} layers x {} neurons)",
                l.active.len(),
                n,
                stats.n_layers,
                stats.n_neurons
            )));
        }
        for (i, &count) in l.active.iter().enumerate() {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "counts become float32 as torch's int32 -> float32 cast does"
            )]
            let c = count as f32;
            probs[i * k + j] = c / denom;
        }
    }
    Ok(probs)
}

/// Per-neuron entropy `H = −Σ_k P̂ log P̂` over the `k` labels of each neuron, in `f32`.
///
/// # Panics
/// When `k == 0` or `probs.len()` is not a multiple of `k`.
pub fn entropies(probs: &[f32], k: usize) -> Vec<f32> {
    assert!(
        k > 0 && probs.len().is_multiple_of(k),
        "probs do not split into rows of {k}"
    );
    probs
        .chunks_exact(k)
        .map(|row| {
            let mut total = 0.0_f32;
            for &p in row {
                total += p;
            }
            let mut acc = 0.0_f32;
            for &p in row {
                let mut q = p / total;
                if q.is_nan() {
                    q = 0.0;
                }
                let log_q = if q > 0.0 { q.ln() } else { 0.0 };
                acc += q * log_q;
            }
            -acc
        })
        .collect()
}

/// Runs LAPE selection on probabilities laid out `[n_layers, n_neurons, n_labels]`.
///
/// # Errors
/// A quantile rank of 0 (rate too small for the number of values), a size mismatch, or
/// NaN entropies (NaN probabilities).
pub fn lape_select(
    probs: &[f32],
    n_layers: usize,
    n_neurons: usize,
    n_labels: usize,
    config: &LapeConfig,
) -> Result<LapeSelection, ComponentError> {
    let n_cells = n_layers * n_neurons;
    if n_labels == 0 || probs.len() != n_cells * n_labels {
        return Err(ComponentError::stage(format!(
            "lape: {} probabilities do not fit {n_layers} layers x {n_neurons} neurons x \
             {n_labels} labels",
            probs.len()
        )));
    }
    if u32::try_from(n_neurons).is_err() {
        return Err(ComponentError::input(format!(
            "lape: {n_neurons} neurons per layer do not fit u32 indices"
        )));
    }
    let mut entropy = entropies(probs, n_labels);
    if entropy.iter().any(|h| h.is_nan()) {
        return Err(ComponentError::input(
            "lape: entropy is NaN for some neuron (NaN activation counts?)",
        ));
    }

    let quantile = |key: &str, rate: f64| -> Result<(usize, f32), ComponentError> {
        let k = python_round_count(probs.len(), rate);
        kthvalue(probs, k).map(|v| (k, v)).ok_or_else(|| {
            ComponentError::config(format!(
                "{key} {rate} selects rank {k} of {} probabilities; nothing to threshold",
                probs.len()
            ))
        })
    };
    let (filter_k, tau_f) = quantile("filter_rate", config.filter_rate)?;
    let (bar_k, tau_b) = if config.activation_bar_ratio == config.filter_rate {
        (filter_k, tau_f)
    } else {
        quantile("activation_bar_ratio", config.activation_bar_ratio)?
    };

    let mut n_candidates = 0;
    for (h, row) in entropy.iter_mut().zip(probs.chunks_exact(n_labels)) {
        if row.iter().any(|&p| p > tau_f) {
            n_candidates += 1;
        } else {
            *h = f32::INFINITY;
        }
    }

    let n_selected = python_round_count(n_cells, config.top_rate);
    let selected = smallest_k(&entropy, n_selected);
    let max_selected_entropy = selected
        .iter()
        .map(|&f| entropy[f])
        .fold(None, |m: Option<f32>, h| Some(m.map_or(h, |m| m.max(h))));

    let mut layers = vec![vec![Vec::<u32>::new(); n_layers]; n_labels];
    let mut n_unassigned = 0;
    for &flat in &selected {
        let (layer, neuron) = (flat / n_neurons, flat % n_neurons);
        let neuron = u32::try_from(neuron).expect("n_neurons was checked to fit u32");
        let row = &probs[flat * n_labels..(flat + 1) * n_labels];
        let mut assigned = false;
        for (label, &p) in row.iter().enumerate() {
            if p > tau_b {
                layers[label][layer].push(neuron);
                assigned = true;
            }
        }
        if !assigned {
            n_unassigned += 1;
        }
    }
    Ok(LapeSelection {
        sets: layers.into_iter().map(NeuronSet::from_layers).collect(),
        filter_k,
        tau_f,
        bar_k,
        tau_b,
        n_candidates,
        n_selected,
        n_unassigned,
        max_selected_entropy,
    })
}

/// The `scorer/lape` component.
#[derive(Debug, Clone, PartialEq)]
pub struct LapeScorer {
    config: LapeConfig,
}

impl LapeScorer {
    /// A scorer with validated params.
    ///
    /// # Errors
    /// A rate outside `(0, 1]`.
    pub fn new(config: LapeConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(LapeScorer { config })
    }

    /// The params in use.
    pub fn config(&self) -> &LapeConfig {
        &self.config
    }
}

impl Scorer for LapeScorer {
    fn score(
        &self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScoreOutput, ComponentError> {
        let probs = activation_probs(stats, labels, self.config.normalize_by)?;
        let sel = lape_select(
            &probs,
            stats.n_layers,
            stats.n_neurons,
            labels.len(),
            &self.config,
        )?;
        tracing::debug!(
            tau_f = sel.tau_f,
            tau_b = sel.tau_b,
            candidates = sel.n_candidates,
            selected = sel.n_selected,
            "lape selection done"
        );
        let per_label: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .zip(&sel.sets)
            .map(|(l, s)| (l.clone(), json!(s.len())))
            .collect();
        let details = json!({
            "method": "lape",
            "labels": labels,
            "normalize_by": self.config.normalize_by.as_str(),
            "top_rate": self.config.top_rate,
            "filter_rate": self.config.filter_rate,
            "activation_bar_ratio": self.config.activation_bar_ratio,
            "n_probabilities": probs.len(),
            "filter_k": sel.filter_k,
            "tau_f": sel.tau_f,
            "bar_k": sel.bar_k,
            "tau_b": sel.tau_b,
            "candidates": sel.n_candidates,
            "selected": sel.n_selected,
            "unassigned": sel.n_unassigned,
            "max_selected_entropy": sel.max_selected_entropy,
            "selected_per_label": per_label,
        });
        Ok(ScoreOutput {
            sets: labels.iter().cloned().zip(sel.sets).collect(),
            details,
        })
    }
}

/// Factory of `scorer/lape`: parses and validates [`LapeConfig`].
///
/// # Errors
/// Unknown keys, wrong types or out-of-range rates.
pub fn lape_factory(
    params: &serde_json::Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Scorer>, ConfigError> {
    let config: LapeConfig = ConfigError::parse_params(params)?;
    Ok(Box::new(LapeScorer::new(config)?))
}

#[cfg(test)]
#[path = "lape_tests.rs"]
mod tests;
