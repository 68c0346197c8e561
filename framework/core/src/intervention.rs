//! Interventions: turn a neuron set into a [`NeuronEdit`] that a backend applies at a tap.

use crate::error::ComponentError;
use crate::model::ModelInfo;
use crate::neurons::NeuronSet;

/// Multiply chosen neurons of a tap by factors during the forward pass (0 zeroes them).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NeuronEdit {
    /// The tap to edit (e.g. `mlp.gate_act`).
    pub tap: String,
    /// Per layer: `(neuron index, factor)` pairs. Length = number of layers.
    pub layers: Vec<Vec<(u32, f32)>>,
}

impl NeuronEdit {
    /// Number of edited neurons over all layers.
    pub fn len(&self) -> usize {
        self.layers.iter().map(Vec::len).sum()
    }

    /// True when no neuron is edited.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An intervention component (`intervention/zero`, ...).
pub trait Intervention: Send + Sync {
    /// Builds the edit for `set` at `tap` of a model shaped like `info`.
    ///
    /// # Errors
    /// Fails when the set does not fit the model (layer or neuron out of range).
    fn edit(
        &self,
        set: &NeuronSet,
        tap: &str,
        info: &ModelInfo,
    ) -> Result<NeuronEdit, ComponentError>;
}
