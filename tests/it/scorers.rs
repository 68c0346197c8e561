//! The contrast scorers end to end on the planted-neuron demo model: record with bootstrap
//! replicates and kept item means, select with Welch t, report stability next to each set and
//! the cross-value matrix; then `valex score` with another scorer, stability and LAPE export
//! from the recorded statistics, and its bad inputs.

use serde_json::Value;
use valex_test_support::{Case, repo_root};

fn manifest() -> String {
    let data = repo_root().join("experiments/value-study/data/demo.jsonl");
    format!(
        r#"schema_version = 1
[experiment]
name = "scorers-e2e"
seed = 11
[model]
backend = "backend/candle"
params = {{ path = "builtin:planted-demo" }}
[dataset]
use = "dataset/jsonl"
params = {{ path = "{}" }}
[record]
positions = "story"
bootstrap = 4
keep_item_means = true
[score]
use = "scorer/welch-t"
params = {{ selection = {{ rule = "top-k", k = 6 }} }}
[evaluate]
use = "evaluator/forced-choice"
languages = ["en"]
max_items_per_value = 3
random_controls = 0
cross_value = true
"#,
        data.display()
    )
}

fn json(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("the run wrote the file"))
        .expect("valid JSON")
}

#[test]
fn welch_selection_with_stability_cross_value_and_rescoring() {
    let case = Case::new()
        .file("m.toml", manifest())
        .args(["run", "m.toml", "--out", "run"]);
    case.assert_exit(0);
    let run = case.path().join("run");

    // Statistics carry the item level, kept item means and 4 replicates.
    let side = json(&run.join("statistics.json"));
    assert_eq!(side["item_level"], true);
    assert_eq!(side["item_means"], true);
    assert_eq!(side["bootstrap"]["replicates"].as_array().unwrap().len(), 4);

    // Welch t (item level) finds the planted neurons: 6 per value.
    let neurons = json(&run.join("neurons.json"));
    let planted = valex_demo_model::planted_neurons();
    let mut recovered = 0;
    for (value, cells) in &planted {
        for (l, idx) in neurons["neurons"][value]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            for n in idx.as_array().unwrap() {
                let cell = (l, u32::try_from(n.as_u64().unwrap()).unwrap());
                recovered += usize::from(cells.contains(&cell));
            }
        }
    }
    assert_eq!(
        recovered, 72,
        "top-6 Welch t per value recovers the 72 planted neurons"
    );
    let prov = &neurons["provenance"];
    assert_eq!(prov["scorer"], "scorer/welch-t");
    assert_eq!(prov["selection"]["rule"], "top-k");
    assert_eq!(prov["statistics_sha256"].as_str().unwrap().len(), 64);
    assert!(prov["model_sha256"].is_string());

    // Stability next to each set.
    let results = json(&run.join("results.json"));
    for s in results["selection"]["sets"].as_array().unwrap() {
        let st = &s["stability"];
        assert_eq!(st["replicates"], 4, "{s}");
        let m = st["jaccard_mean"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&m), "{st}");
    }
    assert_eq!(prov["stability"]["诚信"]["replicates"], 4);

    // Cross-value matrix (English only, to keep the test short): 12 x 12, the diagonal is the
    // targeted Δ and ablating a value's own neurons moves its choices more than ablating
    // another value's.
    let cv = results["evaluation"]["cross_value"].as_array().unwrap();
    assert_eq!(cv.len(), 1);
    for m in cv {
        let d = m["delta"].as_array().unwrap();
        assert_eq!(d.len(), 12);
        let (mut diag, mut off) = (0.0, 0.0);
        for (a, row) in d.iter().enumerate() {
            for (e, v) in row.as_array().unwrap().iter().enumerate() {
                let v = v.as_f64().unwrap().abs();
                if a == e {
                    diag += v / 12.0;
                } else {
                    off += v / 132.0;
                }
            }
        }
        assert!(
            diag > 3.0 * off,
            "{}: diagonal {diag} vs off-diagonal {off}",
            m["language"]
        );
    }

    // Re-score the same statistics with exact-rank AUROC, stability and LAPE export.
    let stats = run.join("statistics");
    let out = Case::new().args([
        "score",
        "--stats",
        stats.to_str().unwrap(),
        "--scorer",
        "auroc",
        "--set",
        "selection.rule=top-k",
        "--set",
        "selection.k=6",
        "--replicates",
        "2",
        "--export-lape",
        "mask.safetensors",
        "--out",
        "sets.json",
    ]);
    let o = out.assert_exit(0);
    assert!(o.stdout.contains("bootstrap Jaccard"), "{}", o.stdout);
    let sets = json(&out.path().join("sets.json"));
    assert_eq!(sets["provenance"]["details"]["auroc_method"], "ranks");
    assert_eq!(sets["provenance"]["stability"]["诚信"]["replicates"], 2);
    assert_eq!(
        sets["provenance"]["statistics_sha256"],
        prov["statistics_sha256"]
    );
    assert_eq!(sets["provenance"]["model_sha256"], prov["model_sha256"]);
    assert!(out.path().join("mask.safetensors").is_file());

    // Bad input: a selection key the rule does not use, and stability without replicates.
    let bad = Case::new()
        .args([
            "score",
            "--stats",
            stats.to_str().unwrap(),
            "--scorer",
            "welch-t",
            "--set",
            "selection.k=5",
            "--out",
            "x.json",
        ])
        .assert_exit(2);
    assert!(
        bad.stderr.contains("selection.k is not used by rule fdr"),
        "{}",
        bad.stderr
    );
}

#[test]
fn stability_needs_replicates_and_counts_need_no_sums_for_act_prob_diff() {
    let Some(shared) = valex_test_support::shared_dir() else {
        eprintln!("skipping: ../shared is absent, so the released counts cannot be read");
        return;
    };
    let counts = shared.join("reference/c-voice-qwen2.5-7b");
    let labels = "富强/support,富强/conflict";
    let c = counts.to_str().unwrap();
    let ok = Case::new()
        .args([
            "score",
            "--counts",
            c,
            "--labels",
            labels,
            "--scorer",
            "act-prob-diff",
            "--out",
            "s.json",
        ])
        .assert_exit(0);
    assert!(
        ok.stdout.contains("富强/support: 5304 neurons"),
        "{}",
        ok.stdout
    );
    let no_sums = Case::new()
        .args([
            "score", "--counts", c, "--labels", labels, "--scorer", "welch-t", "--out", "s.json",
        ])
        .assert_exit(4);
    assert!(
        no_sums.stderr.contains("needs item-level statistics"),
        "{}",
        no_sums.stderr
    );
    let no_reps = Case::new()
        .args([
            "score",
            "--counts",
            c,
            "--labels",
            labels,
            "--stability",
            "--out",
            "s.json",
        ])
        .assert_exit(4);
    assert!(
        no_reps.stderr.contains("record.bootstrap"),
        "{}",
        no_reps.stderr
    );
}
