//! Building edits from neuron sets: the range checks every intervention shares.

use valex_core::{ComponentError, ModelInfo, NeuronEdit, NeuronOp, NeuronSet};

/// Checks that `set` fits a model shaped like `info` and builds an edit with the op
/// `op(layer, neuron)` for every selected neuron.
///
/// # Errors
/// A layer or neuron index outside the model, or `op`'s error.
pub fn edit_each(
    set: &NeuronSet,
    tap: &str,
    info: &ModelInfo,
    mut op: impl FnMut(usize, u32) -> Result<NeuronOp, ComponentError>,
) -> Result<NeuronEdit, ComponentError> {
    if set.n_layers() > info.n_layers {
        return Err(ComponentError::config(format!(
            "neuron set has {} layers but the model has {}",
            set.n_layers(),
            info.n_layers
        )));
    }
    let mut layers = vec![Vec::new(); info.n_layers];
    for (l, neurons) in set.layers().iter().enumerate() {
        if let Some(&bad) = neurons.iter().find(|&&n| n as usize >= info.n_neurons) {
            return Err(ComponentError::config(format!(
                "neuron set: layer {l} neuron {bad} is out of range (the model has {} neurons per layer)",
                info.n_neurons
            )));
        }
        layers[l] = neurons
            .iter()
            .map(|&n| op(l, n).map(|o| (n, o)))
            .collect::<Result<_, _>>()?;
    }
    Ok(NeuronEdit {
        tap: tap.to_owned(),
        layers,
        positions: valex_core::EditPositions::All,
    })
}

/// Checks that `set` fits a model shaped like `info` and builds a constant-factor edit.
///
/// # Errors
/// A layer or neuron index outside the model.
pub fn constant_edit(
    set: &NeuronSet,
    tap: &str,
    info: &ModelInfo,
    factor: f32,
) -> Result<NeuronEdit, ComponentError> {
    edit_each(set, tap, info, |_, _| Ok(NeuronOp::factor(factor)))
}
