//! Tap names, tap sets and neuron edits as the model code sees them.
//!
//! Owns the mapping from tap strings (`mlp.gate_act`, `mlp.act`, ...) to [`Tap`] per model
//! family, the [`TapSet`] a forward reports, the conversion of a core [`NeuronEdit`] into
//! per-layer vectors on the device (`x·mul + add`, clamped; [`LayerMultipliers`]), and
//! [`Hooks`], the one
//! place where a forward applies an edit and shows a tap to its visitor. It does not run the
//! model.

use candle_core::{DType, Device, Tensor};
use valex_core::{ComponentError, NeuronEdit, NeuronOp};

use crate::profile::section;

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

/// One layer's edit at one tap, as `[intermediate]` vectors on the device:
/// `x ↦ clamp(x·mul + add, lo, hi)`. Neurons without an op get `mul = 1`, `add = 0` and
/// infinite bounds, so they pass unchanged (bit for bit). `add`, `lo` and `hi` are `None`
/// when no op of the layer needs them: a purely multiplicative edit costs one `mul`.
#[derive(Debug, Clone)]
pub struct LayerEdit {
    mul: Tensor,
    add: Option<Tensor>,
    lo: Option<Tensor>,
    hi: Option<Tensor>,
}

impl LayerEdit {
    /// The multiplier vector.
    pub fn mul(&self) -> &Tensor {
        &self.mul
    }

    /// The added vector, when an op of the layer shifts.
    pub fn add(&self) -> Option<&Tensor> {
        self.add.as_ref()
    }

    /// The lower and upper bound vectors, when an op of the layer clamps.
    pub fn bounds(&self) -> (Option<&Tensor>, Option<&Tensor>) {
        (self.lo.as_ref(), self.hi.as_ref())
    }

    /// Applies the edit to `t` (`[.., intermediate]`).
    ///
    /// # Errors
    /// Device errors.
    pub fn apply(&self, t: &Tensor) -> candle_core::Result<Tensor> {
        let mut t = t.broadcast_mul(&self.mul)?;
        if let Some(a) = &self.add {
            t = t.broadcast_add(a)?;
        }
        if let Some(lo) = &self.lo {
            t = t.broadcast_maximum(lo)?;
        }
        if let Some(hi) = &self.hi {
            t = t.broadcast_minimum(hi)?;
        }
        Ok(t)
    }
}

/// Per-layer edits at one tap ([`LayerEdit`]); `None` for layers without edits, which then
/// cost nothing.
#[derive(Debug, Clone, Default)]
pub struct LayerMultipliers {
    tap: Option<Tap>,
    layers: Vec<Option<LayerEdit>>,
}

/// Host-side vectors of one layer's edit before they move to the device.
struct HostLayer {
    mul: Vec<f32>,
    add: Option<Vec<f32>>,
    lo: Option<Vec<f32>>,
    hi: Option<Vec<f32>>,
}

impl HostLayer {
    fn new(n: usize) -> Self {
        HostLayer {
            mul: vec![1.0; n],
            add: None,
            lo: None,
            hi: None,
        }
    }

    fn set(&mut self, j: usize, op: NeuronOp) {
        let n = self.mul.len();
        self.mul[j] = op.scale;
        if op.shift != 0.0 {
            self.add.get_or_insert_with(|| vec![0.0; n])[j] = op.shift;
        }
        if let Some(lo) = op.min {
            self.lo.get_or_insert_with(|| vec![f32::NEG_INFINITY; n])[j] = lo;
        }
        if let Some(hi) = op.max {
            self.hi.get_or_insert_with(|| vec![f32::INFINITY; n])[j] = hi;
        }
    }

    fn into_device(self, dtype: DType, device: &Device) -> candle_core::Result<LayerEdit> {
        let n = self.mul.len();
        let put = |v: Vec<f32>| Tensor::from_vec(v, n, device).and_then(|t| t.to_dtype(dtype));
        Ok(LayerEdit {
            mul: put(self.mul)?,
            add: self.add.map(put).transpose()?,
            lo: self.lo.map(put).transpose()?,
            hi: self.hi.map(put).transpose()?,
        })
    }
}

impl LayerMultipliers {
    /// No edits in any layer.
    pub fn none(n_layers: usize) -> Self {
        LayerMultipliers {
            tap: None,
            layers: vec![None; n_layers],
        }
    }

    /// The tap the edits apply at (`None` when there are no edits).
    pub fn tap(&self) -> Option<Tap> {
        self.tap
    }

    /// The edit of `layer` at `tap`, if that layer has edits there.
    pub fn at(&self, layer: usize, tap: Tap) -> Option<&LayerEdit> {
        if self.tap != Some(tap) {
            return None;
        }
        self.layers.get(layer).and_then(Option::as_ref)
    }

    /// Builds the device vectors of `edit` for a model of `family` with `n_layers` x
    /// `n_neurons`. Every tap of the family accepts edits; every tap is `n_neurons` wide.
    ///
    /// A neuron listed twice with multiplicative ops gets the product of its factors; a
    /// neuron listed twice where an op shifts or clamps is an error (the composition is not
    /// one op).
    ///
    /// # Errors
    /// A tap the family lacks, more layers than the model has, a neuron out of range, an
    /// invalid op (non-finite, `min > max`) or a repeated neuron with a non-multiplicative op.
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
            let mut host = HostLayer::new(n_neurons);
            let mut seen: Vec<Option<NeuronOp>> = vec![None; n_neurons];
            for &(j, op) in pairs {
                let j = j as usize;
                if j >= n_neurons {
                    return Err(ComponentError::config(format!(
                        "edit neuron {j} of layer {layer} is out of range (layer has {n_neurons} neurons)"
                    )));
                }
                if !op.is_valid() {
                    return Err(ComponentError::config(format!(
                        "edit neuron {j} of layer {layer} has an invalid op {op:?} (non-finite, or min > max)"
                    )));
                }
                let op = match seen[j] {
                    None => op,
                    Some(prev) if prev.is_multiplicative() && op.is_multiplicative() => {
                        NeuronOp::factor(prev.scale * op.scale)
                    }
                    Some(_) => {
                        return Err(ComponentError::config(format!(
                            "edit neuron {j} of layer {layer} is listed twice with an op that shifts or clamps"
                        )));
                    }
                };
                seen[j] = Some(op);
                host.set(j, op);
            }
            let t = host.into_device(dtype, device).map_err(|e| {
                ComponentError::stage(format!("edit vectors of layer {layer} could not be built"))
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
    /// `[rows, 1]` u8: where the edit applies (`None`: every row, the unrestricted path).
    pub select: Option<&'a Tensor>,
}

impl Hooks<'_, '_> {
    /// Applies the edit at (`layer`, `tap`) to `t`, shows the edited value to the visitor
    /// if `tap` was asked for, and returns it.
    ///
    /// # Errors
    /// Device errors or the visitor's error.
    pub fn at(&mut self, layer: usize, tap: Tap, t: Tensor) -> candle_core::Result<Tensor> {
        let dev = t.device().clone();
        let t = match (self.edits.at(layer, tap), self.select) {
            (Some(e), None) => section("edit", &dev, || e.apply(&t))?,
            (Some(e), Some(rows)) => section("edit", &dev, || {
                // Position-restricted edit: edited values where the row mask is 1, the
                // untouched activation elsewhere (bit for bit).
                let edited = e.apply(&t)?;
                rows.broadcast_as(t.shape())?.where_cond(&edited, &t)
            })?,
            (None, _) => t,
        };
        if self.taps.contains(tap) {
            section("visit", &dev, || (self.visit)(layer, tap, &t))?;
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
        let edit = NeuronEdit::multiply("mlp.up", vec![vec![], vec![(1, 0.0), (3, 2.0)]]);
        let m = LayerMultipliers::build(Some(&edit), Family::Llama, 2, 4, DType::F32, &Device::Cpu)
            .unwrap();
        assert_eq!(m.tap(), Some(Tap::Up));
        assert!(m.at(0, Tap::Up).is_none());
        assert!(m.at(1, Tap::GateAct).is_none(), "other taps are untouched");
        let e = m.at(1, Tap::Up).unwrap();
        let v: Vec<f32> = e.mul().to_vec1().unwrap();
        assert_eq!(v, [1.0, 0.0, 1.0, 2.0]);
        assert!(e.add().is_none(), "multiplicative edits keep the fast path");
        assert_eq!(e.bounds().0.map(|_| ()), None);
    }

    #[test]
    fn affine_and_clamp_ops_edit_only_their_neurons() {
        let mut edit = NeuronEdit::multiply("mlp.up", vec![vec![]]);
        edit.layers[0] = vec![
            (0, NeuronOp::constant(0.25)),
            (1, NeuronOp::clamp(Some(-1.0), Some(1.0))),
            (2, NeuronOp::factor(5.0)),
        ];
        let m = LayerMultipliers::build(Some(&edit), Family::Llama, 1, 4, DType::F32, &Device::Cpu)
            .unwrap();
        let x = Tensor::new(
            &[[3.0_f32, -7.0, 2.0, -0.3], [-2.0, 0.5, 0.0, 9.0]],
            &Device::Cpu,
        )
        .unwrap();
        let y: Vec<Vec<f32>> = m
            .at(0, Tap::Up)
            .unwrap()
            .apply(&x)
            .unwrap()
            .to_vec2()
            .unwrap();
        assert_eq!(
            y,
            vec![vec![0.25, -1.0, 10.0, -0.3], vec![0.25, 0.5, 0.0, 9.0]]
        );
        for (row_in, row_out) in x.to_vec2::<f32>().unwrap().iter().zip(&y) {
            for (j, (a, b)) in row_in.iter().zip(row_out).enumerate() {
                assert_eq!(edit.layers[0].get(j).map_or(*a, |p| p.1.apply(*a)), *b);
            }
        }
    }

    #[test]
    fn repeated_neurons_multiply_but_never_compose_shifts() {
        let edit = NeuronEdit::multiply("mlp.up", vec![vec![(1, 2.0), (1, 3.0)]]);
        let m = LayerMultipliers::build(Some(&edit), Family::Llama, 1, 2, DType::F32, &Device::Cpu)
            .unwrap();
        let v: Vec<f32> = m.at(0, Tap::Up).unwrap().mul().to_vec1().unwrap();
        assert_eq!(v, [1.0, 6.0]);
        let mut edit = edit;
        edit.layers[0][1].1 = NeuronOp::constant(1.0);
        let e = LayerMultipliers::build(Some(&edit), Family::Llama, 1, 2, DType::F32, &Device::Cpu)
            .unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
        edit.layers[0] = vec![(0, NeuronOp::clamp(Some(1.0), Some(0.0)))];
        let e = LayerMultipliers::build(Some(&edit), Family::Llama, 1, 2, DType::F32, &Device::Cpu)
            .unwrap_err();
        assert!(e.to_string().contains("invalid op"), "{e}");
    }

    #[test]
    fn rejects_out_of_range_neuron_and_foreign_tap() {
        let mut edit = NeuronEdit::multiply("mlp.gate_act", vec![vec![(4, 0.0)]]);
        let build = |e: &NeuronEdit, f| {
            LayerMultipliers::build(Some(e), f, 2, 4, DType::F32, &Device::Cpu).unwrap_err()
        };
        let e = build(&edit, Family::Llama);
        assert!(
            e.to_string()
                .contains("neuron 4 of layer 0 is out of range")
        );
        edit.layers = vec![vec![(0, NeuronOp::factor(0.0))]];
        let e = build(&edit, Family::Gpt2).to_string();
        assert!(e.starts_with("edit: tap \"mlp.gate_act\""), "{e}");
        edit.tap = "attn.o".into();
        let e = build(&edit, Family::Llama).to_string();
        assert!(e.contains("tap \"attn.o\""), "{e}");
    }
}
