//! Paired resampling statistics of one evaluation condition against the baseline: the 95 %
//! percentile bootstrap CI of Δ and the two-sided sign-flip permutation p-value.
//!
//! Pure functions over per-item scores; the random streams come from [`SplitMix64`], whose
//! output is fixed forever, and are built once per evaluation cell so every condition of a
//! cell sees the same resampled items and the same sign flips ([`CellResamples`]).
//! tests/fixtures/analysis/make_reference.py re-implements all of it in Python (numpy); the
//! tests below require agreement to 1e-12.
//!
//! Definitions, for `n` paired items with baseline scores `b` and condition scores `c`:
//! - `Δ = mean(c) − mean(b)`, each mean a left-to-right sum divided by `n`.
//! - Bootstrap: replicate `r` draws `n` indices `i_1..i_n` uniformly with replacement
//!   (`below(n)`, in order) and computes `Δ*_r = mean(c[i]) − mean(b[i])`; the CI is the
//!   2.5th and 97.5th percentiles of the `Δ*` with linear interpolation (numpy's default,
//!   Hyndman & Fan type 7).
//! - Permutation: with `d = c − b` per item and `T = mean(d)`, permutation `r` draws one sign
//!   per item (the top bit of `next_u64()`: 1 flips) and computes `T*_r = mean(±d)`;
//!   `p = (1 + #{r : |T*_r| ≥ |T| − tol}) / (1 + R)`, with `tol = 1e-9·|T|` so that ties
//!   are counted in spite of rounding. `p` is never 0; its minimum is `1 / (1 + R)`.

use valex_core::SplitMix64;

/// The purpose string of a cell's bootstrap stream: `analysis/bootstrap/<label>/<language>`.
pub fn bootstrap_purpose(label: &str, language: &str) -> String {
    format!("analysis/bootstrap/{label}/{language}")
}

/// The purpose string of a cell's permutation stream: `analysis/permutation/<label>/<language>`.
pub fn permutation_purpose(label: &str, language: &str) -> String {
    format!("analysis/permutation/{label}/{language}")
}

/// Mean as a left-to-right sum divided by the length (`NaN` for an empty slice).
pub fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// `Δ = mean(cond) − mean(base)`.
pub fn delta(base: &[f64], cond: &[f64]) -> f64 {
    mean(cond) - mean(base)
}

/// `replicates` bootstrap index vectors of length `n`, drawn in order from `rng`.
pub fn bootstrap_indices(rng: &mut SplitMix64, n: usize, replicates: usize) -> Vec<Vec<u32>> {
    let n64 = n as u64;
    (0..replicates)
        .map(|_| {
            (0..n)
                .map(|_| u32::try_from(rng.below(n64)).expect("item counts fit u32"))
                .collect()
        })
        .collect()
}

/// `permutations` sign vectors of length `n` (`true` flips the item's difference).
pub fn sign_flips(rng: &mut SplitMix64, n: usize, permutations: usize) -> Vec<Vec<bool>> {
    (0..permutations)
        .map(|_| (0..n).map(|_| rng.next_u64() >> 63 == 1).collect())
        .collect()
}

/// The `q`-quantile (`q` in [0, 1]) of ascending `sorted` by linear interpolation (type 7).
///
/// # Panics
/// When `sorted` is empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "quantile of nothing");
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "0 <= h <= len - 1"
    )]
    let i = lo as usize;
    match sorted.get(i + 1) {
        Some(&next) => sorted[i] + (h - lo) * (next - sorted[i]),
        None => sorted[i],
    }
}

/// The 95 % percentile bootstrap CI `[lo, hi]` of Δ over the resamples `indices`; `None`
/// without resamples or items, or when the two score vectors differ in length.
pub fn bootstrap_ci(base: &[f64], cond: &[f64], indices: &[Vec<u32>]) -> Option<[f64; 2]> {
    if indices.is_empty() || base.is_empty() || base.len() != cond.len() {
        return None;
    }
    let mut deltas: Vec<f64> = indices
        .iter()
        .map(|idx| {
            let n = idx.len() as f64;
            let (mut sc, mut sb) = (0.0, 0.0);
            for &i in idx {
                sc += cond[i as usize];
                sb += base[i as usize];
            }
            sc / n - sb / n
        })
        .collect();
    deltas.sort_by(f64::total_cmp);
    Some([quantile(&deltas, 0.025), quantile(&deltas, 0.975)])
}

/// The two-sided paired sign-flip permutation p-value of Δ; `None` without permutations or
/// items, or when the two score vectors differ in length.
pub fn permutation_p(base: &[f64], cond: &[f64], flips: &[Vec<bool>]) -> Option<f64> {
    if flips.is_empty() || base.is_empty() || base.len() != cond.len() {
        return None;
    }
    let d: Vec<f64> = cond.iter().zip(base).map(|(c, b)| c - b).collect();
    let t = mean(&d).abs();
    let bar = t - 1e-9 * t;
    let n = d.len() as f64;
    let extreme = flips
        .iter()
        .filter(|signs| {
            let s: f64 = d
                .iter()
                .zip(signs.iter())
                .map(|(&x, &flip)| if flip { -x } else { x })
                .sum();
            (s / n).abs() >= bar
        })
        .count();
    Some((1 + extreme) as f64 / (1 + flips.len()) as f64)
}

/// The items scored in both vectors (neither is NaN), as two equally long vectors; `None`
/// when every item is scored on both sides (then the vectors are used as they are, so
/// results without unscored items stay byte-identical).
pub fn complete_pairs(base: &[f64], cond: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    if base.iter().chain(cond).all(|x| !x.is_nan()) {
        return None;
    }
    Some(
        base.iter()
            .zip(cond)
            .filter(|(b, c)| !b.is_nan() && !c.is_nan())
            .map(|(&b, &c)| (b, c))
            .unzip(),
    )
}

/// `Δ` over the items scored in both vectors ([`complete_pairs`]); `mean(cond) −
/// mean(base)` when all are scored; NaN when no item is scored in both.
pub fn paired_delta(base: &[f64], cond: &[f64]) -> f64 {
    match complete_pairs(base, cond) {
        None => delta(base, cond),
        Some((b, c)) => delta(&b, &c),
    }
}

/// The resamples of one evaluation cell, shared by all its conditions.
#[derive(Debug, Clone)]
pub struct CellResamples {
    /// Bootstrap index vectors.
    pub indices: Vec<Vec<u32>>,
    /// Permutation sign vectors.
    pub flips: Vec<Vec<bool>>,
}

impl CellResamples {
    /// The resamples of the cell (`label`, `language`) with `n` items, from the run `seed`.
    pub fn new(
        seed: u64,
        label: &str,
        language: &str,
        n: usize,
        bootstrap: usize,
        permutations: usize,
    ) -> Self {
        let mut b = SplitMix64::derive(seed, &bootstrap_purpose(label, language));
        let mut p = SplitMix64::derive(seed, &permutation_purpose(label, language));
        CellResamples {
            indices: bootstrap_indices(&mut b, n, bootstrap),
            flips: sign_flips(&mut p, n, permutations),
        }
    }

    /// `(ci95, p_permutation)` of `cond` against `base`.
    pub fn analyse(&self, base: &[f64], cond: &[f64]) -> (Option<[f64; 2]>, Option<f64>) {
        (
            bootstrap_ci(base, cond, &self.indices),
            permutation_p(base, cond, &self.flips),
        )
    }
}

#[cfg(test)]
mod tests;
