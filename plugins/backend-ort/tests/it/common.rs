//! Shared setup: the demo model folder with the ONNX fixture beside its safetensors, and the
//! skip rule when ONNX Runtime is absent.

use std::path::{Path, PathBuf};

use valex_backend_ort::OrtLoader;
use valex_backend_ort::proto::ModelProto;

/// The committed fixture (graph only; weights point into model.safetensors).
pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/planted-demo.onnx")
}

/// Whether ONNX Runtime can be loaded; prints why a test skips otherwise.
pub fn ort_ready(test: &str) -> bool {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if Path::new(&p).is_file() => true,
        _ => {
            eprintln!(
                "skipping {test}: ORT_DYLIB_PATH is not set to an ONNX Runtime library (scripts/setup-ort.sh DIR installs libonnxruntime.so.1.31.1)"
            );
            false
        }
    }
}

/// The demo model folder (config, tokenizer, safetensors) plus the fixture as model.onnx.
///
/// # Panics
/// When the demo model's weights are not the ones the fixture was exported from.
pub fn demo_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("a temp dir");
    valex_demo_model::write_dir(d.path()).expect("the demo model is written");
    std::fs::copy(fixture(), d.path().join("model.onnx")).expect("the fixture is copied");
    let model: ModelProto =
        prost::Message::decode(std::fs::read(fixture()).expect("fixture").as_slice())
            .expect("the fixture decodes");
    let want = model
        .metadata_props
        .iter()
        .find(|e| e.key() == "valex.weights_sha256")
        .map(|e| e.value().to_owned())
        .expect("the fixture records the weights' sha256");
    let got = sha256(&std::fs::read(d.path().join("model.safetensors")).expect("weights"));
    assert_eq!(
        got, want,
        "the demo model's weights changed since the ONNX fixture was exported: rerun plugins/backend-ort/tests/fixtures/make_onnx.py"
    );
    d
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Loads the ORT backend on `dir`.
pub fn ort(dir: &Path) -> valex_backend_ort::OrtBackend {
    OrtLoader::for_path(dir)
        .load_backend()
        .expect("the ORT backend loads")
}

/// Loads the candle backend on `dir`.
pub fn candle(dir: &Path) -> valex_backend_candle::CandleBackend {
    valex_backend_candle::CandleLoader::for_dir(dir)
        .load_backend()
        .expect("the candle backend loads")
}

/// `max |a - b| / max |b|` (and panics on different lengths).
pub fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared arrays differ in length");
    let num = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max);
    let den = b.iter().map(|y| f64::from(y.abs())).fold(0.0, f64::max);
    num / den.max(1e-12)
}
