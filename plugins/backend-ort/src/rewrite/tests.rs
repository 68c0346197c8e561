//! Structure of the rewritten graphs (their numbers are checked against candle in
//! tests/it, where ONNX Runtime runs them).

use std::path::Path;

use prost::Message;
use prost::bytes::Bytes;

use super::*;
use crate::graph::GraphIndex;
use crate::pattern::find_sites;
use crate::proto::{OperatorSetIdProto, TensorProto};

fn init(name: &str, dims: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(dtype::FLOAT),
        ..TensorProto::default()
    }
}

/// Embedding, two gated MLP layers (residual adds), LM head.
fn model() -> OnnxModel {
    let mut nodes = vec![node("Gather", "embed", &["E", "input_ids"], &["h0"])];
    let mut inits = vec![init("E", &[10, 4]), init("H", &[4, 10])];
    for l in 0..2 {
        let n = |s: &str| format!("{s}{l}");
        let (x, next) = (n("h"), format!("h{}", l + 1));
        nodes.push(node("MatMul", &n("gate"), &[&x, &n("Wg")], &[&n("g")]));
        nodes.push(node("Sigmoid", &n("sig"), &[&n("g")], &[&n("s")]));
        nodes.push(node("Mul", &n("silu"), &[&n("g"), &n("s")], &[&n("a")]));
        nodes.push(node("MatMul", &n("up"), &[&x, &n("Wu")], &[&n("u")]));
        nodes.push(node("Mul", &n("prod"), &[&n("a"), &n("u")], &[&n("p")]));
        nodes.push(node("MatMul", &n("down"), &[&n("p"), &n("Wd")], &[&n("d")]));
        nodes.push(node("Add", &n("res"), &[&x, &n("d")], &[&next]));
        inits.extend([
            init(&n("Wg"), &[4, 6]),
            init(&n("Wu"), &[4, 6]),
            init(&n("Wd"), &[6, 4]),
        ]);
    }
    nodes.push(node("MatMul", "lm_head", &["h2", "H"], &["logits"]));
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            node: nodes,
            initializer: inits,
            input: vec![tensor_info(
                "input_ids",
                dtype::INT64,
                &[Err("b"), Err("s")],
            )],
            output: vec![tensor_info(
                "logits",
                dtype::FLOAT,
                &[Err("b"), Err("s"), Ok(10)],
            )],
            ..GraphProto::default()
        }),
        ..ModelProto::default()
    };
    OnnxModel::from_bytes(Path::new("/m/model.onnx"), Bytes::from(m.encode_to_vec()))
        .expect("a valid model")
}

fn sites(m: &OnnxModel) -> Vec<FfnSite> {
    find_sites(&GraphIndex::new(m.graph()))
}

fn names(g: &GraphProto) -> Vec<&str> {
    g.node.iter().map(|n| n.name()).collect()
}

#[test]
fn statistics_variant_outputs_only_stats_and_stops_after_the_last_tap() {
    let m = model();
    let s = sites(&m);
    assert_eq!(s.len(), 2);
    let v = Variant {
        taps: vec![],
        reduce: Some(Tap::GateAct),
        edit: None,
        logits: Logits::Drop,
    };
    let p = build(&m, &s, &v).unwrap();
    let g = p.graph.as_ref().unwrap();
    assert_eq!(
        g.output.iter().map(|o| o.name()).collect::<Vec<_>>(),
        [STATS]
    );
    let inputs: Vec<&str> = g.input.iter().map(|i| i.name()).collect();
    assert_eq!(inputs, ["input_ids", COUNT_MASK]);
    let n = names(g);
    for gone in ["lm_head", "down1", "up1", "prod1", "res1"] {
        assert!(!n.contains(&gone), "{gone} should be pruned: {n:?}");
    }
    for kept in ["down0", "res0", "silu1", "valex.reduce.1.sum"] {
        assert!(n.contains(&kept), "{kept} is needed: {n:?}");
    }
    assert!(
        g.initializer
            .iter()
            .all(|t| t.name() != "H" && t.name() != "Wd1")
    );
}

#[test]
fn edits_multiply_right_after_the_tap_and_feed_every_reader() {
    let m = model();
    let s = sites(&m);
    let v = Variant {
        taps: vec![Tap::ActXUp],
        reduce: None,
        edit: Some(Tap::GateAct),
        logits: Logits::Full,
    };
    let p = build(&m, &s, &v).unwrap();
    let g = p.graph.as_ref().unwrap();
    let n = names(g);
    let silu = n.iter().position(|&x| x == "silu0").unwrap();
    assert_eq!(n[silu + 1], "valex.edited.0", "the edit follows its tap");
    let prod = &g.node[n.iter().position(|&x| x == "prod0").unwrap()];
    assert_eq!(
        prod.input[0], "valex.edited.0",
        "the product reads the edited tap"
    );
    assert!(
        g.input.iter().any(|i| i.name() == "valex.mask.1"),
        "one mask input per layer"
    );
    assert!(
        g.initializer
            .iter()
            .all(|t| !t.name().starts_with("valex."))
    );
    let outs: Vec<&str> = g.output.iter().map(|o| o.name()).collect();
    assert_eq!(
        outs,
        [
            "valex.tap.mlp.act_x_up.0",
            "valex.tap.mlp.act_x_up.1",
            LOGITS
        ]
    );
}

#[test]
fn picked_logits_take_positions_and_targets() {
    let m = model();
    let s = sites(&m);
    let v = Variant {
        taps: vec![],
        reduce: None,
        edit: Some(Tap::GateAct),
        logits: Logits::Picked,
    };
    let p = build(&m, &s, &v).unwrap();
    let g = p.graph.as_ref().unwrap();
    let inputs: Vec<&str> = g.input.iter().map(|i| i.name()).collect();
    for want in ["input_ids", PICK, TARGET, "valex.mask.0"] {
        assert!(inputs.contains(&want), "{want} missing from {inputs:?}");
    }
    assert_eq!(
        g.output.iter().map(|o| o.name()).collect::<Vec<_>>(),
        [LOGP]
    );
    let ops: Vec<&str> = g.node.iter().rev().take(4).map(|n| n.op_type()).collect();
    assert_eq!(ops, ["GatherElements", "LogSoftmax", "Gather", "Flatten"]);
}

#[test]
fn a_tap_missing_at_some_layer_is_a_config_error() {
    let m = model();
    let mut s = sites(&m);
    s[1].taps.remove(&Tap::Up);
    let v = Variant {
        taps: vec![Tap::Up],
        reduce: None,
        edit: None,
        logits: Logits::Drop,
    };
    let e = build(&m, &s, &v).unwrap_err();
    assert_eq!(
        e.message,
        "model /m/model.onnx: tap mlp.up was not found at layer 1"
    );
}
