//! Scorers: statistics in, per-label neuron sets out. They never see the model.

use crate::error::ComponentError;
use crate::neurons::NeuronSet;
use crate::stats::ActivationStats;

/// What a scorer selected.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOutput {
    /// One neuron set per requested label, in the order of the request.
    pub sets: Vec<(String, NeuronSet)>,
    /// Scorer-specific facts worth reporting (thresholds, candidate counts), as JSON.
    pub details: serde_json::Value,
}

/// A neuron scorer (`scorer/lape`, ...).
///
/// ```
/// use valex_core::{Scorer, ScoreOutput, ActivationStats, ComponentError, NeuronSet};
/// /// Selects nothing: a minimal scorer.
/// struct Nothing;
/// impl Scorer for Nothing {
///     fn score(&self, stats: &ActivationStats, labels: &[String])
///         -> Result<ScoreOutput, ComponentError> {
///         Ok(ScoreOutput {
///             sets: labels.iter().map(|l| (l.clone(), NeuronSet::empty(stats.n_layers))).collect(),
///             details: serde_json::Value::Null,
///         })
///     }
/// }
/// ```
pub trait Scorer: Send + Sync {
    /// Scores the neurons over `labels` (a subset of `stats.labels`, all of them compared
    /// against each other) and selects a set per label.
    ///
    /// # Errors
    /// Unknown labels, degenerate statistics (no tokens).
    fn score(
        &self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScoreOutput, ComponentError>;
}
