//! `[score] group_by`: a scorer run once per group of labels instead of once over all of them
//! (the C-voice follow-up scores each value over its own `support` and `conflict` labels).
//!
//! [`GroupedScorer`] wraps any [`Scorer`], so the score stage and the selection-stability
//! replicates use it alike. It owns the grouping and the layout of the grouped details; it
//! must not know concrete scorers.

use serde_json::{Value, json};
use valex_core::{ActivationStats, ComponentError, ScoreOutput, Scorer};
use valex_manifest::GroupBy;

/// A scorer that scores each group of labels on its own and concatenates the sets.
///
/// Groups are formed by [`GroupBy::group_of`], in order of first appearance among the
/// requested labels; each group's labels keep their request order, and the output's sets
/// follow the groups (labels unchanged, e.g. `富强/support`). The details are
/// `{"group_by", "selection", "groups": [{"group", "labels", "details"}]}` with each group's own
/// details; `selection` is the first group's selection rule (every group uses the same
/// params).
pub struct GroupedScorer<'a> {
    inner: &'a dyn Scorer,
    by: GroupBy,
}

impl<'a> GroupedScorer<'a> {
    /// Wraps `inner`.
    pub fn new(inner: &'a dyn Scorer, by: GroupBy) -> Self {
        GroupedScorer { inner, by }
    }

    /// The groups of `labels`: `(group, labels)` in order of first appearance.
    pub fn groups(&self, labels: &[String]) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for l in labels {
            let g = self.by.group_of(l);
            match groups.iter_mut().find(|(name, _)| name == g) {
                Some((_, ls)) => ls.push(l.clone()),
                None => groups.push((g.to_owned(), vec![l.clone()])),
            }
        }
        groups
    }
}

impl Scorer for GroupedScorer<'_> {
    fn score(
        &self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScoreOutput, ComponentError> {
        let mut sets = Vec::with_capacity(labels.len());
        let mut groups = Vec::new();
        let mut selection = Value::Null;
        for (group, ls) in self.groups(labels) {
            let out = self.inner.score(stats, &ls).map_err(|mut e| {
                e.message = format!("group {group}: {}", e.message);
                e
            })?;
            if selection.is_null() {
                selection = valex_stats_io::SetProvenance::selection_of(&out.details);
            }
            sets.extend(out.sets);
            groups.push(json!({"group": group, "labels": ls, "details": out.details}));
        }
        let by = match self.by {
            GroupBy::Value => "value",
        };
        if let Some(m) = selection.as_object_mut() {
            m.insert("group_by".to_owned(), json!(by));
        }
        Ok(ScoreOutput {
            sets,
            details: json!({"group_by": by, "selection": selection, "groups": groups}),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use valex_core::NeuronSet;

    /// Selects, for each label, the neurons whose index is the label's position in the request
    /// plus the number of labels requested (so the result depends on the grouping).
    struct Positional;
    impl Scorer for Positional {
        fn score(
            &self,
            stats: &ActivationStats,
            labels: &[String],
        ) -> Result<ScoreOutput, ComponentError> {
            if labels.iter().any(|l| l.ends_with("bad")) {
                return Err(ComponentError::input("unknown label"));
            }
            let sets = labels
                .iter()
                .enumerate()
                .map(|(k, l)| {
                    let mut layers = vec![Vec::new(); stats.n_layers];
                    layers[0].push((k + labels.len()) as u32);
                    (l.clone(), NeuronSet::from_layers(layers))
                })
                .collect();
            Ok(ScoreOutput {
                sets,
                details: json!({"n": labels.len()}),
            })
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn each_group_is_scored_alone_and_sets_keep_their_labels() {
        let labels = names(&["b/support", "b/conflict", "a/support", "a/conflict", "c"]);
        let stats = ActivationStats::new("mlp.gate_act", 1, 8, &labels);
        let g = GroupedScorer::new(&Positional, GroupBy::Value);
        let out = g.score(&stats, &labels).unwrap();
        let got: Vec<(&str, Vec<u32>)> = out
            .sets
            .iter()
            .map(|(l, s)| (l.as_str(), s.layers()[0].clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("b/support", vec![2]),
                ("b/conflict", vec![3]),
                ("a/support", vec![2]),
                ("a/conflict", vec![3]),
                ("c", vec![1]),
            ]
        );
        assert_eq!(out.details["group_by"], "value");
        assert_eq!(out.details["groups"][1]["group"], "a");
        assert_eq!(
            out.details["groups"][1]["labels"],
            json!(["a/support", "a/conflict"])
        );
        assert_eq!(out.details["groups"][2]["details"], json!({"n": 1}));
        // Per group, the result equals scoring that group's labels alone.
        for (group, ls) in g.groups(&labels) {
            let alone = Positional.score(&stats, &ls).unwrap().sets;
            let grouped: Vec<_> = out
                .sets
                .iter()
                .filter(|(l, _)| GroupBy::Value.group_of(l) == group)
                .cloned()
                .collect();
            assert_eq!(grouped, alone, "{group}");
        }
    }

    #[test]
    fn a_failing_group_is_named() {
        let labels = names(&["a/x", "z/bad"]);
        let stats = ActivationStats::new("mlp.gate_act", 1, 8, &labels);
        let e = GroupedScorer::new(&Positional, GroupBy::Value)
            .score(&stats, &labels)
            .unwrap_err();
        assert_eq!(e.message, "group z: unknown label");
    }
}
