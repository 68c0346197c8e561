//! Selection rules: per-neuron scores in, one neuron set per label out. Scorers compute
//! scores; this module alone decides which neurons are kept, so every contrast scorer
//! (`act-prob-diff`, `mean-diff`, `welch-t`, `auroc`) offers the same rules.
//!
//! A rule sees each neuron through its *key*, the score seen from the requested sign:
//! `score` (`positive`: more active for the label), `−score` (`negative`) or `|score|`
//! (`both`). Neurons rank by key, descending, ties by the lower flat index `layer · I + j`.
//! NaN scores are never selected.
//!
//! | rule | params | keeps |
//! |---|---|---|
//! | `top-rate` | `rate` (default 0.01) | the `round(rate · L · I)` best keys (Python rounding, as LAPE) |
//! | `top-k` | `k` | the `k` best keys |
//! | `threshold` | `threshold` | every neuron with key ≥ threshold |
//! | `fdr` | `q` (default 0.05) | every neuron with adjusted p ≤ q and key > 0 (needs p-values) |
//! | `top-k-plus-threshold` | `k`, `threshold` | the `k` best plus any further with key ≥ threshold (NPTI) |
//!
//! `per_layer_cap = c` keeps at most `c` neurons in any layer, best keys first; for the
//! ranked rules (`top-rate`, `top-k`) the next-best neurons of other layers fill the freed
//! places, so the set keeps its size when enough neurons remain.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use valex_core::{ConfigError, NeuronSet};

use crate::torch_compat::python_round_count;

/// A selection rule's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleName {
    /// A fraction of all neurons.
    TopRate,
    /// A fixed number of neurons.
    TopK,
    /// Every neuron at or above a score.
    Threshold,
    /// Every neuron whose adjusted p-value is at most `q`.
    Fdr,
    /// `k` neurons plus any further above a threshold.
    TopKPlusThreshold,
}

impl RuleName {
    /// The name used in params and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleName::TopRate => "top-rate",
            RuleName::TopK => "top-k",
            RuleName::Threshold => "threshold",
            RuleName::Fdr => "fdr",
            RuleName::TopKPlusThreshold => "top-k-plus-threshold",
        }
    }
}

/// Which direction of the score counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sign {
    /// Higher for the label than for its contrast.
    #[default]
    Positive,
    /// Lower for the label than for its contrast.
    Negative,
    /// Either direction (by magnitude).
    Both,
}

impl Sign {
    /// The name used in params and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Sign::Positive => "positive",
            Sign::Negative => "negative",
            Sign::Both => "both",
        }
    }

    /// The key a rule ranks by.
    pub fn key(self, score: f64) -> f64 {
        match self {
            Sign::Positive => score,
            Sign::Negative => -score,
            Sign::Both => score.abs(),
        }
    }
}

/// The `selection` params table of a contrast scorer, as written. Unset fields take the
/// scorer's default rule and the rule's defaults ([`SelectionConfig::resolve`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionConfig {
    /// The rule (default: the scorer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleName>,
    /// `top-rate`: fraction of `L · I` neurons, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// `top-k`, `top-k-plus-threshold`: number of neurons, ≥ 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// `threshold`, `top-k-plus-threshold`: smallest key kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// `fdr`: largest adjusted p-value kept, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<f64>,
    /// Direction of the score (default `positive`).
    #[serde(default)]
    pub sign: Sign,
    /// At most this many neurons per layer (≥ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_layer_cap: Option<usize>,
}

/// A resolved rule with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// `round(rate · L · I)` best keys.
    TopRate(f64),
    /// `k` best keys.
    TopK(usize),
    /// Keys ≥ threshold.
    Threshold(f64),
    /// Adjusted p ≤ q and key > 0.
    Fdr(f64),
    /// `k` best keys plus keys ≥ threshold.
    TopKPlusThreshold(usize, f64),
}

/// A validated selection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Selection {
    /// The rule.
    pub rule: Rule,
    /// The direction.
    pub sign: Sign,
    /// Per-layer cap.
    pub per_layer_cap: Option<usize>,
}

impl SelectionConfig {
    /// Validates the table against its rule (`default_rule` when unset). `has_p` says
    /// whether the scorer produces p-values (rule `fdr` needs them).
    ///
    /// # Errors
    /// A missing or out-of-range parameter, a parameter the rule does not use, or `fdr`
    /// without p-values; the key is `selection.<field>`.
    pub fn resolve(&self, default_rule: RuleName, has_p: bool) -> Result<Selection, ConfigError> {
        let rule = self.rule.unwrap_or(default_rule);
        let err =
            |field: &str, msg: String| ConfigError::new(Some(&format!("selection.{field}")), msg);
        let used: &[&str] = match rule {
            RuleName::TopRate => &["rate"],
            RuleName::TopK => &["k"],
            RuleName::Threshold => &["threshold"],
            RuleName::Fdr => &["q"],
            RuleName::TopKPlusThreshold => &["k", "threshold"],
        };
        for (field, set) in [
            ("rate", self.rate.is_some()),
            ("k", self.k.is_some()),
            ("threshold", self.threshold.is_some()),
            ("q", self.q.is_some()),
        ] {
            if set && !used.contains(&field) {
                return Err(err(
                    field,
                    format!(
                        "selection.{field} is not used by rule {}; it takes {}",
                        rule.as_str(),
                        used.join(", ")
                    ),
                ));
            }
        }
        let fraction = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 1.0 {
                Ok(v)
            } else {
                Err(err(
                    field,
                    format!("selection.{field} must be in (0, 1], found {v}"),
                ))
            }
        };
        let k = || match self.k {
            Some(0) => Err(err("k", "selection.k must be at least 1, found 0".into())),
            Some(k) => Ok(k),
            None => Err(err(
                "k",
                format!("rule {} needs selection.k", rule.as_str()),
            )),
        };
        let threshold = || match self.threshold {
            Some(t) if t.is_finite() => Ok(t),
            Some(t) => Err(err(
                "threshold",
                format!("selection.threshold must be finite, found {t}"),
            )),
            None => Err(err(
                "threshold",
                format!("rule {} needs selection.threshold", rule.as_str()),
            )),
        };
        let resolved = match rule {
            RuleName::TopRate => Rule::TopRate(fraction("rate", self.rate.unwrap_or(0.01))?),
            RuleName::TopK => Rule::TopK(k()?),
            RuleName::Threshold => Rule::Threshold(threshold()?),
            RuleName::Fdr => {
                if !has_p {
                    return Err(err(
                        "rule",
                        "rule fdr needs p-values; this scorer computes none (use scorer/welch-t)"
                            .into(),
                    ));
                }
                Rule::Fdr(fraction("q", self.q.unwrap_or(0.05))?)
            }
            RuleName::TopKPlusThreshold => Rule::TopKPlusThreshold(k()?, threshold()?),
        };
        if self.per_layer_cap == Some(0) {
            return Err(err(
                "per_layer_cap",
                "selection.per_layer_cap must be at least 1, found 0".into(),
            ));
        }
        Ok(Selection {
            rule: resolved,
            sign: self.sign,
            per_layer_cap: self.per_layer_cap,
        })
    }
}

/// What [`select`] kept for one label.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    /// The neurons.
    pub set: NeuronSet,
    /// Neurons that could be selected (finite or infinite key, eligible).
    pub n_candidates: usize,
    /// The smallest key kept (`None` when nothing was kept).
    pub min_key: Option<f64>,
}

impl Selection {
    /// The rule and its parameters as JSON, for reports and provenance.
    pub fn describe(&self) -> Value {
        let mut v = match self.rule {
            Rule::TopRate(rate) => json!({"rule": "top-rate", "rate": rate}),
            Rule::TopK(k) => json!({"rule": "top-k", "k": k}),
            Rule::Threshold(t) => json!({"rule": "threshold", "threshold": t}),
            Rule::Fdr(q) => json!({"rule": "fdr", "q": q}),
            Rule::TopKPlusThreshold(k, t) => {
                json!({"rule": "top-k-plus-threshold", "k": k, "threshold": t})
            }
        };
        v["sign"] = json!(self.sign.as_str());
        v["per_layer_cap"] = json!(self.per_layer_cap);
        v
    }

    /// Applies the rule to one label's `score` (`[L · I]`, flat `layer · n_neurons + j`).
    /// `adjusted_p` is needed by `fdr`; `eligible` (if any) excludes neurons (e.g. a
    /// minimum effect size).
    ///
    /// # Panics
    /// When array lengths differ from `n_layers · n_neurons`, `n_neurons` does not fit `u32`,
    /// or rule `fdr` gets no p-values — bugs in the calling scorer.
    pub fn select(
        &self,
        score: &[f64],
        adjusted_p: Option<&[f64]>,
        eligible: Option<&[bool]>,
        n_layers: usize,
        n_neurons: usize,
    ) -> Selected {
        let cells = n_layers * n_neurons;
        assert_eq!(score.len(), cells, "one score per neuron");
        let key: Vec<f64> = score.iter().map(|&s| self.sign.key(s)).collect();
        let mut cand: Vec<u32> = (0..cells)
            .filter(|&i| !key[i].is_nan() && eligible.is_none_or(|e| e[i]))
            .map(|i| u32::try_from(i).expect("fewer than 2^32 neurons"))
            .collect();
        let n_candidates = cand.len();
        let better =
            |a: &u32, b: &u32| key[*b as usize].total_cmp(&key[*a as usize]).then(a.cmp(b));
        let top = |cand: &mut Vec<u32>, k: usize| -> Vec<u32> {
            let k = k.min(cand.len());
            if let Some(cap) = self.per_layer_cap {
                cand.sort_unstable_by(better);
                let mut per_layer = vec![0_usize; n_layers];
                let mut out = Vec::with_capacity(k);
                for &i in cand.iter() {
                    if out.len() == k {
                        break;
                    }
                    let layer = i as usize / n_neurons;
                    if per_layer[layer] < cap {
                        per_layer[layer] += 1;
                        out.push(i);
                    }
                }
                return out;
            }
            if k == 0 {
                return Vec::new();
            }
            if k < cand.len() {
                cand.select_nth_unstable_by(k - 1, better);
            }
            cand[..k].to_vec()
        };
        let capped = |mut kept: Vec<u32>| -> Vec<u32> {
            if let Some(cap) = self.per_layer_cap {
                kept.sort_unstable_by(better);
                let mut per_layer = vec![0_usize; n_layers];
                kept.retain(|&i| {
                    let layer = i as usize / n_neurons;
                    per_layer[layer] += 1;
                    per_layer[layer] <= cap
                });
            }
            kept
        };
        let kept: Vec<u32> = match self.rule {
            Rule::TopRate(rate) => top(&mut cand, python_round_count(cells, rate)),
            Rule::TopK(k) => top(&mut cand, k),
            Rule::Threshold(t) => {
                capped(cand.into_iter().filter(|&i| key[i as usize] >= t).collect())
            }
            Rule::Fdr(q) => {
                let p = adjusted_p.expect("rule fdr is resolved only for scorers with p-values");
                capped(
                    cand.into_iter()
                        .filter(|&i| p[i as usize] <= q && key[i as usize] > 0.0)
                        .collect(),
                )
            }
            Rule::TopKPlusThreshold(k, t) => {
                let mut kept = top(&mut cand.clone(), k);
                let extra: Vec<u32> = cand.into_iter().filter(|&i| key[i as usize] >= t).collect();
                kept.extend(extra);
                kept.sort_unstable();
                kept.dedup();
                capped(kept)
            }
        };
        let min_key = kept
            .iter()
            .map(|&i| key[i as usize])
            .fold(None, |m: Option<f64>, k| Some(m.map_or(k, |m| m.min(k))));
        let mut layers = vec![Vec::new(); n_layers];
        for &i in &kept {
            let (layer, j) = (i as usize / n_neurons, i as usize % n_neurons);
            layers[layer].push(u32::try_from(j).expect("neuron index fits u32"));
        }
        Selected {
            set: NeuronSet::from_layers(layers),
            n_candidates,
            min_key,
        }
    }
}

/// Pairwise overlaps of the selected sets: intersection sizes and Jaccard indices
/// (`|A ∩ B| / |A ∪ B|`, 1 for two empty sets), labels in order.
pub fn overlaps(sets: &[(String, NeuronSet)]) -> Value {
    let n = sets.len();
    let mut inter = vec![vec![0_usize; n]; n];
    let mut jac = vec![vec![1.0_f64; n]; n];
    for a in 0..n {
        for b in 0..n {
            let (sa, sb) = (&sets[a].1, &sets[b].1);
            let i = if a == b {
                sa.len()
            } else {
                sa.intersection_len(sb)
            };
            inter[a][b] = i;
            let union = sa.len() + sb.len() - i;
            #[expect(clippy::cast_precision_loss, reason = "set sizes << 2^53")]
            let j = if union == 0 {
                1.0
            } else {
                i as f64 / union as f64
            };
            jac[a][b] = j;
        }
    }
    json!({
        "labels": sets.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
        "intersection": inter,
        "jaccard": jac,
    })
}

#[cfg(test)]
#[path = "selection_tests.rs"]
mod tests;
