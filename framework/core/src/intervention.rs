//! Interventions: turn a neuron set into a [`NeuronEdit`] that a backend applies at a tap.
//!
//! An edit maps each edited neuron's activation `x` to `clamp(scale·x + shift, min, max)`
//! ([`NeuronOp`]); that one form expresses zeroing (`scale = 0`), scaling (`scale = k`),
//! mean ablation (`scale = 0, shift = μ`) and clamping (`scale = 1` with bounds). An edit
//! applies at the positions its [`EditPositions`] names: every position (the default), only
//! the prompt's tokens, or only the generated / continuation tokens.

use std::path::PathBuf;

use crate::error::ComponentError;
use crate::model::ModelInfo;
use crate::neurons::NeuronSet;
use crate::stats::ActivationStats;

/// What happens to one edited neuron: `x ↦ clamp(scale·x + shift, min, max)`, where a
/// missing bound does not clamp.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct NeuronOp {
    /// Multiplier `a` of the activation.
    pub scale: f32,
    /// Added after scaling (`b`).
    pub shift: f32,
    /// Lower bound applied after `a·x + b`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f32>,
    /// Upper bound applied after `a·x + b`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f32>,
}

impl NeuronOp {
    /// `x ↦ factor·x` (0 zeroes the neuron).
    pub const fn factor(factor: f32) -> Self {
        NeuronOp {
            scale: factor,
            shift: 0.0,
            min: None,
            max: None,
        }
    }

    /// `x ↦ value` (the activation is replaced by a constant).
    pub const fn constant(value: f32) -> Self {
        NeuronOp {
            scale: 0.0,
            shift: value,
            min: None,
            max: None,
        }
    }

    /// `x ↦ clamp(x, min, max)`.
    pub const fn clamp(min: Option<f32>, max: Option<f32>) -> Self {
        NeuronOp {
            scale: 1.0,
            shift: 0.0,
            min,
            max,
        }
    }

    /// True when the op is a pure multiplication (no shift, no bounds): backends have a fast
    /// path for these, and the plugin ABI v1 carries only these.
    pub fn is_multiplicative(&self) -> bool {
        self.shift == 0.0 && self.min.is_none() && self.max.is_none()
    }

    /// True when every number is finite and `min <= max` where both are set.
    pub fn is_valid(&self) -> bool {
        let finite = |v: Option<f32>| v.is_none_or(f32::is_finite);
        self.scale.is_finite()
            && self.shift.is_finite()
            && finite(self.min)
            && finite(self.max)
            && match (self.min, self.max) {
                (Some(lo), Some(hi)) => lo <= hi,
                _ => true,
            }
    }

    /// The op applied to one activation (the reference semantics backends implement).
    pub fn apply(&self, x: f32) -> f32 {
        let mut y = self.scale * x + self.shift;
        if let Some(lo) = self.min {
            y = y.max(lo);
        }
        if let Some(hi) = self.max {
            y = y.min(hi);
        }
        y
    }
}

impl From<f32> for NeuronOp {
    fn from(factor: f32) -> Self {
        NeuronOp::factor(factor)
    }
}

/// Which token positions of a row an edit applies at.
///
/// For [`crate::ModelBackend::score`] the prompt is a request's context and the generated
/// part its continuation; for [`crate::ModelBackend::generate`] the prompt is the request's
/// prompt and the generated part the new tokens; [`crate::ModelBackend::record`] rows are all
/// prompt. Issue 7 (the authors' code edits at all positions; prompt-only and generated-only
/// edits separate reading the dilemma from writing the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EditPositions {
    /// Every position (the default; exactly the behaviour before positions existed).
    #[default]
    All,
    /// Only the prompt's (context's) tokens.
    Prompt,
    /// Only the generated (continuation) tokens.
    Generated,
}

impl EditPositions {
    /// True for [`EditPositions::All`].
    pub fn is_all(&self) -> bool {
        *self == EditPositions::All
    }

    /// The manifest spelling: `all`, `prompt` or `generated`.
    pub fn as_str(self) -> &'static str {
        match self {
            EditPositions::All => "all",
            EditPositions::Prompt => "prompt",
            EditPositions::Generated => "generated",
        }
    }

    /// Whether a token applies: `generated` says whether it belongs to the generated
    /// (continuation) part of its row.
    pub fn applies(self, generated: bool) -> bool {
        match self {
            EditPositions::All => true,
            EditPositions::Prompt => !generated,
            EditPositions::Generated => generated,
        }
    }
}

/// Edit chosen neurons of a tap during the forward pass, each by its [`NeuronOp`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NeuronEdit {
    /// The tap to edit (e.g. `mlp.gate_act`).
    pub tap: String,
    /// Per layer: `(neuron index, op)` pairs. Length = number of layers.
    pub layers: Vec<Vec<(u32, NeuronOp)>>,
    /// Where in each row the edit applies (default every position).
    #[serde(skip_serializing_if = "EditPositions::is_all")]
    pub positions: EditPositions,
}

impl NeuronEdit {
    /// An edit that multiplies neurons by factors: per layer `(neuron, factor)` pairs.
    pub fn multiply(tap: impl Into<String>, layers: Vec<Vec<(u32, f32)>>) -> Self {
        NeuronEdit {
            tap: tap.into(),
            layers: layers
                .into_iter()
                .map(|l| {
                    l.into_iter()
                        .map(|(n, f)| (n, NeuronOp::factor(f)))
                        .collect()
                })
                .collect(),
            positions: EditPositions::All,
        }
    }

    /// The same edit applied at `positions`.
    #[must_use]
    pub fn at_positions(mut self, positions: EditPositions) -> Self {
        self.positions = positions;
        self
    }

    /// Number of edited neurons over all layers.
    pub fn len(&self) -> usize {
        self.layers.iter().map(Vec::len).sum()
    }

    /// True when no neuron is edited.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when every op is a pure multiplication (see [`NeuronOp::is_multiplicative`]).
    pub fn is_multiplicative(&self) -> bool {
        self.layers
            .iter()
            .flatten()
            .all(|(_, op)| op.is_multiplicative())
    }

    /// The per-layer `(neuron, factor)` pairs when the edit is multiplicative; `None` when an
    /// op shifts or clamps.
    pub fn factors(&self) -> Option<Vec<Vec<(u32, f32)>>> {
        self.is_multiplicative().then(|| {
            self.layers
                .iter()
                .map(|l| l.iter().map(|&(n, op)| (n, op.scale)).collect())
                .collect()
        })
    }
}

/// Where an intervention wants its statistics from (see [`Intervention::statistics`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StatisticsSource {
    /// It uses no statistics.
    #[default]
    None,
    /// The statistics the run recorded (or read with `--statistics`).
    Run,
    /// A statistics file (`statistics.safetensors` and its `.json` sidecar, or their common
    /// stem); the host reads it.
    File(PathBuf),
}

/// What the host hands an intervention besides the set: today the activation statistics the
/// intervention asked for ([`Intervention::statistics`]). Build it with
/// [`EditContext::default`] and the `with_*` methods; fields may be added.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct EditContext<'a> {
    /// Activation statistics: those [`Intervention::statistics`] asked for, when the host has
    /// them (`None` otherwise).
    pub stats: Option<&'a ActivationStats>,
}

impl<'a> EditContext<'a> {
    /// The context with `stats`.
    pub fn with_stats(mut self, stats: &'a ActivationStats) -> Self {
        self.stats = Some(stats);
        self
    }
}

/// An intervention component (`intervention/zero`, ...).
///
/// ```
/// use valex_core::{ComponentError, EditContext, Intervention, ModelInfo, NeuronEdit, NeuronSet};
///
/// /// Doubles every selected neuron.
/// struct Double;
///
/// impl Intervention for Double {
///     fn edit(
///         &self,
///         set: &NeuronSet,
///         tap: &str,
///         info: &ModelInfo,
///         _cx: &EditContext<'_>,
///     ) -> Result<NeuronEdit, ComponentError> {
///         let mut layers = vec![Vec::new(); info.n_layers];
///         for (l, neurons) in set.layers().iter().enumerate() {
///             layers[l] = neurons.iter().map(|&n| (n, 2.0)).collect();
///         }
///         Ok(NeuronEdit::multiply(tap, layers))
///     }
/// }
/// ```
pub trait Intervention: Send + Sync {
    /// Builds the edit for `set` at `tap` of a model shaped like `info`.
    ///
    /// # Errors
    /// Fails when the set does not fit the model (layer or neuron out of range), or when the
    /// context lacks what the intervention needs (statistics).
    fn edit(
        &self,
        set: &NeuronSet,
        tap: &str,
        info: &ModelInfo,
        cx: &EditContext<'_>,
    ) -> Result<NeuronEdit, ComponentError>;

    /// Which statistics [`edit`](Intervention::edit) needs in its context; the default is
    /// none.
    fn statistics(&self) -> StatisticsSource {
        StatisticsSource::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_apply_affine_then_clamp() {
        assert_eq!(NeuronOp::factor(0.0).apply(3.5), 0.0);
        assert_eq!(NeuronOp::factor(5.0).apply(-2.0), -10.0);
        assert_eq!(NeuronOp::constant(0.25).apply(9.0), 0.25);
        let c = NeuronOp::clamp(Some(-1.0), Some(2.0));
        assert_eq!(
            (c.apply(-3.0), c.apply(0.5), c.apply(7.0)),
            (-1.0, 0.5, 2.0)
        );
        assert_eq!(NeuronOp::clamp(None, Some(0.0)).apply(-4.0), -4.0);
        assert!(NeuronOp::factor(3.0).is_multiplicative());
        assert!(!NeuronOp::constant(0.0).scale.is_nan());
        assert!(!c.is_multiplicative() && c.is_valid());
        assert!(!NeuronOp::clamp(Some(2.0), Some(1.0)).is_valid());
        assert!(!NeuronOp::factor(f32::NAN).is_valid());
    }

    #[test]
    fn factors_exist_only_for_multiplicative_edits() {
        let mut e = NeuronEdit::multiply("t", vec![vec![(1, 0.0), (3, 2.0)], vec![]]);
        assert_eq!(e.len(), 2);
        assert_eq!(e.factors(), Some(vec![vec![(1, 0.0), (3, 2.0)], vec![]]));
        e.layers[1].push((0, NeuronOp::constant(1.0)));
        assert!(!e.is_multiplicative());
        assert_eq!(e.factors(), None);
    }

    #[test]
    fn positions_select_prompt_or_generated_tokens_and_default_to_all() {
        let e = NeuronEdit::multiply("t", vec![]);
        assert_eq!(e.positions, EditPositions::All);
        assert_eq!(serde_json::to_value(&e).unwrap().get("positions"), None);
        let e = e.at_positions(EditPositions::Generated);
        assert_eq!(serde_json::to_value(&e).unwrap()["positions"], "generated");
        let row = |p: EditPositions| [false, true].map(|g| p.applies(g));
        assert_eq!(row(EditPositions::All), [true, true]);
        assert_eq!(row(EditPositions::Prompt), [true, false]);
        assert_eq!(row(EditPositions::Generated), [false, true]);
        let p: EditPositions = serde_json::from_str("\"prompt\"").unwrap();
        assert_eq!(p.as_str(), "prompt");
        assert!(serde_json::from_str::<EditPositions>("\"story\"").is_err());
    }
}
