//! Run-time plugins through the `valex` binary: an external scorer from a manifest, load
//! errors and plugin panics (exit 3, one line naming the library and component, nothing left
//! behind), `valex plugins`, and the tutorial's starter built out of tree.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use valex_test_support::{Case, repo_root, valex_bin};

fn lib_name(stem: &str) -> String {
    format!(
        "{}{stem}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// The example plugin, built next to the `valex` binary by `cargo build --workspace`.
fn example_lib() -> PathBuf {
    let p = valex_bin()
        .parent()
        .expect("the binary lives in target/<profile>")
        .join(lib_name("valex_plugin_example"));
    assert!(
        p.exists(),
        "{} not found: build it with `cargo build --workspace`",
        p.display()
    );
    p
}

fn plugins_set(lib: &Path) -> String {
    format!("plugins=[{{ path = {:?} }}]", lib.display().to_string())
}

fn sha256sum(p: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(p)
        .output()
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum prints a hash")
        .to_owned()
}

fn assert_no_run_dir(case: &Case) {
    case.assert_no_run_dir();
}

const DEMO: &str = r#"schema_version = 1
[experiment]
name = "p"
[model]
backend = "backend/candle"
params = { path = "builtin:planted-demo" }
[dataset]
use = "dataset/jsonl"
params = { path = "DATA" }
[record]
"#;

fn demo_manifest(score: &str) -> String {
    let data = repo_root().join("experiments/value-study/data/demo.jsonl");
    format!(
        "{}{score}",
        DEMO.replace("DATA", &data.display().to_string())
    )
}

#[test]
fn external_scorer_runs_from_the_preset_and_run_json_records_the_library() {
    let lib = example_lib();
    let manifest = repo_root().join("experiments/plugins/max-smd.toml");
    let case = Case::new().args([
        "run",
        &manifest.display().to_string(),
        "--out",
        "run",
        "--set",
        &plugins_set(&lib),
    ]);
    case.assert_exit(0);
    let run = case.path().join("run");
    let neurons: Value =
        serde_json::from_slice(&std::fs::read(run.join("neurons.json")).unwrap()).unwrap();
    let planted = valex_demo_model::planted_neurons();
    let mut found = 0;
    for (value, cells) in &planted {
        let layers = neurons["neurons"][value]
            .as_array()
            .unwrap_or_else(|| panic!("no set for {value}"));
        let selected: Vec<(usize, u32)> = layers
            .iter()
            .enumerate()
            .flat_map(|(l, idx)| {
                idx.as_array()
                    .unwrap()
                    .iter()
                    .map(move |n| (l, n.as_u64().unwrap() as u32))
            })
            .collect();
        assert_eq!(selected.len(), 6, "{value}: top_k = 6");
        found += selected.iter().filter(|c| cells.contains(c)).count();
    }
    // The planted neurons are the ones whose means move with their value.
    assert_eq!(found, 72, "planted neurons among the 72 selected: {found}");

    let summary = std::fs::read_to_string(run.join("summary.txt"))
        .expect("the plugin reporter wrote summary.txt");
    assert!(
        summary.starts_with("experiment: value-study-max-smd\n"),
        "{summary}"
    );
    assert_eq!(summary.lines().count(), 13, "{summary}");

    let run_json: Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    let p = &run_json["plugins"][0];
    assert_eq!(p["path"], lib.display().to_string());
    assert_eq!(p["name"], "valex-plugin-example");
    assert_eq!(p["abi_version"], 1);
    assert_eq!(p["sha256"], sha256sum(&lib));
    let results: Value =
        serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["selection"]["scorer"], "scorer/max-smd");
    assert_eq!(results["selection"]["details"]["top_k"], 6);
}

#[test]
fn load_errors_exit_3_with_one_line_naming_key_and_library() {
    let case = Case::new()
        .file(
            "m.toml",
            format!(
                "{}[[plugins]]\npath = \"libs/nope.so\"\n",
                demo_manifest("")
            ),
        )
        .args(["validate", "m.toml"]);
    let out = case.assert_exit(3);
    assert_eq!(
        out.stderr.trim_end(),
        "error: m.toml: plugins[0].path (from m.toml): cannot read plugin library libs/nope.so: No such file or directory (os error 2)"
    );

    let case =
        Case::new()
            .file("libtext.so", "not a library")
            .args(["plugins", "--plugin", "libtext.so"]);
    let out = case.assert_exit(3);
    assert!(
        out.stderr
            .starts_with("error: --plugin: cannot load plugin library libtext.so: "),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    // The same components from two files: a duplicate, naming both.
    let lib = example_lib();
    let case = Case::new().args([
        "plugins",
        "--plugin",
        &lib.display().to_string(),
        "--plugin",
        "copy.so",
    ]);
    std::fs::copy(&lib, case.path().join("copy.so")).unwrap();
    let out = case.assert_exit(3);
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "error: plugin copy.so: component scorer/max-smd is already registered by {}",
            lib.display()
        )
    );
}

#[test]
fn a_panicking_plugin_fails_the_stage_with_exit_3_and_leaves_nothing() {
    let lib = example_lib().display().to_string();
    let case = Case::new()
        .file(
            "m.toml",
            demo_manifest("[score]\nuse = \"scorer/panic-probe\"\nparams = { when = \"score\" }\n"),
        )
        .args(["run", "m.toml", "--out", "out", "--plugin", &lib]);
    let out = case.assert_exit(3);
    let errors: Vec<&str> = out.error_lines();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(
        errors[0].starts_with(&format!("error: score: plugin {lib}: scorer/panic-probe: panicked: panic-probe: panicking in score as asked (at ")),
        "{}",
        out.stderr
    );
    // Said once: the cause is not repeated as its own source (issue 10).
    assert_eq!(errors[0].matches("panicked").count(), 1, "{}", errors[0]);
    assert_no_run_dir(&case);

    // A panic while building the component: validate reports it, exit 3.
    let case = Case::new()
        .file(
            "m.toml",
            demo_manifest(
                "[score]\nuse = \"scorer/panic-probe\"\nparams = { when = \"create\" }\n",
            ),
        )
        .args(["validate", "m.toml", "--plugin", &lib]);
    let out = case.assert_exit(3);
    let want = format!(
        "error: m.toml: score.params (from m.toml): scorer/panic-probe: plugin {lib}: panicked: panic-probe: panicking in create as asked (at "
    );
    assert!(out.stderr.starts_with(&want), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

// See: #10
#[test]
fn r10_a_hanging_plugin_times_out_with_exit_3_and_leaves_a_failed_run() {
    let lib = example_lib().display().to_string();
    let case = Case::new()
        .file(
            "m.toml",
            format!(
                "{}[[plugins]]\npath = {lib:?}\ncall_timeout_secs = 1\n",
                demo_manifest(
                    "[score]\nuse = \"scorer/panic-probe\"\nparams = { when = \"hang\" }\n"
                )
            ),
        )
        .args(["run", "m.toml", "--out", "out"]);
    let started = std::time::Instant::now();
    let out = case.assert_exit(3);
    assert!(started.elapsed().as_secs() < 120, "{:?}", started.elapsed());
    let errors: Vec<&str> = out.error_lines();
    assert_eq!(
        errors,
        [format!(
            "error: score: plugin {lib}: scorer/panic-probe: score did not return within 1 s; the call was abandoned (raise call_timeout_secs of its [[plugins]] entry if it is only slow)"
        )],
        "{}",
        out.stderr
    );
    let staging = case.assert_no_run_dir();
    assert_eq!(staging.len(), 1, "the failed run is kept, marked failed");
    let status = std::fs::read_to_string(staging[0].join("status.json")).unwrap();
    assert!(
        status.contains("\"status\": \"failed\"") && status.contains("\"stage\": \"score\""),
        "{status}"
    );
    assert!(!staging[0].join("run.json").exists());
    assert!(!staging[0].join("results.json").exists());
}

#[test]
fn bad_plugin_params_are_manifest_errors_under_their_key() {
    let lib = example_lib().display().to_string();
    let case = Case::new()
        .file(
            "m.toml",
            demo_manifest("[score]\nuse = \"max-smd\"\nparams = { top_k = 0 }\n"),
        )
        .args(["validate", "m.toml", "--plugin", &lib]);
    let out = case.assert_exit(2);
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "error: m.toml: score.params.top_k (from m.toml): scorer/max-smd: top_k: must be at least 1, found 0; set score.params.top_k to the number of neurons to select per label (plugin {lib})"
        )
    );
}

#[test]
fn plugins_lists_external_components_with_library_facts() {
    let lib = example_lib();
    let out = Case::new()
        .args(["plugins", "--plugin", &lib.display().to_string()])
        .assert_exit(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("scorer/max-smd"))
        .expect("listed");
    assert!(line.contains(&lib.display().to_string()), "{line}");
    assert!(
        out.stdout.contains(&format!(
            "{}  valex-plugin-example 0.1.0  ABI v1",
            lib.display()
        )),
        "{}",
        out.stdout
    );
    let out = Case::new()
        .args(["plugins", "--json", "--plugin", &lib.display().to_string()])
        .assert_exit(0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let smd = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "scorer/max-smd")
        .unwrap();
    assert_eq!(smd["library"]["abi_version"], 1);
    assert_eq!(smd["library"]["version"], "0.1.0");
    let lape = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "scorer/lape")
        .unwrap();
    assert!(lape.get("library").is_none());
}

/// docs/writing-a-scorer.md, tested: the starter copied outside the repository, built with
/// cargo against this checkout's SDK (offline), and run from a manifest.
#[test]
fn tutorial_starter_builds_out_of_tree_and_runs_from_a_manifest() {
    let root = repo_root();
    let work = tempfile::Builder::new()
        .prefix("valex-tutorial-")
        .tempdir()
        .unwrap();
    let crate_dir = work.path().join("my-scorer");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    let template = root.join("templates/scorer-plugin");
    std::fs::copy(template.join("src/lib.rs"), crate_dir.join("src/lib.rs")).unwrap();
    let sdk = root.join("framework/plugin-sdk");
    let toml = std::fs::read_to_string(template.join("Cargo.toml"))
        .unwrap()
        .replace("../../framework/plugin-sdk", &sdk.display().to_string());
    assert!(
        toml.contains(&sdk.display().to_string()),
        "the starter names the SDK by path"
    );
    // valex's dev profile and lock file, so the build reuses the SDK's compiled dependencies
    // in target/plugin-faults (shared with the ABI fault builds).
    let profile = "\n[profile.dev.package.\"*\"]\nopt-level = 3\n\n[profile.dev]\nopt-level = 1\ndebug = \"line-tables-only\"\n";
    std::fs::write(crate_dir.join("Cargo.toml"), format!("{toml}{profile}")).unwrap();
    std::fs::copy(root.join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();

    let target = valex_bin().parent().unwrap().join("../plugin-faults");
    std::fs::create_dir_all(&target).unwrap();
    let lock = std::fs::File::create(target.join(".lock")).unwrap();
    lock.lock().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let target_dir = target.join("target");
    for cmd in ["build", "test"] {
        let out = Command::new(&cargo)
            .args([cmd, "--offline", "--target-dir"])
            .arg(&target_dir)
            .current_dir(&crate_dir)
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cargo starts");
        assert!(
            out.status.success(),
            "cargo {cmd} of the starter failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(lock);
    let lib = target_dir.join("debug").join(lib_name("my_scorer"));
    assert!(lib.exists(), "{}", lib.display());

    let case = Case::new()
        .file("plugins/.keep", "")
        .file(
            "my-scorer.toml",
            format!(
                "{}[[plugins]]\npath = \"plugins/libmy_scorer.so\"\n[score]\nuse = \"scorer/my-scorer\"\nparams = {{ top_k = 6 }}\n",
                demo_manifest("")
            ),
        )
        .args(["run", "my-scorer.toml", "--out", "run"]);
    std::fs::copy(&lib, case.path().join("plugins/libmy_scorer.so")).unwrap();
    case.assert_exit(0);
    let neurons: Value =
        serde_json::from_slice(&std::fs::read(case.path().join("run/neurons.json")).unwrap())
            .unwrap();
    let sets = neurons["neurons"].as_object().unwrap();
    assert_eq!(sets.len(), 12);
    for (value, layers) in sets {
        let n: usize = layers
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_array().unwrap().len())
            .sum();
        assert_eq!(n, 6, "{value}");
    }
}
