//! Bad input gives one clear line each: no FFN pattern, wrong opset, missing external data,
//! a fixed shape the batch does not fit, tensor names that do not exist. Also: naming the
//! activation tensors in the manifest gives the same statistics as finding them.

use std::path::Path;

use prost::Message;
use valex_backend_ort::OrtLoader;
use valex_backend_ort::proto::{ModelProto, tensor_shape_proto::dimension::Value};
use valex_core::{ActivationStats, ModelBackend, RecordBatch};

use crate::common::{demo_dir, ort, ort_ready};

fn read_fixture(dir: &Path) -> ModelProto {
    ModelProto::decode(
        std::fs::read(dir.join("model.onnx"))
            .expect("model.onnx")
            .as_slice(),
    )
    .expect("the fixture decodes")
}

fn write(dir: &Path, m: &ModelProto) {
    std::fs::write(dir.join("model.onnx"), m.encode_to_vec()).expect("model.onnx is written");
}

fn load_err(dir: &Path) -> String {
    match OrtLoader::for_path(dir).load_backend() {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "one line: {msg}");
            msg
        }
    }
}

#[test]
fn a_graph_without_an_ffn_lists_what_was_searched_and_how_to_name_tensors() {
    let d = demo_dir();
    let mut m = read_fixture(d.path());
    let g = m.graph.as_mut().expect("a graph");
    // Replace every SiLU by a plain pass-through: no nonlinearity, no FFN pattern.
    for n in &mut g.node {
        if n.op_type() == "Sigmoid" {
            n.op_type = Some("Identity".into());
        }
    }
    write(d.path(), &m);
    let e = load_err(d.path());
    assert!(
        e.contains("no FFN activation found; searched for gated MLPs"),
        "{e}"
    );
    assert!(e.contains("plain MLPs down(act(up(x))) (GPT-2)"), "{e}");
    assert!(e.contains("model.params.tap_tensors = ["), "{e}");
}

#[test]
fn a_wrong_opset_is_one_line() {
    let d = demo_dir();
    let mut m = read_fixture(d.path());
    m.opset_import[0].version = Some(9);
    write(d.path(), &m);
    let e = load_err(d.path());
    assert!(e.ends_with("model.onnx: opset 9 is not supported; valex needs opset 13 to 26 (re-export with e.g. opset_version=17)"), "{e}");
}

#[test]
fn a_missing_external_data_file_is_one_line() {
    let d = demo_dir();
    std::fs::remove_file(d.path().join("model.safetensors")).expect("weights removed");
    let e = load_err(d.path());
    assert!(
        e.contains("external data file \"model.safetensors\" of initializer"),
        "{e}"
    );
    assert!(e.contains("is missing (looked for "), "{e}");
}

#[test]
fn a_tensor_name_that_does_not_exist_is_one_line() {
    let d = demo_dir();
    let r = OrtLoader::for_path(d.path())
        .with_tap_tensors(vec!["/m/model/layers.{layer}/mlp/act/Mul_output_0".into()])
        .load_backend();
    let e = r.err().expect("an error").to_string();
    assert!(
        e.ends_with("tap_tensors template \"/m/model/layers.{layer}/mlp/act/Mul_output_0\" matches 0 tensors but the model has 4 layers (e.g. \"/m/model/layers.0/mlp/act/Mul_output_0\" is missing)"),
        "{e}"
    );
}

fn one_row_stats(b: &mut dyn ModelBackend, rows: &[Vec<u32>]) -> Result<ActivationStats, String> {
    let mut stats = ActivationStats::new("mlp.gate_act", 4, 192, &["x".to_owned()]);
    let batch = RecordBatch {
        ids: rows.to_vec(),
        positions: rows.iter().map(|r| vec![true; r.len()]).collect(),
        labels: vec![0; rows.len()],
        keys: (0..rows.len() as u64).collect(),
    };
    b.record("mlp.gate_act", &batch, None, &mut stats)
        .map(|()| stats)
        .map_err(|e| e.to_string())
}

#[test]
fn a_fixed_shape_the_batch_does_not_fit_is_one_line() {
    if !ort_ready("a_fixed_shape_the_batch_does_not_fit_is_one_line") {
        return;
    }
    let d = demo_dir();
    let mut m = read_fixture(d.path());
    for input in &mut m.graph.as_mut().expect("a graph").input {
        let Some(valex_backend_ort::proto::type_proto::Value::TensorType(t)) =
            input.r#type.as_mut().and_then(|t| t.value.as_mut())
        else {
            continue;
        };
        for (dim, n) in t
            .shape
            .as_mut()
            .expect("a shape")
            .dim
            .iter_mut()
            .zip([1, 6])
        {
            dim.value = Some(Value::DimValue(n));
        }
    }
    write(d.path(), &m);
    let mut o = ort(d.path());
    let fits = one_row_stats(&mut o, &[vec![1, 20, 21, 22, 23, 24]]);
    assert!(fits.is_ok(), "a [1, 6] batch fits: {fits:?}");
    let e = one_row_stats(&mut o, &[vec![1, 20, 21], vec![1, 22, 23]]).unwrap_err();
    assert!(
        e.ends_with("model.onnx: input input_ids has shape [1, 6] but the batch is [2, 3]; re-export with dynamic axes (batch, seq)"),
        "{e}"
    );
}

#[test]
fn named_activation_tensors_give_the_same_statistics_as_the_search() {
    if !ort_ready("named_activation_tensors_give_the_same_statistics_as_the_search") {
        return;
    }
    let d = demo_dir();
    let mut found = ort(d.path());
    let mut named = OrtLoader::for_path(d.path())
        .with_tap_tensors(vec![
            "/m/model/layers.{layer}/mlp/act_fn/Mul_output_0".into(),
        ])
        .load_backend()
        .expect("named tensors load");
    assert_eq!(named.capabilities().taps, found.capabilities().taps);
    let taps = |b: &valex_backend_ort::OrtBackend| {
        b.sites().iter().map(|s| s.taps.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        taps(&named),
        taps(&found),
        "the structure around the names is recovered"
    );
    let rows = vec![vec![1, 20, 21, 22, 23], vec![1, 30, 31]];
    let a = one_row_stats(&mut found, &rows).expect("found records");
    let b = one_row_stats(&mut named, &rows).expect("named records");
    assert_eq!(a, b);
    assert!(
        a.labels[0].active.iter().any(|&c| c > 0.0),
        "some neuron fires"
    );
}
