use super::*;

#[derive(serde::Deserialize)]
struct Expected {
    delta: f64,
    ci95: [f64; 2],
    p_permutation: f64,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    seed: u64,
    label: String,
    language: String,
    bootstrap: usize,
    permutations: usize,
    base: Vec<f64>,
    cond: Vec<f64>,
    expected: Expected,
}

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12
}

#[test]
fn matches_the_python_reference_to_1e_12() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/analysis/reference.json");
    let text = std::fs::read_to_string(&path).expect("the committed reference fixture");
    let r: Reference = serde_json::from_str(&text).unwrap();
    assert_eq!(r.cases.len(), 3);
    for c in &r.cases {
        let rs = CellResamples::new(
            c.seed,
            &c.label,
            &c.language,
            c.base.len(),
            c.bootstrap,
            c.permutations,
        );
        let (ci, p) = rs.analyse(&c.base, &c.cond);
        let (ci, p) = (ci.unwrap(), p.unwrap());
        let d = delta(&c.base, &c.cond);
        assert!(
            close(d, c.expected.delta),
            "{}: Δ {d} vs {}",
            c.name,
            c.expected.delta
        );
        assert!(
            close(ci[0], c.expected.ci95[0]) && close(ci[1], c.expected.ci95[1]),
            "{}: CI {ci:?} vs {:?}",
            c.name,
            c.expected.ci95
        );
        assert!(
            close(p, c.expected.p_permutation),
            "{}: p {p} vs {}",
            c.name,
            c.expected.p_permutation
        );
        assert!(ci[0] <= d && d <= ci[1], "{}: the CI holds Δ", c.name);
    }
}

#[test]
fn identical_conditions_have_p_one_and_a_zero_ci() {
    let base = [1.0, 0.5, 0.0, 1.0, 0.5, 1.0, 0.0, 0.25];
    let rs = CellResamples::new(11, "x", "en", base.len(), 300, 400);
    let (ci, p) = rs.analyse(&base, &base);
    assert_eq!(p, Some(1.0));
    assert_eq!(ci, Some([0.0, 0.0]));
}

#[test]
fn a_large_consistent_effect_has_the_minimum_p() {
    let base = vec![1.0; 40];
    let cond: Vec<f64> = (0..40).map(|i| 0.2 + 0.001 * f64::from(i)).collect();
    let rs = CellResamples::new(11, "x", "en", base.len(), 100, 999);
    let (ci, p) = rs.analyse(&base, &cond);
    assert_eq!(p, Some(1.0 / 1000.0));
    let [lo, hi] = ci.unwrap();
    let d = delta(&base, &cond);
    assert!(lo < hi && lo <= d && d <= hi && hi < 0.0, "{lo} {d} {hi}");
}

#[test]
fn streams_are_deterministic_and_depend_on_the_cell() {
    let a = CellResamples::new(5, "诚信", "zh", 10, 20, 20);
    let b = CellResamples::new(5, "诚信", "zh", 10, 20, 20);
    let c = CellResamples::new(5, "诚信", "en", 10, 20, 20);
    assert_eq!(a.indices, b.indices);
    assert_eq!(a.flips, b.flips);
    assert_ne!(a.indices, c.indices);
    assert!(a.indices.iter().flatten().all(|&i| i < 10));
    assert_eq!((a.indices.len(), a.indices[0].len()), (20, 10));
    // The first draw of the bootstrap stream is fixed forever.
    let mut g = SplitMix64::derive(5, "analysis/bootstrap/诚信/zh");
    assert_eq!(u64::from(a.indices[0][0]), g.below(10));
}

#[test]
fn quantiles_interpolate_linearly_and_degenerate_inputs_give_none() {
    let x = [1.0, 2.0, 4.0, 8.0];
    assert_eq!(quantile(&x, 0.0), 1.0);
    assert_eq!(quantile(&x, 1.0), 8.0);
    assert_eq!(quantile(&x, 0.5), 3.0);
    assert!((quantile(&x, 0.025) - 1.075).abs() < 1e-15);
    assert_eq!(quantile(&[3.0], 0.975), 3.0);
    assert_eq!(bootstrap_ci(&[1.0], &[1.0], &[]), None);
    assert_eq!(permutation_p(&[], &[], &[vec![]]), None);
    assert_eq!(permutation_p(&[1.0], &[1.0, 2.0], &[vec![true]]), None);
}

#[test]
fn unscored_items_leave_the_pairs_and_all_scored_vectors_stay_as_they_are() {
    assert_eq!(complete_pairs(&[1.0, 2.0], &[3.0, 4.0]), None);
    assert_eq!(paired_delta(&[1.0, 2.0], &[3.0, 5.0]), 2.5);
    let (b, c) = complete_pairs(&[1.0, f64::NAN, 3.0, 4.0], &[2.0, 9.0, f64::NAN, 8.0]).unwrap();
    assert_eq!((b, c), (vec![1.0, 4.0], vec![2.0, 8.0]));
    assert_eq!(
        paired_delta(&[1.0, f64::NAN, 3.0, 4.0], &[2.0, 9.0, f64::NAN, 8.0]),
        2.5
    );
    assert!(paired_delta(&[f64::NAN], &[1.0]).is_nan());
}
