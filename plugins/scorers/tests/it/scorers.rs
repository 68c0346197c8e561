//! The contrast scorers through the registry: defaults, selections, reports and bad input.

use serde_json::{Value, json};
use valex_core::{ActivationStats, FactoryContext, LabelStats, RegistryBuilder, Scorer};
use valex_scorers::ScorersPlugin;

fn scorer(id: &str, params: Value) -> Box<dyn Scorer> {
    let mut b = RegistryBuilder::new();
    b.add_plugin(&ScorersPlugin).expect("registers");
    b.build()
        .scorer(id, &params, &FactoryContext::default())
        .unwrap_or_else(|e| panic!("{id}: {}", e.message))
}

/// Three labels over 2 layers x 4 neurons; neuron (1, 2) is much higher for label `hi`, neuron
/// (0, 1) lower for it. Items have 3 tokens each.
fn planted() -> ActivationStats {
    let labels = ["hi", "x", "y"].map(str::to_owned).to_vec();
    let mut s = ActivationStats::new("t", 2, 4, &labels).with_bootstrap(5, 3);
    for (li, n_items) in [(0_usize, 12_u64), (1, 10), (2, 11)] {
        for key in 0..n_items {
            s.count_item(li, key, 3.0);
            for layer in 0..2 {
                let mut sum = [0.0_f64; 4];
                for (j, v) in sum.iter_mut().enumerate() {
                    // A deterministic wiggle so that variances are not zero.
                    let w = ((key * 7 + j as u64 * 3 + layer as u64) % 5) as f64 * 0.1;
                    *v = 3.0 * (0.2 + w);
                }
                if li == 0 && layer == 1 {
                    sum[2] += 6.0;
                }
                if li == 0 && layer == 0 {
                    sum[1] -= 0.9;
                }
                let sq: Vec<f64> = sum.iter().map(|v| v * v / 3.0 + 0.01).collect();
                let act: Vec<f64> = sum
                    .iter()
                    .map(|v| if *v > 2.0 { 3.0 } else { 1.0 })
                    .collect();
                s.add_item_layer(li, key, layer, 3.0, &act, &sum, &sq);
            }
        }
    }
    s
}

fn labels(s: &ActivationStats) -> Vec<String> {
    s.label_names()
}

#[test]
fn every_contrast_scorer_finds_the_planted_neuron() {
    let s = planted();
    for (id, params) in [
        ("scorer/welch-t", json!({})),
        (
            "scorer/mean-diff",
            json!({"selection": {"rule": "top-k", "k": 1}}),
        ),
        (
            "scorer/mean-diff",
            json!({"statistic": "cohens-d", "selection": {"k": 1, "rule": "top-k"}}),
        ),
        (
            "scorer/auroc",
            json!({"selection": {"rule": "top-k", "k": 1}}),
        ),
        (
            "scorer/act-prob-diff",
            json!({"selection": {"rule": "threshold", "threshold": 0.5}}),
        ),
    ] {
        let out = scorer(id, params).score(&s, &labels(&s)).expect("scores");
        let hi = &out.sets[0].1;
        assert!(hi.contains(1, 2), "{id}: {:?}", hi.layers());
        assert_eq!(out.details["labels"], json!(["hi", "x", "y"]));
        assert_eq!(out.details["per_label"][0]["selected"], json!(hi.len()));
        assert_eq!(
            out.details["overlaps"]["intersection"][0][0],
            json!(hi.len())
        );
    }
    let out = scorer("scorer/welch-t", json!({"selection": {"sign": "negative"}}))
        .score(&s, &labels(&s))
        .expect("scores");
    assert!(out.sets[0].1.contains(0, 1), "{:?}", out.sets[0].1.layers());
    assert_eq!(out.details["selection"]["rule"], "fdr");
    assert_eq!(out.details["correction"], "bh");
}

#[test]
fn welch_min_effect_gate_and_selection_of_nothing() {
    let s = planted();
    let out = scorer("scorer/welch-t", json!({"min_effect": 1000.0}))
        .score(&s, &labels(&s))
        .expect("an empty selection is not an error");
    assert!(
        out.sets
            .iter()
            .all(|(_, set)| set.is_empty() && set.n_layers() == 2)
    );
    assert_eq!(out.details["per_label"][0]["selected"], 0);
    assert_eq!(out.details["per_label"][0]["min_selected_key"], Value::Null);
}

#[test]
fn bad_params_name_their_key() {
    let mut b = RegistryBuilder::new();
    b.add_plugin(&ScorersPlugin).expect("registers");
    let r = b.build();
    let cx = FactoryContext::default();
    for (id, params, key) in [
        ("scorer/welch-t", json!({"min_effect": -1.0}), "min_effect"),
        ("scorer/mean-diff", json!({"epsilon": -1.0}), "epsilon"),
        (
            "scorer/auroc",
            json!({"selection": {"rule": "fdr"}}),
            "selection.rule",
        ),
        (
            "scorer/act-prob-diff",
            json!({"selection": {"rule": "top-k"}}),
            "selection.k",
        ),
    ] {
        let e = r.scorer(id, &params, &cx).err().expect("invalid params");
        assert_eq!(e.key.as_deref(), Some(key), "{id}: {}", e.message);
    }
    let e = r
        .scorer("scorer/welch-t", &json!({"correction": "sidak"}), &cx)
        .err()
        .expect("unknown correction");
    assert!(
        e.message.contains("unknown variant `sidak`"),
        "{}",
        e.message
    );
}

#[test]
fn bad_statistics_and_labels_are_errors_not_panics() {
    let s = planted();
    let welch = scorer("scorer/welch-t", json!({}));
    let e = welch
        .score(&s, &["hi".to_owned(), "zz".to_owned()])
        .expect_err("unknown");
    assert_eq!(e.to_string(), "unknown label zz; available: hi, x, y");
    let e = welch.score(&s, &["hi".to_owned()]).expect_err("one label");
    assert!(e.to_string().contains("needs at least two labels"), "{e}");
    // Released counts carry no sums: the item-level scorers say so, act-prob-diff works.
    let mut counts = s.clone();
    for l in &mut counts.labels {
        *l = LabelStats::counts_only(&l.name, l.tokens, l.items, l.active.clone());
    }
    let e = welch
        .score(&counts, &labels(&s))
        .expect_err("no item level");
    assert!(
        e.to_string()
            .starts_with("label hi: scorer/welch-t at level items needs item-level statistics"),
        "{e}"
    );
    let e = scorer("scorer/mean-diff", json!({"level": "tokens"}))
        .score(&counts, &labels(&s))
        .expect_err("no sums");
    assert!(e.to_string().contains("needs activation sums"), "{e}");
    assert!(
        scorer("scorer/act-prob-diff", json!({}))
            .score(&counts, &labels(&s))
            .is_ok()
    );
    let e = scorer("scorer/auroc", json!({"method": "ranks"}))
        .score(&s, &labels(&s))
        .expect_err("no kept means");
    assert!(e.to_string().contains("keep_item_means"), "{e}");
    // A label with one item cannot have a variance.
    let mut one = ActivationStats::new("t", 1, 2, &["a".to_owned(), "b".to_owned()]);
    for (li, items) in [(0, 1), (1, 3)] {
        for key in 0..items {
            one.count_item(li, key, 1.0);
            one.add_item_layer(li, key, 0, 1.0, &[1.0, 0.0], &[0.5, -0.1], &[0.25, 0.01]);
        }
    }
    let e = welch.score(&one, &labels(&one)).expect_err("one item");
    assert_eq!(
        e.to_string(),
        "label a: scorer/welch-t needs at least 2 items per label, found 1"
    );
    // No neurons at all: the correction has zero tests.
    let mut empty = ActivationStats::new("t", 0, 0, &["a".to_owned(), "b".to_owned()]);
    for l in &mut empty.labels {
        l.items = 3;
        l.tokens = 3.0;
    }
    let e = welch
        .score(&empty, &labels(&empty))
        .expect_err("zero tests");
    assert_eq!(
        e.to_string(),
        "label a: p-value correction bh on zero tests"
    );
}

#[test]
fn replicates_score_like_the_main_statistics() {
    // Bootstrap replicates are plain statistics: every scorer runs on them.
    let s = planted();
    let boot = s.bootstrap.as_ref().expect("replicates");
    for r in &boot.replicates {
        let out = scorer("scorer/welch-t", json!({}))
            .score(r, &labels(r))
            .expect("scores");
        assert!(out.sets[0].1.contains(1, 2));
    }
}
