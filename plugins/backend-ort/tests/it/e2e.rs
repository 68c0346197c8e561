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

/// Whether `test` can run here: ONNX Runtime found and a `valex` built with the `ort`
/// feature (a line says why not).
fn valex_with_ort(test: &str) -> bool {
    if !ort_ready(test) {
        return false;
    }
    let plugins = Case::new().args(["plugins"]).assert_exit(0);
    if !plugins.stdout.contains("backend/ort") {
        eprintln!(
            "skipping {test}: this valex was built without the ort feature (cargo build -p valex-cli --features ort)"
        );
        return false;
    }
    true
}

/// `valex run MANIFEST --out OUT` with `backend` on `model` (the demo's folder) and the
/// extra `--set` values.
fn run_case(
    manifest: &str,
    out: &str,
    backend: &str,
    model: &std::path::Path,
    sets: &[&str],
) -> Case {
    let mut args = vec![
        "run".to_owned(),
        repo_root().join(manifest).display().to_string(),
        "--out".to_owned(),
        out.to_owned(),
        "--set".to_owned(),
        format!("model.backend={backend}"),
        "--set".to_owned(),
        format!("model.params.path={}", model.display()),
    ];
    for s in sets {
        args.extend(["--set".to_owned(), (*s).to_owned()]);
    }
    Case::new().args(args)
}

#[test]
fn demo_study_gives_the_same_neurons_and_results_through_candle_and_ort() {
    if !valex_with_ort("demo_study_gives_the_same_neurons_and_results_through_candle_and_ort") {
        return;
    }
    let d = demo_dir();
    let run = |backend: &str, out: &str| {
        let case = run_case(
            "experiments/value-study/demo.toml",
            out,
            backend,
            d.path(),
            &[],
        );
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
    // Choices, rates and their analysis are equal exactly; the perplexity side-effect check
    // holds continuous numbers that differ in the last float bits between the two runtimes.
    let mut e_ort = r_ort["evaluation"].clone();
    let mut e_candle = r_candle["evaluation"].clone();
    let s_ort = e_ort.as_object_mut().and_then(|o| o.remove("side_effects"));
    let s_candle = e_candle
        .as_object_mut()
        .and_then(|o| o.remove("side_effects"));
    assert_eq!(e_ort, e_candle, "the same evaluation results");
    assert_eq!(
        s_ort.is_some(),
        s_candle.is_some(),
        "side effects on both or neither"
    );
    if let (Some(a), Some(b)) = (s_ort, s_candle) {
        assert_close_json(&a, &b, "evaluation.side_effects");
    }
}

/// Equal structure and strings; numbers within 1e-4 relative plus 1e-3 absolute (perplexities
/// of the demo are ~3e3 and agree to ~1e-7 relative, so their differences — Δ and its CI, ~2 —
/// carry ~3e-4 of absolute rounding).
fn assert_close_json(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(y.abs()) + 1e-3,
                "{path}: {x} (ort) vs {y} (candle)"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths");
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                assert_close_json(u, v, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<_> = x.keys().collect();
            let ky: Vec<_> = y.keys().collect();
            assert_eq!(kx, ky, "{path}: keys");
            for (k, u) in x {
                assert_close_json(u, &y[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn a_generating_evaluator_on_ort_fails_before_recording_with_one_line() {
    if !valex_with_ort("a_generating_evaluator_on_ort_fails_before_recording_with_one_line") {
        return;
    }
    let d = demo_dir();
    let case = run_case(
        "experiments/value-study/demo-support.toml",
        "run",
        "backend/ort",
        d.path(),
        &[],
    );
    // A configuration mismatch: exit 2, like a manifest error.
    let out = case.assert_exit(2);
    assert!(
        out.stderr
            .contains("evaluate: this llama backend does not support generation"),
        "{}",
        out.stderr
    );
    assert!(
        !case.path().join("run/statistics.safetensors").exists(),
        "nothing was recorded"
    );
}

#[test]
fn position_restricted_edits_on_ort_fail_before_recording_with_one_line() {
    if !valex_with_ort("position_restricted_edits_on_ort_fail_before_recording_with_one_line") {
        return;
    }
    let d = demo_dir();
    let case = run_case(
        "experiments/value-study/demo.toml",
        "run",
        "backend/ort",
        d.path(),
        &["intervention.positions=\"prompt\""],
    );
    let out = case.assert_exit(2);
    assert!(
        out.stderr.contains(
            "evaluate: backend/ort applies edits at every position only; this edit has positions = \"prompt\""
        ),
        "{}",
        out.stderr
    );
    assert!(!case.path().join("run/statistics.safetensors").exists());
}
