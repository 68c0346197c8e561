//! `intervention/scale`: multiply the selected neurons by `factor` (the C-voice authors'
//! code amplifies value neurons ×5; `factor = 1` leaves the model unchanged).

use serde::Deserialize;
use valex_core::{
    ComponentError, ConfigError, EditContext, FactoryContext, Intervention, ModelInfo, NeuronEdit,
    NeuronSet,
};

use crate::edit::constant_edit;

/// Params of `intervention/scale`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleConfig {
    /// Multiplier of every selected neuron's activation (required; finite).
    pub factor: f64,
}

/// Multiplies the selected neurons' activations by a constant.
#[derive(Debug, Clone)]
pub struct Scale {
    factor: f32,
}

impl Scale {
    /// Scaling by `factor`.
    pub fn new(factor: f32) -> Self {
        Scale { factor }
    }
}

impl Intervention for Scale {
    fn edit(
        &self,
        set: &NeuronSet,
        tap: &str,
        info: &ModelInfo,
        _cx: &EditContext<'_>,
    ) -> Result<NeuronEdit, ComponentError> {
        constant_edit(set, tap, info, self.factor)
    }
}

/// Builds `intervention/scale`.
///
/// # Errors
/// Unknown params, a missing `factor`, or a factor that is not a finite `f32`.
pub fn factory(
    params: &serde_json::Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Intervention>, ConfigError> {
    let c: ScaleConfig = ConfigError::parse_params(params)?;
    #[expect(clippy::cast_possible_truncation, reason = "range checked just below")]
    let factor = c.factor as f32;
    if !factor.is_finite() {
        return Err(ConfigError::new(
            Some("factor"),
            format!("must be a finite number, found {}", c.factor),
        ));
    }
    Ok(Box::new(Scale::new(factor)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::info;

    #[test]
    fn scale_edit_multiplies_each_selected_neuron_by_the_factor() {
        let s = factory(
            &serde_json::json!({"factor": 5}),
            &FactoryContext::default(),
        )
        .unwrap();
        let set = NeuronSet::from_layers(vec![vec![2], vec![0, 3]]);
        let e = s
            .edit(&set, "mlp.up", &info(), &EditContext::default())
            .unwrap();
        assert_eq!(e.tap, "mlp.up");
        assert_eq!(
            e.factors().unwrap(),
            vec![vec![(2, 5.0)], vec![(0, 5.0), (3, 5.0)]]
        );
    }

    #[test]
    fn bad_params_name_the_key() {
        let cx = FactoryContext::default();
        let e = factory(&serde_json::json!({}), &cx).err().unwrap();
        assert_eq!(e.message, "missing field `factor`");
        let e = factory(&serde_json::json!({"factor": 1e300}), &cx)
            .err()
            .unwrap();
        assert_eq!(e.key.as_deref(), Some("factor"));
        assert!(
            e.message.starts_with("must be a finite number"),
            "{}",
            e.message
        );
        let e = factory(&serde_json::json!({"factor": 2, "by": 3}), &cx)
            .err()
            .unwrap();
        assert!(e.message.contains("unknown field `by`"), "{}", e.message);
    }
}
