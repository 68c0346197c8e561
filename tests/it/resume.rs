//! Resumable runs (issue #9 item 4): a real `valex run` is killed mid-recording (SIGKILL, and
//! SIGINT), continued with `valex run --resume`, and must give the same bytes as an
//! uninterrupted run of the same manifest; a resume after an input changed is refused naming
//! the file. The demo data with one item per batch and a checkpoint after every batch gives
//! 144 record batches, long enough to stop a run after its first checkpoint.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use valex_test_support::{Case, Output, repo_root, valex_bin};

/// The value study on the demo model, recording one item per batch with a checkpoint after
/// each, and a small evaluation (one item per value, in Chinese) so results.json covers every
/// stage.
fn manifest() -> String {
    manifest_including(&[])
}

/// [`manifest`] with more base files included after the value-study base (their own settings
/// are then overridden by the sections below).
fn manifest_including(more: &[&str]) -> String {
    let base = repo_root().join("experiments/_base/value-study.toml");
    let includes: Vec<String> = std::iter::once(base.display().to_string())
        .chain(
            more.iter()
                .map(|m| repo_root().join(m).display().to_string()),
        )
        .map(|p| format!("{p:?}"))
        .collect();
    format!(
        r#"schema_version = 1
include = [{}]
[experiment]
name = "resume"
seed = 7
[model]
backend = "backend/candle"
params = {{ path = "builtin:planted-demo" }}
[dataset]
use = "dataset/jsonl"
params = {{ path = "d.jsonl" }}
[record]
batch_size = 1
checkpoint_every = 1
[score]
use = "scorer/lape"
params = {{ top_rate = 0.09375, filter_rate = 0.95, activation_bar_ratio = 0.95, normalize_by = "tokens" }}
[evaluate]
use = "evaluator/forced-choice"
languages = ["zh"]
max_items_per_value = 1
random_controls = 1
"#,
        includes.join(", ")
    )
}

fn demo_data() -> Vec<u8> {
    std::fs::read(repo_root().join("experiments/value-study/data/demo.jsonl")).unwrap()
}

/// Runs `valex ARGS` in the case folder and asserts the exit code.
fn valex(case: Case, args: &[&str], code: i32) -> (Case, Output) {
    let case = case.args(args.iter().copied());
    let out = case.assert_exit(code);
    (case, out)
}

fn case() -> Case {
    Case::new()
        .file("m.toml", manifest())
        .file("d.jsonl", demo_data())
}

/// Starts `valex run m.toml --out <out>` in the case folder, as `Case::run` would.
fn spawn_run(case: &Case, out: &str) -> Child {
    let mut cmd = Command::new(valex_bin());
    cmd.args(["-q", "run", "m.toml", "--out", out])
        .current_dir(case.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("VALEX_") {
            cmd.env_remove(k);
        }
    }
    cmd.spawn().expect("valex starts")
}

/// Waits until progress.json names the run's first record checkpoint (the process is then
/// recording).
fn wait_for_checkpoint(child: &mut Child, staging: &Path) {
    let start = Instant::now();
    loop {
        // progress.json is replaced atomically once a checkpoint is complete.
        let done = std::fs::read(staging.join("progress.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|p| p["record"]["batches_done"].as_u64());
        if done.is_some_and(|d| d >= 1) {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("valex ended ({status}) before its first checkpoint");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared in {}",
            staging.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The record stage's position in a staging folder: (batches done, batches in all).
fn record_position(staging: &Path) -> (u64, u64) {
    let p = read_json(&staging.join("progress.json"));
    let r = &p["record"];
    (
        r["batches_done"].as_u64().unwrap(),
        r["batches_total"].as_u64().unwrap(),
    )
}

fn assert_same_outputs(a: &Path, b: &Path) {
    for f in [
        "results.json",
        "statistics.safetensors",
        "statistics.json",
        "neurons.json",
    ] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{f} of the resumed run differs from the uninterrupted run's"
        );
    }
}

#[test]
fn killed_run_resumes_to_the_bytes_of_an_uninterrupted_run() {
    let case = case();
    let (case, _) = valex(case, &["-q", "run", "m.toml", "--out", "reference"], 0);

    let mut child = spawn_run(&case, "killed");
    let staging = case.path().join(".killed.partial");
    wait_for_checkpoint(&mut child, &staging);
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "valex was killed by a signal");

    assert!(!case.path().join("killed").exists());
    let status = read_json(&staging.join("status.json"));
    assert_eq!(
        status["status"], "running",
        "a killed run keeps its last status"
    );
    assert!(!staging.join("results.json").exists());
    assert!(!staging.join("run.json").exists());
    let (done, total) = record_position(&staging);
    assert!(
        done < total,
        "killed after recording ({done} of {total} batches)"
    );

    let (case, out) = valex(case, &["-q", "run", "--resume", "killed"], 0);
    assert!(
        out.stdout.contains("run directory: killed"),
        "{}",
        out.stdout
    );
    assert!(!staging.exists(), "the staging folder became the run");
    let run = case.path().join("killed");
    assert_same_outputs(&case.path().join("reference"), &run);
    let names: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for n in &names {
        assert!(
            !n.starts_with("checkpoint-")
                && !["lock", "status.json", "progress.json"].contains(&n.as_str())
                && !n.starts_with('.'),
            "bookkeeping {n} left in the run directory"
        );
    }
    let run_json = read_json(&run.join("run.json"));
    let resumes = run_json["resumes"].as_array().unwrap();
    assert_eq!(resumes.len(), 1, "{resumes:?}");
    let from = resumes[0]["batches_done"].as_u64().unwrap();
    assert!(from >= 1 && from < total, "resumed from batch {from}");
}

#[test]
fn killed_run_with_record_conditions_resumes_to_the_same_bytes() {
    // The support/conflict variant: every item recorded once per persona condition (two rows
    // per item, labels `<value>/<condition>`), scored per value; checkpoints must count rows,
    // not items, for the resume to continue exactly where the killed run stopped.
    let mut case = Case::new()
        .file(
            "m.toml",
            manifest_including(&["experiments/_base/support-conflict.toml"]),
        )
        .file("d.jsonl", demo_data());
    for f in [
        "persona-support.zh.txt",
        "persona-support.en.txt",
        "persona-conflict.zh.txt",
        "persona-conflict.en.txt",
    ] {
        let text = std::fs::read(
            repo_root()
                .join("experiments/value-study/templates")
                .join(f),
        )
        .unwrap();
        case = case.file(&format!("templates/{f}"), text);
    }
    let (case, _) = valex(case, &["-q", "run", "m.toml", "--out", "reference"], 0);
    let stats = read_json(&case.path().join("reference/statistics.json"));
    let labels = stats["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 24, "12 values x 2 conditions");

    let mut child = spawn_run(&case, "killed");
    let staging = case.path().join(".killed.partial");
    wait_for_checkpoint(&mut child, &staging);
    child.kill().unwrap();
    child.wait().unwrap();
    let (done, total) = record_position(&staging);
    assert!(done < total, "killed while recording ({done} of {total})");
    assert_eq!(total, 288, "144 items x 2 conditions, one row per batch");

    let (case, _) = valex(case, &["-q", "run", "--resume", "killed"], 0);
    assert_same_outputs(&case.path().join("reference"), &case.path().join("killed"));
}

#[test]
fn interrupted_run_stops_cleanly_and_a_changed_input_blocks_the_resume() {
    let case = case();
    let (case, _) = valex(case, &["-q", "run", "m.toml", "--out", "reference"], 0);

    let mut child = spawn_run(&case, "int");
    let staging = case.path().join(".int.partial");
    wait_for_checkpoint(&mut child, &staging);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("error: interrupted during record after ")
            && stderr.contains("valex run --resume int"),
        "{stderr}"
    );
    let status = read_json(&staging.join("status.json"));
    assert_eq!(status["status"], "interrupted");
    assert_eq!(status["stage"], "record");
    let (done, total) = record_position(&staging);
    assert!(
        done >= 1 && done < total,
        "stopped at batch {done} of {total}"
    );
    case.assert_no_run_dir();

    // A new run into the same place does not silently discard the kept one.
    let (case, out) = valex(case, &["run", "m.toml", "--out", "int"], 2);
    assert!(
        out.stderr.contains("an incomplete run of int is kept"),
        "{}",
        out.stderr
    );

    // A changed dataset file blocks the resume, naming the file; restoring it unblocks it.
    let data = case.path().join("d.jsonl");
    let original = std::fs::read(&data).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(b"\n");
    std::fs::write(&data, &changed).unwrap();
    let (case, out) = valex(case, &["run", "--resume", "int"], 2);
    let errors: Vec<&str> = out.error_lines();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(
        errors[0].starts_with("error: cannot resume int: input dataset ")
            && errors[0].contains("d.jsonl changed since the run started"),
        "{}",
        errors[0]
    );
    std::fs::write(&data, &original).unwrap();
    assert_eq!(record_position(&staging), (done, total), "checkpoint kept");

    let (case, _) = valex(case, &["-q", "run", "--resume", ".int.partial"], 0);
    assert_same_outputs(&case.path().join("reference"), &case.path().join("int"));

    // A finished run has nothing to resume.
    let (_, out) = valex(case, &["run", "--resume", "int"], 2);
    assert!(
        out.stderr.contains("it is a finished run"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_run_that_failed_after_recording_resumes_without_recording_again() {
    let case = case();
    let (case, _) = valex(case, &["-q", "run", "m.toml", "--out", "reference"], 0);

    // Something else creates the run directory while the run records: the run fails when it
    // commits, after every stage ran.
    let mut child = spawn_run(&case, "late");
    let staging = case.path().join(".late.partial");
    wait_for_checkpoint(&mut child, &staging);
    std::fs::create_dir(case.path().join("late")).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: run directory late exists already"),
        "{stderr}"
    );
    let status = read_json(&staging.join("status.json"));
    assert_eq!(status["status"], "failed");
    let progress = read_json(&staging.join("progress.json"));
    assert_eq!(progress["record"]["complete"], true, "{progress}");
    assert!(!staging.join("run.json").exists());

    std::fs::remove_dir(case.path().join("late")).unwrap();
    let (case, _) = valex(case, &["-q", "run", "--resume", "late"], 0);
    let run = case.path().join("late");
    assert_same_outputs(&case.path().join("reference"), &run);
    let run_json = read_json(&run.join("run.json"));
    let stages: Vec<&str> = run_json["timings_s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    assert!(
        !stages.contains(&"record") && stages.contains(&"evaluate"),
        "the resumed run recorded again: {stages:?}"
    );
}
