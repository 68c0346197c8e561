//! The generation path end to end (issue 7): evaluator/support-percent on the embedded demo
//! model, whose answers cannot be parsed, must finish and report every unparsed answer; and
//! position-restricted edits reach results.json.

use serde_json::Value;
use valex_test_support::{Case, repo_root};

fn manifest(name: &str) -> String {
    repo_root()
        .join("experiments/value-study")
        .join(name)
        .display()
        .to_string()
}

fn results(case: &Case, run: &str) -> Value {
    serde_json::from_slice(&std::fs::read(case.path().join(run).join("results.json")).unwrap())
        .unwrap()
}

#[test]
fn support_percent_on_the_demo_model_counts_and_shows_unparsed_answers() {
    let case = Case::new().args([
        "run",
        &manifest("demo-support.toml"),
        "--out",
        "run",
        "--set",
        "evaluate.languages=[\"en\"]",
    ]);
    let out = case.assert_exit(0);
    assert!(
        out.stdout.contains("unparsed answers 诚信/en: 12 of 12"),
        "{}",
        out.stdout
    );
    let r = results(&case, "run");
    let cells = r["evaluation"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 12);
    for c in cells {
        assert_eq!(c["metric"], "aligned_support_pct");
        assert_eq!(c["baseline"], Value::Null, "no answer parses");
        let u = &c["baseline_unscored"];
        assert_eq!(
            (u["answers"].as_u64(), u["unparsed"].as_u64()),
            (Some(4), Some(4))
        );
        assert_eq!(u["items"], 2);
        assert_eq!(u["examples"].as_array().unwrap().len(), 3);
        for cond in c["conditions"].as_array().unwrap() {
            assert_eq!(cond["unscored"]["unparsed"], 4, "{cond}");
            assert_eq!(cond["n_paired"], 0);
            assert_eq!(cond["delta"], Value::Null);
        }
    }
    let run = case.path().join("run");
    // The reports show the unparsed answers too: a table per condition and a few examples.
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("### Unparsed answers"), "{md}");
    assert!(md.contains(" | baseline | 4 | 4 | 2 |"), "{md}");
    assert!(md.contains("Examples:\n\n- "), "{md}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("<h3>Unparsed answers</h3>"));
    let csv = std::fs::read_to_string(run.join("evaluation.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for row in csv.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        assert_eq!(
            (
                f[col("unparsed")],
                f[col("baseline_unparsed")],
                f[col("n_paired")]
            ),
            ("4", "4", "0"),
            "{row}"
        );
    }
}

#[test]
fn generated_only_edits_are_recorded_and_change_forced_choice() {
    // Forced choice scores each option as a continuation of the prompt: with positions =
    // "generated" the edit touches only the option tokens after the first, so the result
    // differs from the all-positions run, and every condition says where it applied.
    let case = Case::new().args([
        "run",
        &manifest("demo.toml"),
        "--out",
        "gen",
        "--set",
        "intervention.positions=\"generated\"",
        "--set",
        "evaluate.languages=[\"en\"]",
    ]);
    case.assert_exit(0);
    let r = results(&case, "gen");
    let cell = &r["evaluation"]["cells"][0];
    for cond in cell["conditions"].as_array().unwrap() {
        assert_eq!(cond["positions"], "generated", "{cond}");
    }
    let all = Case::new().args([
        "run",
        &manifest("demo.toml"),
        "--out",
        "all",
        "--set",
        "evaluate.languages=[\"en\"]",
    ]);
    all.assert_exit(0);
    let a = results(&all, "all");
    let c0 = &a["evaluation"]["cells"][0]["conditions"][0];
    assert_eq!(c0.get("positions"), None, "\"all\" is not written");
    let deltas = |r: &Value| -> Vec<f64> {
        r["evaluation"]["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["conditions"][0]["delta"].as_f64().unwrap())
            .collect()
    };
    assert_ne!(
        deltas(&r),
        deltas(&a),
        "restricting the edit changes the outcome"
    );
    // Baselines are unedited either way.
    assert_eq!(
        r["evaluation"]["cells"][0]["baseline"],
        a["evaluation"]["cells"][0]["baseline"]
    );
}
