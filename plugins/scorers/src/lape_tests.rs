use super::*;

/// 2 layers x 4 neurons, labels `a` and `b`, 10 tokens and 1 item each.
///
/// (a, b) counts: layer 0: (10,0) (5,5) (0,0) (8,2); layer 1: (0,9) (1,1) (6,3) (2,0).
/// Sorted P (16 values): 0 x5, .1 .1, .2 .2, .3, .5 .5, .6, .8, .9, 1.
/// Entropies: 0, ln2, 0 (never active), 0.5004 | 0, ln2, 0.6365, 0.
fn tiny() -> ActivationStats {
    let labels = vec!["a".to_owned(), "b".to_owned()];
    let mut s = ActivationStats::new("mlp.gate_act", 2, 4, &labels);
    s.labels[0].active = vec![10.0, 5.0, 0.0, 8.0, 0.0, 1.0, 6.0, 2.0];
    s.labels[1].active = vec![0.0, 5.0, 0.0, 2.0, 9.0, 1.0, 3.0, 0.0];
    for l in &mut s.labels {
        l.tokens = 10.0;
        l.items = 1;
    }
    s
}

fn labels() -> Vec<String> {
    vec!["a".to_owned(), "b".to_owned()]
}

fn cfg(top: f64, filter: f64, bar: f64) -> LapeConfig {
    LapeConfig {
        top_rate: top,
        filter_rate: filter,
        activation_bar_ratio: bar,
        normalize_by: NormalizeBy::Tokens,
    }
}

fn run(c: LapeConfig) -> ScoreOutput {
    LapeScorer::new(c)
        .expect("valid config")
        .score(&tiny(), &labels())
        .expect("scores")
}

#[test]
fn entropy_is_zero_for_one_sided_and_never_active_neurons() {
    let h = entropies(&[1.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.8, 0.2], 2);
    assert_eq!(h[0], 0.0);
    assert!((h[1] - std::f32::consts::LN_2).abs() < 1e-7);
    assert_eq!(h[2], 0.0);
    assert!((h[3] - 0.500_402_4).abs() < 1e-6, "{}", h[3]);
}

#[test]
fn selects_lowest_entropy_candidates_and_assigns_above_bar() {
    // filter k = round(16 * .5) = 8 -> tau_f = .2: candidates are l0n0 l0n1 l0n3 l1n0 l1n2.
    // top k = round(8 * .375) = 3 -> l0n0 (0), l1n0 (0), l0n3 (.5004).
    // bar k = round(16 * .75) = 12 -> tau_b = .5: l0n0 -> a, l1n0 -> b, l0n3 -> a only.
    let out = run(cfg(0.375, 0.5, 0.75));
    assert_eq!(out.sets[0].0, "a");
    assert_eq!(out.sets[0].1.layers(), &[vec![0, 3], vec![]]);
    assert_eq!(out.sets[1].1.layers(), &[vec![], vec![0]]);
    let d = &out.details;
    assert_eq!(d["tau_f"], json!(0.2_f32));
    assert_eq!(d["tau_b"], json!(0.5_f32));
    assert_eq!(d["filter_k"], 8);
    assert_eq!(d["bar_k"], 12);
    assert_eq!(d["candidates"], 5);
    assert_eq!(d["selected"], 3);
    assert_eq!(d["unassigned"], 0);
    assert_eq!(d["selected_per_label"]["a"], 2);
    assert_eq!(d["selected_per_label"]["b"], 1);
}

#[test]
fn a_neuron_can_join_several_labels() {
    // bar k = round(16 * .4375) = 7 -> tau_b = .1: l0n3 (.8, .2) joins both labels.
    let out = run(cfg(0.375, 0.5, 0.4375));
    assert_eq!(out.sets[0].1.layers(), &[vec![0, 3], vec![]]);
    assert_eq!(out.sets[1].1.layers(), &[vec![3], vec![0]]);
}

#[test]
fn counts_use_bankers_rounding() {
    // 8 * .3125 = 2.5 rounds to 2 (half to even), so l0n3 is not selected.
    let out = run(cfg(0.3125, 0.5, 0.75));
    assert_eq!(out.details["selected"], 2);
    assert_eq!(out.sets[0].1.layers(), &[vec![0], vec![]]);
    assert_eq!(out.sets[1].1.layers(), &[vec![], vec![0]]);
    // 16 * .78125 = 12.5 rounds to 12 (tau_b = .5), not 13 (.6).
    let out = run(cfg(0.3125, 0.5, 0.781_25));
    assert_eq!(out.details["bar_k"], 12);
    assert_eq!(out.details["tau_b"], json!(0.5_f32));
}

#[test]
fn never_active_neuron_is_selected_last_and_never_assigned() {
    // top_rate 1 selects all 8 neurons, including the three with H = +inf; the never-active
    // l0n2 and l1n1 (.1, .1) get no label at tau_b = .2 (k = 8), l1n3 (.2) neither.
    let out = run(cfg(1.0, 0.5, 0.5));
    assert_eq!(out.details["selected"], 8);
    assert_eq!(out.details["unassigned"], 3);
    assert_eq!(out.details["max_selected_entropy"], serde_json::Value::Null);
    assert_eq!(out.sets[0].1.layers(), &[vec![0, 1, 3], vec![2]]);
    assert_eq!(out.sets[1].1.layers(), &[vec![1], vec![0, 2]]);
    assert!(!out.sets.iter().any(|(_, s)| s.contains(0, 2)));
}

#[test]
fn items_normalisation_divides_by_item_counts() {
    let mut s = tiny();
    s.labels[1].tokens = 20.0;
    s.labels[0].items = 2;
    s.labels[1].items = 2;
    let by_tokens = activation_probs(&s, &labels(), NormalizeBy::Tokens).expect("probs");
    let by_items = activation_probs(&s, &labels(), NormalizeBy::Items).expect("probs");
    // l0n0: a = 10 / 10 tokens, b = 0; l1n0: b = 9 / 20 tokens.
    assert_eq!(by_tokens[0], 1.0);
    assert_eq!(by_tokens[9], 0.45);
    assert_eq!(by_items[0], 5.0);
    assert_eq!(by_items[9], 4.5);
}

#[test]
fn rejects_unknown_label_listing_available_ones() {
    let scorer = LapeScorer::new(LapeConfig::default()).expect("valid");
    let err = scorer
        .score(&tiny(), &["a".to_owned(), "c".to_owned()])
        .expect_err("c is unknown");
    assert_eq!(err.message, "unknown label c; available: a, b");
    assert_eq!(err.class, valex_core::ErrorClass::Config);
}

#[test]
fn rejects_label_without_tokens() {
    let mut s = tiny();
    s.labels[1].tokens = 0.0;
    let err = LapeScorer::new(LapeConfig::default())
        .expect("valid")
        .score(&s, &labels())
        .expect_err("b has no tokens");
    assert_eq!(
        err.message,
        "label b has 0 tokens; cannot compute activation probabilities"
    );
}

#[test]
fn rejects_rank_zero_quantile() {
    // round(16 * .01) = 0: torch's kthvalue would raise.
    let err = LapeScorer::new(cfg(0.5, 0.01, 0.5))
        .expect("rates are in range")
        .score(&tiny(), &labels())
        .expect_err("rank 0");
    assert!(
        err.message.starts_with("filter_rate 0.01 selects rank 0"),
        "{}",
        err.message
    );
}

#[test]
fn factory_applies_defaults_and_parses_params() {
    let cx = FactoryContext::default();
    assert!(lape_factory(&serde_json::Value::Null, &cx).is_ok());
    let c: LapeConfig = ConfigError::parse_params(&serde_json::Value::Null).expect("defaults");
    assert_eq!(c, LapeConfig::default());
    assert_eq!(c.top_rate, 0.01);
    let c: LapeConfig = ConfigError::parse_params(&json!({
        "top_rate": 0.02, "filter_rate": 0.5, "activation_bar_ratio": 0.5, "normalize_by": "items"
    }))
    .expect("parses");
    assert_eq!(c.normalize_by, NormalizeBy::Items);
    assert_eq!(c.filter_rate, 0.5);
}

#[test]
fn factory_rejects_unknown_keys_and_bad_rates() {
    let cx = FactoryContext::default();
    let e = lape_factory(&json!({"top_rat": 0.1}), &cx)
        .err()
        .expect("typo");
    assert!(
        e.message.contains("unknown field `top_rat`"),
        "{}",
        e.message
    );
    let e = lape_factory(&json!({"normalize_by": "words"}), &cx)
        .err()
        .expect("bad variant");
    assert!(e.message.contains("words"), "{}", e.message);
    for (key, v) in [
        ("top_rate", 0.0),
        ("filter_rate", 1.5),
        ("activation_bar_ratio", -0.1),
    ] {
        let e = lape_factory(&json!({ key: v }), &cx)
            .err()
            .expect("out of range");
        assert_eq!(e.key.as_deref(), Some(key));
        assert_eq!(e.message, format!("{key} must be in (0, 1], found {v}"));
    }
}
