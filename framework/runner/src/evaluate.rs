//! The evaluate stage: per value × language cell, the baseline, the own-set conditions
//! (`targeted` from `[intervention]`, then `[[evaluate.conditions]]`), matched random controls
//! (`random-<n>`) and, with `cross_value`, every other value's set (`set-of/<label>`), each
//! with its paired analysis against the baseline ([`crate::analysis`]).
//!
//! It owns the layout of `results.json → evaluation`; it must not know concrete backends,
//! interventions or evaluators.

use std::path::Path;

use serde_json::{Value, json};
use tracing::warn;
use valex_core::{
    ActivationStats, EditContext, EditPositions, EvalOutcome, EvalRequest, Evaluator, Intervention,
    Item, ItemKind, Language, ModelBackend, ModelInfo, NeuronSet, SplitMix64, StatisticsSource,
};
use valex_manifest::{EvaluateConfig as EvaluateSpec, LabelBy, RecordConfig as RecordSpec};

use crate::analysis::{CellResamples, complete_pairs, paired_delta};
use crate::controls::{matched_random, other_label_sets};
use crate::error::RunError;
use crate::perplexity::{EditedCondition, NeutralText};
use crate::spec::RunSpec;

/// One intervention with the statistics its edits get.
struct Applied<'a> {
    /// Condition name (`targeted`, a `[[evaluate.conditions]]` name).
    name: String,
    /// Canonical component id.
    id: String,
    intervention: &'a dyn Intervention,
    /// Where its edits apply (`positions` of `[intervention]` or the condition).
    positions: EditPositions,
    /// Statistics read from the file the intervention named, if any.
    file_stats: Option<ActivationStats>,
}

impl Applied<'_> {
    /// The stage named in errors: `evaluate (condition <name>, <id>)`.
    fn stage(&self) -> String {
        format!("evaluate (condition {}, {})", self.name, self.id)
    }

    fn edit(
        &self,
        set: &NeuronSet,
        tap: &str,
        info: &ModelInfo,
        run_stats: &ActivationStats,
    ) -> Result<valex_core::NeuronEdit, RunError> {
        let cx = match self.intervention.statistics() {
            StatisticsSource::None => EditContext::default(),
            StatisticsSource::Run => EditContext::default().with_stats(run_stats),
            _ => match &self.file_stats {
                Some(s) => EditContext::default().with_stats(s),
                None => EditContext::default(),
            },
        };
        self.intervention
            .edit(set, tap, info, &cx)
            .map(|e| e.at_positions(self.positions))
            .map_err(RunError::component(&self.stage()))
    }
}

fn applied<'a>(
    name: &str,
    id: &str,
    intervention: &'a dyn Intervention,
    positions: EditPositions,
) -> Result<Applied<'a>, RunError> {
    let file_stats = match intervention.statistics() {
        StatisticsSource::File(p) => Some(read_statistics(&p)?),
        _ => None,
    };
    Ok(Applied {
        name: name.to_owned(),
        id: id.to_owned(),
        intervention,
        positions,
        file_stats,
    })
}

/// Reads a statistics file an intervention named (`x.safetensors`, `x.json` or the stem `x`).
fn read_statistics(path: &Path) -> Result<ActivationStats, RunError> {
    let stem = match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors" | "json") => path.with_extension(""),
        _ => path.to_path_buf(),
    };
    Ok(valex_stats_io::read_stats(&stem)?.0)
}

/// One evaluated condition of a cell.
struct Outcome {
    name: String,
    kind: &'static str,
    id: String,
    n_neurons: usize,
    out: EvalOutcome,
}

fn run_eval(
    backend: &mut dyn ModelBackend,
    evaluator: &dyn Evaluator,
    items: &[Item],
    edit: Option<&valex_core::NeuronEdit>,
    stage: &str,
) -> Result<EvalOutcome, RunError> {
    evaluator
        .evaluate(backend, EvalRequest { items, edit })
        .map_err(RunError::component(stage))
}

/// Checks, right after the model loads and before any recording, that the backend can do what
/// the record and evaluate stages will ask: generation (an empty `generate` call) for
/// `[record] positions = "generated"` and for a generating evaluator
/// (`evaluator/support-percent`), and position-restricted edits (an empty `score` call with an
/// empty edit at those positions). Issue 7.
///
/// # Errors
/// The backend's one-line refusal, as stage `evaluate`.
pub(crate) fn check_backend(
    backend: &mut dyn ModelBackend,
    spec: &RunSpec,
) -> Result<(), RunError> {
    // `[record] positions = "generated"` records the model's replies.
    if spec
        .record
        .as_ref()
        .is_some_and(|r| r.positions == valex_manifest::Positions::Generated)
    {
        backend
            .generate(&[], None)
            .map_err(RunError::component("record"))?;
    }
    let Some(ev) = &spec.evaluate else {
        return Ok(());
    };
    let c = &spec.components;
    if c.evaluator.as_ref().is_some_and(|e| e.uses_generation()) {
        backend
            .generate(&[], None)
            .map_err(RunError::component("evaluate"))?;
    }
    let restricted = std::iter::once(spec.intervention_positions)
        .chain(ev.conditions.iter().map(|c| c.positions))
        .find(|p| !p.is_all());
    if let (Some(p), Some(rec)) = (restricted, &spec.record) {
        let probe = valex_core::NeuronEdit::multiply(rec.tap.clone(), Vec::new()).at_positions(p);
        backend
            .score(&[], Some(&probe))
            .map_err(RunError::component("evaluate"))?;
    }
    Ok(())
}

/// Evaluates every cell; returns `results.json → evaluation` and the printed table.
#[expect(
    clippy::too_many_arguments,
    reason = "the stage's inputs; a struct would only rename them"
)]
pub(crate) fn evaluate(
    backend: &mut dyn ModelBackend,
    spec: &RunSpec,
    rec: &RecordSpec,
    ev: &EvaluateSpec,
    evaluator: &dyn Evaluator,
    stats: &ActivationStats,
    sets: &[(String, NeuronSet)],
    items: &[Item],
    neutral: &[NeutralText],
) -> Result<(Value, String), RunError> {
    let info = backend.info().clone();
    let primary_id = spec
        .records
        .iter()
        .find(|(r, _)| r == "intervention")
        .map_or_else(String::new, |(_, r)| r.id.clone());
    let c = &spec.components;
    let mut own = vec![applied(
        "targeted",
        &primary_id,
        c.intervention.as_ref(),
        spec.intervention_positions,
    )?];
    for (k, (name, id, i)) in c.conditions.iter().enumerate() {
        let positions = ev
            .conditions
            .get(k)
            .map_or_else(EditPositions::default, |c| c.positions);
        own.push(applied(name, id, i.as_ref(), positions)?);
    }
    let primary = &own[0];

    let mut cells = Vec::new();
    let mut table = format!(
        "{:<10} {:<4} {:>5} {:>8} {:>9} {:>9} {:>9}\n",
        "value", "lang", "items", "neurons", "baseline", "Δ target", "Δ random"
    );
    let (mut sum_target, mut sum_random, mut n_cells, mut n_random) = (0.0, 0.0, 0usize, 0usize);
    // Per cell with a generating evaluator: how many answers could not be parsed.
    let mut unparsed_note = String::new();
    // (evaluated label, language, ablated label, delta) for the cross-value matrix.
    let mut cross: Vec<(String, Language, String, f64)> = Vec::new();
    let plan = cell_plan(sets, &ev.languages, rec.label_by, items);
    let bar = crate::progress::Progress::new("evaluate", plan.len() as u64, "cells");
    for (label, set, lang, value) in plan {
        bar.set_message(format!("{value} {}", lang.as_str()));
        // Random controls are seeded per label and language; with language labels one label
        // covers every value, so the value joins the key.
        let control_key = match rec.label_by {
            LabelBy::Language => format!("{label}/{value}"),
            LabelBy::Value | LabelBy::ValueLanguage | LabelBy::ValueCondition => label.clone(),
        };
        let mut eval_items: Vec<Item> = items
            .iter()
            .filter(|i| i.kind == ItemKind::Evaluation && i.value == value && i.language == lang)
            .cloned()
            .collect();
        if ev.max_items_per_value > 0 {
            eval_items.truncate(ev.max_items_per_value);
        }
        if eval_items.is_empty() {
            warn!(value = %value, lang = lang.as_str(), "no evaluation items; cell skipped");
            bar.inc(1);
            continue;
        }
        let base = run_eval(backend, evaluator, &eval_items, None, "evaluate")?;
        let mut outcomes: Vec<Outcome> = Vec::new();
        for a in &own {
            let edit = a.edit(set, &rec.tap, &info, stats)?;
            let out = run_eval(backend, evaluator, &eval_items, Some(&edit), &a.stage())?;
            outcomes.push(Outcome {
                name: a.name.clone(),
                kind: "own",
                id: a.id.clone(),
                n_neurons: set.len(),
                out,
            });
        }
        for r in 0..ev.random_controls {
            let mut rng = SplitMix64::derive(
                spec.seed,
                &format!("random-control/{control_key}/{}/{r}", lang.as_str()),
            );
            let rset = matched_random(set, info.n_neurons, &mut rng);
            let edit = primary.edit(&rset, &rec.tap, &info, stats)?;
            let out = run_eval(backend, evaluator, &eval_items, Some(&edit), "evaluate")?;
            outcomes.push(Outcome {
                name: format!("random-{}", r + 1),
                kind: "random",
                id: primary.id.clone(),
                n_neurons: rset.len(),
                out,
            });
        }
        let d_target = paired_delta(&base.per_item, &outcomes[0].out.per_item);
        cross.push((label.clone(), lang, label.clone(), d_target));
        if ev.cross_value {
            // Specificity: the same items with each other label's set ablated.
            for (other, oset) in other_label_sets(sets, label) {
                let edit = primary.edit(oset, &rec.tap, &info, stats)?;
                let out = run_eval(backend, evaluator, &eval_items, Some(&edit), "evaluate")?;
                let d = paired_delta(&base.per_item, &out.per_item);
                cross.push((label.clone(), lang, other.clone(), d));
                outcomes.push(Outcome {
                    name: format!("set-of/{other}"),
                    kind: "other-set",
                    id: primary.id.clone(),
                    n_neurons: oset.len(),
                    out,
                });
            }
        }
        let resamples = CellResamples::new(
            spec.seed,
            label,
            lang.as_str(),
            eval_items.len(),
            ev.bootstrap,
            ev.permutations,
        );
        let mean_of = |kind: &str| {
            let ds: Vec<f64> = outcomes
                .iter()
                .filter(|o| o.kind == kind)
                .map(|o| paired_delta(&base.per_item, &o.out.per_item))
                .filter(|d| d.is_finite())
                .collect();
            (!ds.is_empty()).then(|| ds.iter().sum::<f64>() / ds.len() as f64)
        };
        let d_random = mean_of("random");
        let specificity = mean_of("other-set").map(|d_other| d_target - d_other);
        let conditions: Vec<Value> = outcomes
            .iter()
            .map(|o| {
                let (ci, p, delta, n_paired) = match complete_pairs(&base.per_item, &o.out.per_item)
                {
                    None => {
                        let (ci, p) = resamples.analyse(&base.per_item, &o.out.per_item);
                        (ci, p, o.out.value - base.value, None)
                    }
                    // Unscored items (NaN) on either side: the paired statistics use the
                    // items scored in both, resampled as a cell of that many items.
                    Some((b, c)) => {
                        let r = CellResamples::new(
                            spec.seed,
                            label,
                            lang.as_str(),
                            b.len(),
                            ev.bootstrap,
                            ev.permutations,
                        );
                        let (ci, p) = r.analyse(&b, &c);
                        (ci, p, crate::analysis::delta(&b, &c), Some(b.len()))
                    }
                };
                let mut entry = json!({
                    "condition": o.name,
                    "kind": o.kind,
                    "intervention": o.id,
                    "n_neurons": o.n_neurons,
                    "rate": o.out.value,
                    "delta": delta,
                    "ci95": ci,
                    "p_permutation": p,
                    "per_item": o.out.per_item,
                });
                if let Some(a) = own.iter().find(|a| a.name == o.name)
                    && !a.positions.is_all()
                {
                    entry["positions"] = json!(a.positions.as_str());
                } else if o.kind != "own" && !primary.positions.is_all() {
                    entry["positions"] = json!(primary.positions.as_str());
                }
                if let Some(n) = n_paired {
                    entry["n_paired"] = json!(n);
                }
                if let Some(u) = &o.out.unscored {
                    entry["unscored"] = json!(u);
                }
                entry
            })
            .collect();
        if d_target.is_finite() {
            sum_target += d_target;
            n_cells += 1;
        }
        if let Some(d) = d_random {
            sum_random += d;
            n_random += 1;
        }
        // With record conditions a value has a set per condition: the row names the label.
        let row_name = match rec.label_by {
            LabelBy::ValueCondition => label.as_str(),
            _ => value.as_str(),
        };
        table.push_str(&format!(
            "{:<10} {:<4} {:>5} {:>8} {:>9.3} {:>+9.3} {:>9}\n",
            row_name,
            lang.as_str(),
            eval_items.len(),
            set.len(),
            base.value,
            d_target,
            d_random.map_or_else(|| "-".to_owned(), |d| format!("{d:+.3}")),
        ));
        let mut cell = json!({
            "value": value,
            "language": lang.as_str(),
            "label": label,
            "n_items": eval_items.len(),
            "item_ids": eval_items.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
            "metric": base.metric,
            "baseline": base.value,
            "baseline_per_item": base.per_item,
            "delta_random_mean": d_random,
            "specificity": specificity,
            "conditions": conditions,
        });
        if let Some(u) = &base.unscored {
            cell["baseline_unscored"] = json!(u);
            let unparsed: usize = std::iter::once(u)
                .chain(outcomes.iter().filter_map(|o| o.out.unscored.as_ref()))
                .map(|u| u.unparsed)
                .sum();
            let answers: usize = std::iter::once(u)
                .chain(outcomes.iter().filter_map(|o| o.out.unscored.as_ref()))
                .map(|u| u.answers)
                .sum();
            unparsed_note.push_str(&format!(
                "unparsed answers {value}/{}: {unparsed} of {answers}\n",
                lang.as_str()
            ));
        }
        cells.push(cell);
        bar.inc(1);
    }
    drop(bar);
    let mean = |s: f64, n: usize| {
        if n == 0 {
            Value::Null
        } else {
            json!(s / n as f64)
        }
    };
    let summary = json!({
        "cells": n_cells,
        "mean_delta_targeted": mean(sum_target, n_cells),
        "mean_delta_random": mean(sum_random, n_random),
    });
    table.push_str(&format!(
        "mean Δ targeted {}   mean Δ random {}\n",
        summary["mean_delta_targeted"], summary["mean_delta_random"]
    ));
    table.push_str(&unparsed_note);
    let mut doc = json!({
        "analysis": {
            "bootstrap": ev.bootstrap,
            "permutations": ev.permutations,
            "ci": "95 % percentile bootstrap of Δ = mean(condition) − mean(baseline), items resampled with the same indices for both",
            "p": "two-sided paired sign-flip permutation, p = (1 + #{|T*| ≥ |T|}) / (1 + permutations), T = mean per-item difference",
        },
        "cells": cells,
        "summary": summary,
    });
    if ev.cross_value {
        doc["cross_value"] = cross_value_matrix(sets, &ev.languages, &cross);
    }
    if !neutral.is_empty() {
        let mut per_language = Vec::new();
        for text in neutral {
            let mut conditions = Vec::new();
            for (label, set) in sets {
                if rec.label_by == LabelBy::ValueLanguage
                    && label.rsplit_once('/').map(|(_, l)| l) != Some(text.language.as_str())
                {
                    continue;
                }
                for a in &own {
                    conditions.push(EditedCondition {
                        label: label.clone(),
                        condition: a.name.clone(),
                        intervention: a.id.clone(),
                        n_neurons: set.len(),
                        // The side-effect check edits every token of the neutral text: it has
                        // no prompt / generated split (docs/evaluation.md).
                        edit: a
                            .edit(set, &rec.tap, &info, stats)?
                            .at_positions(EditPositions::All),
                    });
                }
            }
            let entry = crate::perplexity::language_entry(
                backend,
                text,
                &conditions,
                spec.seed,
                ev.bootstrap,
            )?;
            let ratios: Vec<f64> = entry["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["ratio"].as_f64())
                .collect();
            let (lo, hi) = ratios
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                    (lo.min(r), hi.max(r))
                });
            table.push_str(&format!(
                "perplexity {}: baseline {:.3}, ratio {} over {} conditions\n",
                text.language.as_str(),
                entry["baseline"].as_f64().unwrap_or(f64::NAN),
                if ratios.is_empty() {
                    "-".to_owned()
                } else {
                    format!("{lo:.4}..{hi:.4}")
                },
                ratios.len(),
            ));
            per_language.push(entry);
        }
        doc["side_effects"] = crate::perplexity::document(per_language, ev.bootstrap);
    }
    Ok((doc, table))
}

/// Per language, `delta[ablated][evaluated]` over the labels in set order (`null` where a
/// cell was not evaluated): the diagonal is the targeted ablation, the rest the specificity
/// controls.
/// The evaluation cells, in order: `(label, set, language, value)` for every selected set and
/// evaluation language. A value label is evaluated on its value's items in every language, and
/// so is a value-condition label (`诚信/support`, on the items of `诚信`); a
/// value-language label (`诚信/zh`) only in its language; a language label (`zh`) on the items
/// of every value in its language (values in order of first appearance in the data).
fn cell_plan<'a>(
    sets: &'a [(String, NeuronSet)],
    languages: &[Language],
    by: LabelBy,
    items: &[Item],
) -> Vec<(&'a String, &'a NeuronSet, Language, String)> {
    let mut plan = Vec::new();
    for (label, set) in sets {
        for &lang in languages {
            let values: Vec<String> = match by {
                LabelBy::Value => vec![label.clone()],
                LabelBy::ValueCondition => {
                    vec![
                        label
                            .split_once('/')
                            .map_or(label.as_str(), |(v, _)| v)
                            .to_owned(),
                    ]
                }
                LabelBy::ValueLanguage => match label.rsplit_once('/') {
                    Some((v, l)) if l == lang.as_str() => vec![v.to_owned()],
                    _ => Vec::new(),
                },
                LabelBy::Language if label == lang.as_str() => {
                    let mut values: Vec<String> = Vec::new();
                    for i in items {
                        if i.kind == ItemKind::Evaluation
                            && i.language == lang
                            && !values.contains(&i.value)
                        {
                            values.push(i.value.clone());
                        }
                    }
                    values
                }
                LabelBy::Language => Vec::new(),
            };
            plan.extend(values.into_iter().map(|v| (label, set, lang, v)));
        }
    }
    plan
}

fn cross_value_matrix(
    sets: &[(String, NeuronSet)],
    languages: &[Language],
    cross: &[(String, Language, String, f64)],
) -> Value {
    let labels: Vec<&String> = sets.iter().map(|(l, _)| l).collect();
    let per_lang: Vec<Value> = languages
        .iter()
        .map(|&lang| {
            let rows: Vec<Vec<Value>> = labels
                .iter()
                .map(|ablated| {
                    labels
                        .iter()
                        .map(|evaluated| {
                            cross
                                .iter()
                                .find(|(e, l, a, _)| e == *evaluated && *l == lang && a == *ablated)
                                .map_or(Value::Null, |c| json!(c.3))
                        })
                        .collect()
                })
                .collect();
            json!({"language": lang.as_str(), "labels": labels, "delta": rows})
        })
        .collect();
    Value::Array(per_lang)
}

#[cfg(test)]
mod tests {
    use super::*;
    use valex_core::{ComponentError, NeuronEdit, NeuronOp};

    /// Replaces each neuron by label 0's token mean, from the statistics in its context.
    struct FromStats(StatisticsSource);
    impl Intervention for FromStats {
        fn edit(
            &self,
            set: &NeuronSet,
            tap: &str,
            info: &ModelInfo,
            cx: &EditContext<'_>,
        ) -> Result<NeuronEdit, ComponentError> {
            let s = cx
                .stats
                .ok_or_else(|| ComponentError::config("no statistics"))?;
            let l = &s.labels[0];
            let mut e = NeuronEdit::multiply(tap, vec![Vec::new(); info.n_layers]);
            for (layer, ns) in set.layers().iter().enumerate() {
                for &n in ns {
                    let m = l.sum[layer * info.n_neurons + n as usize] / l.tokens;
                    e.layers[layer].push((n, NeuronOp::constant(m as f32)));
                }
            }
            Ok(e)
        }
        fn statistics(&self) -> StatisticsSource {
            self.0.clone()
        }
    }

    fn stats(value: f64) -> ActivationStats {
        let mut s = ActivationStats::new("mlp.gate_act", 1, 2, &["a".to_owned()]);
        s.count_item(0, 0, 2.0);
        s.add_item_layer(0, 0, 0, 2.0, &[1.0, 1.0], &[2.0 * value, 0.0], &[0.0, 0.0]);
        s
    }

    fn info() -> ModelInfo {
        ModelInfo {
            architecture: "llama".into(),
            n_layers: 1,
            n_neurons: 2,
            hidden_size: 4,
            vocab_size: 4,
            content_sha256: String::new(),
        }
    }

    #[test]
    fn interventions_get_the_statistics_they_ask_for() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("other");
        valex_stats_io::write_stats(&stem, &stats(0.5), &json!({})).unwrap();
        let run = stats(3.0);
        let set = NeuronSet::from_layers(vec![vec![0]]);
        let value = |source: StatisticsSource| {
            let i = FromStats(source);
            let a = applied("c", "intervention/x", &i, EditPositions::All)?;
            a.edit(&set, "mlp.gate_act", &info(), &run)
                .map(|e| e.layers[0][0].1.shift)
        };
        assert_eq!(value(StatisticsSource::Run).unwrap(), 3.0);
        for name in ["other", "other.safetensors", "other.json"] {
            let f = StatisticsSource::File(dir.path().join(name));
            assert_eq!(value(f).unwrap(), 0.5, "{name}");
        }
        let e = value(StatisticsSource::None).unwrap_err().to_string();
        assert_eq!(e, "evaluate (condition c, intervention/x)");
        assert!(value(StatisticsSource::File(dir.path().join("missing"))).is_err());
    }

    #[test]
    fn edits_carry_the_condition_positions() {
        let i = FromStats(StatisticsSource::Run);
        let set = NeuronSet::from_layers(vec![vec![1]]);
        for p in [
            EditPositions::All,
            EditPositions::Prompt,
            EditPositions::Generated,
        ] {
            let a = applied("c", "intervention/x", &i, p).unwrap();
            let e = a.edit(&set, "mlp.gate_act", &info(), &stats(1.0)).unwrap();
            assert_eq!(e.positions, p);
        }
    }

    #[test]
    fn value_condition_labels_are_evaluated_on_their_values_items_in_every_language() {
        let sets = vec![
            (
                "b/support".to_owned(),
                NeuronSet::from_layers(vec![vec![0]]),
            ),
            (
                "b/conflict".to_owned(),
                NeuronSet::from_layers(vec![vec![1]]),
            ),
        ];
        let plan = cell_plan(
            &sets,
            &[Language::Zh, Language::En],
            LabelBy::ValueCondition,
            &[],
        );
        let got: Vec<(&str, &str, String)> = plan
            .iter()
            .map(|(l, _, lang, v)| (l.as_str(), lang.as_str(), v.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("b/support", "zh", "b".to_owned()),
                ("b/support", "en", "b".to_owned()),
                ("b/conflict", "zh", "b".to_owned()),
                ("b/conflict", "en", "b".to_owned()),
            ]
        );
    }
}
