//! `intervention/zero`: multiply the selected neurons by 0 (LAPE's deactivation; exactly
//! removes their contribution, since `down(act * up)` is linear in `act`).

use serde::Deserialize;
use valex_core::{
    ComponentError, ConfigError, EditContext, FactoryContext, Intervention, ModelInfo, NeuronEdit,
    NeuronSet,
};

use crate::edit::constant_edit;

/// Params of `intervention/zero` (none).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroConfig {}

/// Sets the selected neurons' activations to 0.
#[derive(Debug, Clone, Default)]
pub struct ZeroAblation;

impl Intervention for ZeroAblation {
    fn edit(
        &self,
        set: &NeuronSet,
        tap: &str,
        info: &ModelInfo,
        _cx: &EditContext<'_>,
    ) -> Result<NeuronEdit, ComponentError> {
        constant_edit(set, tap, info, 0.0)
    }
}

/// Builds `intervention/zero`.
///
/// # Errors
/// Any params.
pub fn factory(
    params: &serde_json::Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Intervention>, ConfigError> {
    let _: ZeroConfig = ConfigError::parse_params(params)?;
    Ok(Box::new(ZeroAblation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::info;

    #[test]
    fn zero_edit_has_factor_zero_per_selected_neuron() {
        let set = NeuronSet::from_layers(vec![vec![3, 1], vec![]]);
        let e = ZeroAblation
            .edit(&set, "mlp.gate_act", &info(), &EditContext::default())
            .unwrap();
        assert_eq!(e.factors().unwrap(), vec![vec![(1, 0.0), (3, 0.0)], vec![]]);
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn rejects_out_of_range_neurons_and_layers() {
        let cx = EditContext::default();
        let set = NeuronSet::from_layers(vec![vec![4], vec![]]);
        let e = ZeroAblation
            .edit(&set, "mlp.gate_act", &info(), &cx)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "neuron set: layer 0 neuron 4 is out of range (the model has 4 neurons per layer)"
        );
        let set = NeuronSet::from_layers(vec![vec![], vec![], vec![1]]);
        assert!(
            ZeroAblation
                .edit(&set, "mlp.gate_act", &info(), &cx)
                .is_err()
        );
    }

    #[test]
    fn rejects_unknown_params() {
        let e = factory(
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
