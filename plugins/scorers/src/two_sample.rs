//! Two-sample statistics of one neuron from its [`Moments`]: Welch's t-test, effect sizes
//! (Cohen's d, Hedges' g, Glass's Δ) and the binormal AUROC. METHOD.md §6.4–6.6.
//!
//! Conventions where the formulas are undefined (documented in docs/scorers.md):
//! - both groups without spread (`s_A = s_C = 0`): equal means give `t = 0`, `p = 1`,
//!   `d = 0`; different means give `t = ±inf`, `p = 0`, `d = ±inf` (scipy returns NaN for
//!   the first and ±inf for the second);
//! - `df` is then `n_A + n_C − 2`.
//!
//! Everything is `f64`; the two-sided p-value is `2 · F_ν(−|t|)` from statrs's Student's t,
//! which evaluates the lower tail directly (`½ · I_{ν/(ν+t²)}(ν/2, ½)`), so small p-values keep
//! their relative precision.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use valex_core::Moments;

/// Welch's unequal-variance t-test of group A against group C.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// `t = (μ_A − μ_C) / √(s_A²/n_A + s_C²/n_C)`.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Welch's t-test from the moments of both groups (each needs `n ≥ 2`; otherwise every field
/// is NaN).
pub fn welch(a: Moments, c: Moments) -> Welch {
    if a.n < 2.0 || c.n < 2.0 {
        return Welch {
            t: f64::NAN,
            df: f64::NAN,
            p: f64::NAN,
        };
    }
    let (va, vc) = (a.var() / a.n, c.var() / c.n);
    let se2 = va + vc;
    let diff = a.mean() - c.mean();
    if se2 == 0.0 {
        let df = a.n + c.n - 2.0;
        return if diff == 0.0 {
            Welch { t: 0.0, df, p: 1.0 }
        } else {
            Welch {
                t: diff.signum() * f64::INFINITY,
                df,
                p: 0.0,
            }
        };
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (va * va / (a.n - 1.0) + vc * vc / (c.n - 1.0));
    Welch {
        t,
        df,
        p: two_sided_p(t, df),
    }
}

/// How [`welch_and_d`] may skip the exact p-value (see [`crate::welch_t::welch_tables_between`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PWindow {
    /// `|t| < z_cut`: `p = 1` without evaluation (`0`: never).
    pub z_cut: f64,
    /// An upper bound of `p` at or below `p_floor` replaces `p` (`0`: never).
    pub p_floor: f64,
}

impl PWindow {
    /// Every p-value exact.
    pub const EXACT: PWindow = PWindow {
        z_cut: 0.0,
        p_floor: 0.0,
    };
    /// No p-value evaluated (`p = 1`), except the free ones of infinite or NaN `t`.
    pub const SKIP: PWindow = PWindow {
        z_cut: f64::INFINITY,
        p_floor: 0.0,
    };
}

/// A rigorous upper bound of the two-sided tail `P(|T_ν| ≥ |t|)` of Student's t, for `ν > 1`
/// and `t ≠ 0`; cheap (one `ln_1p`, one `exp`), within a factor `≈ 1 + 1/t²` of the exact tail
/// for large `ν`.
///
/// Derivation: `P(T ≥ t) = ∫_t^∞ c_ν (1 + x²/ν)^{−(ν+1)/2} dx ≤ ∫_t^∞ (x/t) c_ν (…) dx
/// = c_ν · ν / ((ν − 1) t) · (1 + t²/ν)^{−(ν−1)/2}`, and Wendel's inequality
/// `Γ(x + ½)/Γ(x) ≤ √x` gives `c_ν = Γ((ν+1)/2) / (√(νπ) Γ(ν/2)) ≤ 1/√(2π)`. A relative margin
/// of 1e-9 covers the rounding of `ln_1p` and `exp`. Returns `+inf` where it does not apply.
pub fn two_sided_p_upper_bound(t: f64, df: f64) -> f64 {
    let t = t.abs();
    if !(df > 1.0 && t > 0.0 && t.is_finite() && df.is_finite()) {
        return f64::INFINITY;
    }
    let log_kernel = -0.5 * (df - 1.0) * (t * t / df).ln_1p();
    let bound =
        2.0 / (2.0 * std::f64::consts::PI).sqrt() * df / ((df - 1.0) * t) * log_kernel.exp();
    bound * (1.0 + 1e-9)
}

/// [`welch`] and [`cohens_d`] in one pass over the moments, with the p-value skipped as
/// `window` allows: `p = 1` when `|t| < z_cut`, an upper bound `≤ p_floor` where one is found
/// (then the second value returned is `true`). With [`PWindow::EXACT`] it is bit-identical to
/// the separate functions.
pub fn welch_and_d(a: Moments, c: Moments, window: PWindow) -> (Welch, f64, bool) {
    if a.n < 2.0 || c.n < 2.0 {
        return (welch(a, c), cohens_d(a, c), false);
    }
    let (var_a, var_c) = (a.var(), c.var());
    let diff = a.mean() - c.mean();
    let sp = (((a.n - 1.0) * var_a + (c.n - 1.0) * var_c) / (a.n + c.n - 2.0)).sqrt();
    let d = standardise(diff, sp);
    let (va, vc) = (var_a / a.n, var_c / c.n);
    let se2 = va + vc;
    if se2 == 0.0 {
        return (welch(a, c), d, false);
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (va * va / (a.n - 1.0) + vc * vc / (c.n - 1.0));
    let (p, bounded) = windowed_p(t, df, window);
    (Welch { t, df, p }, d, bounded)
}

/// The two-sided p-value of `t` with `df` degrees of freedom as `window` allows: `1` when
/// `|t| < z_cut`, an upper bound `≤ p_floor` where [`two_sided_p_upper_bound`] finds one (then
/// `true`), otherwise [`two_sided_p`].
pub fn windowed_p(t: f64, df: f64, window: PWindow) -> (f64, bool) {
    if t.abs() < window.z_cut {
        return (1.0, false);
    }
    if window.p_floor > 0.0 {
        let bound = two_sided_p_upper_bound(t, df);
        if bound <= window.p_floor {
            return (bound, true);
        }
    }
    (two_sided_p(t, df), false)
}

/// Two-sided p-value of `t` under Student's t with `df` degrees of freedom (statrs).
pub fn two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0 was checked");
    (2.0 * dist.cdf(-t.abs())).min(1.0)
}

/// The pooled standard deviation `s_p = √[((n_A−1)s_A² + (n_C−1)s_C²)/(n_A+n_C−2)]`.
pub fn pooled_sd(a: Moments, c: Moments) -> f64 {
    let num = (a.n - 1.0) * a.var() + (c.n - 1.0) * c.var();
    (num / (a.n + c.n - 2.0)).sqrt()
}

/// `diff / sd`, with `0/0 = 0` and `x/0 = ±inf` (see the module docs).
fn standardise(diff: f64, sd: f64) -> f64 {
    if sd == 0.0 {
        if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        }
    } else {
        diff / sd
    }
}

/// Cohen's d: `(μ_A − μ_C) / s_p`.
pub fn cohens_d(a: Moments, c: Moments) -> f64 {
    standardise(a.mean() - c.mean(), pooled_sd(a, c))
}

/// Hedges' g: `d · (1 − 3 / (4(n_A + n_C) − 9))`.
pub fn hedges_g(a: Moments, c: Moments) -> f64 {
    cohens_d(a, c) * (1.0 - 3.0 / (4.0 * (a.n + c.n) - 9.0))
}

/// Glass's Δ: `(μ_A − μ_C) / s_C`.
pub fn glass_delta(a: Moments, c: Moments) -> f64 {
    standardise(a.mean() - c.mean(), c.var().sqrt())
}

/// AUROC under the binormal model with unequal variances:
/// `Φ((μ_A − μ_C) / √(s_A² + s_C²))` (0.5 when both groups have no spread and equal means).
pub fn auroc_binormal(a: Moments, c: Moments) -> f64 {
    let z = standardise(a.mean() - c.mean(), (a.var() + c.var()).sqrt());
    if z.is_nan() {
        return f64::NAN;
    }
    Normal::standard().cdf(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(xs: &[f64]) -> Moments {
        Moments {
            n: xs.len() as f64,
            sum: xs.iter().sum(),
            sum_sq: xs.iter().map(|x| x * x).sum(),
        }
    }

    #[test]
    fn welch_matches_the_textbook_example() {
        // DEPS.md §5: statrs's Welch test equals scipy's ttest_ind(equal_var=False) here.
        let a = moments(&[
            27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7,
            21.4,
        ]);
        let c = moments(&[
            27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5,
            24.4,
        ]);
        let w = welch(a, c);
        // scipy.stats.ttest_ind(a, c, equal_var=False): t = -2.4553558, p = 0.0213780, df = 24.9885
        assert!((w.t + 2.455_355_8).abs() < 1e-6, "{w:?}");
        assert!((w.df - 24.988_5).abs() < 1e-3, "{w:?}");
        assert!((w.p - 0.021_378_0).abs() < 1e-6, "{w:?}");
    }

    #[test]
    fn degenerate_groups_follow_the_documented_conventions() {
        let zero = moments(&[0.0, 0.0, 0.0]);
        let one = moments(&[1.0, 1.0]);
        assert_eq!(
            welch(zero, zero),
            Welch {
                t: 0.0,
                df: 4.0,
                p: 1.0
            }
        );
        let w = welch(one, zero);
        assert_eq!((w.t, w.p, w.df), (f64::INFINITY, 0.0, 3.0));
        assert_eq!(cohens_d(zero, zero), 0.0);
        assert_eq!(cohens_d(zero, one), f64::NEG_INFINITY);
        assert_eq!(auroc_binormal(zero, zero), 0.5);
        assert_eq!(auroc_binormal(one, zero), 1.0);
        assert!(welch(moments(&[1.0]), one).t.is_nan());
    }

    #[test]
    fn tiny_p_values_keep_relative_precision() {
        // 2·F_ν(−40) for ν = 100 is ~1e-63: computed from the lower tail, not 1 − cdf.
        let p = two_sided_p(40.0, 100.0);
        assert!(p > 0.0 && p < 1e-50, "{p}");
        assert_eq!(two_sided_p(0.0, 10.0), 1.0);
    }

    #[test]
    fn large_df_precision_is_as_documented() {
        // scipy.stats.t.cdf references. statrs forms ln Γ(ν/2 + ½) − ln Γ(ν/2), which loses
        // about ε · ln Γ(ν/2) relative precision: < 1e-11 up to ν = 1e4, ~1e-9 at ν = 1e6.
        for (df, t, want, tol) in [
            (1e4, -2.0, 0.045_527_260_661_435_43, 1e-10),
            (1e4, -6.0, 2.041_618_472_922_621_3e-9, 1e-10),
            (1e5, -6.0, 1.979_929_455_601_771_8e-9, 1e-9),
            (1e6, -6.0, 1.973_849_812_354_43e-9, 1e-8),
        ] {
            let got = two_sided_p(t, df);
            assert!((got - want).abs() / want < tol, "df {df}: {got} vs {want}");
        }
    }

    #[test]
    fn the_tail_bound_is_above_the_exact_p_and_close_to_it_in_the_far_tail() {
        for df in [1.5, 2.0, 3.0, 10.0, 57.3, 400.0, 1e4, 1e5] {
            for t in [0.1, 1.0, 1.96, 3.0, 6.0, 10.0, 25.0, -7.5] {
                let exact = two_sided_p(t, df);
                let bound = two_sided_p_upper_bound(t, df);
                assert!(bound >= exact, "df {df}, t {t}: bound {bound} < p {exact}");
                // Beyond |t| = 6 with many degrees of freedom the bound is within 4 %.
                if df >= 400.0 && t.abs() >= 6.0 {
                    assert!(bound <= exact * 1.04, "df {df}, t {t}: {bound} vs {exact}");
                }
            }
        }
        assert_eq!(two_sided_p_upper_bound(3.0, 1.0), f64::INFINITY);
        assert_eq!(two_sided_p_upper_bound(0.0, 10.0), f64::INFINITY);
    }
}
