//! `valex verify`: passes on an untouched run; names a changed data row and a changed weight
//! file; reports a differing output after a rerun.

use valex_test_support::{Case, repo_root};

fn manifest() -> String {
    r#"schema_version = 1
[experiment]
name = "verify-me"
seed = 7
[model]
backend = "backend/candle"
params = { path = "model" }
[dataset]
use = "dataset/jsonl"
params = { path = "data.jsonl" }
[record]
languages = ["en"]
[score]
use = "scorer/lape"
params = { top_rate = 0.09375 }
[evaluate]
use = "evaluator/forced-choice"
languages = ["en"]
max_items_per_value = 1
random_controls = 1
"#
    .to_owned()
}

fn case() -> Case {
    let data = std::fs::read_to_string(repo_root().join("experiments/value-study/data/demo.jsonl"))
        .unwrap();
    let case = Case::new()
        .file("m.toml", manifest())
        .file("data.jsonl", data);
    valex_demo_model::write_dir(&case.path().join("model")).unwrap();
    case
}

#[test]
fn verify_passes_untouched_and_names_changed_inputs() {
    let case = case().args(["run", "m.toml", "--out", "run"]);
    case.assert_exit(0);
    let verify = Case::new().args(["verify", case.path().join("run").to_str().unwrap()]);
    let out = verify.assert_exit(0);
    assert!(out.stdout.contains("inputs: "), "{}", out.stdout);
    assert!(out.stdout.contains("identical"), "{}", out.stdout);

    // One data row edited: verify names the item, exit 1.
    let data_path = case.path().join("data.jsonl");
    let data = std::fs::read_to_string(&data_path).unwrap();
    let first: serde_json::Value = serde_json::from_str(data.lines().next().unwrap()).unwrap();
    let first_id = first["id"].as_str().unwrap().to_owned();
    let story = first["story"].as_str().unwrap();
    let edited = data.replacen(story, &format!("Edited. {story}"), 1);
    assert_ne!(edited, data);
    std::fs::write(&data_path, edited).unwrap();
    let out = verify.assert_exit(1);
    assert!(out.stdout.contains("input dataset"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("dataset: item {first_id} changed")),
        "{}",
        out.stdout
    );
    std::fs::write(&data_path, data).unwrap();
    verify.assert_exit(0);

    // A weight file changed: verify names it.
    let weights = case.path().join("model/model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0x01;
    std::fs::write(&weights, bytes).unwrap();
    let out = verify.assert_exit(1);
    assert!(out.stdout.contains("input model"), "{}", out.stdout);
    assert!(
        out.stdout.contains("model.safetensors: sha256 changed"),
        "{}",
        out.stdout
    );
}

#[test]
fn verify_reports_differing_outputs() {
    let case = case().args(["run", "m.toml", "--out", "run"]);
    case.assert_exit(0);
    // Tamper with the recorded result; inputs are unchanged, so the rerun shows the diff.
    let results = case.path().join("run/results.json");
    let text = std::fs::read_to_string(&results).unwrap();
    let tampered = text.replacen("\"seed\": 7", "\"seed\": 8", 1);
    assert_ne!(text, tampered);
    std::fs::write(&results, tampered).unwrap();
    let out = Case::new()
        .args(["verify", case.path().join("run").to_str().unwrap()])
        .assert_exit(1);
    assert!(
        out.stdout.contains("results.json differs"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("experiment.seed: 8 vs 7"),
        "{}",
        out.stdout
    );
}
