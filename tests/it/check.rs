//! `valex check` and `[record] self_check = true`: the backend self-checks on the demo model.

use serde_json::Value;
use valex_test_support::{Case, repo_root};

fn demo() -> String {
    repo_root()
        .join("experiments/value-study/demo.toml")
        .display()
        .to_string()
}

#[test]
fn check_passes_on_the_demo_model_and_reports_every_check() {
    let out = Case::new().args(["check", &demo()]).assert_exit(0);
    for name in [
        "taps: passed",
        "padding: passed",
        "batch: passed",
        "score_padding: passed",
    ] {
        assert!(out.stdout.contains(name), "{name}: {}", out.stdout);
    }
    let out = Case::new()
        .args(["check", &demo(), "--json", "--sample", "4"])
        .assert_exit(0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(v["sample"], 4);
    assert_eq!(v["checks"].as_array().unwrap().len(), 4);
    let out = Case::new()
        .args(["check", &demo(), "--tolerance", "0"])
        .assert_exit(2);
    assert!(out.stderr.contains("--tolerance"), "{}", out.stderr);
}

#[test]
fn self_check_runs_before_recording_and_lands_in_run_json() {
    let manifest = r#"schema_version = 1
[experiment]
name = "self-check"
[model]
backend = "backend/candle"
params = { path = "builtin:planted-demo" }
[dataset]
use = "dataset/jsonl"
params = { path = "data.jsonl" }
[record]
languages = ["en"]
max_items_per_label = 2
self_check = true
self_check_tolerance = 1e-4
"#;
    let data = std::fs::read_to_string(repo_root().join("experiments/value-study/data/demo.jsonl"))
        .unwrap();
    let case = Case::new()
        .file("m.toml", manifest)
        .file("data.jsonl", data)
        .args(["run", "m.toml", "--out", "run"]);
    case.assert_exit(0);
    let run: Value =
        serde_json::from_slice(&std::fs::read(case.path().join("run/run.json")).unwrap()).unwrap();
    let sc = &run["self_check"];
    assert_eq!(sc["passed"], true, "{sc}");
    assert_eq!(sc["tolerance"], 1e-4);
    assert_eq!(sc["tap"], "mlp.gate_act");
    let stages: Vec<&str> = run["timings_s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    let at = |s: &str| stages.iter().position(|x| *x == s).unwrap();
    assert!(at("self-check") < at("record"), "{stages:?}");
    for bad in ["-1", "0", "\"x\""] {
        let out = Case::new()
            .args([
                "validate",
                &demo(),
                "--set",
                &format!("record.self_check_tolerance={bad}"),
            ])
            .assert_exit(2);
        assert!(
            out.stderr.contains("record.self_check_tolerance"),
            "{bad}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_reference_backend_is_checked_against_and_a_different_model_fails() {
    // The same model through the candle backend one row per batch: passes, as a fifth check.
    let same = [
        "--set",
        "model.reference.backend=backend/candle",
        "--set",
        "model.reference.path=builtin:planted-demo",
        "--set",
        "model.reference.params.batch_size=1",
    ];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(&same).map(|s| (*s).to_owned()).collect()
    };
    let out = Case::new()
        .args(with(&["check", &demo(), "--json", "--sample", "4"]))
        .assert_exit(0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 5, "{v}");
    assert_eq!(checks[4]["name"], "reference");
    assert_eq!(checks[4]["status"], "passed", "{v}");
    assert!(checks[4]["max_rel_error"].as_f64().unwrap() <= 1e-3, "{v}");

    // Another model (the tiny HF llama fixture) fails the check: exit 1, one line.
    let other = repo_root().join("tests/fixtures/hf/llama");
    let out = Case::new()
        .args([
            "check",
            &demo(),
            "--set",
            "model.reference.backend=backend/candle",
            "--set",
            &format!("model.reference.path={}", other.display()),
        ])
        .assert_exit(1);
    assert!(out.stdout.contains("reference: FAILED"), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("self-check failed: reference: FAILED (the reference model has"),
        "{}",
        out.stderr
    );

    // In a run the reference check lands in run.json, and the reference in the components.
    let case = Case::new().args(with(&[
        "run",
        &demo(),
        "--out",
        "run",
        "--set",
        "record.self_check=true",
    ]));
    case.assert_exit(0);
    let run: Value =
        serde_json::from_slice(&std::fs::read(case.path().join("run/run.json")).unwrap()).unwrap();
    let names: Vec<&str> = run["self_check"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.last(), Some(&"reference"), "{names:?}");
    assert_eq!(run["self_check"]["passed"], true);
    let results: Value =
        serde_json::from_slice(&std::fs::read(case.path().join("run/results.json")).unwrap())
            .unwrap();
    let roles: Vec<&str> = results["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        &roles[..3],
        ["backend", "reference backend", "dataset"],
        "{roles:?}"
    );
}
