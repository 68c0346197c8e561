//! Neuron sets: per layer, sorted unique neuron indices.

use serde::{Deserialize, Serialize};

/// A set of neurons, stored per layer as sorted, unique indices (LAPE's layout).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NeuronSet {
    layers: Vec<Vec<u32>>,
}

impl NeuronSet {
    /// An empty set for a model with `n_layers` layers.
    pub fn empty(n_layers: usize) -> Self {
        NeuronSet {
            layers: vec![Vec::new(); n_layers],
        }
    }

    /// Builds a set from per-layer lists, sorting and de-duplicating each layer.
    pub fn from_layers(mut layers: Vec<Vec<u32>>) -> Self {
        for l in &mut layers {
            l.sort_unstable();
            l.dedup();
        }
        NeuronSet { layers }
    }

    /// Per-layer sorted indices.
    pub fn layers(&self) -> &[Vec<u32>] {
        &self.layers
    }

    /// Number of layers.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Total number of neurons.
    pub fn len(&self) -> usize {
        self.layers.iter().map(Vec::len).sum()
    }

    /// True when the set has no neuron.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Neurons per layer.
    pub fn per_layer_counts(&self) -> Vec<usize> {
        self.layers.iter().map(Vec::len).collect()
    }

    /// True when layer `layer` holds `neuron`.
    pub fn contains(&self, layer: usize, neuron: u32) -> bool {
        self.layers
            .get(layer)
            .is_some_and(|l| l.binary_search(&neuron).is_ok())
    }

    /// Adds a neuron (keeps the layer sorted); grows the layer list if needed.
    pub fn insert(&mut self, layer: usize, neuron: u32) {
        if self.layers.len() <= layer {
            self.layers.resize(layer + 1, Vec::new());
        }
        let l = &mut self.layers[layer];
        if let Err(pos) = l.binary_search(&neuron) {
            l.insert(pos, neuron);
        }
    }

    /// Number of neurons in both sets.
    pub fn intersection_len(&self, other: &NeuronSet) -> usize {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| l.iter().filter(|&&n| other.contains(i, n)).count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_dedups_and_counts() {
        let s = NeuronSet::from_layers(vec![vec![3, 1, 3], vec![], vec![7]]);
        assert_eq!(s.layers(), &[vec![1, 3], vec![], vec![7]]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.per_layer_counts(), vec![2, 0, 1]);
        assert!(s.contains(2, 7));
        assert!(!s.contains(1, 7));
        let t = NeuronSet::from_layers(vec![vec![3], vec![], vec![7, 8]]);
        assert_eq!(s.intersection_len(&t), 2);
    }

    #[test]
    fn serialises_as_plain_nested_lists() {
        let s = NeuronSet::from_layers(vec![vec![2, 1], vec![]]);
        assert_eq!(serde_json::to_string(&s).unwrap(), "[[1,2],[]]");
    }
}
