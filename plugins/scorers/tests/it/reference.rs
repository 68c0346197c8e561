//! p, t, df, d, g, AUROC and corrections against scipy / statsmodels / sklearn values, to
//! 1e-10 relative (1e-12 absolute near 0). The statistics are rebuilt from the fixture's raw
//! token activations through `ActivationStats::add_item_layer`, as a backend would.

use std::path::PathBuf;

use serde_json::Value;
use valex_core::{ActivationStats, Moments, SplitMix64};
use valex_scorers::two_sample::welch;
use valex_scorers::{
    AurocMethod, Correction, Level, NormalizeBy, Statistic, act_prob_diff_scores, adjust_p,
    auroc_tables, mean_diff_scores, welch_tables, welch_tables_between, welch_tables_up_to,
};

fn fixture(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/stats")
        .join(name);
    serde_json::from_slice(&std::fs::read(&p).expect("fixture is committed")).expect("json")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// Asserts `got ≈ want`: 1e-10 relative, or 1e-12 absolute when both are near 0.
fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = g == w || (g - w).abs() <= 1e-12 || (g - w).abs() <= 1e-10 * w.abs();
        assert!(ok, "{what}[{i}]: valex {g:e} vs reference {w:e}");
    }
}

/// The fixture's recording as valex statistics (item means kept).
fn recorded() -> (ActivationStats, Value) {
    let doc = fixture("items_reference.json");
    let labels: Vec<String> = doc["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|l| l.as_str().expect("name").to_owned())
        .collect();
    let (nl, ni) = (
        usize::try_from(doc["n_layers"].as_u64().expect("n_layers")).expect("small"),
        usize::try_from(doc["n_neurons"].as_u64().expect("n_neurons")).expect("small"),
    );
    let mut stats = ActivationStats::new("mlp.gate_act", nl, ni, &labels).with_item_means();
    for (li, label) in labels.iter().enumerate() {
        for (key, item) in doc["items"][label]
            .as_array()
            .expect("items")
            .iter()
            .enumerate()
        {
            let tokens = item.as_array().expect("tokens");
            let n = tokens.len() as f64;
            let key = key as u64;
            stats.count_item(li, key, n);
            for layer in 0..nl {
                let (mut a, mut s, mut q) = (vec![0.0; ni], vec![0.0; ni], vec![0.0; ni]);
                for tok in tokens {
                    let row = floats(&tok[layer]);
                    for j in 0..ni {
                        a[j] += f64::from(u8::from(row[j] > 0.0));
                        s[j] += row[j];
                        q[j] += row[j] * row[j];
                    }
                }
                stats.add_item_layer(li, key, layer, n, &a, &s, &q);
            }
        }
    }
    let expected = doc["expected"].clone();
    (stats, expected)
}

#[test]
fn welch_t_df_p_and_corrections_match_scipy_and_statsmodels() {
    let (stats, exp) = recorded();
    let labels = stats.label_names();
    for (method, name) in [
        (Correction::Bh, "bh"),
        (Correction::Bonferroni, "bonferroni"),
        (Correction::Holm, "holm"),
    ] {
        let tables = welch_tables(&stats, &labels, Level::Items, method).expect("scores");
        for (label, w) in labels.iter().zip(&tables) {
            let e = &exp[label];
            assert_close(&format!("{label} t"), &w.t, &floats(&e["items_t"]));
            assert_close(&format!("{label} df"), &w.df, &floats(&e["items_df"]));
            assert_close(&format!("{label} p"), &w.p, &floats(&e["items_p"]));
            assert_close(
                &format!("{label} p {name}"),
                &w.p_adjusted,
                &floats(&e["items_p_adjusted"][name]),
            );
            assert_close(&format!("{label} d"), &w.d, &floats(&e["cohens_d"]));
        }
    }
    // The fixture reaches small p-values (c's neuron (1, 2)).
    let min_p = floats(&exp["c"]["items_p"]).into_iter().fold(1.0, f64::min);
    assert!(min_p < 1e-5, "{min_p}");
    let tokens = welch_tables(&stats, &labels, Level::Tokens, Correction::None).expect("scores");
    for (label, w) in labels.iter().zip(&tokens) {
        assert_close(
            &format!("{label} token t"),
            &w.t,
            &floats(&exp[label]["tokens_t"]),
        );
        assert_close(
            &format!("{label} token p"),
            &w.p,
            &floats(&exp[label]["tokens_p"]),
        );
    }
}

#[test]
fn effect_sizes_and_mean_differences_match_numpy() {
    let (stats, exp) = recorded();
    let labels = stats.label_names();
    for (stat, level, key) in [
        (Statistic::Raw, Level::Items, "items_raw_diff"),
        (Statistic::CohensD, Level::Items, "cohens_d"),
        (Statistic::HedgesG, Level::Items, "hedges_g"),
        (Statistic::GlassDelta, Level::Items, "glass_delta"),
        (Statistic::LayerZ, Level::Items, "items_layer_z"),
        (Statistic::Raw, Level::Tokens, "tokens_raw_diff"),
    ] {
        let scores = mean_diff_scores(&stats, &labels, level, stat, 1e-8).expect("scores");
        for (label, s) in labels.iter().zip(&scores) {
            assert_close(&format!("{label} {key}"), s, &floats(&exp[label][key]));
        }
    }
    let deltas = act_prob_diff_scores(&stats, &labels, NormalizeBy::Tokens).expect("scores");
    for (label, d) in labels.iter().zip(&deltas) {
        assert_close(
            &format!("{label} act_prob_diff"),
            d,
            &floats(&exp[label]["act_prob_diff"]),
        );
    }
}

#[test]
fn auroc_matches_sklearn_ranks_and_the_binormal_formula() {
    let (stats, exp) = recorded();
    let labels = stats.label_names();
    let (ranks, used) = auroc_tables(&stats, &labels, AurocMethod::Auto).expect("ranks");
    assert_eq!(
        used,
        AurocMethod::Ranks,
        "item means are kept, so auto uses ranks"
    );
    let (binormal, _) = auroc_tables(&stats, &labels, AurocMethod::Binormal).expect("binormal");
    for (k, label) in labels.iter().enumerate() {
        assert_close(
            &format!("{label} auroc"),
            &ranks[k],
            &floats(&exp[label]["auroc_ranks"]),
        );
        assert_close(
            &format!("{label} binormal"),
            &binormal[k],
            &floats(&exp[label]["auroc_binormal"]),
        );
    }
    // Neuron (1, 5) is coarse (item means tie): ties are handled by midranks as sklearn does.
    let tied = 6 + 5;
    assert!(ranks.iter().all(|r| r[tied] > 0.0 && r[tied] < 1.0));
}

#[test]
fn welch_from_moments_matches_scipy_over_a_grid_of_tails() {
    let doc = fixture("welch_grid.json");
    let mut tiny = 0;
    for c in doc["welch"].as_array().expect("cases") {
        let m = |n: &str, mean: &str, var: &str| {
            let (n, mean, var) = (
                c[n].as_f64().expect("n"),
                c[mean].as_f64().expect("mean"),
                c[var].as_f64().expect("var"),
            );
            Moments {
                n,
                sum: n * mean,
                sum_sq: (n - 1.0) * var + n * mean * mean,
            }
        };
        let w = welch(m("n_a", "mean_a", "var_a"), m("n_c", "mean_c", "var_c"));
        let want = |k: &str| c[k].as_f64().expect("number");
        let case = format!("case {c}");
        assert_close(&format!("{case} t"), &[w.t], &[want("t")]);
        assert_close(&format!("{case} df"), &[w.df], &[want("df")]);
        assert_close(&format!("{case} p"), &[w.p], &[want("p")]);
        if want("p") > 0.0 && want("p") < 1e-30 {
            tiny += 1;
        }
    }
    assert!(
        tiny >= 3,
        "the grid reaches p-values below 1e-30 ({tiny} cases)"
    );
    let p = floats(&doc["p"]);
    for (method, name) in [
        (Correction::Bh, "bh"),
        (Correction::Bonferroni, "bonferroni"),
        (Correction::Holm, "holm"),
    ] {
        let got = adjust_p(&p, method).expect("valid p");
        assert_close(name, &got, &floats(&doc["p_adjusted"][name]));
    }
}

#[test]
fn p_values_left_out_above_the_cut_change_no_decision_below_it() {
    let (stats, _) = recorded();
    let labels = stats.label_names();
    for method in [Correction::Bh, Correction::Bonferroni, Correction::Holm] {
        for cut in [0.01, 0.05, 0.2] {
            let all = welch_tables(&stats, &labels, Level::Items, method).expect("scores");
            let some =
                welch_tables_up_to(&stats, &labels, Level::Items, method, cut).expect("scores");
            for (a, s) in all.iter().zip(&some) {
                assert_eq!(a.t, s.t);
                assert_eq!(a.df, s.df);
                for i in 0..a.p.len() {
                    if a.p[i] <= cut {
                        assert_eq!(a.p[i], s.p[i], "{method:?} {cut}: p[{i}]");
                    }
                    if a.p_adjusted[i] <= cut || s.p_adjusted[i] <= cut {
                        assert_eq!(a.p_adjusted[i], s.p_adjusted[i], "{method:?} {cut}: q[{i}]");
                    }
                }
            }
        }
    }
}

/// Token-level statistics where effects range from none to huge: p-values from 1 down to far
/// below `alpha / m`.
fn spread_of_effects() -> ActivationStats {
    let labels: Vec<String> = (0..4).map(|k| format!("v{k}")).collect();
    let mut s = ActivationStats::new("mlp.gate_act", 3, 400, &labels);
    let mut rng = SplitMix64::new(7);
    for l in &mut s.labels {
        l.items = 50;
        l.tokens = 5_000.0;
        for i in 0..3 * 400 {
            // Shifts in units of the token standard error sd/sqrt(n): 0 to ~40.
            let z = 40.0 * rng.next_f64().powi(3);
            let sd = 0.05 + 0.1 * rng.next_f64();
            let mean = 0.1 + z * sd / 5_000.0_f64.sqrt();
            l.active[i] = 2_500.0;
            l.sum[i] = mean * 5_000.0;
            l.sum_sq[i] = 5_000.0 * (sd * sd + mean * mean);
            l.item_sum[i] = mean * 50.0;
            l.item_sum_sq[i] = 49.0 * sd * sd + 50.0 * mean * mean;
        }
    }
    s
}

#[test]
fn p_values_left_out_by_rank_or_bounded_change_no_decision_between_alpha_and_the_cut() {
    let stats = spread_of_effects();
    let labels = stats.label_names();
    let m = 3.0 * 400.0;
    let (mut bounded, mut skipped) = (0, 0);
    for level in [Level::Tokens, Level::Items] {
        for method in [
            Correction::Bh,
            Correction::Bonferroni,
            Correction::Holm,
            Correction::None,
        ] {
            let all = welch_tables(&stats, &labels, level, method).expect("scores");
            for (alpha, cut) in [(0.05, 0.05), (0.01, 0.05), (0.001, 0.2)] {
                let some = welch_tables_between(&stats, &labels, level, method, alpha, cut)
                    .expect("scores");
                for (a, s) in all.iter().zip(&some) {
                    bounded += s.n_bounded;
                    for i in 0..a.p.len() {
                        let what = format!("{level:?} {method:?} alpha {alpha} cut {cut}: [{i}]");
                        if s.p[i] == 1.0 {
                            // Not evaluated: certainly not significant at `cut`.
                            skipped += usize::from(a.p[i] <= cut);
                        } else if s.p[i] <= alpha / m && s.p[i] != a.p[i] {
                            assert!(s.p[i] >= a.p[i], "{what} bound below p");
                        } else {
                            assert_eq!(a.p[i], s.p[i], "{what} p");
                        }
                        for lev in [alpha, (alpha + cut) / 2.0, cut] {
                            assert_eq!(
                                a.p_adjusted[i] <= lev,
                                s.p_adjusted[i] <= lev,
                                "{what} decision at {lev}: {} vs {}",
                                a.p_adjusted[i],
                                s.p_adjusted[i]
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(
        bounded > 1_000,
        "the fixture reaches below the floor ({bounded} bounded)"
    );
    assert!(
        skipped > 1_000,
        "p <= cut left out as not significant: {skipped}"
    );
}
