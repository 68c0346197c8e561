//! The value-study demo through the `valex` binary twice, once with backend/candle on the
//! demo model's safetensors and once with backend/ort on the ONNX export of the same weights:
//! the same neuron sets and the same evaluation results. Needs a `valex` built with the `ort`
//! feature (`cargo build -p valex-cli --features ort`) and ORT_DYLIB_PATH.

use serde_json::Value;
use valex_test_support::{Case, repo_root};

use crate::common::{demo_dir, ort_ready, rel_diff};

fn json(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("a run file")).expect("JSON")
}

#[test]
fn demo_study_gives_the_same_neurons_and_results_through_candle_and_ort() {
    if !ort_ready("demo_study_gives_the_same_neurons_and_results_through_candle_and_ort") {
        return;
    }
    let plugins = Case::new().args(["plugins"]).assert_exit(0);
    if !plugins.stdout.contains("backend/ort") {
        eprintln!(
            "skipping demo_study_gives_the_same_neurons_and_results_through_candle_and_ort: this valex was built without the ort feature (cargo build -p valex-cli --features ort)"
        );
        return;
    }
    let d = demo_dir();
    let manifest = repo_root().join("experiments/value-study/demo.toml");
    let model = format!("model.params.path={}", d.path().display());
    let run = |backend: &str, out: &str| {
        let case = Case::new().args([
            "run",
            &manifest.display().to_string(),
            "--out",
            out,
            "--set",
            &format!("model.backend={backend}"),
            "--set",
            &model,
        ]);
        case.assert_exit(0);
        let dir = case.path().join(out);
        let (stats, _) = valex_stats_io::read_stats(&dir.join("statistics.safetensors"))
            .expect("the run wrote statistics");
        let files = (
            json(&dir.join("neurons.json")),
            json(&dir.join("results.json")),
        );
        (files, stats, case)
    };
    let ((n_candle, r_candle), s_candle, _c) = run("backend/candle", "run-candle");
    let ((n_ort, r_ort), s_ort, _o) = run("backend/ort", "run-ort");
    // The statistics of all 240 demo items: equal counts of act > 0, sums within 1e-4.
    for (a, b) in s_ort.labels.iter().zip(&s_candle.labels) {
        assert_eq!(a.active, b.active, "label {}: counts of act > 0", a.name);
        let f = |v: &[f64]| v.iter().map(|&z| z as f32).collect::<Vec<f32>>();
        let d = rel_diff(&f(&a.sum), &f(&b.sum)).max(rel_diff(&f(&a.sum_sq), &f(&b.sum_sq)));
        assert!(d <= 1e-4, "label {}: sums differ by {d:.2e}", a.name);
    }
    assert_eq!(
        n_ort["neurons"], n_candle["neurons"],
        "the same neuron sets"
    );
    let planted = valex_demo_model::planted_neurons();
    let total: usize = n_ort["neurons"]
        .as_object()
        .expect("sets by value")
        .values()
        .flat_map(|layers| layers.as_array().expect("layers").iter())
        .map(|l| l.as_array().expect("indices").len())
        .sum();
    assert_eq!(
        total,
        planted.iter().map(|(_, c)| c.len()).sum::<usize>(),
        "the 72 planted neurons"
    );
    assert_eq!(
        r_ort["evaluation"], r_candle["evaluation"],
        "the same evaluation results"
    );
}
