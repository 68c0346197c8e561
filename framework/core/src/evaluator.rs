//! Evaluators: measure the model's value-driven behaviour under an optional intervention.

use crate::dataset::Item;
use crate::error::ComponentError;
use crate::intervention::NeuronEdit;
use crate::model::ModelBackend;

/// What to evaluate.
#[derive(Debug, Clone, Copy)]
pub struct EvalRequest<'a> {
    /// Evaluation items (all of one value and language, typically).
    pub items: &'a [Item],
    /// Intervention to apply, or `None` for the baseline.
    pub edit: Option<&'a NeuronEdit>,
}

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalOutcome {
    /// Metric name (e.g. `aligned_rate`).
    pub metric: String,
    /// Mean of `per_item`.
    pub value: f64,
    /// One score per item, in the order of the request (paired across conditions).
    pub per_item: Vec<f64>,
}

/// An evaluator (`evaluator/forced-choice`, ...).
pub trait Evaluator: Send + Sync {
    /// Evaluates `request.items` on `backend`.
    ///
    /// # Errors
    /// Backend failures, empty item lists.
    fn evaluate(
        &self,
        backend: &mut dyn ModelBackend,
        request: EvalRequest<'_>,
    ) -> Result<EvalOutcome, ComponentError>;
}
