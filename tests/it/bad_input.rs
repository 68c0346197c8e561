//! Bad input: one clear line naming the file and key, a documented exit code, and no run
//! directory left behind.

use valex_test_support::{Case, repo_root};

const GOOD: &str = r#"schema_version = 1
[experiment]
name = "t"
[model]
backend = "backend/candle"
params = { path = "builtin:planted-demo" }
[dataset]
use = "dataset/jsonl"
params = { path = "d.jsonl" }
[record]
"#;

fn assert_no_run_dir(case: &Case) {
    case.assert_no_run_dir();
}

#[test]
fn malformed_toml_exits_2_naming_the_file() {
    let case = Case::new()
        .file("m.toml", "schema_version = 1\n[experiment\nname = 1\n")
        .args(["run", "m.toml", "--out", "out"]);
    let out = case.assert_exit(2);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(out.stderr.contains("m.toml"), "{}", out.stderr);
    assert_no_run_dir(&case);
}

#[test]
fn unknown_scorer_exits_2_with_suggestion() {
    let case = Case::new()
        .file("m.toml", format!("{GOOD}[score]\nuse = \"scorer/lapee\"\n"))
        .file("d.jsonl", "")
        .args(["validate", "m.toml"]);
    let out = case.assert_exit(2);
    assert!(out.stderr.contains("score.use"), "{}", out.stderr);
    assert!(
        out.stderr.contains("did you mean \"scorer/lape\""),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_dataset_file_exits_4_and_leaves_nothing() {
    let case = Case::new()
        .file("m.toml", GOOD)
        .args(["run", "m.toml", "--out", "out"]);
    let out = case.assert_exit(4);
    assert!(out.stderr.contains("d.jsonl"), "{}", out.stderr);
    let errors: Vec<&str> = out.error_lines();
    assert_eq!(
        errors,
        vec![
            "error: load dataset: dataset d.jsonl: cannot read: No such file or directory (os error 2)"
        ]
    );
    assert_no_run_dir(&case);
}

#[test]
fn malformed_dataset_row_exits_4_naming_the_line() {
    let case = Case::new()
        .file("m.toml", GOOD)
        .file("d.jsonl", "{\"id\":\"a\"}\n")
        .args(["run", "m.toml", "--out", "out"]);
    let out = case.assert_exit(4);
    assert!(
        out.stderr.contains("d.jsonl: line 1: missing field"),
        "{}",
        out.stderr
    );
    assert_no_run_dir(&case);
}

#[test]
fn missing_model_directory_exits_4() {
    let case = Case::new()
        .file("m.toml", GOOD.replace("builtin:planted-demo", "no-such-model"))
        .file(
            "d.jsonl",
            r#"{"id":"a","value":"诚信","language":"en","kind":"activation","story":"s","rationale":"r","aligned":"x","violating":"y"}"#,
        )
        .args(["run", "m.toml", "--out", "out"]);
    let out = case.assert_exit(4);
    assert!(out.stderr.contains("no-such-model"), "{}", out.stderr);
    assert_no_run_dir(&case);
}

#[test]
fn unknown_key_from_a_flag_exits_2_naming_the_flag() {
    let case =
        Case::new()
            .file("m.toml", GOOD)
            .args(["validate", "m.toml", "--set", "record.tapp=x"]);
    let out = case.assert_exit(2);
    assert!(out.stderr.contains("record.tapp"), "{}", out.stderr);
    assert!(out.stderr.contains("--set"), "{}", out.stderr);
}

#[test]
fn plugins_lists_every_builtin_component() {
    let out = Case::new().args(["plugins"]).assert_exit(0);
    for id in [
        "backend/candle",
        "dataset/jsonl",
        "scorer/lape",
        "intervention/zero",
        "evaluator/forced-choice",
        "reporter/json",
    ] {
        assert!(out.stdout.contains(id), "{id} missing:\n{}", out.stdout);
    }
}

// Fault injection (issue #10 item 3): real model files written by the demo model, then
// corrupted; each run must end with one error line naming the cause, a documented exit code,
// and no run directory (docs/reliability.md lists them all).

/// A case with the demo model written to `model/`, the demo data in `d.jsonl`, and `m.toml`
/// recording from both.
fn model_case() -> Case {
    let data = std::fs::read(repo_root().join("experiments/value-study/data/demo.jsonl")).unwrap();
    let case = Case::new()
        .file("m.toml", GOOD.replace("builtin:planted-demo", "model"))
        .file("d.jsonl", data);
    valex_demo_model::write_dir(&case.path().join("model")).unwrap();
    case
}

// See: #10 (item 4)
#[test]
fn r10_a_model_that_does_not_fit_is_refused_before_loading_with_the_estimate() {
    let case = model_case();
    let limited = GOOD.replace(
        "{ path = \"builtin:planted-demo\" }",
        "{ path = \"model\", memory_limit_mib = 1 }",
    );
    assert!(limited.contains("memory_limit_mib"));
    std::fs::write(case.path().join("m.toml"), &limited).unwrap();
    let case = case.args(["run", "m.toml", "--out", "out"]);
    let out = case.assert_exit(4);
    let line = one_error_line(&case, &out, 4);
    assert!(line.starts_with("error: load model: model "), "{line}");
    assert!(line.contains("model needs about "), "{line}");
    for part in [
        "(weights ",
        " + activations ",
        "for 8 rows x 512 tokens + statistics ",
        " per label) but 1.0 MiB is available (memory_limit_mib); lower batch_size or max_batch_tokens, use dtype = \"bf16\" or \"f16\", or a model with fewer layers; memory_check = false skips this check",
    ] {
        assert!(line.contains(part), "{part:?} missing: {line}");
    }

    // The escape hatch: the same limit with the check off runs.
    std::fs::write(
        case.path().join("m.toml"),
        limited.replace(
            "memory_limit_mib = 1",
            "memory_limit_mib = 1, memory_check = false",
        ),
    )
    .unwrap();
    let case = case.args(["run", "m.toml", "--out", "out2"]);
    case.assert_exit(0);
    assert!(case.path().join("out2/run.json").is_file());
}

/// Asserts the exit code, exactly one `error:` line, and no run directory; returns the line.
fn one_error_line(case: &Case, out: &valex_test_support::Output, code: i32) -> String {
    assert_eq!(out.code, code, "{}", out.stderr);
    let errors: Vec<&str> = out.error_lines();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert_no_run_dir(case);
    errors[0].to_owned()
}

/// Runs `valex run m.toml --out out` and checks it as [`one_error_line`] does.
fn failing_run(case: Case, code: i32) -> String {
    let case = case.args(["run", "m.toml", "--out", "out"]);
    let out = case.run();
    one_error_line(&case, &out, code)
}

#[test]
fn model_file_truncated_mid_tensor_exits_4_naming_the_file() {
    let case = model_case();
    let path = case.path().join("model/model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let line = failing_run(case, 4);
    assert!(
        line.contains(
            "model/model.safetensors is not a valid safetensors file: incomplete metadata"
        ),
        "{line}"
    );
}

#[test]
fn safetensors_header_longer_than_the_file_exits_4() {
    let case = model_case();
    let path = case.path().join("model/model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    // The first 8 bytes are the header's length (u64 LE): claim more than the file holds.
    let claimed = (bytes.len() as u64) * 2;
    bytes[..8].copy_from_slice(&claimed.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let line = failing_run(case, 4);
    assert!(
        line.contains(
            "model/model.safetensors is not a valid safetensors file: invalid header length"
        ),
        "{line}"
    );
}

#[test]
fn tokenizer_larger_than_the_model_vocabulary_exits_4() {
    let case = model_case();
    let path = case.path().join("model/tokenizer.json");
    let mut tok: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let vocab = tok["model"]["vocab"].as_object_mut().unwrap();
    let n = vocab.len();
    for i in 0..3 {
        vocab.insert(format!("extra-{i}"), serde_json::json!(n + i));
    }
    std::fs::write(&path, serde_json::to_vec(&tok).unwrap()).unwrap();
    let line = failing_run(case, 4);
    assert!(
        line.contains("tokenizer model/tokenizer.json has ")
            && line.contains("but the model's config.json has vocab_size"),
        "{line}"
    );
}

#[test]
fn dataset_row_with_invalid_utf8_exits_4_naming_the_line() {
    let data = std::fs::read_to_string(repo_root().join("experiments/value-study/data/demo.jsonl"))
        .unwrap();
    let mut bytes = data.lines().next().unwrap().as_bytes().to_vec();
    bytes.extend_from_slice(b"\n{\"id\": \"bad\xff\xfe\"}\n");
    let case = Case::new().file("m.toml", GOOD).file("d.jsonl", bytes);
    let line = failing_run(case, 4);
    assert!(line.contains("d.jsonl: line 2: invalid UTF-8"), "{line}");
}

#[test]
fn file_size_limit_while_writing_the_run_exits_1_naming_the_file() {
    // `ulimit -f 64` (32 KiB in sh's 512-byte blocks): the statistics file (~370 KB) cannot
    // be written. valex handles SIGXFSZ, so the write fails with EFBIG instead of killing it.
    let case = model_case();
    let script = format!(
        "ulimit -f 64\nexec '{}' run m.toml --out out\n",
        valex_test_support::valex_bin().display()
    );
    let case = case.file("run.sh", script);
    let raw = std::process::Command::new("sh")
        .arg("run.sh")
        .current_dir(case.path())
        .output()
        .unwrap();
    let out = valex_test_support::Output {
        code: raw.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&raw.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&raw.stderr).into_owned(),
    };
    let line = one_error_line(&case, &out, 1);
    assert!(
        line.contains("statistics.safetensors: failed to write: File too large"),
        "{line}"
    );
    let staging = case.assert_no_run_dir();
    assert_eq!(staging.len(), 1, "the failed run is kept for --resume");
    let status = std::fs::read_to_string(staging[0].join("status.json")).unwrap();
    assert!(
        status.contains("\"status\": \"failed\"") && status.contains("\"stage\": \"record\""),
        "{status}"
    );
}
