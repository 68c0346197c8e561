//! Tap names, tap sets and neuron edits as the model code sees them.
//!
//! Owns the mapping from tap strings (`mlp.gate_act`, `mlp.act`, ...) to [`Tap`] per model
//! family, the [`TapSet`] a forward reports, the conversion of a core [`NeuronEdit`] into
//! per-layer multiplier vectors on the device ([`LayerMultipliers`]), and [`Hooks`], the one
//! place where a forward applies an edit and shows a tap to its visitor. It does not run the
//! model.

use candle_core::{DType, Device, Tensor};
use valex_core::{ComponentError, NeuronEdit};

/// Model families with their own MLP shape (and so their own taps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// llama, qwen2, mistral: `down(act(gate(x)) * up(x))`.
    Llama,
    /// gpt2: `c_proj(act(c_fc(x)))`.
    Gpt2,
}

/// A point inside each layer's MLP whose activations can be read and edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tap {
    /// `mlp.gate_pre`: `x W_gate^T`, before the activation (Llama family).
    GatePre,
    /// `mlp.gate_act`: `SiLU(gate_pre)` (what LAPE counts; Llama family).
    GateAct,
    /// `mlp.up`: `x W_up^T` (Llama family).
    Up,
    /// `mlp.act_x_up`: `gate_act * up`, the input of `down_proj` (Llama family).
    ActXUp,
    /// `mlp.pre`: `x W_fc + b_fc`, before the activation (GPT-2).
    Pre,
    /// `mlp.act`: `GELU(pre)`, the input of `c_proj` (GPT-2).
    Act,
}

impl Tap {
    /// Taps of the Llama family in the order the MLP computes them.
    pub const LLAMA: [Tap; 4] = [Tap::GatePre, Tap::GateAct, Tap::Up, Tap::ActXUp];

    /// Taps of GPT-2 in the order the MLP computes them.
    pub const GPT2: [Tap; 2] = [Tap::Pre, Tap::Act];

    /// The taps of `family`, in the order its MLP computes them.
    pub fn of(family: Family) -> &'static [Tap] {
        match family {
            Family::Llama => &Tap::LLAMA,
            Family::Gpt2 => &Tap::GPT2,
        }
    }

    /// The tap's name.
    pub fn name(self) -> &'static str {
        match self {
            Tap::GatePre => "mlp.gate_pre",
            Tap::GateAct => "mlp.gate_act",
            Tap::Up => "mlp.up",
            Tap::ActXUp => "mlp.act_x_up",
            Tap::Pre => "mlp.pre",
            Tap::Act => "mlp.act",
        }
    }

    /// Parses a tap name for a model of `family`.
    ///
    /// # Errors
    /// A config-class error listing the taps the family supports.
    pub fn parse(name: &str, family: Family) -> Result<Tap, ComponentError> {
        let taps = Tap::of(family);
        taps.iter()
            .copied()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                ComponentError::config(format!(
                    "tap {name:?} is not supported by backend/candle for this model; supported: {}",
                    taps.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
                ))
            })
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of taps (a bit set): the taps one forward shows its visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TapSet(u8);

impl TapSet {
    /// No taps.
    pub const EMPTY: TapSet = TapSet(0);

    /// The set holding `tap` only.
    pub fn one(tap: Tap) -> Self {
        TapSet(tap.bit())
    }

    /// Whether `tap` is in the set.
    pub fn contains(self, tap: Tap) -> bool {
        self.0 & tap.bit() != 0
    }

    /// Adds `tap`.
    pub fn insert(&mut self, tap: Tap) {
        self.0 |= tap.bit();
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The last tap of `order` that is in the set.
    pub fn last_in(self, order: &[Tap]) -> Option<Tap> {
        order.iter().rev().copied().find(|&t| self.contains(t))
    }
}

impl FromIterator<Tap> for TapSet {
    fn from_iter<I: IntoIterator<Item = Tap>>(iter: I) -> Self {
        let mut s = TapSet::EMPTY;
        for t in iter {
            s.insert(t);
        }
        s
    }
}

/// Per-layer multipliers `[intermediate]` at one tap (ones except the edited neurons);
/// `None` for layers without edits, which then cost nothing.
#[derive(Debug, Clone, Default)]
pub struct LayerMultipliers {
    tap: Option<Tap>,
    layers: Vec<Option<Tensor>>,
}

impl LayerMultipliers {
    /// No edits in any layer.
    pub fn none(n_layers: usize) -> Self {
        LayerMultipliers {
            tap: None,
            layers: vec![None; n_layers],
        }
    }

    /// The tap the multipliers apply at (`None` when there are no edits).
    pub fn tap(&self) -> Option<Tap> {
        self.tap
    }

    /// The multiplier of `layer` at `tap`, if that layer has edits there.
    pub fn at(&self, layer: usize, tap: Tap) -> Option<&Tensor> {
        if self.tap != Some(tap) {
            return None;
        }
        self.layers.get(layer).and_then(Option::as_ref)
    }

    /// Builds the multipliers of `edit` for a model of `family` with `n_layers` x
    /// `n_neurons`. Every tap of the family accepts edits; every tap is `n_neurons` wide.
    ///
    /// A neuron listed twice gets the product of its factors.
    ///
    /// # Errors
    /// A tap the family lacks, more layers than the model has, or a neuron out of range.
    pub fn build(
        edit: Option<&NeuronEdit>,
        family: Family,
        n_layers: usize,
        n_neurons: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self, ComponentError> {
        let Some(edit) = edit else {
            return Ok(Self::none(n_layers));
        };
        let tap = Tap::parse(&edit.tap, family)
            .map_err(|e| ComponentError::config(format!("edit: {}", e.message)))?;
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
        Ok(LayerMultipliers {
            tap: Some(tap),
            layers: out,
        })
    }
}

/// Visitor of tap activations: `(layer, tap, [batch * seq, width] values)`.
pub type TapVisitor<'a> = dyn FnMut(usize, Tap, &Tensor) -> candle_core::Result<()> + 'a;

/// What a forward does at its taps: apply the edit of that tap (if any), then show the
/// result to the visitor when the tap was asked for. Taps nobody asked for and taps without
/// edits cost nothing.
pub struct Hooks<'a, 'v> {
    /// Taps shown to `visit`.
    pub taps: TapSet,
    /// Edits applied during the forward.
    pub edits: &'a LayerMultipliers,
    /// The visitor.
    pub visit: &'a mut TapVisitor<'v>,
}

impl Hooks<'_, '_> {
    /// Applies the edit at (`layer`, `tap`) to `t`, shows the edited value to the visitor
    /// if `tap` was asked for, and returns it.
    ///
    /// # Errors
    /// Device errors or the visitor's error.
    pub fn at(&mut self, layer: usize, tap: Tap, t: Tensor) -> candle_core::Result<Tensor> {
        let t = match self.edits.at(layer, tap) {
            Some(m) => t.broadcast_mul(m)?,
            None => t,
        };
        if self.taps.contains(tap) {
            (self.visit)(layer, tap, &t)?;
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_listed_tap_per_family_and_rejects_others() {
        for (family, taps) in [(Family::Llama, &Tap::LLAMA[..]), (Family::Gpt2, &Tap::GPT2)] {
            for &t in taps {
                assert_eq!(Tap::parse(t.name(), family).unwrap(), t);
            }
        }
        let e = Tap::parse("attn.out", Family::Llama)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tap \"attn.out\"") && e.contains("mlp.gate_act"),
            "{e}"
        );
        let e = Tap::parse("mlp.gate_act", Family::Gpt2)
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("supported: mlp.pre, mlp.act"), "{e}");
    }

    #[test]
    fn tap_sets_hold_members_and_find_the_last_in_order() {
        let s: TapSet = [Tap::Up, Tap::GatePre].into_iter().collect();
        assert!(s.contains(Tap::Up) && s.contains(Tap::GatePre) && !s.contains(Tap::GateAct));
        assert_eq!(s.last_in(&Tap::LLAMA), Some(Tap::Up));
        assert_eq!(TapSet::EMPTY.last_in(&Tap::LLAMA), None);
        assert!(TapSet::EMPTY.is_empty() && !s.is_empty());
    }

    #[test]
    fn multipliers_are_ones_except_edited_neurons_at_the_edit_tap_only() {
        let edit = NeuronEdit {
            tap: "mlp.up".into(),
            layers: vec![vec![], vec![(1, 0.0), (3, 2.0)]],
        };
        let m = LayerMultipliers::build(Some(&edit), Family::Llama, 2, 4, DType::F32, &Device::Cpu)
            .unwrap();
        assert_eq!(m.tap(), Some(Tap::Up));
        assert!(m.at(0, Tap::Up).is_none());
        assert!(m.at(1, Tap::GateAct).is_none(), "other taps are untouched");
        let v: Vec<f32> = m.at(1, Tap::Up).unwrap().to_vec1().unwrap();
        assert_eq!(v, [1.0, 0.0, 1.0, 2.0]);
    }

    #[test]
    fn rejects_out_of_range_neuron_and_foreign_tap() {
        let mut edit = NeuronEdit {
            tap: "mlp.gate_act".into(),
            layers: vec![vec![(4, 0.0)]],
        };
        let build = |e: &NeuronEdit, f| {
            LayerMultipliers::build(Some(e), f, 2, 4, DType::F32, &Device::Cpu).unwrap_err()
        };
        let e = build(&edit, Family::Llama);
        assert!(
            e.to_string()
                .contains("neuron 4 of layer 0 is out of range")
        );
        edit.layers = vec![vec![(0, 0.0)]];
        let e = build(&edit, Family::Gpt2).to_string();
        assert!(e.starts_with("edit: tap \"mlp.gate_act\""), "{e}");
        edit.tap = "attn.o".into();
        let e = build(&edit, Family::Llama).to_string();
        assert!(e.contains("tap \"attn.o\""), "{e}");
    }
}
