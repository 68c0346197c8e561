//! Tap names and neuron edits as the model code sees them.
//!
//! Owns the mapping from tap strings (`mlp.gate_act`, ...) to [`Tap`] and the conversion of a
//! core [`NeuronEdit`] into per-layer multiplier vectors on the device. It does not run the
//! model.

use candle_core::{DType, Device, Tensor};
use valex_core::{ComponentError, NeuronEdit};

/// A point inside each layer's MLP whose activations can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tap {
    /// `mlp.gate_pre`: `x W_gate^T`, before the activation.
    GatePre,
    /// `mlp.gate_act`: `SiLU(x W_gate^T)`, after any edit (what LAPE counts).
    GateAct,
    /// `mlp.up`: `x W_up^T`.
    Up,
    /// `mlp.act_x_up`: `gate_act * up`, the input of `down_proj`.
    ActXUp,
}

impl Tap {
    /// Every tap, in the order [`Tap::name`] lists them.
    pub const ALL: [Tap; 4] = [Tap::GateAct, Tap::GatePre, Tap::Up, Tap::ActXUp];

    /// The tap's name.
    pub fn name(self) -> &'static str {
        match self {
            Tap::GatePre => "mlp.gate_pre",
            Tap::GateAct => "mlp.gate_act",
            Tap::Up => "mlp.up",
            Tap::ActXUp => "mlp.act_x_up",
        }
    }

    /// Parses a tap name.
    ///
    /// # Errors
    /// A config-class error listing the supported taps.
    pub fn parse(name: &str) -> Result<Tap, ComponentError> {
        Tap::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                ComponentError::config(format!(
                    "tap {name:?} is not supported by backend/candle; supported: {}",
                    Tap::ALL.map(Tap::name).join(", ")
                ))
            })
    }
}

/// The only tap at which edits can be applied.
pub const EDIT_TAP: &str = "mlp.gate_act";

/// Per-layer multipliers `[intermediate]` (ones except the edited neurons); `None` for
/// layers without edits, which then cost nothing.
#[derive(Debug, Clone, Default)]
pub struct LayerMultipliers(pub Vec<Option<Tensor>>);

impl LayerMultipliers {
    /// No edits in any layer.
    pub fn none(n_layers: usize) -> Self {
        LayerMultipliers(vec![None; n_layers])
    }

    /// The multiplier of `layer`, if it has edits.
    pub fn layer(&self, layer: usize) -> Option<&Tensor> {
        self.0.get(layer).and_then(Option::as_ref)
    }

    /// Builds the multipliers of `edit` for a model of `n_layers` x `n_neurons`.
    ///
    /// A neuron listed twice gets the product of its factors.
    ///
    /// # Errors
    /// Wrong tap, more layers than the model has, or a neuron out of range.
    pub fn build(
        edit: Option<&NeuronEdit>,
        n_layers: usize,
        n_neurons: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self, ComponentError> {
        let Some(edit) = edit else {
            return Ok(Self::none(n_layers));
        };
        if edit.tap != EDIT_TAP {
            return Err(ComponentError::config(format!(
                "edit tap {:?} is not supported by backend/candle; supported: {EDIT_TAP}",
                edit.tap
            )));
        }
        if edit.layers.len() > n_layers {
            return Err(ComponentError::config(format!(
                "edit has {} layers but the model has {n_layers}",
                edit.layers.len()
            )));
        }
        let mut out = Vec::with_capacity(n_layers);
        for layer in 0..n_layers {
            let pairs = edit
                .layers
                .get(layer)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if pairs.is_empty() {
                out.push(None);
                continue;
            }
            let mut m = vec![1.0_f32; n_neurons];
            for &(j, factor) in pairs {
                let j = j as usize;
                if j >= n_neurons {
                    return Err(ComponentError::config(format!(
                        "edit neuron {j} of layer {layer} is out of range (layer has {n_neurons} neurons)"
                    )));
                }
                m[j] *= factor;
            }
            let t = Tensor::from_vec(m, n_neurons, device)
                .and_then(|t| t.to_dtype(dtype))
                .map_err(|e| {
                    ComponentError::stage(format!(
                        "edit multipliers of layer {layer} could not be built"
                    ))
                    .with_source(e)
                })?;
            out.push(Some(t));
        }
        Ok(LayerMultipliers(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_listed_tap_and_rejects_others() {
        for t in Tap::ALL {
            assert_eq!(Tap::parse(t.name()).unwrap(), t);
        }
        let e = Tap::parse("attn.out").unwrap_err().to_string();
        assert!(
            e.contains("tap \"attn.out\"") && e.contains("mlp.gate_act"),
            "{e}"
        );
    }

    #[test]
    fn multipliers_are_ones_except_edited_neurons() {
        let edit = NeuronEdit {
            tap: EDIT_TAP.into(),
            layers: vec![vec![], vec![(1, 0.0), (3, 2.0)]],
        };
        let m = LayerMultipliers::build(Some(&edit), 2, 4, DType::F32, &Device::Cpu).unwrap();
        assert!(m.layer(0).is_none());
        let v: Vec<f32> = m.layer(1).unwrap().to_vec1().unwrap();
        assert_eq!(v, [1.0, 0.0, 1.0, 2.0]);
    }

    #[test]
    fn rejects_out_of_range_neuron_and_wrong_tap() {
        let mut edit = NeuronEdit {
            tap: EDIT_TAP.into(),
            layers: vec![vec![(4, 0.0)]],
        };
        let e = LayerMultipliers::build(Some(&edit), 2, 4, DType::F32, &Device::Cpu).unwrap_err();
        assert!(
            e.to_string()
                .contains("neuron 4 of layer 0 is out of range")
        );
        edit.tap = "mlp.up".into();
        let e = LayerMultipliers::build(Some(&edit), 2, 4, DType::F32, &Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("edit tap \"mlp.up\""));
    }
}
