//! Finding each layer's FFN in an ONNX graph: the tap names ([`Tap`]), the tensors behind
//! them per layer ([`FfnSite`]), found by structure ([`find_sites`]) or from tensor names the
//! manifest gives ([`sites_from_names`]).
//!
//! The structural search is name-agnostic, so it works on torch.onnx (TorchScript and dynamo)
//! and optimum exports alike:
//! - gated MLP `down(act(gate(x)) * up(x))` (llama, qwen2, mistral, gemma): a projection
//!   (MatMul/Gemm by a constant weight) whose input is `Mul(s, u)`, where `s` is a nonlinear
//!   elementwise function of one tensor `g`, and `g` and `u` are projections of the same `x`;
//! - plain MLP `down(act(up(x)))` (GPT-2): a projection whose input is a nonlinear
//!   elementwise function of a projection.
//!
//! It only reads graphs (through [`GraphIndex`]); rewriting lives in `rewrite.rs`.

use std::collections::BTreeMap;

use valex_core::ComponentError;

use crate::graph::{GraphIndex, PROJECTION_OPS};

/// A point inside each layer's MLP whose activations can be read and edited. Names match
/// the candle backend's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tap {
    /// `mlp.gate_pre`: the gate projection, before the activation (gated MLPs).
    GatePre,
    /// `mlp.gate_act`: `act(gate_pre)`, what LAPE counts (gated MLPs).
    GateAct,
    /// `mlp.up`: the up projection (gated MLPs).
    Up,
    /// `mlp.act_x_up`: `gate_act * up`, the input of the down projection (gated MLPs).
    ActXUp,
    /// `mlp.pre`: the first projection, before the activation (plain MLPs, GPT-2).
    Pre,
    /// `mlp.act`: `act(pre)`, the input of the down projection (plain MLPs, GPT-2).
    Act,
}

impl Tap {
    /// Every tap, gated ones first, each family in the order its MLP computes them.
    pub const ALL: [Tap; 6] = [
        Tap::GatePre,
        Tap::GateAct,
        Tap::Up,
        Tap::ActXUp,
        Tap::Pre,
        Tap::Act,
    ];

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

    /// Parses a tap name.
    pub fn from_name(name: &str) -> Option<Tap> {
        Tap::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One layer's FFN: the tensor behind each tap the graph offers there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FfnSite {
    /// Tensor name per tap.
    pub taps: BTreeMap<Tap, String>,
    /// Neurons (FFN width), when the down projection's weight shape tells it.
    pub width: Option<usize>,
}

/// How the manifest can name the activation tensors, for error messages.
pub const NAMING_HELP: &str = "name the FFN activation tensors in the manifest: \
    model.params.tap_tensors = [\"/model/layers.{layer}/mlp/act_fn/Mul_output_0\"] \
    (one template with {layer}, or one tensor name per layer)";

/// What the structural search looks for, for error messages.
pub const SEARCHED: &str = "searched for gated MLPs down(act(gate(x)) * up(x)) \
    (a MatMul/Gemm with a constant weight fed by Mul(act(gate), up), gate and up projections \
    of one tensor, act an elementwise chain with a nonlinearity: x*Sigmoid(x), Swish, Gelu, \
    FastGelu, QuickGelu, Tanh/Erf GELU) and plain MLPs down(act(up(x))) (GPT-2)";

/// Finds every layer's FFN by structure, in layer order.
///
/// Layers are numbered by the `layers.N` / `h.N` parts of node names when every site has one
/// and they are 0..L; otherwise by position in the (topologically sorted) node list.
pub fn find_sites(ix: &GraphIndex<'_>) -> Vec<FfnSite> {
    let g = ix.graph();
    let mut found: Vec<(usize, FfnSite)> = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        if !PROJECTION_OPS.contains(&n.op_type()) || n.input.len() < 2 {
            continue;
        }
        if !ix.is_constant(&n.input[1]) || ix.is_constant(&n.input[0]) {
            continue;
        }
        let a = ix.skip_reshapes_back(&n.input[0]);
        let width = down_width(ix, i);
        if let Some(site) = gated_site(ix, a) {
            found.push((i, FfnSite { taps: site, width }));
        } else if let Some(pre) = ix.activation_leaf(a)
            && ix.projection_input(pre).is_some()
        {
            let taps = BTreeMap::from([(Tap::Pre, pre.to_owned()), (Tap::Act, a.to_owned())]);
            found.push((i, FfnSite { taps, width }));
        }
    }
    order_by_names(ix, found)
}

/// The gated taps around `a`, the input of a down projection, if `a = Mul(act(g), u)`.
fn gated_site(ix: &GraphIndex<'_>, a: &str) -> Option<BTreeMap<Tap, String>> {
    let (_, m) = ix.producer(a)?;
    if m.op_type() != "Mul" || m.input.len() != 2 {
        return None;
    }
    for (s, u) in [(&m.input[0], &m.input[1]), (&m.input[1], &m.input[0])] {
        let Some(gate) = ix.activation_leaf(s) else {
            continue;
        };
        let (Some((xg, _)), Some((xu, _))) = (ix.projection_input(gate), ix.projection_input(u))
        else {
            continue;
        };
        if xg == xu {
            return Some(BTreeMap::from([
                (Tap::GatePre, gate.to_owned()),
                (Tap::GateAct, s.clone()),
                (Tap::Up, u.clone()),
                (Tap::ActXUp, a.to_owned()),
            ]));
        }
    }
    None
}

/// The FFN width from the down projection's weight `[width, hidden]` (MatMul) or Gemm's
/// `transB` layout.
fn down_width(ix: &GraphIndex<'_>, down: usize) -> Option<usize> {
    let n = &ix.graph().node[down];
    let dims = ix.weight_dims(&n.input[1])?;
    if dims.len() != 2 {
        return None;
    }
    let trans_b = n.op_type() == "Gemm"
        && n.attribute
            .iter()
            .any(|a| a.name() == "transB" && a.i() == 1);
    usize::try_from(if trans_b { dims[1] } else { dims[0] }).ok()
}

/// The layer number in a node name such as `/model/layers.3/mlp/Mul` or `/h.3/mlp/c_proj`.
fn layer_in_name(name: &str) -> Option<usize> {
    for key in ["layers.", "layers_", "layer.", "layer_", "/h."] {
        if let Some(at) = name.find(key) {
            let digits: String = name[at + key.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
    }
    None
}

fn order_by_names(ix: &GraphIndex<'_>, mut found: Vec<(usize, FfnSite)>) -> Vec<FfnSite> {
    let names: Option<Vec<usize>> = found
        .iter()
        .map(|(i, _)| layer_in_name(ix.graph().node[*i].name()))
        .collect();
    if let Some(mut layers) = names {
        let mut sorted = layers.clone();
        sorted.sort_unstable();
        if sorted == (0..found.len()).collect::<Vec<_>>() {
            let mut pairs: Vec<(usize, FfnSite)> = layers
                .drain(..)
                .zip(found.drain(..).map(|(_, s)| s))
                .collect();
            pairs.sort_by_key(|p| p.0);
            return pairs.into_iter().map(|p| p.1).collect();
        }
    }
    found.into_iter().map(|(_, s)| s).collect()
}

/// Builds one site per layer from the activation tensor names the manifest gives
/// (`tap_tensors`): each entry is a tensor name, or one entry holding `{layer}` is expanded
/// for layers 0, 1, ... while the tensor exists (at most `n_layers` when known).
///
/// The named tensor is the tap `mlp.gate_act` when it feeds `Mul(act, up)` into a
/// projection (gated MLP; then `mlp.gate_pre`, `mlp.up` and `mlp.act_x_up` come with it),
/// else `mlp.act` (with `mlp.pre` when it is an activation of a projection).
///
/// # Errors
/// A named tensor no node produces, or a template that matches no tensor.
pub fn sites_from_names(
    ix: &GraphIndex<'_>,
    names: &[String],
    n_layers: Option<usize>,
    model: &str,
) -> Result<Vec<FfnSite>, ComponentError> {
    let names: Vec<String> = match names {
        [one] if one.contains("{layer}") => {
            let limit = n_layers.unwrap_or(usize::MAX);
            let expanded: Vec<String> = (0..limit)
                .map(|l| one.replace("{layer}", &l.to_string()))
                .take_while(|t| ix.exists(t))
                .collect();
            if expanded.is_empty() || n_layers.is_some_and(|n| expanded.len() != n) {
                return Err(ComponentError::input(format!(
                    "model {model}: tap_tensors template {one:?} matches {} tensors but the model has {} layers (e.g. {:?} is missing)",
                    expanded.len(),
                    n_layers.map_or("an unknown number of".to_owned(), |n| n.to_string()),
                    one.replace("{layer}", &expanded.len().to_string())
                )));
            }
            expanded
        }
        _ => names.to_vec(),
    };
    names
        .iter()
        .enumerate()
        .map(|(layer, t)| {
            if !ix.exists(t) {
                return Err(ComponentError::input(format!(
                    "model {model}: tap_tensors names {t:?} for layer {layer}, but no node produces it"
                )));
            }
            Ok(site_around(ix, t))
        })
        .collect()
}

/// The site around a named activation tensor `t`.
fn site_around(ix: &GraphIndex<'_>, t: &str) -> FfnSite {
    for &c in ix.consumers(t) {
        let m = &ix.graph().node[c];
        if m.op_type() != "Mul" || m.input.len() != 2 {
            continue;
        }
        let a = m.output[0].as_str();
        let feeds_down = ix.consumers(a).iter().any(|&d| {
            let n = &ix.graph().node[d];
            PROJECTION_OPS.contains(&n.op_type())
                && n.input.len() >= 2
                && ix.is_constant(&n.input[1])
        });
        let u = if m.input[0] == t {
            &m.input[1]
        } else {
            &m.input[0]
        };
        if feeds_down && ix.projection_input(u).is_some() {
            let mut taps = BTreeMap::from([
                (Tap::GateAct, t.to_owned()),
                (Tap::Up, u.clone()),
                (Tap::ActXUp, a.to_owned()),
            ]);
            if let Some(g) = ix
                .activation_leaf(t)
                .filter(|g| ix.projection_input(g).is_some())
            {
                taps.insert(Tap::GatePre, g.to_owned());
            }
            return FfnSite { taps, width: None };
        }
    }
    let mut taps = BTreeMap::from([(Tap::Act, t.to_owned())]);
    if let Some(p) = ix
        .activation_leaf(t)
        .filter(|p| ix.projection_input(p).is_some())
    {
        taps.insert(Tap::Pre, p.to_owned());
    }
    FfnSite { taps, width: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{GraphProto, TensorProto, node};

    fn init(name: &str, dims: &[i64]) -> TensorProto {
        TensorProto {
            name: Some(name.into()),
            dims: dims.to_vec(),
            data_type: Some(1),
            ..TensorProto::default()
        }
    }

    /// Two gated layers (names `/model/layers.N/mlp/...`) listed in reverse order.
    fn two_layers() -> GraphProto {
        let mut nodes = Vec::new();
        let mut inits = Vec::new();
        for l in [1, 0] {
            let p = |s: &str| format!("/model/layers.{l}/mlp/{s}");
            let x = if l == 0 {
                "x".to_owned()
            } else {
                "y0".to_owned()
            };
            let names: [String; 8] =
                ["g", "s", "a", "u", "p", "Wg", "Wu", "Wd"].map(|s| format!("{s}{l}"));
            let [g, s, a, u, pr, wg, wu, wd] = names.each_ref().map(String::as_str);
            nodes.push(node("MatMul", &p("gate_proj/MatMul"), &[&x, wg], &[g]));
            nodes.push(node("Sigmoid", &p("act_fn/Sigmoid"), &[g], &[s]));
            nodes.push(node("Mul", &p("act_fn/Mul"), &[g, s], &[a]));
            nodes.push(node("MatMul", &p("up_proj/MatMul"), &[&x, wu], &[u]));
            nodes.push(node("Mul", &p("Mul"), &[a, u], &[pr]));
            nodes.push(node(
                "MatMul",
                &p("down_proj/MatMul"),
                &[pr, wd],
                &[&format!("y{l}")],
            ));
            inits.extend([init(wg, &[4, 6]), init(wu, &[4, 6]), init(wd, &[6, 4])]);
        }
        GraphProto {
            node: nodes,
            initializer: inits,
            input: vec![crate::proto::tensor_info("x", 1, &[Err("b"), Ok(4)])],
            ..GraphProto::default()
        }
    }

    #[test]
    fn finds_gated_sites_in_layer_order_with_width() {
        let g = two_layers();
        let ix = GraphIndex::new(&g);
        let sites = find_sites(&ix);
        assert_eq!(sites.len(), 2);
        assert_eq!(sites[0].taps[&Tap::GateAct], "a0", "layer 0 first, by name");
        assert_eq!(sites[1].taps[&Tap::GatePre], "g1");
        assert_eq!(sites[1].taps[&Tap::Up], "u1");
        assert_eq!(sites[1].taps[&Tap::ActXUp], "p1");
        assert_eq!(sites[0].width, Some(6));
    }

    #[test]
    fn named_tensors_expand_templates_and_recover_the_gated_structure() {
        let g = two_layers();
        let ix = GraphIndex::new(&g);
        let sites = sites_from_names(&ix, &["a{layer}".to_owned()], None, "m").unwrap();
        assert_eq!(sites.len(), 2);
        assert_eq!(sites[1].taps[&Tap::GateAct], "a1");
        assert_eq!(sites[1].taps[&Tap::GatePre], "g1");
        let plain = sites_from_names(&ix, &["g0".to_owned()], None, "m").unwrap();
        assert_eq!(
            plain[0].taps.keys().copied().collect::<Vec<_>>(),
            [Tap::Act]
        );
        let e = sites_from_names(&ix, &["nope".to_owned()], None, "m").unwrap_err();
        assert_eq!(
            e.message,
            "model m: tap_tensors names \"nope\" for layer 0, but no node produces it"
        );
        let e = sites_from_names(&ix, &["a{layer}".to_owned()], Some(3), "m").unwrap_err();
        assert!(
            e.message
                .contains("matches 2 tensors but the model has 3 layers"),
            "{e}"
        );
    }

    #[test]
    fn reads_layer_numbers_from_node_names() {
        assert_eq!(
            layer_in_name("/model/layers.12/mlp/down_proj/MatMul"),
            Some(12)
        );
        assert_eq!(layer_in_name("/transformer/h.3/mlp/c_proj/Gemm"), Some(3));
        assert_eq!(layer_in_name("node_linear_6"), None);
    }
}
