//! Graph instrumentation: from the exported model and its [`FfnSite`]s, build the variant
//! graph one kind of forward needs ([`Variant`]).
//!
//! - **Edits**: a `Mul` by a per-layer mask input (`valex.mask.{layer}`, `[neurons]` f32) right
//!   after the edited tap; every consumer reads the edited tensor, so taps show edited values.
//!   A forward without an edit feeds ones, so one session serves edited and unedited
//!   forwards.
//! - **Statistics**: per layer, over the positions a bool input `valex.count_mask`
//!   (`[rows, seq]`) marks: the count of `act > 0`, the sum and the sum of squares, reduced
//!   inside the graph (`Where`/`ReduceSum`, f32) and stacked into one output `valex.stats`
//!   `[layers, rows, 3 * neurons]`, so only these leave ONNX Runtime, never activations.
//!   Padding is masked with `Where`, so even a NaN there cannot leak in.
//! - **Taps** (inspect): each tap promoted to an output `valex.tap.{tap}.{layer}`
//!   `[rows, seq, neurons]` f32.
//! - **Logits**: dropped (statistics), returned whole (`valex.logits`), or only the
//!   log-probabilities of picked positions and targets (`valex.logp`, inputs `valex.pick`
//!   and `valex.target`), so scoring returns `[picked]` values, not `[rows, seq, vocab]`.
//!
//! The original outputs are replaced, and every node, initializer and input the new outputs
//! do not need is pruned (a statistics pass stops after the last tap: no final norm, no LM
//! head). Because the taps are outputs or feed the inserted nodes, graph optimisations cannot
//! fuse them away. This module builds protos only; sessions live in `session.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};

use valex_core::ComponentError;

use crate::model_file::OnnxModel;
use crate::pattern::{FfnSite, Tap};
use crate::proto::{
    self, GraphProto, ModelProto, NodeProto, attr_int, const_i64, const_scalar_f32, dtype, node,
    tensor_info,
};

/// Name of the statistics output.
pub const STATS: &str = "valex.stats";
/// Name of the count-mask input.
pub const COUNT_MASK: &str = "valex.count_mask";
/// Name of the full-logits output.
pub const LOGITS: &str = "valex.logits";
/// Name of the picked log-probabilities output.
pub const LOGP: &str = "valex.logp";
/// Name of the picked flat positions input (`row * seq + position`).
pub const PICK: &str = "valex.pick";
/// Name of the targets input (`[picked, 1]` token ids).
pub const TARGET: &str = "valex.target";

/// The mask input of `layer`.
pub fn mask_input(layer: usize) -> String {
    format!("valex.mask.{layer}")
}

/// The output of `tap` at `layer`.
pub fn tap_output(tap: Tap, layer: usize) -> String {
    format!("valex.tap.{}.{layer}", tap.name())
}

/// What a forward needs from the graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Logits {
    /// No logits: the graph ends after the last needed tap.
    Drop,
    /// All logits, `[rows, seq, vocab]` f32.
    Full,
    /// Log-probabilities of picked positions and targets.
    Picked,
}

/// One graph variant: which taps leave the graph, which are reduced, where edits apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Variant {
    /// Taps promoted to outputs (every layer).
    pub taps: Vec<Tap>,
    /// Tap reduced to statistics (every layer).
    pub reduce: Option<Tap>,
    /// Tap at which mask inputs multiply (every layer).
    pub edit: Option<Tap>,
    /// What happens to the logits.
    pub logits: Logits,
}

/// Builds the model of `variant`.
///
/// # Errors
/// A tap some layer's site does not offer (a config error naming tap and layer).
pub fn build(
    model: &OnnxModel,
    sites: &[FfnSite],
    variant: &Variant,
) -> Result<ModelProto, ComponentError> {
    let needed: Vec<Tap> = variant
        .taps
        .iter()
        .copied()
        .chain(variant.reduce)
        .chain(variant.edit)
        .collect();
    for (layer, s) in sites.iter().enumerate() {
        if let Some(t) = needed.iter().find(|t| !s.taps.contains_key(t)) {
            return Err(ComponentError::config(format!(
                "model {}: tap {} was not found at layer {layer}",
                model.path.display(),
                t.name()
            )));
        }
    }
    let mut proto = model.proto.clone();
    let g = proto
        .graph
        .as_mut()
        .expect("checked when the model was read");
    let mut b = Builder::new(g, model.float_type);
    // Current tensor of each (tap, layer): the edited one where an edit applies.
    let mut current: Vec<BTreeMap<Tap, String>> = sites.iter().map(|s| s.taps.clone()).collect();
    if let Some(tap) = variant.edit {
        for (layer, cur) in current.iter_mut().enumerate() {
            let t = cur[&tap].clone();
            let edited = b.insert_edit(&t, layer);
            // Taps that are the same tensor (a named tap equal to another) follow the edit.
            for v in cur.values_mut() {
                if *v == t {
                    v.clone_from(&edited);
                }
            }
        }
    }
    let mut outputs = Vec::new();
    let shape3 = b.shape3();
    if let Some(tap) = variant.reduce {
        let per_layer: Vec<String> = current
            .iter()
            .enumerate()
            .map(|(layer, cur)| b.reduce(&cur[&tap], layer, &shape3))
            .collect();
        let refs: Vec<&str> = per_layer.iter().map(String::as_str).collect();
        let mut cat = node("Concat", STATS, &refs, &[STATS]);
        cat.attribute.push(attr_int("axis", 0));
        b.tail.push(cat);
        b.add_input(COUNT_MASK, dtype::BOOL, 2);
        outputs.push(tensor_info(
            STATS,
            dtype::FLOAT,
            &[Ok(sites.len() as i64), Err(""), Err("")],
        ));
    }
    for &tap in &variant.taps {
        for (layer, cur) in current.iter().enumerate() {
            let name = tap_output(tap, layer);
            let f = b.cast_f32(&cur[&tap], &name);
            b.tail
                .push(node("Reshape", &name, &[&f, &shape3], &[&name]));
            outputs.push(tensor_info(
                &name,
                dtype::FLOAT,
                &[Err(""), Err(""), Err("")],
            ));
        }
    }
    match variant.logits {
        Logits::Drop => {}
        Logits::Full => {
            let f = b.cast_f32(&model.logits, LOGITS);
            b.tail.push(node("Identity", LOGITS, &[&f], &[LOGITS]));
            outputs.push(tensor_info(
                LOGITS,
                dtype::FLOAT,
                &[Err(""), Err(""), Err("")],
            ));
        }
        Logits::Picked => {
            b.picked_logp(&model.logits);
            outputs.push(tensor_info(LOGP, dtype::FLOAT, &[Err(""), Ok(1)]));
        }
    }
    b.finish(outputs);
    Ok(proto)
}

/// Accumulates inserted nodes and inputs, then rebuilds and prunes the graph.
struct Builder<'g> {
    g: &'g mut GraphProto,
    float_type: i32,
    /// Nodes to insert right after node `i` of the original list.
    after: HashMap<usize, Vec<NodeProto>>,
    /// Nodes appended at the end (they read only graph inputs and earlier tensors).
    tail: Vec<NodeProto>,
    new_inputs: Vec<proto::ValueInfoProto>,
}

impl<'g> Builder<'g> {
    fn new(g: &'g mut GraphProto, float_type: i32) -> Self {
        Builder {
            g,
            float_type,
            after: HashMap::new(),
            tail: Vec::new(),
            new_inputs: Vec::new(),
        }
    }

    fn add_input(&mut self, name: &str, elem_type: i32, rank: usize) {
        let dims: Vec<Result<i64, &str>> = vec![Err(""); rank];
        self.new_inputs.push(tensor_info(name, elem_type, &dims));
    }

    /// `t * mask` right after `t`'s producer; every other reader of `t` reads the product.
    fn insert_edit(&mut self, t: &str, layer: usize) -> String {
        let mask = mask_input(layer);
        let edited = format!("valex.edited.{layer}");
        let mut mask_t = mask.clone();
        let mut nodes = Vec::new();
        if self.float_type != dtype::FLOAT {
            mask_t = format!("{mask}.cast");
            let mut c = node("Cast", &mask_t, &[&mask], &[&mask_t]);
            c.attribute.push(attr_int("to", i64::from(self.float_type)));
            nodes.push(c);
        }
        nodes.push(node("Mul", &edited, &[t, &mask_t], &[&edited]));
        for n in &mut self.g.node {
            for x in &mut n.input {
                if x == t {
                    x.clone_from(&edited);
                }
            }
        }
        let producer = self
            .g
            .node
            .iter()
            .position(|n| n.output.iter().any(|o| o == t));
        match producer {
            Some(i) => self.after.entry(i).or_default().extend(nodes),
            None => self.after.entry(usize::MAX).or_default().extend(nodes),
        }
        self.add_input(&mask, dtype::FLOAT, 1);
        edited
    }

    /// `t` as f32 (a Cast named after `hint` when the model is not f32).
    fn cast_f32(&mut self, t: &str, hint: &str) -> String {
        if self.float_type == dtype::FLOAT {
            return t.to_owned();
        }
        let name = format!("{hint}.f32");
        let mut c = node("Cast", &name, &[t], &[&name]);
        c.attribute.push(attr_int("to", i64::from(dtype::FLOAT)));
        self.tail.push(c);
        name
    }

    /// `[rows, seq, -1]`, from the shape of `input_ids`.
    fn shape3(&mut self) -> String {
        let out = "valex.shape3";
        self.tail.push(node(
            "Shape",
            "valex.ids_shape",
            &["input_ids"],
            &["valex.ids_shape"],
        ));
        self.tail.push(const_i64("valex.minus_one", &[-1]));
        let mut cat = node(
            "Concat",
            out,
            &["valex.ids_shape", "valex.minus_one"],
            &[out],
        );
        cat.attribute.push(attr_int("axis", 0));
        self.tail.push(cat);
        out.to_owned()
    }

    /// Per-row count of `t > 0`, sum and sum of squares over the marked positions, as
    /// `[1, rows, 3 * neurons]`.
    fn reduce(&mut self, t: &str, layer: usize, shape3: &str) -> String {
        let p = |s: &str| format!("valex.reduce.{layer}.{s}");
        if layer == 0 {
            self.tail.push(const_i64("valex.axis0", &[0]));
            self.tail.push(const_i64("valex.axis1", &[1]));
            self.tail.push(const_i64("valex.axis2", &[2]));
            self.tail.push(const_scalar_f32("valex.zero", 0.0));
            self.tail.push(node(
                "Unsqueeze",
                "valex.mask3",
                &[COUNT_MASK, "valex.axis2"],
                &["valex.mask3"],
            ));
        }
        let f = self.cast_f32(t, &p("in"));
        let (r, z, sq, pos, posf) = (p("r"), p("z"), p("sq"), p("pos"), p("posf"));
        let (sum, sumsq, count, cat, out) = (p("sum"), p("sumsq"), p("count"), p("cat"), p("out"));
        self.tail.push(node("Reshape", &r, &[&f, shape3], &[&r]));
        self.tail
            .push(node("Where", &z, &["valex.mask3", &r, "valex.zero"], &[&z]));
        self.tail.push(node("Mul", &sq, &[&z, &z], &[&sq]));
        self.tail
            .push(node("Greater", &pos, &[&z, "valex.zero"], &[&pos]));
        let mut c = node("Cast", &posf, &[&pos], &[&posf]);
        c.attribute.push(attr_int("to", i64::from(dtype::FLOAT)));
        self.tail.push(c);
        for (name, input) in [(&count, &posf), (&sum, &z), (&sumsq, &sq)] {
            let mut n = node("ReduceSum", name, &[input, "valex.axis1"], &[name]);
            n.attribute.push(attr_int("keepdims", 0));
            self.tail.push(n);
        }
        let mut n = node("Concat", &cat, &[&count, &sum, &sumsq], &[&cat]);
        n.attribute.push(attr_int("axis", 1));
        self.tail.push(n);
        self.tail
            .push(node("Unsqueeze", &out, &[&cat, "valex.axis0"], &[&out]));
        out
    }

    /// `log_softmax(logits)[pick, target]` as `[picked, 1]` f32.
    fn picked_logp(&mut self, logits: &str) {
        let mut flat = node(
            "Flatten",
            "valex.flat_logits",
            &[logits],
            &["valex.flat_logits"],
        );
        flat.attribute.push(attr_int("axis", 2));
        self.tail.push(flat);
        let mut gather = node(
            "Gather",
            "valex.picked",
            &["valex.flat_logits", PICK],
            &["valex.picked"],
        );
        gather.attribute.push(attr_int("axis", 0));
        self.tail.push(gather);
        let f = self.cast_f32("valex.picked", "valex.picked");
        let mut ls = node(
            "LogSoftmax",
            "valex.logsoftmax",
            &[&f],
            &["valex.logsoftmax"],
        );
        ls.attribute.push(attr_int("axis", 1));
        self.tail.push(ls);
        let mut ge = node(
            "GatherElements",
            LOGP,
            &["valex.logsoftmax", TARGET],
            &[LOGP],
        );
        ge.attribute.push(attr_int("axis", 1));
        self.tail.push(ge);
        self.add_input(PICK, dtype::INT64, 1);
        self.add_input(TARGET, dtype::INT64, 2);
    }

    /// Puts the inserted nodes in place, sets `outputs` as the only outputs, and prunes
    /// everything they do not need.
    fn finish(self, outputs: Vec<proto::ValueInfoProto>) {
        let Builder {
            g,
            mut after,
            tail,
            new_inputs,
            ..
        } = self;
        let old = std::mem::take(&mut g.node);
        let mut nodes = after.remove(&usize::MAX).unwrap_or_default();
        for (i, n) in old.into_iter().enumerate() {
            nodes.push(n);
            if let Some(extra) = after.remove(&i) {
                nodes.extend(extra);
            }
        }
        nodes.extend(tail);
        g.output = outputs;
        g.input.extend(new_inputs);
        prune(g, nodes);
    }
}

/// Keeps the nodes the outputs need (in order), and the initializers, inputs and value
/// infos those nodes read.
fn prune(g: &mut GraphProto, nodes: Vec<NodeProto>) {
    let mut live: HashSet<String> = g.output.iter().map(|o| o.name().to_owned()).collect();
    let mut keep = vec![false; nodes.len()];
    for (i, n) in nodes.iter().enumerate().rev() {
        if n.output.iter().any(|o| live.contains(o)) {
            keep[i] = true;
            live.extend(n.input.iter().filter(|x| !x.is_empty()).cloned());
            for a in &n.attribute {
                for sub in a.g.iter().chain(&a.graphs) {
                    subgraph_reads(sub, &mut live);
                }
            }
        }
    }
    g.node = nodes
        .into_iter()
        .zip(keep)
        .filter_map(|(n, k)| k.then_some(n))
        .collect();
    g.initializer.retain(|t| live.contains(t.name()));
    g.input.retain(|v| live.contains(v.name()));
    g.value_info.retain(|v| live.contains(v.name()));
}

/// Every tensor name a subgraph's nodes read (outer-scope references included).
fn subgraph_reads(g: &GraphProto, out: &mut HashSet<String>) {
    for n in &g.node {
        out.extend(n.input.iter().filter(|x| !x.is_empty()).cloned());
        for a in &n.attribute {
            for sub in a.g.iter().chain(&a.graphs) {
                subgraph_reads(sub, out);
            }
        }
    }
}

#[cfg(test)]
mod tests;
