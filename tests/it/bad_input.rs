//! Bad input: one clear line naming the file and key, a documented exit code, and no run
//! directory left behind.

use valex_test_support::Case;

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
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
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
