//! The value study on the embedded planted-neuron model, end to end, twice: it must recover
//! the planted neurons, show a targeted Δ far beyond the matched random control, and produce
//! byte-identical results.json in two different run directories.

use serde_json::Value;
use valex_test_support::{Case, repo_root};

fn demo_manifest() -> String {
    repo_root()
        .join("experiments/value-study/demo.toml")
        .display()
        .to_string()
}

#[test]
fn demo_recovers_planted_neurons_and_is_deterministic() {
    let case = Case::new().args(["run", &demo_manifest(), "--out", "run-a"]);
    let out = case.assert_exit(0);
    assert!(
        out.stdout.contains("run directory: run-a"),
        "{}",
        out.stdout
    );
    let run_a = case.path().join("run-a");
    for f in [
        "manifest.resolved.toml",
        "run.json",
        "statistics.safetensors",
        "statistics.json",
        "neurons.json",
        "results.json",
    ] {
        assert!(
            run_a.join(f).is_file(),
            "{f} missing from the run directory"
        );
    }

    // 1. The selected sets are exactly the planted neurons, value by value.
    let neurons: Value =
        serde_json::from_slice(&std::fs::read(run_a.join("neurons.json")).unwrap()).unwrap();
    let planted = valex_demo_model::planted_neurons();
    assert_eq!(planted.len(), 12);
    for (value, cells) in &planted {
        let got = &neurons["neurons"][value];
        let layers = got
            .as_array()
            .unwrap_or_else(|| panic!("no set for {value}"));
        let mut selected: Vec<(usize, u32)> = Vec::new();
        for (l, idx) in layers.iter().enumerate() {
            for n in idx.as_array().unwrap() {
                selected.push((l, u32::try_from(n.as_u64().unwrap()).unwrap()));
            }
        }
        let mut want = cells.clone();
        want.sort_unstable();
        selected.sort_unstable();
        assert_eq!(selected, want, "selected neurons of {value}");
    }

    // 2. Zeroing a value's neurons moves its choices far more than a matched random set.
    // The demo model's planted neurons carry the whole preference: without them the choice
    // falls to chance (0.5), so Δ ≈ -0.5 on average; 4 items x 2 orders per cell make single
    // cells coarse, hence the per-cell check is only "never up".
    let results: Value =
        serde_json::from_slice(&std::fs::read(run_a.join("results.json")).unwrap()).unwrap();
    let cells = results["evaluation"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 24, "12 values x 2 languages");
    let mut moved = 0;
    for c in cells {
        let base = c["baseline"].as_f64().unwrap();
        let conds = c["conditions"].as_array().unwrap();
        let target = conds[0]["delta"].as_f64().unwrap();
        assert!(
            base >= 0.75,
            "{} {}: baseline {base}",
            c["value"],
            c["language"]
        );
        assert!(
            target <= 0.0,
            "{} {}: targeted Δ {target}",
            c["value"],
            c["language"]
        );
        moved += usize::from(target < 0.0);
        assert_eq!(conds.len(), 4, "targeted + 3 random controls");
        for r in &conds[1..] {
            let d = r["delta"].as_f64().unwrap();
            assert!(
                d.abs() <= 0.125,
                "{} {}: random Δ {d}",
                c["value"],
                c["language"]
            );
            assert_eq!(r["n_neurons"], conds[0]["n_neurons"]);
        }
    }
    assert!(
        moved >= 20,
        "only {moved} of 24 cells moved under targeted zeroing"
    );
    let s = &results["evaluation"]["summary"];
    let (t, r) = (
        s["mean_delta_targeted"].as_f64().unwrap(),
        s["mean_delta_random"].as_f64().unwrap(),
    );
    assert!(t <= -0.4, "mean targeted Δ {t}");
    assert!(r.abs() <= 0.05, "mean random Δ {r}");

    // 3. Same manifest, other folder: byte-identical results, and no paths or times inside.
    let case_b = Case::new().args(["run", &demo_manifest(), "--out", "elsewhere/run-b"]);
    case_b.assert_exit(0);
    let a = std::fs::read(run_a.join("results.json")).unwrap();
    let b = std::fs::read(case_b.path().join("elsewhere/run-b/results.json")).unwrap();
    assert!(
        a == b,
        "results.json differs between two runs of the same manifest"
    );
    let text = String::from_utf8(a).unwrap();
    assert!(
        !text.contains(case.path().to_str().unwrap()),
        "results.json holds a path"
    );
    assert!(
        !text.contains("run-a"),
        "results.json names its run directory"
    );

    // 4. run.json records hashes of every input and the seed.
    let run: Value =
        serde_json::from_slice(&std::fs::read(run_a.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["seed"], 20_250_407);
    let roles: Vec<&str> = run["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["role"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"manifest") && roles.contains(&"dataset"),
        "{roles:?}"
    );
    assert_eq!(run["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(run["model_sha256"].as_str().unwrap().len(), 64);

    // 5. An existing run directory is never overwritten without --force.
    let again = Case::new().args(["run", &demo_manifest(), "--out", "run-a"]);
    std::fs::create_dir_all(again.path().join("run-a")).unwrap();
    std::fs::write(again.path().join("run-a/keep.txt"), "mine").unwrap();
    let out = again.assert_exit(2);
    assert!(out.stderr.contains("exists already"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(again.path().join("run-a/keep.txt")).unwrap(),
        "mine"
    );
}
