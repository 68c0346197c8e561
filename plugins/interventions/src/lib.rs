//! valex-interventions: built-in interventions.
//!
//! - `intervention/zero`: multiply the selected neurons by 0 (LAPE's deactivation; exactly
//!   removes their contribution, since `down(act * up)` is linear in `act`).
//!
//! An intervention only turns a neuron set into a [`NeuronEdit`]; backends apply it.

use serde::Deserialize;
use valex_core::registry::AnyFactory;
use valex_core::{
    ComponentError, ConfigError, FactoryContext, Intervention, ModelInfo, NeuronEdit, NeuronSet,
    Plugin, RegistryBuilder, RegistryError,
};

/// Params of `intervention/zero` (none).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroConfig {}

/// Sets the selected neurons' activations to 0.
#[derive(Debug, Clone, Default)]
pub struct ZeroAblation;

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
        layers[l] = neurons.iter().map(|&n| (n, factor)).collect();
    }
    Ok(NeuronEdit {
        tap: tap.to_owned(),
        layers,
    })
}

impl Intervention for ZeroAblation {
    fn edit(
        &self,
        set: &NeuronSet,
        tap: &str,
        info: &ModelInfo,
    ) -> Result<NeuronEdit, ComponentError> {
        constant_edit(set, tap, info, 0.0)
    }
}

fn zero_factory(
    params: &serde_json::Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Intervention>, ConfigError> {
    let _: ZeroConfig = ConfigError::parse_params(params)?;
    Ok(Box::new(ZeroAblation))
}

/// Registers every built-in intervention.
pub struct InterventionsPlugin;

impl Plugin for InterventionsPlugin {
    fn name(&self) -> &'static str {
        "valex-interventions"
    }

    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
        r.register(
            "intervention/zero",
            env!("CARGO_PKG_VERSION"),
            "set the selected neurons' activations to 0 at every position",
            AnyFactory::Intervention(zero_factory),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ModelInfo {
        ModelInfo {
            architecture: "llama".into(),
            n_layers: 2,
            n_neurons: 4,
            hidden_size: 8,
            vocab_size: 10,
            content_sha256: String::new(),
        }
    }

    #[test]
    fn zero_edit_has_factor_zero_per_selected_neuron() {
        let set = NeuronSet::from_layers(vec![vec![3, 1], vec![]]);
        let e = ZeroAblation.edit(&set, "mlp.gate_act", &info()).unwrap();
        assert_eq!(e.layers, vec![vec![(1, 0.0), (3, 0.0)], vec![]]);
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn rejects_out_of_range_neurons_and_layers() {
        let set = NeuronSet::from_layers(vec![vec![4], vec![]]);
        let e = ZeroAblation
            .edit(&set, "mlp.gate_act", &info())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "neuron set: layer 0 neuron 4 is out of range (the model has 4 neurons per layer)"
        );
        let set = NeuronSet::from_layers(vec![vec![], vec![], vec![1]]);
        assert!(ZeroAblation.edit(&set, "mlp.gate_act", &info()).is_err());
    }

    #[test]
    fn rejects_unknown_params() {
        let e = zero_factory(
            &serde_json::json!({"factor": 2}),
            &FactoryContext::default(),
        )
        .err()
        .unwrap();
        assert!(
            e.message.contains("unknown field `factor`"),
            "{}",
            e.message
        );
    }
}
