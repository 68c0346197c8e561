//! Per-label neuron statistics: the only thing the recording pass keeps.
//!
//! For every label and neuron `(layer, j)`: the number of counted tokens with `act > 0`, the
//! sum and the sum of squares of `act`, plus per label the number of tokens and items.
//! Arrays are row-major `[n_layers, n_neurons]` in `f64`: counts stay exact up to 2^53 and
//! sums over millions of tokens keep ~1e-12 relative precision (backends reduce each batch on
//! the device in f32 and add the batch totals here in f64).

use serde::{Deserialize, Serialize};

/// Statistics of one label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelStats {
    /// Label name (e.g. `诚信` or `富强/support`).
    pub name: String,
    /// Tokens counted for this label.
    pub tokens: f64,
    /// Items (prompts) counted for this label.
    pub items: u64,
    /// Count of tokens with `act > 0`, `[n_layers * n_neurons]`.
    #[serde(skip)]
    pub active: Vec<f64>,
    /// Sum of `act`, `[n_layers * n_neurons]`.
    #[serde(skip)]
    pub sum: Vec<f64>,
    /// Sum of `act^2`, `[n_layers * n_neurons]`.
    #[serde(skip)]
    pub sum_sq: Vec<f64>,
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
}

impl ActivationStats {
    /// Zeroed statistics for `labels`.
    pub fn new(tap: &str, n_layers: usize, n_neurons: usize, labels: &[String]) -> Self {
        let n = n_layers * n_neurons;
        ActivationStats {
            tap: tap.to_owned(),
            n_layers,
            n_neurons,
            labels: labels
                .iter()
                .map(|name| LabelStats {
                    name: name.clone(),
                    tokens: 0.0,
                    items: 0,
                    active: vec![0.0; n],
                    sum: vec![0.0; n],
                    sum_sq: vec![0.0; n],
                })
                .collect(),
        }
    }

    /// Index of a label by name.
    pub fn label_index(&self, name: &str) -> Option<usize> {
        self.labels.iter().position(|l| l.name == name)
    }

    /// Label names in order.
    pub fn label_names(&self) -> Vec<String> {
        self.labels.iter().map(|l| l.name.clone()).collect()
    }

    /// Adds one layer's batch totals for one label.
    ///
    /// # Panics
    /// When `label` or `layer` is out of range or the slices are not `n_neurons` long: a bug
    /// in the calling backend.
    pub fn add_layer(
        &mut self,
        label: usize,
        layer: usize,
        active: &[f32],
        sum: &[f32],
        sum_sq: &[f32],
    ) {
        let n = self.n_neurons;
        assert!(
            active.len() == n && sum.len() == n && sum_sq.len() == n,
            "backend returned {} / {} / {} values for a layer of {n} neurons",
            active.len(),
            sum.len(),
            sum_sq.len()
        );
        let l = &mut self.labels[label];
        let off = layer * n;
        for j in 0..n {
            l.active[off + j] += f64::from(active[j]);
            l.sum[off + j] += f64::from(sum[j]);
            l.sum_sq[off + j] += f64::from(sum_sq[j]);
        }
    }

    /// Merges `other` into `self`: afterwards `self` holds the statistics of the union of both
    /// samples. Labels are matched by name; labels only in `other` are appended.
    ///
    /// # Errors
    /// Fails when taps or shapes differ.
    pub fn merge(&mut self, other: &ActivationStats) -> Result<(), String> {
        if self.tap != other.tap
            || self.n_layers != other.n_layers
            || self.n_neurons != other.n_neurons
        {
            return Err(format!(
                "cannot merge statistics of {} [{}x{}] with {} [{}x{}]",
                self.tap, self.n_layers, self.n_neurons, other.tap, other.n_layers, other.n_neurons
            ));
        }
        for o in &other.labels {
            match self.label_index(&o.name) {
                Some(i) => {
                    let l = &mut self.labels[i];
                    l.tokens += o.tokens;
                    l.items += o.items;
                    for (a, b) in l.active.iter_mut().zip(&o.active) {
                        *a += b;
                    }
                    for (a, b) in l.sum.iter_mut().zip(&o.sum) {
                        *a += b;
                    }
                    for (a, b) in l.sum_sq.iter_mut().zip(&o.sum_sq) {
                        *a += b;
                    }
                }
                None => self.labels.push(o.clone()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_merge_accumulate() {
        let labels = vec!["a".to_owned(), "b".to_owned()];
        let mut s = ActivationStats::new("mlp.gate_act", 2, 3, &labels);
        s.add_layer(1, 1, &[1.0, 0.0, 2.0], &[0.5, -1.0, 3.0], &[0.25, 1.0, 9.0]);
        s.labels[1].tokens += 4.0;
        let mut t = ActivationStats::new("mlp.gate_act", 2, 3, &labels[1..]);
        t.add_layer(0, 1, &[1.0, 1.0, 1.0], &[1.0, 1.0, 1.0], &[1.0, 1.0, 1.0]);
        t.labels[0].tokens += 2.0;
        s.merge(&t).unwrap();
        assert_eq!(s.labels[1].active[3..], [2.0, 1.0, 3.0]);
        assert_eq!(s.labels[1].sum[3..], [1.5, 0.0, 4.0]);
        assert_eq!(s.labels[1].tokens, 6.0);
        assert_eq!(s.labels[0].active, vec![0.0; 6]);
    }

    #[test]
    fn merge_rejects_other_shapes() {
        let mut s = ActivationStats::new("t", 2, 3, &["a".to_owned()]);
        let t = ActivationStats::new("t", 2, 4, &["a".to_owned()]);
        assert!(s.merge(&t).is_err());
    }
}
