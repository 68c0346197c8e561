use super::*;

fn cfg(v: Value) -> SelectionConfig {
    serde_json::from_value(v).expect("valid selection table")
}

fn sel(v: Value, default_rule: RuleName) -> Selection {
    cfg(v).resolve(default_rule, true).expect("resolves")
}

/// 2 layers x 4 neurons.
const SCORES: [f64; 8] = [0.5, -0.9, 0.1, f64::NAN, 0.7, 0.5, -0.2, 0.05];

fn layers(s: &Selected) -> Vec<Vec<u32>> {
    s.set.layers().to_vec()
}

#[test]
fn ranked_rules_keep_the_best_keys_with_ties_by_index() {
    let s = sel(json!({"k": 3}), RuleName::TopK).select(&SCORES, None, None, 2, 4);
    // 0.7 (4), then 0.5 at 0 and 5: index 0 wins the tie for second, 5 third.
    assert_eq!(layers(&s), vec![vec![0], vec![0, 1]]);
    assert_eq!(s.min_key, Some(0.5));
    assert_eq!(s.n_candidates, 7, "NaN is never a candidate");
    let s =
        sel(json!({"k": 2, "sign": "negative"}), RuleName::TopK).select(&SCORES, None, None, 2, 4);
    assert_eq!(layers(&s), vec![vec![1], vec![2]]);
    let s = sel(json!({"k": 1, "sign": "both"}), RuleName::TopK).select(&SCORES, None, None, 2, 4);
    assert_eq!(layers(&s), vec![vec![1], vec![]]);
    // round(0.25 * 8) = 2.
    let s = sel(json!({"rate": 0.25}), RuleName::TopRate).select(&SCORES, None, None, 2, 4);
    assert_eq!(s.set.len(), 2);
    // k larger than the candidates keeps them all.
    let s = sel(json!({"k": 100}), RuleName::TopK).select(&SCORES, None, None, 2, 4);
    assert_eq!(s.set.len(), 7);
}

#[test]
fn thresholds_fdr_and_the_npti_union() {
    let s = sel(json!({"threshold": 0.1}), RuleName::Threshold).select(&SCORES, None, None, 2, 4);
    assert_eq!(layers(&s), vec![vec![0, 2], vec![0, 1]]);
    let s = sel(
        json!({"rule": "threshold", "threshold": 0.5, "sign": "both"}),
        RuleName::TopK,
    )
    .select(&SCORES, None, None, 2, 4);
    assert_eq!(layers(&s), vec![vec![0, 1], vec![0, 1]]);
    let p = [0.01, 0.001, 0.2, 1.0, 0.04, 0.06, 0.0, 0.05];
    let s = sel(json!({}), RuleName::Fdr).select(&SCORES, Some(&p), None, 2, 4);
    // q = 0.05 and positive: 0 (0.01), 4 (0.04), 7 (0.05); 1 and 6 are negative.
    assert_eq!(layers(&s), vec![vec![0], vec![0, 3]]);
    let s = sel(json!({"sign": "both", "q": 0.01}), RuleName::Fdr).select(
        &SCORES,
        Some(&p),
        None,
        2,
        4,
    );
    assert_eq!(layers(&s), vec![vec![0, 1], vec![2]]);
    let s = sel(
        json!({"rule": "top-k-plus-threshold", "k": 1, "threshold": 0.1}),
        RuleName::TopRate,
    )
    .select(&SCORES, None, None, 2, 4);
    assert_eq!(layers(&s), vec![vec![0, 2], vec![0, 1]]);
    let s = sel(
        json!({"rule": "top-k-plus-threshold", "k": 5, "threshold": 0.6}),
        RuleName::TopRate,
    )
    .select(&SCORES, None, None, 2, 4);
    assert_eq!(s.set.len(), 5);
}

#[test]
fn per_layer_caps_refill_ranked_rules_and_trim_the_others() {
    let eligible = [true, true, true, true, true, true, false, true];
    let s = sel(json!({"k": 3, "per_layer_cap": 1}), RuleName::TopK).select(
        &SCORES,
        None,
        Some(&eligible),
        2,
        4,
    );
    // Layer 1 keeps only 4 (0.7); layer 0 keeps 0 (0.5); only 2 layers, so 2 neurons.
    assert_eq!(layers(&s), vec![vec![0], vec![0]]);
    let s = sel(
        json!({"threshold": -1.0, "per_layer_cap": 2}),
        RuleName::Threshold,
    )
    .select(&SCORES, None, Some(&eligible), 2, 4);
    assert_eq!(layers(&s), vec![vec![0, 2], vec![0, 1]]);
}

#[test]
fn nothing_selected_is_an_empty_set() {
    let s = sel(json!({"threshold": 5.0}), RuleName::Threshold).select(&SCORES, None, None, 2, 4);
    assert!(s.set.is_empty());
    assert_eq!(s.set.n_layers(), 2);
    assert_eq!(s.min_key, None);
}

#[test]
fn invalid_tables_name_the_key() {
    let e = |v: Value, rule: RuleName, has_p: bool| {
        let e = cfg(v).resolve(rule, has_p).expect_err("invalid");
        (e.key.expect("key"), e.message)
    };
    assert_eq!(
        e(json!({"k": 5}), RuleName::TopRate, false),
        (
            "selection.k".into(),
            "selection.k is not used by rule top-rate; it takes rate".into()
        )
    );
    assert_eq!(
        e(json!({}), RuleName::TopK, false),
        ("selection.k".into(), "rule top-k needs selection.k".into())
    );
    assert_eq!(
        e(json!({"rate": 0.0}), RuleName::TopRate, false).1,
        "selection.rate must be in (0, 1], found 0"
    );
    assert_eq!(
        e(json!({"rule": "fdr"}), RuleName::TopRate, false).0,
        "selection.rule"
    );
    assert_eq!(
        e(json!({"k": 2, "per_layer_cap": 0}), RuleName::TopK, false).0,
        "selection.per_layer_cap"
    );
    let unknown: Result<SelectionConfig, _> = serde_json::from_value(json!({"rul": "top-k"}));
    assert!(
        unknown
            .expect_err("unknown field")
            .to_string()
            .contains("unknown field `rul`")
    );
}

#[test]
fn describe_and_overlaps_report_the_rule_and_pairwise_sets() {
    let s = sel(json!({"k": 3, "sign": "both"}), RuleName::TopK);
    assert_eq!(
        s.describe(),
        json!({"rule": "top-k", "k": 3, "sign": "both", "per_layer_cap": null})
    );
    let sets = vec![
        (
            "a".to_owned(),
            NeuronSet::from_layers(vec![vec![1, 2], vec![3]]),
        ),
        (
            "b".to_owned(),
            NeuronSet::from_layers(vec![vec![2], vec![3, 4]]),
        ),
        ("c".to_owned(), NeuronSet::empty(2)),
    ];
    let o = overlaps(&sets);
    assert_eq!(o["intersection"], json!([[3, 2, 0], [2, 3, 0], [0, 0, 0]]));
    assert_eq!(o["jaccard"][0][1], json!(0.5));
    assert_eq!(o["jaccard"][2][2], json!(1.0));
    assert_eq!(o["jaccard"][0][2], json!(0.0));
}

// Property tests (issue #10 item 2): selection rules are monotone in their thresholds.
mod monotone {
    use super::*;
    use proptest::prelude::*;

    const L: usize = 3;
    const I: usize = 5;

    fn is_subset(a: &NeuronSet, b: &NeuronSet) -> bool {
        a.layers()
            .iter()
            .enumerate()
            .all(|(l, ns)| ns.iter().all(|&n| b.contains(l, n)))
    }

    /// Scores with ties (a coarse grid) and the odd NaN, as scorers produce them.
    fn scores() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(
            prop_oneof![9 => (-8_i32..=8).prop_map(|v| f64::from(v) / 4.0), 1 => Just(f64::NAN)],
            L * I,
        )
    }

    fn sign() -> impl Strategy<Value = Sign> {
        prop_oneof![Just(Sign::Positive), Just(Sign::Negative), Just(Sign::Both)]
    }

    fn select(rule: Rule, sign: Sign, cap: Option<usize>, s: &[f64], p: &[f64]) -> NeuronSet {
        let sel = Selection {
            rule,
            sign,
            per_layer_cap: cap,
        };
        sel.select(s, Some(p), None, L, I).set
    }

    #[test]
    fn fdr_with_a_cap_is_not_monotone_in_q() {
        // Layer 0: neuron 1 (key 0.25, p 0) and neuron 4 (key 0.5, p 0.4); cap 1.
        let mut s = vec![0.0; L * I];
        let mut p = vec![1.0; L * I];
        (s[1], p[1], s[4], p[4]) = (0.25, 0.0, 0.5, 0.4);
        let loose = select(Rule::Fdr(0.5), Sign::Positive, Some(1), &s, &p);
        let strict = select(Rule::Fdr(0.3), Sign::Positive, Some(1), &s, &p);
        assert_eq!(loose.layers()[0], vec![4]);
        assert_eq!(strict.layers()[0], vec![1]);
    }

    proptest! {
        #[test]
        fn raising_a_threshold_never_adds_neurons(
            s in scores(),
            p in prop::collection::vec(0.0_f64..=1.0, L * I),
            sign in sign(),
            cap in prop::option::of(1_usize..=I),
            t in -2.0_f64..2.0,
            dt in 0.0_f64..2.0,
            k in 0_usize..=L * I,
        ) {
            let low = select(Rule::Threshold(t), sign, cap, &s, &p);
            let high = select(Rule::Threshold(t + dt), sign, cap, &s, &p);
            prop_assert!(is_subset(&high, &low), "threshold {t} -> {}: {high:?} not in {low:?}", t + dt);
            let low = select(Rule::TopKPlusThreshold(k, t), sign, cap, &s, &p);
            let high = select(Rule::TopKPlusThreshold(k, t + dt), sign, cap, &s, &p);
            prop_assert!(is_subset(&high, &low));
            // fdr: a smaller q is the stricter threshold. Only without a cap: the cap ranks by
            // key, not by p, so a smaller q that drops a layer's best key lets the next
            // significant neuron of that layer in (docs/scorers.md; found by this test).
            let q = 1.0 - dt / 2.0;
            let loose = select(Rule::Fdr(q), sign, None, &s, &p);
            let strict = select(Rule::Fdr(q / 2.0), sign, None, &s, &p);
            prop_assert!(is_subset(&strict, &loose));
        }

        #[test]
        fn top_k_with_a_larger_k_is_a_superset(
            s in scores(),
            sign in sign(),
            cap in prop::option::of(1_usize..=I),
            k in 0_usize..=L * I,
            dk in 0_usize..=L * I,
            t in -2.0_f64..2.0,
            rate in 0.0_f64..=1.0,
            drate in 0.0_f64..=1.0,
        ) {
            let p = vec![0.5; L * I];
            let small = select(Rule::TopK(k), sign, cap, &s, &p);
            let large = select(Rule::TopK(k + dk), sign, cap, &s, &p);
            prop_assert!(is_subset(&small, &large), "k {k} -> {}: {small:?} not in {large:?}", k + dk);
            prop_assert!(small.len() <= k);
            let small = select(Rule::TopKPlusThreshold(k, t), sign, cap, &s, &p);
            let large = select(Rule::TopKPlusThreshold(k + dk, t), sign, cap, &s, &p);
            prop_assert!(is_subset(&small, &large));
            let hi = (rate + drate).min(1.0);
            let small = select(Rule::TopRate(rate), sign, cap, &s, &p);
            let large = select(Rule::TopRate(hi), sign, cap, &s, &p);
            prop_assert!(is_subset(&small, &large), "rate {rate} -> {hi}");
        }
    }
}
