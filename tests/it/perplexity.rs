//! The perplexity side-effect check (`[evaluate] neutral_text`, #7) on the demo: one entry per
//! language, a finite baseline above 1, `ratio = ppl / baseline`, no change where the edit
//! changes nothing (`intervention/scale` with factor 1) and a change where neurons are zeroed;
//! the texts are run.json inputs, and a missing file stops the run before any model work.

use serde_json::Value;
use valex_test_support::{Case, repo_root};

fn demo_manifest() -> String {
    repo_root()
        .join("experiments/value-study/demo.toml")
        .display()
        .to_string()
}

/// Fewer conditions than the demo: no random controls or resamples, plus a no-op condition.
const FAST: [&str; 8] = [
    "--set",
    "evaluate.random_controls=0",
    "--set",
    "evaluate.bootstrap=0",
    "--set",
    "evaluate.permutations=0",
    "--set",
    "evaluate.conditions=[{ name = \"scale-1\", use = \"intervention/scale\", params = { factor = 1.0 } }]",
];

#[test]
fn perplexity_side_effects_per_language_change_only_with_edits() {
    let mut args = vec![
        "run".to_owned(),
        demo_manifest(),
        "--out".into(),
        "run".into(),
    ];
    args.extend(FAST.iter().map(|s| (*s).to_owned()));
    let case = Case::new().args(args);
    case.assert_exit(0);
    let dir = case.path().join("run");
    let results: Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let se = &results["evaluation"]["side_effects"];
    assert_eq!(se["metric"], "perplexity", "{se}");
    let per_language = se["per_language"].as_array().unwrap();
    let langs: Vec<&str> = per_language
        .iter()
        .map(|l| l["language"].as_str().unwrap())
        .collect();
    assert_eq!(langs, vec!["zh", "en"]);
    let n_sets = results["selection"]["sets"].as_array().unwrap().len();
    for l in per_language {
        let base = l["baseline"].as_f64().unwrap();
        assert!(base.is_finite() && base > 1.0, "baseline {base}");
        assert!(l["n_tokens"].as_f64().unwrap() > 0.0);
        let conds = l["conditions"].as_array().unwrap();
        assert_eq!(conds.len(), 2 * n_sets, "targeted and scale-1 per value");
        for c in conds {
            let ppl = c["ppl"].as_f64().unwrap();
            let ratio = c["ratio"].as_f64().unwrap();
            // serde_json parses floats to within an ulp.
            assert!((ratio - ppl / base).abs() <= 1e-12 * ratio, "{c}");
            match c["condition"].as_str().unwrap() {
                // Factor 1 leaves the model unchanged bit for bit.
                "scale-1" => assert!(ppl == base && ratio == 1.0, "{c}"),
                // Zeroing the value's planted neurons changes the model's predictions.
                "targeted" => assert_ne!(ppl, base, "{c}"),
                other => panic!("unexpected condition {other}"),
            }
        }
    }

    // The texts are inputs of the run (so `valex verify` notices a change).
    let run: Value = serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let texts: Vec<&str> = run["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["role"] == "neutral_text")
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "{}", run["inputs"]);
    assert!(texts[0].ends_with("data/neutral.demo.zh.txt"), "{texts:?}");

    // The HTML figure shows one ratio bar per language, value and condition.
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"fig-side-effects\""));
    assert!(
        html.contains("zh · 诚信 · targeted"),
        "ratio bars are labelled"
    );
}

#[test]
fn a_missing_neutral_text_is_one_error_before_the_model_loads() {
    let case = Case::new().args([
        "run",
        &demo_manifest(),
        "--out",
        "run",
        "--set",
        "evaluate.neutral_text.zh=\"nope.txt\"",
    ]);
    let out = case.assert_exit(2);
    let lines: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].contains("evaluate.neutral_text.zh (from flag --set evaluate.neutral_text.zh=")
            && lines[0].contains("cannot read neutral text file")
            && lines[0].contains("nope.txt"),
        "{}",
        out.stderr
    );
    assert!(!case.path().join("run").exists());
}

#[test]
fn language_labels_select_one_set_per_language_and_evaluate_every_value_with_it() {
    let mut args = vec![
        "run".to_owned(),
        demo_manifest(),
        "--out".into(),
        "run".into(),
        "--set".into(),
        "record.label_by=\"language\"".into(),
        "--set".into(),
        "evaluate.max_items_per_value=1".into(),
    ];
    args.extend(FAST[..6].iter().map(|s| (*s).to_owned()));
    let case = Case::new().args(args);
    case.assert_exit(0);
    let dir = case.path().join("run");
    let results: Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let labels: Vec<&str> = results["selection"]["sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["zh", "en"]);
    // Every value is evaluated in each language with that language's set.
    let cells = results["evaluation"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 24, "12 values x 2 languages");
    for c in cells {
        assert_eq!(c["label"], c["language"], "{c}");
    }
    let zh_values: std::collections::BTreeSet<&str> = cells
        .iter()
        .filter(|c| c["language"] == "zh")
        .map(|c| c["value"].as_str().unwrap())
        .collect();
    assert_eq!(zh_values.len(), 12);
    // The perplexity check applies every language's set to every language's text.
    for l in results["evaluation"]["side_effects"]["per_language"]
        .as_array()
        .unwrap()
    {
        let sets: Vec<&str> = l["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["label"].as_str().unwrap())
            .collect();
        assert_eq!(sets, ["zh", "en"], "{l}");
    }
}
