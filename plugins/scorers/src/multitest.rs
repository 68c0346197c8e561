//! Multiple-testing corrections of p-values (METHOD.md §6.4), with the semantics of
//! `statsmodels.stats.multitest.multipletests(p, method=..)` and its `pvals_corrected`:
//! - `bh` (`fdr_bh`, Benjamini–Hochberg): `p_(i) · m / i`, cumulative minimum from the largest
//!   p downwards, capped at 1 — controls the false discovery rate;
//! - `bonferroni`: `min(1, p · m)` — controls the family-wise error rate;
//! - `holm` (Holm–Bonferroni step-down): `(m − i + 1) · p_(i)`, cumulative maximum from the
//!   smallest p upwards, capped at 1 — family-wise, uniformly more powerful than Bonferroni;
//! - `none`: the p-values unchanged.
//!
//! `m` is the number of p-values passed (one family = one label's `L · I` neurons). NaN
//! p-values are not allowed (the scorers never produce them for groups of ≥ 2 items).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A correction method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Correction {
    /// Benjamini–Hochberg false discovery rate.
    #[default]
    Bh,
    /// Bonferroni.
    Bonferroni,
    /// Holm's step-down.
    Holm,
    /// No correction.
    None,
}

impl Correction {
    /// The name used in params and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Correction::Bh => "bh",
            Correction::Bonferroni => "bonferroni",
            Correction::Holm => "holm",
            Correction::None => "none",
        }
    }
}

/// Why p-values cannot be corrected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CorrectionError {
    /// There is nothing to correct.
    ///
    /// Resolution: score at least one neuron.
    #[error("p-value correction {0} on zero tests")]
    NoTests(&'static str),
    /// A p-value is NaN or outside [0, 1].
    ///
    /// Resolution: a bug in the scorer that produced it.
    #[error("p-value {value} at test {index} is not in [0, 1]")]
    OutOfRange {
        /// Position of the p-value.
        index: usize,
        /// The value (as text, NaN included).
        value: String,
    },
}

/// Adjusted p-values, in the order of `p`.
///
/// # Errors
/// An empty `p`, or a p-value that is NaN or outside `[0, 1]`.
pub fn adjust_p(p: &[f64], method: Correction) -> Result<Vec<f64>, CorrectionError> {
    if p.is_empty() {
        return Err(CorrectionError::NoTests(method.as_str()));
    }
    if let Some((index, v)) = p
        .iter()
        .enumerate()
        .find(|(_, v)| !(0.0..=1.0).contains(*v))
    {
        return Err(CorrectionError::OutOfRange {
            index,
            value: v.to_string(),
        });
    }
    #[expect(clippy::cast_precision_loss, reason = "test counts are far below 2^53")]
    let m = p.len() as f64;
    match method {
        Correction::None => return Ok(p.to_vec()),
        Correction::Bonferroni => return Ok(p.iter().map(|&x| (x * m).min(1.0)).collect()),
        Correction::Bh | Correction::Holm => {}
    }
    // Stable ascending order, like numpy's argsort(kind="mergesort") in statsmodels. p = 1 is
    // the largest possible value (and common: untested or null neurons), so those indices go
    // last in index order without entering the sort.
    // Sorting (p, index) pairs, ties broken by index, gives the stable order without the cache
    // misses of sorting indices through `p`.
    let mut keyed: Vec<(f64, usize)> = p
        .iter()
        .enumerate()
        .filter(|&(_, &x)| x < 1.0)
        .map(|(i, &x)| (x, i))
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    order.extend((0..p.len()).filter(|&i| p[i] >= 1.0));
    let mut out = vec![0.0; p.len()];
    match method {
        Correction::Bh => {
            let mut running = f64::INFINITY;
            for (rank, &i) in order.iter().enumerate().rev() {
                #[expect(clippy::cast_precision_loss, reason = "ranks are far below 2^53")]
                let ecdf = (rank + 1) as f64 / m;
                running = running.min(p[i] / ecdf);
                out[i] = running.min(1.0);
            }
        }
        Correction::Holm => {
            let mut running = 0.0_f64;
            for (rank, &i) in order.iter().enumerate() {
                #[expect(clippy::cast_precision_loss, reason = "ranks are far below 2^53")]
                let factor = m - rank as f64;
                running = running.max(p[i] * factor);
                out[i] = running.min(1.0);
            }
        }
        Correction::Bonferroni | Correction::None => unreachable!("handled above"),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrections_match_hand_computed_values() {
        let p = [0.01, 0.04, 0.03, 0.5];
        let bh = adjust_p(&p, Correction::Bh).expect("valid");
        // sorted 0.01 0.03 0.04 0.5 -> 0.04, 0.04/.. : 0.01*4/1=0.04, 0.03*4/2=0.06, 0.04*4/3=0.0533, 0.5
        // cumulative min from the top: 0.04, 0.0533, 0.0533, 0.5
        let want_bh = [0.04, 0.04 * 4.0 / 3.0, 0.04 * 4.0 / 3.0, 0.5];
        for (g, w) in bh.iter().zip(want_bh) {
            assert!((g - w).abs() < 1e-15, "{bh:?}");
        }
        assert_eq!(
            adjust_p(&p, Correction::Bonferroni).expect("valid"),
            vec![0.04, 0.16, 0.12, 1.0]
        );
        let holm = adjust_p(&p, Correction::Holm).expect("valid");
        // 0.01*4=0.04, 0.03*3=0.09, 0.04*2=0.08 -> max 0.09, 0.5*1 -> 0.5
        let want_holm = [0.04, 0.09, 0.09, 0.5];
        for (g, w) in holm.iter().zip(want_holm) {
            assert!((g - w).abs() < 1e-15, "{holm:?}");
        }
        assert_eq!(adjust_p(&p, Correction::None).expect("valid"), p.to_vec());
    }

    #[test]
    fn zero_tests_and_invalid_p_values_are_errors() {
        assert_eq!(
            adjust_p(&[], Correction::Bh)
                .expect_err("empty")
                .to_string(),
            "p-value correction bh on zero tests"
        );
        assert_eq!(
            adjust_p(&[0.1, f64::NAN], Correction::Holm)
                .expect_err("nan")
                .to_string(),
            "p-value NaN at test 1 is not in [0, 1]"
        );
    }
}
