//! `intervention/clamp`: clamp the selected neurons' activations to `[min, max]` (either
//! bound may be left out, not both).

use serde::Deserialize;
use valex_core::{
    ComponentError, ConfigError, EditContext, FactoryContext, Intervention, ModelInfo, NeuronEdit,
    NeuronOp, NeuronSet,
};

use crate::edit::edit_each;

/// Params of `intervention/clamp`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClampConfig {
    /// Lower bound (none: no lower bound).
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper bound (none: no upper bound).
    #[serde(default)]
    pub max: Option<f64>,
}

/// Clamps the selected neurons' activations.
#[derive(Debug, Clone)]
pub struct Clamp {
    op: NeuronOp,
}

impl Intervention for Clamp {
    fn edit(
        &self,
        set: &NeuronSet,
        tap: &str,
        info: &ModelInfo,
        _cx: &EditContext<'_>,
    ) -> Result<NeuronEdit, ComponentError> {
        edit_each(set, tap, info, |_, _| Ok(self.op))
    }
}

fn bound(key: &str, v: Option<f64>) -> Result<Option<f32>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    #[expect(clippy::cast_possible_truncation, reason = "range checked just below")]
    let f = v as f32;
    if f.is_finite() {
        Ok(Some(f))
    } else {
        Err(ConfigError::new(
            Some(key),
            format!("must be a finite number, found {v}"),
        ))
    }
}

/// Builds `intervention/clamp`.
///
/// # Errors
/// Unknown params, neither bound set, a bound that is not a finite `f32`, or `min > max`.
pub fn factory(
    params: &serde_json::Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Intervention>, ConfigError> {
    let c: ClampConfig = ConfigError::parse_params(params)?;
    let (min, max) = (bound("min", c.min)?, bound("max", c.max)?);
    match (min, max) {
        (None, None) => Err(ConfigError::new(
            None,
            "set min, max or both (a clamp without bounds changes nothing)",
        )),
        (Some(lo), Some(hi)) if lo > hi => Err(ConfigError::new(
            Some("min"),
            format!("must not exceed max ({hi}), found {lo}"),
        )),
        _ => Ok(Box::new(Clamp {
            op: NeuronOp::clamp(min, max),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::info;

    #[test]
    fn clamp_edit_carries_the_bounds() {
        let c = factory(&serde_json::json!({"max": 0.5}), &FactoryContext::default()).unwrap();
        let set = NeuronSet::from_layers(vec![vec![1], vec![]]);
        let e = c
            .edit(&set, "mlp.gate_act", &info(), &EditContext::default())
            .unwrap();
        assert_eq!(e.layers[0], vec![(1, NeuronOp::clamp(None, Some(0.5)))]);
        assert!(!e.is_multiplicative());
        assert_eq!(e.layers[0][0].1.apply(3.0), 0.5);
        assert_eq!(e.layers[0][0].1.apply(-3.0), -3.0);
    }

    #[test]
    fn bad_bounds_are_rejected_with_their_key() {
        let cx = FactoryContext::default();
        let e = factory(&serde_json::json!({}), &cx).err().unwrap();
        assert!(
            e.message.starts_with("set min, max or both"),
            "{}",
            e.message
        );
        let e = factory(&serde_json::json!({"min": 2, "max": 1}), &cx)
            .err()
            .unwrap();
        assert_eq!(e.key.as_deref(), Some("min"));
        assert_eq!(e.message, "must not exceed max (1), found 2");
        let e = factory(&serde_json::json!({"max": -1e300}), &cx)
            .err()
            .unwrap();
        assert_eq!(e.key.as_deref(), Some("max"));
        let e = factory(&serde_json::json!({"lo": 0}), &cx).err().unwrap();
        assert!(e.message.contains("unknown field `lo`"), "{}", e.message);
    }
}
