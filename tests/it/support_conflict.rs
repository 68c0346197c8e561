//! The authors' support/conflict variant (experiments/value-study/support-conflict-*.toml) on
//! the demo: every activation item is recorded once per `[[record.conditions]]` entry (labels
//! `<value>/support`, `<value>/conflict`), `[score] group_by = "value"` selects exactly what
//! `valex score --labels v/support,v/conflict` selects per value, each condition set is
//! evaluated on its value's items in both languages (zeroed and ×5), and sharded recording of
//! the conditions merges to the unsharded statistics.

use serde_json::Value;
use valex_test_support::{Case, repo_root};

fn preset(name: &str) -> String {
    repo_root()
        .join("experiments/value-study")
        .join(name)
        .display()
        .to_string()
}

/// Faster than the preset: one evaluation item per cell, no controls or resamples.
const FAST: [&str; 8] = [
    "--set",
    "evaluate.max_items_per_value=1",
    "--set",
    "evaluate.random_controls=0",
    "--set",
    "evaluate.bootstrap=0",
    "--set",
    "evaluate.permutations=0",
];

fn exec(case: &Case, args: &[String]) -> std::process::Output {
    let out = std::process::Command::new(valex_test_support::valex_bin())
        .arg("--quiet")
        .args(args)
        .current_dir(case.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn support_conflict_demo_scores_per_value_and_evaluates_each_condition_set() {
    let case = Case::new();
    let mut args = strings(&["run", &preset("support-conflict-demo.toml"), "--out", "run"]);
    args.extend(strings(&FAST));
    exec(&case, &args);
    let dir = case.path().join("run");
    let results: Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();

    // Record: two labels per value, in data order, each with every activation item of the
    // value (6 per language in the demo data).
    let rec = &results["record"];
    assert_eq!(rec["label_by"], "value-condition");
    assert_eq!(
        rec["conditions"],
        serde_json::json!(["support", "conflict"])
    );
    let labels: Vec<&str> = rec["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 24, "{labels:?}");
    assert_eq!(
        &labels[..4],
        [
            "富强/support",
            "富强/conflict",
            "民主/support",
            "民主/conflict"
        ]
    );
    for l in rec["labels"].as_array().unwrap() {
        assert_eq!(l["items"], 12, "{l}");
    }

    // Score: one LAPE run per value over its two labels.
    let sel = &results["selection"];
    assert_eq!(sel["details"]["group_by"], "value");
    let groups = sel["details"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 12);
    assert_eq!(
        groups[0]["labels"],
        serde_json::json!(["富强/support", "富强/conflict"])
    );
    assert_eq!(sel["rule"]["top_rate"], 0.0078125, "{}", sel["rule"]);
    assert_eq!(sel["rule"]["group_by"], "value");
    let (sets, _) = valex_stats_io::read_neuron_sets(&dir.join("neurons.json")).unwrap();
    assert_eq!(
        sets.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        labels
    );
    assert!(sets.iter().all(|(_, s)| !s.is_empty()));
    // ... and equals `valex score --labels v/support,v/conflict` per value.
    for pair in labels.chunks(2) {
        let value = pair[0].split_once('/').unwrap().0;
        let out = format!("{value}.json");
        exec(
            &case,
            &strings(&[
                "score",
                "--stats",
                "run/statistics",
                "--labels",
                &pair.join(","),
                "--set",
                "scorer.top_rate=0.0078125",
                "--set",
                "scorer.filter_rate=0.5",
                "--set",
                "scorer.activation_bar_ratio=0.5",
                "--set",
                "scorer.normalize_by=\"items\"",
                "--out",
                &out,
            ]),
        );
        let (alone, _) = valex_stats_io::read_neuron_sets(&case.path().join(&out)).unwrap();
        let grouped: Vec<_> = sets
            .iter()
            .filter(|(l, _)| pair.contains(&l.as_str()))
            .cloned()
            .collect();
        assert_eq!(alone, grouped, "{value}");
    }

    // Evaluate: each condition set on its value's items in zh and en, zeroed and ×5.
    let cells = results["evaluation"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 24 * 2);
    for (k, cell) in cells.iter().enumerate() {
        let label = labels[k / 2];
        assert_eq!(cell["label"], label, "{k}");
        assert_eq!(cell["value"], label.split_once('/').unwrap().0);
        assert_eq!(cell["language"], ["zh", "en"][k % 2]);
        let item_value = cell["item_ids"][0]
            .as_str()
            .unwrap()
            .split('-')
            .next()
            .unwrap();
        assert_eq!(item_value, cell["value"].as_str().unwrap());
        let conds: Vec<&str> = cell["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["condition"].as_str().unwrap())
            .collect();
        assert_eq!(conds, ["targeted", "scale-5"]);
    }
    for f in ["report.md", "report.html", "results.json"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    // The reports name each condition set's cell by its label.
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| 富强/support | zh |"), "{md}");
    assert!(md.contains("| 富强/conflict | en |"), "{md}");
}

#[test]
fn sharded_recording_of_record_conditions_merges_to_one_recording() {
    let case = Case::new();
    let manifest = preset("support-conflict-demo.toml");
    let batch = ["--set", "record.batch_size=1"];
    let mut args = strings(&["record", &manifest, "--out", "full"]);
    args.extend(strings(&batch));
    exec(&case, &args);
    let mut parts = Vec::new();
    for i in 1..=3 {
        let part = format!("part-{i}");
        let mut args = strings(&[
            "record",
            &manifest,
            "--shard",
            &format!("{i}/3"),
            "--out",
            &part,
        ]);
        args.extend(strings(&batch));
        exec(&case, &args);
        parts.push(format!("{part}.safetensors"));
    }
    let mut args = vec!["merge".to_owned()];
    args.extend(parts);
    args.extend(strings(&["--out", "merged"]));
    exec(&case, &args);
    let (full, _) = valex_stats_io::read_stats(&case.path().join("full")).unwrap();
    let (merged, _) = valex_stats_io::read_stats(&case.path().join("merged")).unwrap();
    assert_eq!(merged.label_names(), full.label_names());
    assert_eq!(full.labels.len(), 24);
    for (a, b) in full.labels.iter().zip(&merged.labels) {
        assert_eq!((a.items, a.tokens), (b.items, b.tokens), "{}", a.name);
        assert_eq!(a.active, b.active, "{}: counts must be exact", a.name);
    }
    // The two conditions render different prompts, so their counts differ.
    assert_ne!(full.labels[0].active, full.labels[1].active);
}

#[test]
fn generated_positions_count_every_reply_token_fed_back_to_the_model() {
    let case = Case::new();
    let mut args = strings(&[
        "record",
        &preset("support-conflict-demo.toml"),
        "--out",
        "gen",
        "--set",
        "record.positions=\"generated\"",
        "--set",
        "record.max_new_tokens=4",
    ]);
    exec(&case, &args);
    let (stats, sidecar) = valex_stats_io::read_stats(&case.path().join("gen")).unwrap();
    assert_eq!(sidecar["provenance"]["record"]["positions"], "generated");
    assert_eq!(sidecar["provenance"]["record"]["max_new_tokens"], 4);
    assert_eq!(stats.labels.len(), 24);
    for l in &stats.labels {
        // The demo model never ends its reply early: 4 new tokens, of which the first 3 are
        // fed back as inputs (the last one is never run through the model).
        assert_eq!(l.items, 12, "{}", l.name);
        assert_eq!(l.tokens, 36.0, "{}", l.name);
    }
    // Replies differ from the story-token recording of the same items.
    args = strings(&[
        "record",
        &preset("support-conflict-demo.toml"),
        "--out",
        "story",
    ]);
    exec(&case, &args);
    let (story, _) = valex_stats_io::read_stats(&case.path().join("story")).unwrap();
    assert_ne!(story.labels[0].tokens, stats.labels[0].tokens);
}
