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
    /// Mean of the scored (non-NaN) entries of `per_item` (NaN when none is scored).
    pub value: f64,
    /// One score per item, in the order of the request (paired across conditions); NaN for
    /// an item the evaluator could not score (e.g. no parseable answer), which `unscored`
    /// then explains.
    pub per_item: Vec<f64>,
    /// Answers that could not be scored, for evaluators that parse generated text (`None`
    /// for evaluators that always score).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unscored: Option<Unscored>,
}

impl EvalOutcome {
    /// An outcome whose every item is scored: `value` is the mean of `per_item`.
    pub fn scored(metric: impl Into<String>, per_item: Vec<f64>) -> Self {
        let value = per_item.iter().sum::<f64>() / per_item.len() as f64;
        EvalOutcome {
            metric: metric.into(),
            value,
            per_item,
            unscored: None,
        }
    }
}

/// The answers an evaluator could not score: counted and shown, never dropped silently.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Unscored {
    /// Answers generated (items × presentation orders).
    pub answers: usize,
    /// Of those, answers that could not be parsed.
    pub unparsed: usize,
    /// Items with no parsed answer at all (NaN in `per_item`).
    pub items: usize,
    /// A few unparsed answers, in item order.
    pub examples: Vec<UnscoredExample>,
}

/// One unparsed answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnscoredExample {
    /// The item's id.
    pub item: String,
    /// The presentation order (`aligned-first` or `aligned-second`).
    pub order: String,
    /// The generated text (at most 300 characters).
    pub answer: String,
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

    /// Whether [`evaluate`](Evaluator::evaluate) calls [`ModelBackend::generate`]; the runner
    /// then checks that the backend can generate before any model work (default false).
    fn uses_generation(&self) -> bool {
        false
    }
}
