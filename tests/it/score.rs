//! `valex score` on the released counts (../shared): record once, score many, without a model.
//! The full 12-value x 2-setting reproduction is a library test in valex-stats-io; this checks
//! the command line end to end on one value and both settings.

use std::path::{Path, PathBuf};

use serde_json::Value;
use valex_test_support::{Case, shared_dir};

/// The released counts folder and its published masks, or `None` (with a line) without
/// ../shared.
#[expect(clippy::print_stderr, reason = "a skipped test says why on stderr")]
fn released() -> Option<(PathBuf, Value)> {
    let Some(shared) = shared_dir() else {
        eprintln!("skipping: ../shared is absent, so the released counts cannot be read");
        return None;
    };
    let counts = shared.join("reference/c-voice-qwen2.5-7b");
    let published =
        serde_json::from_slice(&std::fs::read(counts.join("published_masks.json")).unwrap())
            .unwrap();
    Some((counts, published))
}

/// `valex score --counts COUNTS ARGS` with LAPE in one of the authors' settings (both rates
/// `rate`, item-normalised), returning the neuron sets it wrote.
fn score_lape_setting(counts: &Path, rate: &str, args: &[&str]) -> Value {
    let mut all = vec![
        "score".to_owned(),
        "--counts".to_owned(),
        counts.display().to_string(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    for set in [
        format!("scorer.filter_rate={rate}"),
        format!("scorer.activation_bar_ratio={rate}"),
        "scorer.normalize_by=items".to_owned(),
    ] {
        all.extend(["--set".to_owned(), set]);
    }
    all.extend(["--out".to_owned(), "sets.json".to_owned()]);
    let case = Case::new().args(all);
    case.assert_exit(0);
    serde_json::from_slice(&std::fs::read(case.path().join("sets.json")).unwrap()).unwrap()
}

#[test]
fn score_reproduces_published_masks_from_released_counts() {
    let Some((counts, published)) = released() else {
        return;
    };
    for (setting, rate) in [("semantic", "0.5"), ("decision", "0.95")] {
        let got = score_lape_setting(
            &counts,
            rate,
            &["--labels", "富强/support,富强/conflict", "--scorer", "lape"],
        );
        for cond in ["support", "conflict"] {
            assert_eq!(
                got["neurons"][format!("富强/{cond}")],
                published["富强"][setting][cond],
                "{setting} {cond}"
            );
        }
        assert_eq!(got["provenance"]["scorer"], "scorer/lape");
        assert_eq!(got["provenance"]["source"]["layout"], "released-counts");
    }
}

#[test]
fn score_with_unknown_label_exits_4_listing_labels() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipping: ../shared is absent");
        return;
    };
    let counts = shared.join("reference/c-voice-qwen2.5-7b");
    let out = Case::new()
        .args([
            "score",
            "--counts",
            counts.to_str().unwrap(),
            "--labels",
            "富强/suport",
            "--out",
            "x.json",
        ])
        .assert_exit(4);
    assert!(out.stderr.contains("富强/suport"), "{}", out.stderr);
    assert!(out.stderr.contains("富强/support"), "{}", out.stderr);
}

/// `--group-by value` scores each value over its own two labels in one call: all 12 values'
/// published masks, in both of the authors' settings (the per-value identification of the
/// support/conflict variant, as `[score] group_by = "value"` runs it).
#[test]
fn score_group_by_value_reproduces_every_published_mask_in_one_call() {
    let Some((counts, published)) = released() else {
        return;
    };
    for (setting, rate) in [("semantic", "0.5"), ("decision", "0.95")] {
        let got = score_lape_setting(&counts, rate, &["--group-by", "value"]);
        let values: Vec<&String> = published.as_object().unwrap().keys().collect();
        assert_eq!(values.len(), 12);
        for value in values {
            for cond in ["support", "conflict"] {
                assert_eq!(
                    got["neurons"][format!("{value}/{cond}")],
                    published[value][setting][cond],
                    "{value} {setting} {cond}"
                );
            }
        }
        assert_eq!(got["provenance"]["details"]["group_by"], "value");
        assert_eq!(
            got["provenance"]["details"]["groups"]
                .as_array()
                .unwrap()
                .len(),
            12
        );
    }
    Case::new()
        .args([
            "score",
            "--counts",
            counts.to_str().unwrap(),
            "--group-by",
            "values",
            "--out",
            "x.json",
        ])
        .assert_exit(2);
}
