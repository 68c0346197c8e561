//! [`GraphIndex`]: who produces and who consumes each tensor of an ONNX graph, which tensors
//! are constant, and the walks the pattern search needs (through reshapes, back over
//! elementwise chains, to the weight of a projection).
//!
//! It only reads a [`GraphProto`]; it neither changes graphs nor knows about taps.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use crate::proto::{GraphProto, NodeProto};

/// Ops that multiply by a constant weight matrix (a projection).
pub const PROJECTION_OPS: [&str; 4] = ["MatMul", "Gemm", "MatMulNBits", "FusedMatMul"];

/// Elementwise ops an activation function may be written with, besides [`NONLINEAR_OPS`].
pub const LINEAR_ELEMENTWISE_OPS: [&str; 12] = [
    "Mul",
    "Add",
    "Sub",
    "Div",
    "Pow",
    "Sqrt",
    "Neg",
    "Exp",
    "Abs",
    "Reciprocal",
    "Cast",
    "Identity",
];

/// Elementwise ops that make a chain nonlinear (an activation must contain one).
pub const NONLINEAR_OPS: [&str; 13] = [
    "Tanh",
    "Erf",
    "Sigmoid",
    "HardSigmoid",
    "Relu",
    "LeakyRelu",
    "Elu",
    "Softplus",
    "Gelu",
    "FastGelu",
    "QuickGelu",
    "BiasGelu",
    "Swish",
];

/// Is `op` an elementwise op an activation function may be written with?
pub fn is_elementwise(op: &str) -> bool {
    LINEAR_ELEMENTWISE_OPS.contains(&op) || NONLINEAR_OPS.contains(&op)
}

/// Ops that only change the shape of their first input.
pub const RESHAPE_OPS: [&str; 5] = ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"];

/// Most nodes an activation chain may have (GELU written out takes 8).
const MAX_CHAIN_NODES: usize = 24;

/// Producer/consumer maps of one graph.
pub struct GraphIndex<'g> {
    graph: &'g GraphProto,
    producer: HashMap<&'g str, usize>,
    consumers: HashMap<&'g str, Vec<usize>>,
    initializers: HashMap<&'g str, usize>,
    inputs: HashSet<&'g str>,
    constant: RefCell<HashMap<String, bool>>,
}

impl<'g> GraphIndex<'g> {
    /// Indexes `graph`.
    pub fn new(graph: &'g GraphProto) -> Self {
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for o in &n.output {
                producer.insert(o.as_str(), i);
            }
            for x in &n.input {
                if !x.is_empty() {
                    consumers.entry(x.as_str()).or_default().push(i);
                }
            }
        }
        let initializers = graph
            .initializer
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name(), i))
            .collect();
        let inputs = graph.input.iter().map(|v| v.name()).collect();
        GraphIndex {
            graph,
            producer,
            consumers,
            initializers,
            inputs,
            constant: RefCell::new(HashMap::new()),
        }
    }

    /// The graph.
    pub fn graph(&self) -> &'g GraphProto {
        self.graph
    }

    /// The node producing `tensor`, if a node does.
    pub fn producer(&self, tensor: &str) -> Option<(usize, &'g NodeProto)> {
        self.producer.get(tensor).map(|&i| (i, &self.graph.node[i]))
    }

    /// Indices of the nodes reading `tensor`.
    pub fn consumers(&self, tensor: &str) -> &[usize] {
        self.consumers.get(tensor).map_or(&[], Vec::as_slice)
    }

    /// Whether some node produces `tensor` or it is a graph input or initializer.
    pub fn exists(&self, tensor: &str) -> bool {
        self.producer.contains_key(tensor)
            || self.inputs.contains(tensor)
            || self.initializers.contains_key(tensor)
    }

    /// Whether `tensor` is an initializer, the output of a `Constant`, or computed from
    /// constants only (e.g. a transposed weight). Graph inputs are never constant, even when
    /// an initializer of the same name gives their default.
    pub fn is_constant(&self, tensor: &str) -> bool {
        if tensor.is_empty() {
            return true;
        }
        if let Some(&c) = self.constant.borrow().get(tensor) {
            return c;
        }
        // Mark as non-constant while visiting, so cycles (invalid graphs) terminate.
        self.constant.borrow_mut().insert(tensor.to_owned(), false);
        let c = if self.inputs.contains(tensor) {
            false
        } else if self.initializers.contains_key(tensor) {
            true
        } else {
            match self.producer(tensor) {
                Some((_, n)) if n.op_type() == "Constant" => true,
                Some((_, n)) if n.op_type() == "Shape" || n.op_type() == "Size" => false,
                Some((_, n)) => !n.input.is_empty() && n.input.iter().all(|x| self.is_constant(x)),
                None => false,
            }
        };
        self.constant.borrow_mut().insert(tensor.to_owned(), c);
        c
    }

    /// Follows `tensor` back through reshapes (and identities) to the tensor they reshape.
    pub fn skip_reshapes_back(&self, tensor: &'g str) -> &'g str {
        let mut t = tensor;
        for _ in 0..8 {
            match self.producer(t) {
                Some((_, n)) if RESHAPE_OPS.contains(&n.op_type()) && !n.input.is_empty() => {
                    t = n.input[0].as_str();
                }
                _ => break,
            }
        }
        t
    }

    /// If `tensor` is a projection of some `x` (a MatMul/Gemm by a constant weight, maybe plus
    /// a constant bias, maybe reshaped), returns `(x, projection node index)`.
    pub fn projection_input(&self, tensor: &'g str) -> Option<(&'g str, usize)> {
        let mut t = self.skip_reshapes_back(tensor);
        let (mut i, mut n) = self.producer(t)?;
        if n.op_type() == "Add" && n.input.len() == 2 {
            let var = match (self.is_constant(&n.input[0]), self.is_constant(&n.input[1])) {
                (false, true) => &n.input[0],
                (true, false) => &n.input[1],
                _ => return None,
            };
            t = self.skip_reshapes_back(var);
            (i, n) = self.producer(t)?;
        }
        if PROJECTION_OPS.contains(&n.op_type())
            && n.input.len() >= 2
            && self.is_constant(&n.input[1])
            && !self.is_constant(&n.input[0])
        {
            return Some((self.skip_reshapes_back(&n.input[0]), i));
        }
        None
    }

    /// If `tensor` is a nonlinear elementwise function of exactly one non-constant tensor
    /// (an activation such as `x * sigmoid(x)` or a GELU written out), returns that tensor.
    pub fn activation_leaf(&self, tensor: &'g str) -> Option<&'g str> {
        let mut leaves: HashSet<&str> = HashSet::new();
        let mut seen: HashSet<usize> = HashSet::new();
        let mut stack = vec![tensor];
        let mut nonlinear = false;
        while let Some(t) = stack.pop() {
            match self.producer(t) {
                Some((i, n)) if is_elementwise(n.op_type()) => {
                    if !seen.insert(i) {
                        continue;
                    }
                    if seen.len() > MAX_CHAIN_NODES {
                        return None;
                    }
                    nonlinear |= NONLINEAR_OPS.contains(&n.op_type());
                    for x in &n.input {
                        if !self.is_constant(x) {
                            stack.push(x.as_str());
                        }
                    }
                }
                _ => {
                    leaves.insert(t);
                }
            }
        }
        if nonlinear && leaves.len() == 1 {
            leaves.into_iter().next()
        } else {
            None
        }
    }

    /// Dimensions of the constant weight `tensor` as the projection uses it: an initializer's
    /// dims, reversed through a 2-D `Transpose`, followed through `Identity`/`Cast`.
    pub fn weight_dims(&self, tensor: &str) -> Option<Vec<i64>> {
        if let Some(&i) = self.initializers.get(tensor) {
            return Some(self.graph.initializer[i].dims.clone());
        }
        let (_, n) = self.producer(tensor)?;
        match n.op_type() {
            "Identity" | "Cast" => self.weight_dims(n.input.first()?),
            "Transpose" => {
                let mut d = self.weight_dims(n.input.first()?)?;
                if d.len() != 2 {
                    return None;
                }
                d.reverse();
                Some(d)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{TensorProto, node};

    fn init(name: &str, dims: &[i64]) -> TensorProto {
        TensorProto {
            name: Some(name.into()),
            dims: dims.to_vec(),
            data_type: Some(1),
            ..TensorProto::default()
        }
    }

    /// x -> gate (MatMul by transposed W) -> x*sigmoid(x); up; product; down.
    fn gated() -> GraphProto {
        GraphProto {
            node: vec![
                node("Transpose", "t", &["Wg"], &["WgT"]),
                node("MatMul", "gate", &["x", "WgT"], &["g"]),
                node("Sigmoid", "sig", &["g"], &["s"]),
                node("Mul", "silu", &["g", "s"], &["a"]),
                node("MatMul", "up", &["x", "Wu"], &["u"]),
                node("Mul", "prod", &["a", "u"], &["p"]),
                node("MatMul", "down", &["p", "Wd"], &["y"]),
            ],
            initializer: vec![
                init("Wg", &[6, 4]),
                init("Wu", &[4, 6]),
                init("Wd", &[6, 4]),
            ],
            input: vec![crate::proto::tensor_info("x", 1, &[Err("b"), Ok(4)])],
            ..GraphProto::default()
        }
    }

    #[test]
    fn finds_constants_projections_and_activation_leaves() {
        let g = gated();
        let ix = GraphIndex::new(&g);
        assert!(ix.is_constant("WgT") && ix.is_constant("Wu") && !ix.is_constant("x"));
        assert!(!ix.is_constant("g"));
        assert_eq!(ix.projection_input("g").map(|p| p.0), Some("x"));
        assert_eq!(ix.projection_input("u").map(|p| p.0), Some("x"));
        assert_eq!(
            ix.projection_input("a"),
            None,
            "an activation is no projection"
        );
        assert_eq!(ix.activation_leaf("a"), Some("g"));
        assert_eq!(
            ix.activation_leaf("p"),
            None,
            "two non-constant leaves: a and u"
        );
        assert_eq!(ix.activation_leaf("g"), None, "a MatMul is no activation");
        assert_eq!(ix.weight_dims("WgT"), Some(vec![4, 6]));
        assert_eq!(ix.consumers("g"), &[2, 3]);
    }

    #[test]
    fn linear_chains_are_not_activations() {
        let g = GraphProto {
            node: vec![
                node("MatMul", "mm", &["x", "W"], &["h"]),
                node("Mul", "scale", &["h", "c"], &["h2"]),
                node("Add", "shift", &["h2", "c"], &["h3"]),
            ],
            initializer: vec![init("W", &[4, 4]), init("c", &[1])],
            ..GraphProto::default()
        };
        let ix = GraphIndex::new(&g);
        assert_eq!(ix.activation_leaf("h3"), None);
    }
}
