//! The value-study pipeline: record → score → evaluate → report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use tracing::{info, info_span, warn};
use valex_core::{
    ActivationStats, EvalRequest, Item, ItemKind, ModelBackend, NeuronSet, RecordBatch, SplitMix64,
    VALEX_VERSION,
};

use crate::controls::matched_random;
use crate::error::RunError;
use crate::provenance::{GIT_DESCRIBE, utc_rfc3339, utc_timestamp};
use crate::run_dir::RunDir;
use crate::spec::{RunSpec, label_of, overlaps, position_spans, render_item};
use valex_manifest::{EvaluateConfig as EvaluateSpec, LabelBy, RecordConfig as RecordSpec};

/// How and where to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The run directory; default `<runs_root>/<name>-<UTC timestamp>`.
    pub out: Option<PathBuf>,
    /// Folder for default run directories (`runs`).
    pub runs_root: PathBuf,
    /// Replace an existing run directory.
    pub force: bool,
    /// The manifest and every included file, in load order.
    pub manifest_files: Vec<PathBuf>,
    /// The resolved manifest (all layers applied), written as `manifest.resolved.toml`.
    pub resolved_manifest: String,
    /// Folder that relative names in results are given against (the manifest's folder).
    pub base_dir: PathBuf,
    /// The command line, for run.json.
    pub command_line: Vec<String>,
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The committed run directory.
    pub run_dir: PathBuf,
    /// The results document (as in results.json).
    pub results: Value,
    /// A short human-readable table of the evaluation.
    pub table: String,
}

struct Timer {
    timings: Vec<(String, f64)>,
}

impl Timer {
    fn time<T>(
        &mut self,
        stage: &str,
        f: impl FnOnce() -> Result<T, RunError>,
    ) -> Result<T, RunError> {
        let _span = info_span!("stage", id = stage).entered();
        info!(stage, "stage started");
        let t = Instant::now();
        let out = f()?;
        let elapsed_ms = t.elapsed().as_secs_f64() * 1e3;
        info!(stage, elapsed_ms, "stage finished");
        self.timings.push((stage.to_owned(), elapsed_ms / 1e3));
        Ok(out)
    }
}

/// Runs `spec` and commits the run directory.
///
/// # Errors
/// Any stage's error; the run directory is then not created.
pub fn run(spec: RunSpec, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let _span = info_span!("run", experiment = %spec.name).entered();
    let started = utc_rfc3339();
    let final_path = opts.out.clone().unwrap_or_else(|| {
        opts.runs_root
            .join(format!("{}-{}", spec.name, utc_timestamp()))
    });
    let dir = RunDir::create(&final_path, opts.force)?;
    dir.write("manifest.resolved.toml", opts.resolved_manifest.as_bytes())?;
    let mut timer = Timer {
        timings: Vec::new(),
    };
    let mut inputs: Vec<(String, String, PathBuf)> = Vec::new(); // (role, sha256, path)
    for f in &opts.manifest_files {
        inputs.push((
            "manifest".into(),
            valex_stats_io::sha256_file(f)?,
            f.clone(),
        ));
    }

    let c = &spec.components;
    let data = timer.time("load dataset", || {
        c.dataset
            .load()
            .map_err(RunError::component("load dataset"))
    })?;
    for f in &data.files {
        inputs.push(("dataset".into(), valex_stats_io::sha256_file(f)?, f.clone()));
    }
    let mut backend = timer.time("load model", || {
        c.backend.load().map_err(RunError::component("load model"))
    })?;
    for f in c.backend.input_files() {
        inputs.push(("model".into(), valex_stats_io::sha256_file(&f)?, f));
    }
    let model = backend.info().clone();

    let manifest_sha = sha256_hex(opts.resolved_manifest.as_bytes());
    let dataset_hashes: BTreeMap<String, String> = inputs
        .iter()
        .filter(|(role, ..)| role == "dataset")
        .map(|(_, h, p)| (relative_name(p, &opts.base_dir), h.clone()))
        .collect();
    let provenance = json!({
        "valex_version": VALEX_VERSION,
        "manifest_sha256": manifest_sha,
        "model_sha256": model.content_sha256,
        "dataset_sha256": dataset_hashes,
    });

    let mut results = json!({
        "valex_version": VALEX_VERSION,
        "experiment": { "name": spec.name, "seed": spec.seed },
        "provenance": provenance,
        "components": spec.records.iter().map(|(role, r)| json!({"role": role, "id": r.id, "params": r.params})).collect::<Vec<_>>(),
        "model": { "architecture": model.architecture, "n_layers": model.n_layers, "n_neurons": model.n_neurons },
    });

    let mut table = String::new();
    if let Some(rec) = &spec.record {
        let stats = timer.time("record", || record(backend.as_mut(), rec, &data.items))?;
        let stats_prov = json!({
            "provenance": results["provenance"].clone(),
            "record": rec,
        });
        valex_stats_io::write_stats(&dir.staging().join("statistics"), &stats, &stats_prov)?;
        let stats_sha = valex_stats_io::sha256_file(&dir.staging().join("statistics.safetensors"))?;
        results["record"] = json!({
            "tap": rec.tap,
            "positions": rec.positions,
            "label_by": rec.label_by,
            "statistics_sha256": stats_sha,
            "labels": stats.labels.iter().map(|l| json!({"name": l.name, "items": l.items, "tokens": l.tokens})).collect::<Vec<_>>(),
        });

        if let Some(scorer) = &c.scorer {
            let labels = stats.label_names();
            let out = timer.time("score", || {
                scorer
                    .score(&stats, &labels)
                    .map_err(RunError::component("score"))
            })?;
            let scorer_rec = spec
                .records
                .iter()
                .find(|(r, _)| r == "scorer")
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
            let set_prov = json!({
                "scorer": scorer_rec.id,
                "params": scorer_rec.params,
                "statistics_sha256": stats_sha,
                "model_sha256": model.content_sha256,
                "dataset_sha256": results["provenance"]["dataset_sha256"].clone(),
                "valex_version": VALEX_VERSION,
            });
            valex_stats_io::write_neuron_sets(
                &dir.staging().join("neurons.json"),
                &out.sets,
                &set_prov,
            )?;
            results["selection"] = json!({
                "scorer": scorer_rec.id,
                "details": out.details,
                "sets": out.sets.iter().map(|(l, s)| json!({"label": l, "n_neurons": s.len(), "per_layer": s.per_layer_counts()})).collect::<Vec<_>>(),
            });

            if let (Some(ev), Some(evaluator)) = (&spec.evaluate, &c.evaluator) {
                let (doc, t) = timer.time("evaluate", || {
                    evaluate(
                        backend.as_mut(),
                        &spec,
                        rec,
                        ev,
                        evaluator.as_ref(),
                        &out.sets,
                        &data.items,
                    )
                })?;
                results["evaluation"] = doc;
                table = t;
            }
        }
    }

    let reporters_out = timer.time("report", || {
        let mut files = Vec::new();
        for (id, r) in &c.reporters {
            files.extend(r.report(&results).map_err(RunError::component(id))?);
        }
        Ok(files)
    })?;
    for f in &reporters_out {
        dir.write(&f.name, &f.bytes)?;
    }

    let run_json = json!({
        "valex_version": VALEX_VERSION,
        "git_describe": GIT_DESCRIBE,
        "experiment": spec.name,
        "seed": spec.seed,
        "started_utc": started,
        "finished_utc": utc_rfc3339(),
        "command_line": opts.command_line,
        "run_dir": final_path.display().to_string(),
        "host": hostname(),
        "components": results["components"].clone(),
        "inputs": inputs.iter().map(|(role, h, p)| json!({"role": role, "path": p.display().to_string(), "sha256": h})).collect::<Vec<_>>(),
        "model_sha256": model.content_sha256,
        "outputs": reporters_out.iter().map(|f| json!({"file": f.name, "sha256": sha256_hex(&f.bytes)})).collect::<Vec<_>>(),
        "timings_s": timer.timings.iter().map(|(s, t)| json!({"stage": s, "seconds": t})).collect::<Vec<_>>(),
    });
    let mut bytes = serde_json::to_vec_pretty(&run_json).expect("json values serialise");
    bytes.push(b'\n');
    dir.write("run.json", &bytes)?;
    let run_dir = dir.commit()?;
    Ok(RunSummary {
        run_dir,
        results,
        table,
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `path` relative to `base` when it lies below it, else its file name (results.json must
/// not hold absolute paths).
fn relative_name(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .ok()
        .or_else(|| path.file_name().map(Path::new))
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The labels of the activation items used, in order of first appearance.
fn record_items<'a>(rec: &RecordSpec, items: &'a [Item]) -> (Vec<String>, Vec<(usize, &'a Item)>) {
    let mut labels: Vec<String> = Vec::new();
    let mut per_label: Vec<usize> = Vec::new();
    let mut chosen = Vec::new();
    for it in items {
        if it.kind != ItemKind::Activation || !rec.languages.contains(&it.language) {
            continue;
        }
        let label = label_of(rec.label_by, &it.value, it.language);
        let li = labels.iter().position(|l| *l == label).unwrap_or_else(|| {
            labels.push(label);
            per_label.push(0);
            labels.len() - 1
        });
        if rec.max_items_per_label == 0 || per_label[li] < rec.max_items_per_label {
            per_label[li] += 1;
            chosen.push((li, it));
        }
    }
    (labels, chosen)
}

fn record(
    backend: &mut dyn ModelBackend,
    rec: &RecordSpec,
    items: &[Item],
) -> Result<ActivationStats, RunError> {
    let (labels, chosen) = record_items(rec, items);
    if chosen.is_empty() {
        return Err(RunError::Config(format!(
            "record: the dataset has no activation items in languages {:?}",
            rec.languages.iter().map(|l| l.as_str()).collect::<Vec<_>>()
        )));
    }
    let info = backend.info().clone();
    let mut stats = ActivationStats::new(&rec.tap, info.n_layers, info.n_neurons, &labels);
    let spans = position_spans(rec.positions);
    for (bi, chunk) in chosen.chunks(rec.batch_size.max(1)).enumerate() {
        let _span = tracing::trace_span!("batch", index = bi).entered();
        let mut batch = RecordBatch {
            ids: Vec::new(),
            positions: Vec::new(),
            labels: Vec::new(),
        };
        for &(li, it) in chunk {
            let template = rec.template.for_language(it.language);
            let r = render_item(template, it).map_err(|m| {
                RunError::Config(format!("record.template.{}: {m}", it.language.as_str()))
            })?;
            let enc = backend
                .encode(&r.text)
                .map_err(RunError::component("record"))?;
            let mask: Vec<bool> = if spans.is_empty() {
                vec![true; enc.ids.len()]
            } else {
                enc.offsets
                    .iter()
                    .map(|&(s, e)| overlaps(&r, spans, s, e))
                    .collect()
            };
            let n = mask.iter().filter(|&&m| m).count();
            if n == 0 {
                warn!(item = %it.id, "no token of the item falls in the recorded positions");
            }
            stats.labels[li].tokens += n as f64;
            stats.labels[li].items += 1;
            batch.ids.push(enc.ids);
            batch.positions.push(mask);
            batch.labels.push(li);
        }
        backend
            .record(&rec.tap, &batch, None, &mut stats)
            .map_err(RunError::component("record"))?;
    }
    Ok(stats)
}

fn evaluate(
    backend: &mut dyn ModelBackend,
    spec: &RunSpec,
    rec: &RecordSpec,
    ev: &EvaluateSpec,
    evaluator: &dyn valex_core::Evaluator,
    sets: &[(String, NeuronSet)],
    items: &[Item],
) -> Result<(Value, String), RunError> {
    let info = backend.info().clone();
    let intervention = spec.components.intervention.as_ref();
    let mut cells = Vec::new();
    let mut table = format!(
        "{:<10} {:<4} {:>5} {:>8} {:>9} {:>9} {:>9}\n",
        "value", "lang", "items", "neurons", "baseline", "Δ target", "Δ random"
    );
    let (mut sum_target, mut sum_random, mut n_cells, mut n_random) = (0.0, 0.0, 0usize, 0usize);
    for (label, set) in sets {
        for &lang in &ev.languages {
            let value = match rec.label_by {
                LabelBy::Value => label.clone(),
                LabelBy::ValueLanguage => {
                    let Some((v, l)) = label.rsplit_once('/') else {
                        continue;
                    };
                    if l != lang.as_str() {
                        continue;
                    }
                    v.to_owned()
                }
            };
            let mut eval_items: Vec<Item> = items
                .iter()
                .filter(|i| {
                    i.kind == ItemKind::Evaluation && i.value == value && i.language == lang
                })
                .cloned()
                .collect();
            if ev.max_items_per_value > 0 {
                eval_items.truncate(ev.max_items_per_value);
            }
            if eval_items.is_empty() {
                warn!(value = %value, lang = lang.as_str(), "no evaluation items; cell skipped");
                continue;
            }
            let base = evaluator
                .evaluate(
                    backend,
                    EvalRequest {
                        items: &eval_items,
                        edit: None,
                    },
                )
                .map_err(RunError::component("evaluate"))?;
            let edit = intervention
                .edit(set, &rec.tap, &info)
                .map_err(RunError::component("evaluate"))?;
            let target = evaluator
                .evaluate(
                    backend,
                    EvalRequest {
                        items: &eval_items,
                        edit: Some(&edit),
                    },
                )
                .map_err(RunError::component("evaluate"))?;
            let mut conditions = vec![json!({
                "condition": "targeted",
                "n_neurons": set.len(),
                "rate": target.value,
                "delta": target.value - base.value,
                "per_item": target.per_item,
            })];
            let mut random_deltas = Vec::new();
            for r in 0..ev.random_controls {
                let mut rng = SplitMix64::derive(
                    spec.seed,
                    &format!("random-control/{label}/{}/{r}", lang.as_str()),
                );
                let rset = matched_random(set, info.n_neurons, &mut rng);
                let redit = intervention
                    .edit(&rset, &rec.tap, &info)
                    .map_err(RunError::component("evaluate"))?;
                let out = evaluator
                    .evaluate(
                        backend,
                        EvalRequest {
                            items: &eval_items,
                            edit: Some(&redit),
                        },
                    )
                    .map_err(RunError::component("evaluate"))?;
                random_deltas.push(out.value - base.value);
                conditions.push(json!({
                    "condition": format!("random-{}", r + 1),
                    "n_neurons": rset.len(),
                    "rate": out.value,
                    "delta": out.value - base.value,
                    "per_item": out.per_item,
                }));
            }
            let d_target = target.value - base.value;
            let d_random = (!random_deltas.is_empty())
                .then(|| random_deltas.iter().sum::<f64>() / random_deltas.len() as f64);
            sum_target += d_target;
            n_cells += 1;
            if let Some(d) = d_random {
                sum_random += d;
                n_random += 1;
            }
            table.push_str(&format!(
                "{:<10} {:<4} {:>5} {:>8} {:>9.3} {:>+9.3} {:>9}\n",
                value,
                lang.as_str(),
                eval_items.len(),
                set.len(),
                base.value,
                d_target,
                d_random.map_or_else(|| "-".to_owned(), |d| format!("{d:+.3}")),
            ));
            cells.push(json!({
                "value": value,
                "language": lang.as_str(),
                "label": label,
                "n_items": eval_items.len(),
                "item_ids": eval_items.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
                "metric": base.metric,
                "baseline": base.value,
                "baseline_per_item": base.per_item,
                "conditions": conditions,
            }));
        }
    }
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
    Ok((json!({ "cells": cells, "summary": summary }), table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use valex_core::Language;
    use valex_manifest::Positions;

    fn item(id: &str, value: &str, lang: Language, kind: ItemKind) -> Item {
        Item {
            id: id.into(),
            value: value.into(),
            language: lang,
            kind,
            story: "s".into(),
            rationale: Some("r".into()),
            aligned: "a".into(),
            violating: "b".into(),
            conflict_motive: None,
            parallel_id: None,
        }
    }

    #[test]
    fn record_items_groups_labels_in_order_and_caps() {
        let items = vec![
            item("1", "b", Language::Zh, ItemKind::Activation),
            item("2", "a", Language::En, ItemKind::Activation),
            item("3", "b", Language::En, ItemKind::Activation),
            item("4", "b", Language::Zh, ItemKind::Evaluation),
            item("5", "b", Language::Zh, ItemKind::Activation),
        ];
        let mut rec = RecordSpec {
            tap: "mlp.gate_act".into(),
            positions: Positions::Story,
            label_by: LabelBy::Value,
            languages: vec![Language::Zh, Language::En],
            batch_size: 2,
            max_items_per_label: 2,
            template: valex_manifest::TemplateConfig {
                zh: "{story}".into(),
                en: "{story}".into(),
            },
        };
        let (labels, chosen) = record_items(&rec, &items);
        assert_eq!(labels, vec!["b", "a"]);
        let ids: Vec<_> = chosen.iter().map(|(l, i)| (*l, i.id.as_str())).collect();
        assert_eq!(ids, vec![(0, "1"), (1, "2"), (0, "3")]);
        rec.label_by = LabelBy::ValueLanguage;
        rec.languages = vec![Language::Zh];
        let (labels, chosen) = record_items(&rec, &items);
        assert_eq!(labels, vec!["b/zh"]);
        assert_eq!(chosen.len(), 2);
    }

    #[test]
    fn relative_names_never_absolute() {
        assert_eq!(
            relative_name(Path::new("/a/b/c.jsonl"), Path::new("/a")),
            "b/c.jsonl"
        );
        assert_eq!(
            relative_name(Path::new("/x/c.jsonl"), Path::new("/a")),
            "c.jsonl"
        );
    }
}
