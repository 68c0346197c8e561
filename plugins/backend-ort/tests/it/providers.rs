//! Execution providers: CPU by default; CUDA with `fallback = true` warns and runs on the CPU
//! when it cannot be used (a build without the `cuda` feature, or the CPU-only library), and
//! without `fallback` it is an error naming the problem.

use valex_backend_ort::{DeviceSpec, OrtLoader, SessionOptions};
use valex_core::{ActivationStats, ModelBackend, RecordBatch};

use crate::common::{demo_dir, ort, ort_ready};

fn stats(b: &mut dyn ModelBackend) -> ActivationStats {
    let mut s = ActivationStats::new("mlp.gate_act", 4, 192, &["x".to_owned()]);
    let batch = RecordBatch {
        ids: vec![vec![1, 20, 21, 22], vec![1, 30]],
        positions: vec![vec![true; 4], vec![true; 2]],
        labels: vec![0, 0],
        keys: vec![0, 1],
    };
    b.record("mlp.gate_act", &batch, None, &mut s)
        .expect("record runs");
    s
}

#[test]
fn cuda_with_fallback_runs_on_the_cpu_when_cuda_is_unusable() {
    if !ort_ready("cuda_with_fallback_runs_on_the_cpu_when_cuda_is_unusable") {
        return;
    }
    let d = demo_dir();
    let cuda = |fallback| SessionOptions {
        device: DeviceSpec::Cuda(0),
        fallback,
        ..SessionOptions::default()
    };
    let strict = OrtLoader::for_path(d.path())
        .with_options(cuda(false))
        .load_backend();
    if cfg!(feature = "cuda") {
        match strict {
            // A GPU build of ONNX Runtime on a machine with a GPU: nothing to fall back from.
            Ok(_) => {
                eprintln!("cuda:0 is usable here; the fallback path is not exercised");
                return;
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.starts_with("cuda:0 cannot be used: "), "{msg}");
                assert!(
                    msg.ends_with("(set fallback = true to run on the CPU)"),
                    "{msg}"
                );
            }
        }
    }
    let mut fell_back = OrtLoader::for_path(d.path())
        .with_options(cuda(true))
        .load_backend()
        .expect("fallback = true loads on the CPU");
    assert_eq!(stats(&mut fell_back), stats(&mut ort(d.path())));
}
