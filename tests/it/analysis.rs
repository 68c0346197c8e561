//! Evaluation conditions and their paired analysis, end to end on the demo: extra own-set
//! conditions (`[[evaluate.conditions]]` with intervention/scale, mean and clamp) next to
//! `targeted`, random and cross-value controls, each with a bootstrap CI and a permutation p.

use serde_json::Value;
use valex_test_support::{Case, repo_root};

fn demo_manifest() -> String {
    repo_root()
        .join("experiments/value-study/demo.toml")
        .display()
        .to_string()
}

const CONDITIONS: &str = r#"evaluate.conditions=[
  { name = "scale-1", use = "intervention/scale", params = { factor = 1.0 } },
  { name = "scale-5", use = "intervention/scale", params = { factor = 5.0 } },
  { name = "mean", use = "intervention/mean" },
  { name = "clamp-0", use = "intervention/clamp", params = { max = 0.0 } },
]"#;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

#[test]
fn conditions_carry_kind_intervention_ci_and_permutation_p() {
    let case = Case::new().args([
        "run",
        &demo_manifest(),
        "--out",
        "run",
        "--set",
        CONDITIONS,
        "--set",
        "evaluate.random_controls=1",
        "--set",
        "evaluate.cross_value=true",
        "--set",
        r#"evaluate.languages=["en"]"#,
    ]);
    case.assert_exit(0);
    let results: Value =
        serde_json::from_slice(&std::fs::read(case.path().join("run/results.json")).unwrap())
            .unwrap();
    let ev = &results["evaluation"];
    assert_eq!(ev["analysis"]["bootstrap"], 1000);
    assert_eq!(ev["analysis"]["permutations"], 1000);
    let roles: Vec<(&str, &str)> = results["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["role"].as_str().unwrap(), c["id"].as_str().unwrap()))
        .filter(|(r, _)| *r == "condition")
        .collect();
    assert_eq!(
        roles,
        [
            ("condition", "intervention/scale"),
            ("condition", "intervention/scale"),
            ("condition", "intervention/mean"),
            ("condition", "intervention/clamp")
        ]
    );

    let cells = ev["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 12, "12 values x 1 language");
    let mut by_name: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut specificity = Vec::new();
    for c in cells {
        let at = format!("{} {}", c["value"], c["language"]);
        let base = floats(&c["baseline_per_item"]);
        let conds = c["conditions"].as_array().unwrap();
        let names: Vec<&str> = conds
            .iter()
            .map(|k| k["condition"].as_str().unwrap())
            .collect();
        assert_eq!(
            names[..6],
            [
                "targeted", "scale-1", "scale-5", "mean", "clamp-0", "random-1"
            ],
            "{at}"
        );
        assert_eq!(
            names.len(),
            6 + 11,
            "{at}: + one set-of/<label> per other value"
        );
        for k in conds {
            let name = k["condition"].as_str().unwrap();
            let (kind, id) = (
                k["kind"].as_str().unwrap(),
                k["intervention"].as_str().unwrap(),
            );
            let want = match name {
                "targeted" => ("own", "intervention/zero"),
                "scale-1" | "scale-5" => ("own", "intervention/scale"),
                "mean" => ("own", "intervention/mean"),
                "clamp-0" => ("own", "intervention/clamp"),
                n if n.starts_with("random-") => ("random", "intervention/zero"),
                n if n.starts_with("set-of/") => ("other-set", "intervention/zero"),
                n => panic!("{at}: unexpected condition {n}"),
            };
            assert_eq!((kind, id), want, "{at} {name}");
            let d = k["delta"].as_f64().unwrap();
            let per_item = floats(&k["per_item"]);
            assert!(
                (d - (mean(&per_item) - mean(&base))).abs() < 1e-12,
                "{at} {name}: delta {d} is not the per-item Δ"
            );
            let ci = floats(&k["ci95"]);
            assert!(
                ci.len() == 2 && ci[0] <= d && d <= ci[1],
                "{at} {name}: CI {ci:?} misses Δ {d}"
            );
            let p = k["p_permutation"].as_f64().unwrap();
            assert!((1.0 / 1001.0..=1.0).contains(&p), "{at} {name}: p {p}");
            if d == 0.0 && per_item == base {
                assert_eq!((p, ci.as_slice()), (1.0, &[0.0, 0.0][..]), "{at} {name}");
            }
            by_name.entry(name.to_owned()).or_default().push(d);
        }
        // Scaling by 1 is the identity: the same choices, bit for bit.
        let s1 = &conds[1];
        assert_eq!(s1["per_item"], c["baseline_per_item"], "{at}");
        assert_eq!(s1["rate"], c["baseline"], "{at}");
        assert_eq!(s1["p_permutation"], 1.0, "{at}");
        // Per-cell summaries recomputed from the conditions.
        let d = |k: &Value| k["delta"].as_f64().unwrap();
        assert_eq!(
            c["delta_random_mean"].as_f64().unwrap(),
            d(&conds[5]),
            "{at}"
        );
        let others: Vec<f64> = conds[6..].iter().map(d).collect();
        let s = c["specificity"].as_f64().unwrap();
        assert!((s - (d(&conds[0]) - mean(&others))).abs() < 1e-12, "{at}");
        specificity.push(s);
    }
    let avg = |name: &str| mean(&by_name[name]);
    // The demo expectations still hold on the English cells (4 items x 2 orders each, so the
    // bound is looser than demo.rs): targeted zeroing moves choices, random sets do not.
    assert!(
        avg("targeted") <= -0.3,
        "mean targeted Δ {}",
        avg("targeted")
    );
    assert!(by_name["targeted"].iter().all(|&d| d <= 0.0));
    assert!(by_name["random-1"].iter().all(|&d| d.abs() <= 0.125));
    // Mean ablation keeps each planted neuron's average drive: weaker than zeroing, not zero.
    assert!(
        avg("mean") < 0.0 && avg("mean") > avg("targeted"),
        "mean Δ {} vs targeted {}",
        avg("mean"),
        avg("targeted")
    );
    // Clamping at 0 removes the planted neurons' positive activations.
    assert!(avg("clamp-0") <= -0.3, "clamp Δ {}", avg("clamp-0"));
    // A value's own set moves its choices more than the other values' sets do.
    assert!(mean(&specificity) <= -0.3, "specificity {specificity:?}");
}

#[test]
fn bad_conditions_exit_2_with_every_problem_named() {
    let out = Case::new()
        .args([
            "validate",
            &demo_manifest(),
            "--set",
            r#"evaluate.conditions=[{ name = "s", use = "intervention/scal" }, { name = "t", use = "intervention/scale", params = { factr = 5 } }, { name = "t", use = "intervention/mean", params = { labels = [] } }]"#,
        ])
        .assert_exit(2);
    for want in [
        r#"evaluate.conditions[0].use (from flag --set evaluate.conditions=[{ name = "s""#,
        r#"did you mean "intervention/scale"?"#,
        "evaluate.conditions[1].params.factr",
        "intervention/scale: unknown field `factr`, expected `factor`",
        r#"evaluate.conditions[2].name"#,
        r#"condition name "t" is used twice"#,
        "evaluate.conditions[2].params.labels",
    ] {
        assert!(
            out.stderr.contains(want),
            "{want:?} missing from:\n{}",
            out.stderr
        );
    }
}
