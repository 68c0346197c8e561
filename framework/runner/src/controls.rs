//! Control neuron sets for an evaluation cell: random sets matched to a selected set (the same
//! number of neurons in every layer, drawn without duplicates — unlike the released scripts,
//! which could repeat indices — from the neurons of that layer that are not in the selected
//! set, with a seeded stream), and the other labels' selected sets (the cross-value matrix).

use valex_core::{NeuronSet, SplitMix64};

/// Draws a random set matching `target`'s per-layer counts from `n_neurons` per layer,
/// excluding `target`'s own neurons.
///
/// # Panics
/// When a layer of `target` holds more than half of the layer (no room to draw from) — a
/// scorer selecting that many neurons in one layer is a bug.
pub fn matched_random(target: &NeuronSet, n_neurons: usize, rng: &mut SplitMix64) -> NeuronSet {
    let mut layers = Vec::with_capacity(target.n_layers());
    for chosen in target.layers() {
        let k = chosen.len();
        let free = n_neurons - k;
        assert!(
            k <= free,
            "cannot match {k} neurons in a layer of {n_neurons}"
        );
        // Draw k positions among the free neurons, then map position -> neuron id by
        // skipping the target's (sorted) neurons.
        let picks = rng.sample_distinct(free as u64, k);
        let mut out = Vec::with_capacity(k);
        let mut skip = 0usize;
        for p in picks {
            let mut id = p as usize + skip;
            while skip < chosen.len() && chosen[skip] as usize <= id {
                skip += 1;
                id = p as usize + skip;
            }
            out.push(u32::try_from(id).expect("neuron ids fit in u32"));
        }
        layers.push(out);
    }
    NeuronSet::from_layers(layers)
}

/// The sets of every label other than `label`, in order: ablating another value's neurons
/// is the specificity control of the cross-value matrix.
pub fn other_label_sets<'a>(
    sets: &'a [(String, NeuronSet)],
    label: &'a str,
) -> impl Iterator<Item = (&'a String, &'a NeuronSet)> + 'a {
    sets.iter()
        .filter(move |(l, _)| l != label)
        .map(|(l, s)| (l, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_counts_excludes_target_and_is_seeded() {
        let target = NeuronSet::from_layers(vec![vec![0, 1, 2, 7], vec![], vec![5]]);
        let a = matched_random(&target, 10, &mut SplitMix64::new(3));
        let b = matched_random(&target, 10, &mut SplitMix64::new(3));
        assert_eq!(a, b);
        assert_eq!(a.per_layer_counts(), vec![4, 0, 1]);
        assert_eq!(a.intersection_len(&target), 0);
        assert!(a.layers().iter().flatten().all(|&n| n < 10));
        // With 4 of 10 taken and 4 drawn from the other 6, all ids are valid and distinct.
        let c = matched_random(&target, 8, &mut SplitMix64::new(9));
        assert_eq!(c.layers()[0].len(), 4);
        assert!(c.layers()[0].iter().all(|n| [3, 4, 5, 6].contains(n)));
    }

    #[test]
    fn other_label_sets_skip_the_own_label_in_order() {
        let sets = vec![
            ("a".to_owned(), NeuronSet::from_layers(vec![vec![1]])),
            ("b".to_owned(), NeuronSet::from_layers(vec![vec![2]])),
            ("c".to_owned(), NeuronSet::from_layers(vec![vec![3]])),
        ];
        let others: Vec<&String> = other_label_sets(&sets, "b").map(|(l, _)| l).collect();
        assert_eq!(others, ["a", "c"]);
    }

    #[test]
    fn different_seeds_give_different_sets() {
        let target = NeuronSet::from_layers(vec![vec![1, 2, 3]]);
        let a = matched_random(&target, 1000, &mut SplitMix64::new(1));
        let b = matched_random(&target, 1000, &mut SplitMix64::new(2));
        assert_ne!(a, b);
    }
}
