//! Per-label neuron statistics: the only thing the recording pass keeps.
//!
//! For every label and neuron `(layer, j)` there are two levels of statistics:
//! - **token level**: the number of counted tokens with `act > 0`, the sum and the sum of
//!   squares of `act` over counted tokens, plus per label the number of counted tokens;
//! - **item level**: each item's mean activation over its counted tokens, `x̄ = Σ_t a_t / n`,
//!   pooled over items: `Σ x̄` and `Σ x̄²`, with the number of items. Tokens within one item are
//!   not independent, so tests (Welch t, AUROC) use the item level.
//!
//! Optionally, a label also keeps every item's mean vector (`f32`, for exact rank AUROC), and
//! the statistics carry `B` **Poisson bootstrap replicates** (see [`Bootstrap`]).
//!
//! # Numerics
//! Arrays are row-major `[n_layers, n_neurons]` in `f64`. Every statistic is a plain sum, so
//! [`ActivationStats::merge`] adds arrays element by element: counts are integers below 2^53
//! and stay exact whatever the order; moments (sums, sums of squares) are sums of `f64`, so a
//! merged value differs from the one-shot value only by the rounding of the additions
//! (relative error below `n·ε` for `n` terms of one sign, ε = 1.1e-16; in practice ~1e-15).
//! Merge is exactly commutative (IEEE addition is) and associative up to that rounding.
//! Variances are formed at scoring time as `(Σx² − (Σx)²/n) / (n − 1)`; the cancellation makes
//! the relative error of the variance about `ε·(1 + x̄²/s²)`: below 1e-13 for activations whose
//! mean is within 30 standard deviations of zero — the case for FFN activations. (Welford /
//! Chan updates would avoid the cancellation but make merge order-dependent and the file
//! format non-additive; with `f64` sums the gain is not needed.) Backends reduce each item on
//! the device in `f32` (a few hundred tokens) and the sums are added here in `f64`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::rng::SplitMix64;

/// Statistics of one label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelStats {
    /// Label name (e.g. `诚信` or `富强/support`).
    pub name: String,
    /// Tokens counted for this label.
    pub tokens: f64,
    /// Items (prompts) counted for this label; each contributed one mean to
    /// [`item_sum`](Self::item_sum).
    pub items: u64,
    /// Count of tokens with `act > 0`, `[n_layers * n_neurons]`.
    #[serde(skip)]
    pub active: Vec<f64>,
    /// Sum of `act`, `[n_layers * n_neurons]`; empty when the source has no sums (released
    /// counts).
    #[serde(skip)]
    pub sum: Vec<f64>,
    /// Sum of `act^2`, `[n_layers * n_neurons]`; empty when the source has no sums.
    #[serde(skip)]
    pub sum_sq: Vec<f64>,
    /// Sum over items of the item mean `x̄`, `[n_layers * n_neurons]`; empty when the source has
    /// no item-level statistics (released counts, statistics files of valex 0.1 issue 2).
    #[serde(skip)]
    pub item_sum: Vec<f64>,
    /// Sum over items of `x̄²`, `[n_layers * n_neurons]`; empty like `item_sum`.
    #[serde(skip)]
    pub item_sum_sq: Vec<f64>,
    /// Kept item means (only when requested, see [`ActivationStats::with_item_means`]), in no
    /// particular order; a bootstrap replicate holds an item once per draw.
    #[serde(skip)]
    pub item_means: Vec<ItemMeans>,
}

/// One item's mean activation over its counted tokens, for every neuron.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemMeans {
    /// The key the caller gave the item (its ordinal within its label in a recording).
    pub key: u64,
    /// `[n_layers * n_neurons]` means, `f32`.
    pub means: Vec<f32>,
}

/// Sums of one neuron over one sample: enough for mean and sample variance.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Moments {
    /// Sample size (tokens or items).
    pub n: f64,
    /// Sum of the values.
    pub sum: f64,
    /// Sum of the squared values.
    pub sum_sq: f64,
}

impl Moments {
    /// The mean (`NaN` when `n == 0`).
    pub fn mean(&self) -> f64 {
        self.sum / self.n
    }

    /// The sample variance with `n − 1` in the denominator (`NaN` when `n < 2`), clamped at 0
    /// against rounding (see the module docs for its precision).
    pub fn var(&self) -> f64 {
        if self.n < 2.0 {
            return f64::NAN;
        }
        let ss = self.sum_sq - self.sum * self.sum / self.n;
        (ss / (self.n - 1.0)).max(0.0)
    }

    /// The moments of the union of two samples.
    #[must_use]
    pub fn plus(self, other: Moments) -> Moments {
        Moments {
            n: self.n + other.n,
            sum: self.sum + other.sum,
            sum_sq: self.sum_sq + other.sum_sq,
        }
    }
}

impl LabelStats {
    /// A zeroed label of `n` neurons with token- and item-level arrays.
    pub fn zeroed(name: &str, n: usize) -> Self {
        LabelStats {
            name: name.to_owned(),
            tokens: 0.0,
            items: 0,
            active: vec![0.0; n],
            sum: vec![0.0; n],
            sum_sq: vec![0.0; n],
            item_sum: vec![0.0; n],
            item_sum_sq: vec![0.0; n],
            item_means: Vec::new(),
        }
    }

    /// A label that has only activation counts (`sum`, `sum_sq` and item-level arrays empty),
    /// as read from released count files.
    pub fn counts_only(name: &str, tokens: f64, items: u64, active: Vec<f64>) -> Self {
        LabelStats {
            name: name.to_owned(),
            tokens,
            items,
            active,
            sum: Vec::new(),
            sum_sq: Vec::new(),
            item_sum: Vec::new(),
            item_sum_sq: Vec::new(),
            item_means: Vec::new(),
        }
    }

    /// True when token-level sums are present for `n` neurons.
    pub fn has_token_sums(&self, n: usize) -> bool {
        self.sum.len() == n && self.sum_sq.len() == n
    }

    /// True when item-level sums are present for `n` neurons.
    pub fn has_item_stats(&self, n: usize) -> bool {
        self.item_sum.len() == n && self.item_sum_sq.len() == n
    }

    /// Token-level moments of neuron `i` (flat index); `None` without token sums.
    pub fn token_moments(&self, i: usize) -> Option<Moments> {
        Some(Moments {
            n: self.tokens,
            sum: *self.sum.get(i)?,
            sum_sq: *self.sum_sq.get(i)?,
        })
    }

    /// Item-level moments of neuron `i` (flat index); `None` without item-level statistics.
    pub fn item_moments(&self, i: usize) -> Option<Moments> {
        #[expect(clippy::cast_precision_loss, reason = "item counts are far below 2^53")]
        let n = self.items as f64;
        Some(Moments {
            n,
            sum: *self.item_sum.get(i)?,
            sum_sq: *self.item_sum_sq.get(i)?,
        })
    }

    fn add_arrays(&mut self, other: &LabelStats) {
        self.tokens += other.tokens;
        self.items += other.items;
        for (mine, theirs) in [
            (&mut self.active, &other.active),
            (&mut self.sum, &other.sum),
            (&mut self.sum_sq, &other.sum_sq),
            (&mut self.item_sum, &other.item_sum),
            (&mut self.item_sum_sq, &other.item_sum_sq),
        ] {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
        self.item_means.extend(other.item_means.iter().cloned());
    }

    fn layout(&self) -> [usize; 5] {
        [
            self.active.len(),
            self.sum.len(),
            self.sum_sq.len(),
            self.item_sum.len(),
            self.item_sum_sq.len(),
        ]
    }
}

/// Poisson bootstrap replicates of the statistics.
///
/// Each item gets, for every replicate `b`, an integer weight `w_b ~ Poisson(1)` drawn from a
/// stream fixed by the seed, the label name and the item's key
/// ([`ActivationStats::bootstrap_weights`]); replicate `b` accumulates every statistic of
/// the item `w_b` times. A replicate is therefore the statistics of one resample of the
/// items (the Poisson approximation of resampling `n` items with replacement, which needs no
/// knowledge of `n` while streaming; Hanley & MacGibbon 2006, Chamandy et al. 2012).
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// Seed of the weights.
    pub seed: u64,
    /// One set of statistics per replicate (same labels and shape; no nested replicates).
    pub replicates: Vec<ActivationStats>,
}

/// Why two statistics cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MergeError {
    /// Taps or shapes differ.
    ///
    /// Resolution: merge only statistics of the same model and tap.
    #[error("cannot merge statistics of {left} with {right}")]
    Shape {
        /// `tap [L x I]` of the receiver.
        left: String,
        /// `tap [L x I]` of the argument.
        right: String,
    },
    /// A label has arrays in one and not in the other (e.g. counts only vs full sums).
    ///
    /// Resolution: merge statistics recorded with the same options.
    #[error("label {label}: statistics have different arrays ({left:?} vs {right:?} values)")]
    Layout {
        /// Label name.
        label: String,
        /// Lengths of active, sum, sum_sq, item_sum, item_sum_sq on the left.
        left: [usize; 5],
        /// The same on the right.
        right: [usize; 5],
    },
    /// Bootstrap replicates differ in seed or number (or only one side has them).
    ///
    /// Resolution: record every part with the same seed and `bootstrap` count.
    #[error("bootstrap replicates differ: {left} vs {right}")]
    Bootstrap {
        /// `seed/replicates` of the receiver, or `none`.
        left: String,
        /// The same for the argument.
        right: String,
    },
}

/// Statistics of every label for one tap.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationStats {
    /// The tap the statistics describe.
    pub tap: String,
    /// Number of layers.
    pub n_layers: usize,
    /// Neurons per layer.
    pub n_neurons: usize,
    /// One entry per label, in a fixed order.
    pub labels: Vec<LabelStats>,
    /// Keep every item's mean vector ([`LabelStats::item_means`]).
    pub keep_item_means: bool,
    /// Poisson bootstrap replicates, when requested.
    pub bootstrap: Option<Bootstrap>,
}

impl ActivationStats {
    /// Zeroed statistics (token and item level) for `labels`, without kept item means or
    /// bootstrap replicates.
    pub fn new(tap: &str, n_layers: usize, n_neurons: usize, labels: &[String]) -> Self {
        let n = n_layers * n_neurons;
        ActivationStats {
            tap: tap.to_owned(),
            n_layers,
            n_neurons,
            labels: labels
                .iter()
                .map(|name| LabelStats::zeroed(name, n))
                .collect(),
            keep_item_means: false,
            bootstrap: None,
        }
    }

    /// Keeps each item's mean vector from now on (memory: `4 · L · I` bytes per item).
    #[must_use]
    pub fn with_item_means(mut self) -> Self {
        self.keep_item_means = true;
        self
    }

    /// Adds `replicates` zeroed Poisson bootstrap replicates seeded with `seed` (none when
    /// `replicates == 0`). Memory: `replicates` times the statistics.
    #[must_use]
    pub fn with_bootstrap(mut self, seed: u64, replicates: usize) -> Self {
        if replicates == 0 {
            self.bootstrap = None;
            return self;
        }
        let mut empty = ActivationStats::new(
            &self.tap,
            self.n_layers,
            self.n_neurons,
            &self.label_names(),
        );
        empty.keep_item_means = self.keep_item_means;
        self.bootstrap = Some(Bootstrap {
            seed,
            replicates: vec![empty; replicates],
        });
        self
    }

    /// Index of a label by name.
    pub fn label_index(&self, name: &str) -> Option<usize> {
        self.labels.iter().position(|l| l.name == name)
    }

    /// Label names in order.
    pub fn label_names(&self) -> Vec<String> {
        self.labels.iter().map(|l| l.name.clone()).collect()
    }

    /// Number of bootstrap replicates (0 without).
    pub fn n_replicates(&self) -> usize {
        self.bootstrap.as_ref().map_or(0, |b| b.replicates.len())
    }

    /// The bootstrap weights of the item `key` of label `label` (one per replicate; empty
    /// without replicates). The stream depends only on the seed, the label's name and the key.
    ///
    /// # Panics
    /// When `label` is out of range.
    pub fn bootstrap_weights(&self, label: usize, key: u64) -> Vec<u32> {
        match &self.bootstrap {
            None => Vec::new(),
            Some(b) => poisson_weights(b.seed, &self.labels[label].name, key, b.replicates.len()),
        }
    }

    /// Counts one item of label `label` with `n_tokens` counted tokens: adds the tokens and
    /// the item (and, in each bootstrap replicate, `weight` times both). The caller (the
    /// record stage) calls this once per item; the backend adds the per-neuron arrays with
    /// [`add_item_layer`](Self::add_item_layer).
    ///
    /// # Panics
    /// When `label` is out of range.
    pub fn count_item(&mut self, label: usize, key: u64, n_tokens: f64) {
        let weights = self.bootstrap_weights(label, key);
        let l = &mut self.labels[label];
        l.tokens += n_tokens;
        l.items += 1;
        if let Some(b) = &mut self.bootstrap {
            for (r, &w) in b.replicates.iter_mut().zip(&weights) {
                let rl = &mut r.labels[label];
                rl.tokens += f64::from(w) * n_tokens;
                rl.items += u64::from(w);
            }
        }
    }

    /// Adds one item's reductions at one layer: over the item's `n_tokens` counted tokens, the
    /// count of `act > 0`, the sum and the sum of squares of every neuron. Adds them to the
    /// token-level arrays, adds the item mean `sum / n_tokens` and its square to the
    /// item-level arrays, keeps the mean when requested, and does the same `w` times in every
    /// bootstrap replicate.
    ///
    /// # Panics
    /// When `label` or `layer` is out of range, `n_tokens` is not positive, or a slice is not
    /// `n_neurons` long: a bug in the calling backend.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call per item and layer; a struct would only rename the arguments"
    )]
    pub fn add_item_layer<T: Copy + Into<f64>>(
        &mut self,
        label: usize,
        key: u64,
        layer: usize,
        n_tokens: f64,
        active: &[T],
        sum: &[T],
        sum_sq: &[T],
    ) {
        let n = self.n_neurons;
        assert!(
            active.len() == n && sum.len() == n && sum_sq.len() == n,
            "backend returned {} / {} / {} values for a layer of {n} neurons",
            active.len(),
            sum.len(),
            sum_sq.len()
        );
        assert!(layer < self.n_layers, "layer {layer} is out of range");
        assert!(
            n_tokens > 0.0,
            "an item must have counted tokens to have a mean"
        );
        let weights = self.bootstrap_weights(label, key);
        let keep = self.keep_item_means;
        let n_cells = self.n_layers * n;
        let off = layer * n;
        let means: Vec<f64> = sum.iter().map(|&s| s.into() / n_tokens).collect();
        let add = |l: &mut LabelStats, w: f64, copies: u32| {
            for j in 0..n {
                let m = means[j];
                l.active[off + j] += w * active[j].into();
                l.sum[off + j] += w * sum[j].into();
                l.sum_sq[off + j] += w * sum_sq[j].into();
                l.item_sum[off + j] += w * m;
                l.item_sum_sq[off + j] += w * m * m;
            }
            if keep && copies > 0 {
                // The copies of one item are pushed together, and the items being added are
                // the most recent ones, so a search from the end is short.
                let copies = copies as usize;
                let start = match l.item_means.iter().rposition(|m| m.key == key) {
                    Some(last) => last + 1 - copies,
                    None => {
                        for _ in 0..copies {
                            l.item_means.push(ItemMeans {
                                key,
                                means: vec![0.0; n_cells],
                            });
                        }
                        l.item_means.len() - copies
                    }
                };
                for im in &mut l.item_means[start..start + copies] {
                    for (dst, &m) in im.means[off..off + n].iter_mut().zip(&means) {
                        #[expect(
                            clippy::cast_possible_truncation,
                            reason = "kept item means are stored in f32 by design"
                        )]
                        let v = m as f32;
                        *dst = v;
                    }
                }
            }
        };
        add(&mut self.labels[label], 1.0, 1);
        if let Some(b) = &mut self.bootstrap {
            for (r, &w) in b.replicates.iter_mut().zip(&weights) {
                if w > 0 {
                    add(&mut r.labels[label], f64::from(w), w);
                }
            }
        }
    }

    /// [`add_item_layer`](Self::add_item_layer) for every layer of `layers` and every item of
    /// `items`, layer by layer and item by item within a layer: `rows[k][i]` holds item `i`'s
    /// `3 · n_neurons` values (count of `> 0`, sums, sums of squares) at layer `layers[k]`.
    ///
    /// The result is bit for bit that of the loop, since every cell receives the same items
    /// in the same order; but distinct layers touch distinct cells, so large batches are
    /// added on rayon's pool, one task per layer (this is the host's share of a recording
    /// pass: 340 MB of f64 read and written per 16-row batch at the 7B shape). Bootstrap
    /// replicates and kept item means take the loop.
    ///
    /// # Panics
    /// As [`add_item_layer`](Self::add_item_layer), and when `rows` does not hold one entry
    /// per layer and item.
    pub fn add_items_layers<T: Copy + Into<f64> + Sync>(
        &mut self,
        items: &[(usize, u64, f64)],
        layers: &[usize],
        rows: &[Vec<Vec<T>>],
    ) {
        let n = self.n_neurons;
        assert_eq!(rows.len(), layers.len(), "one row set per layer");
        for r in rows {
            assert_eq!(r.len(), items.len(), "one row per item");
            for v in r {
                assert_eq!(v.len(), 3 * n, "3 · {n} values per row");
            }
        }
        let mut seen = vec![false; self.n_layers];
        let distinct = layers.iter().all(|&l| {
            assert!(l < self.n_layers, "layer {l} is out of range");
            !std::mem::replace(&mut seen[l], true)
        });
        let full = self.labels.iter().all(|l| {
            [&l.active, &l.sum, &l.sum_sq, &l.item_sum, &l.item_sum_sq]
                .iter()
                .all(|a| a.len() == self.n_layers * n)
        });
        /// Below this many values the loop is cheaper than handing out tasks.
        const PARALLEL_MIN: usize = 1 << 20;
        let work = layers.len() * items.len() * n;
        if self.bootstrap.is_some()
            || self.keep_item_means
            || !distinct
            || !full
            || layers.len() < 2
            || work < PARALLEL_MIN
        {
            for (k, &layer) in layers.iter().enumerate() {
                for (i, &(label, key, n_tokens)) in items.iter().enumerate() {
                    let r = &rows[k][i];
                    self.add_item_layer(
                        label,
                        key,
                        layer,
                        n_tokens,
                        &r[..n],
                        &r[n..2 * n],
                        &r[2 * n..],
                    );
                }
            }
            return;
        }
        for &(label, _, n_tokens) in items {
            assert!(label < self.labels.len(), "label {label} is out of range");
            assert!(
                n_tokens > 0.0,
                "an item must have counted tokens to have a mean"
            );
        }
        // cells[layer][label]: that layer's slice of each of the label's five arrays.
        let mut cells: Vec<Vec<[&mut [f64]; 5]>> = (0..self.n_layers).map(|_| Vec::new()).collect();
        for l in &mut self.labels {
            let LabelStats {
                active,
                sum,
                sum_sq,
                item_sum,
                item_sum_sq,
                ..
            } = l;
            let parts = active
                .chunks_mut(n)
                .zip(sum.chunks_mut(n))
                .zip(sum_sq.chunks_mut(n))
                .zip(item_sum.chunks_mut(n))
                .zip(item_sum_sq.chunks_mut(n));
            for (layer, ((((a, s), q), is), iq)) in parts.enumerate() {
                cells[layer].push([a, s, q, is, iq]);
            }
        }
        let mut tasks: Vec<(usize, Vec<[&mut [f64]; 5]>)> = layers
            .iter()
            .enumerate()
            .map(|(k, &layer)| (k, std::mem::take(&mut cells[layer])))
            .collect();
        use rayon::prelude::*;
        tasks.par_iter_mut().for_each(|(k, labels)| {
            for (i, &(label, _, n_tokens)) in items.iter().enumerate() {
                let r = &rows[*k][i];
                let [a, s, q, is, iq] = &mut labels[label];
                let (active, rest) = r.split_at(n);
                let (sum, sum_sq) = rest.split_at(n);
                for j in 0..n {
                    let m = sum[j].into() / n_tokens;
                    a[j] += active[j].into();
                    s[j] += sum[j].into();
                    q[j] += sum_sq[j].into();
                    is[j] += m;
                    iq[j] += m * m;
                }
            }
        });
    }

    /// Merges `other` into `self`: afterwards `self` holds the statistics of the union of both
    /// samples (and of both replicates, replicate by replicate). Labels are matched by name;
    /// labels only in `other` are appended. Kept item means are concatenated.
    ///
    /// Item keys of the two parts must differ within a label (number the items of a sharded
    /// recording globally), or the bootstrap weights of equal keys coincide.
    ///
    /// # Errors
    /// Taps or shapes differ, a label has different arrays on both sides, or the bootstrap
    /// replicates differ in seed or number. `self` is unchanged on error.
    pub fn merge(&mut self, other: &ActivationStats) -> Result<(), MergeError> {
        self.check_merge(other)?;
        if let (Some(a), Some(b)) = (&self.bootstrap, &other.bootstrap)
            && (a.seed != b.seed || a.replicates.len() != b.replicates.len())
        {
            return Err(MergeError::Bootstrap {
                left: format!("seed {} x {}", a.seed, a.replicates.len()),
                right: format!("seed {} x {}", b.seed, b.replicates.len()),
            });
        }
        if self.bootstrap.is_some() != other.bootstrap.is_some() {
            let d = |s: &ActivationStats| {
                s.bootstrap.as_ref().map_or_else(
                    || "none".to_owned(),
                    |b| format!("seed {} x {}", b.seed, b.replicates.len()),
                )
            };
            return Err(MergeError::Bootstrap {
                left: d(self),
                right: d(other),
            });
        }
        if let (Some(a), Some(b)) = (&self.bootstrap, &other.bootstrap) {
            for (ra, rb) in a.replicates.iter().zip(&b.replicates) {
                ra.check_merge(rb)?;
            }
        }
        self.merge_labels(other);
        if let (Some(a), Some(b)) = (&mut self.bootstrap, &other.bootstrap) {
            for (ra, rb) in a.replicates.iter_mut().zip(&b.replicates) {
                ra.merge_labels(rb);
            }
        }
        self.keep_item_means |= other.keep_item_means;
        Ok(())
    }

    fn check_merge(&self, other: &ActivationStats) -> Result<(), MergeError> {
        if self.tap != other.tap
            || self.n_layers != other.n_layers
            || self.n_neurons != other.n_neurons
        {
            let d = |s: &ActivationStats| format!("{} [{}x{}]", s.tap, s.n_layers, s.n_neurons);
            return Err(MergeError::Shape {
                left: d(self),
                right: d(other),
            });
        }
        for o in &other.labels {
            if let Some(i) = self.label_index(&o.name)
                && self.labels[i].layout() != o.layout()
            {
                return Err(MergeError::Layout {
                    label: o.name.clone(),
                    left: self.labels[i].layout(),
                    right: o.layout(),
                });
            }
        }
        Ok(())
    }

    fn merge_labels(&mut self, other: &ActivationStats) {
        for o in &other.labels {
            match self.label_index(&o.name) {
                Some(i) => self.labels[i].add_arrays(o),
                None => self.labels.push(o.clone()),
            }
        }
    }
}

/// `replicates` Poisson(1) weights for item `key` of `label`, from a stream fixed by
/// `seed`, the label name and the key (inverse-CDF sampling with [`SplitMix64`]; weights are
/// capped at 30, whose tail probability is below 1e-33).
pub fn poisson_weights(seed: u64, label: &str, key: u64, replicates: usize) -> Vec<u32> {
    let mut rng = SplitMix64::derive(seed, &format!("bootstrap/{label}/{key}"));
    (0..replicates)
        .map(|_| {
            let u = rng.next_f64();
            let mut k = 0_u32;
            let mut p = (-1.0_f64).exp();
            let mut cdf = p;
            while u >= cdf && k < 30 {
                k += 1;
                p /= f64::from(k);
                cdf += p;
            }
            k
        })
        .collect()
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
