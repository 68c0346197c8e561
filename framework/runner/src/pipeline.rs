//! The value-study pipeline: record → score → evaluate → report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use tracing::{info, info_span, warn};
use valex_core::{ActivationStats, ModelBackend, VALEX_VERSION};

use crate::error::RunError;
use crate::provenance::{GIT_DESCRIBE, utc_rfc3339, utc_timestamp};
use crate::record::{Shard, record};
use crate::resume::{Checkpointer, PartialRun, Progress, record_settings};
use crate::run_dir::RunDir;
use crate::spec::RunSpec;
use valex_manifest::RecordConfig as RecordSpec;

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
    /// Use these statistics (e.g. merged shards from `valex merge`) instead of recording.
    pub statistics: Option<PathBuf>,
    /// Loaded plugin libraries (path, name, version, ABI version, sha256 of the library, ...),
    /// recorded in run.json as `plugins`.
    pub plugins: Vec<Value>,
    /// Continue this incomplete run (`valex run --resume`) instead of starting a new one.
    pub resume: Option<PartialRun>,
    /// Set by the CLI's Ctrl-C handler: the record stage stops after the current batch (with a
    /// checkpoint), other stages before they start; the run ends with
    /// [`RunError::Interrupted`] and stays resumable.
    pub interrupt: Option<Arc<AtomicBool>>,
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

#[derive(Default)]
struct Timer {
    timings: Vec<(String, f64)>,
    /// The stage started last (named in status.json when the run fails).
    current: String,
    interrupt: Option<Arc<AtomicBool>>,
}

impl Timer {
    fn time<T>(
        &mut self,
        stage: &str,
        f: impl FnOnce() -> Result<T, RunError>,
    ) -> Result<T, RunError> {
        stage.clone_into(&mut self.current);
        if self
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
        {
            return Err(RunError::Interrupted {
                stage: stage.to_owned(),
                detail: " before it started".to_owned(),
                resume: None,
            });
        }
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

/// Inputs loaded and hashed: the first two stages of every run.
struct Prepared {
    data: valex_core::DatasetLoad,
    backend: Box<dyn ModelBackend>,
    /// `(role, sha256, path)` of every file read.
    inputs: Vec<(String, String, PathBuf)>,
    /// Hashes that identify the experiment's inputs (no paths, no times).
    provenance: Value,
    /// The neutral texts of the perplexity check (`[evaluate] neutral_text`), read before
    /// the model loads.
    neutral: Vec<crate::perplexity::NeutralText>,
}

fn prepare(spec: &RunSpec, opts: &RunOptions, timer: &mut Timer) -> Result<Prepared, RunError> {
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
    // Neutral texts are checked before the model loads, so a bad file costs nothing.
    let neutral = match &spec.evaluate {
        Some(ev) if spec.record.is_some() && c.scorer.is_some() => match &ev.neutral_text {
            Some(nt) => crate::perplexity::read_texts(
                &ev.languages,
                |l| nt.for_language(l).map(str::to_owned),
                &opts.base_dir,
            )?,
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    for t in &neutral {
        inputs.push(("neutral_text".into(), t.sha256.clone(), t.path.clone()));
    }
    let backend = timer.time("load model", || {
        c.backend.load().map_err(RunError::component("load model"))
    })?;
    for f in c.backend.input_files() {
        inputs.push(("model".into(), valex_stats_io::sha256_file(&f)?, f));
    }

    let manifest_sha = sha256_hex(opts.resolved_manifest.as_bytes());
    let dataset_hashes: BTreeMap<String, String> = inputs
        .iter()
        .filter(|(role, ..)| role == "dataset")
        .map(|(_, h, p)| (relative_name(p, &opts.base_dir), h.clone()))
        .collect();
    let provenance = json!({
        "valex_version": VALEX_VERSION,
        "manifest_sha256": manifest_sha,
        "model_sha256": backend.info().content_sha256,
        "dataset_sha256": dataset_hashes,
    });

    Ok(Prepared {
        data,
        backend,
        inputs,
        provenance,
        neutral,
    })
}

/// Runs only the recording stage (optionally one shard of it) and returns the statistics and
/// the provenance to store beside them: the inputs' hashes, the record settings and the shard.
///
/// # Errors
/// Loading or recording errors.
pub fn record_statistics(
    spec: &RunSpec,
    opts: &RunOptions,
    shard: Option<Shard>,
) -> Result<(ActivationStats, Value), RunError> {
    let rec = spec.record.as_ref().ok_or_else(|| {
        RunError::Config("record: the manifest has no [record] section".to_owned())
    })?;
    let mut timer = Timer::default();
    let mut p = prepare(spec, opts, &mut timer)?;
    let stats = timer.time("record", || {
        record(
            p.backend.as_mut(),
            rec,
            &p.data.items,
            shard,
            spec.seed,
            None,
        )
    })?;
    let prov = json!({
        "provenance": p.provenance,
        "record": record_settings(rec),
        "shard": shard.map(|s| json!({"index": s.index, "count": s.count})),
    });
    Ok((stats, prov))
}

/// Runs `spec` (or continues `opts.resume`) and commits the run directory.
///
/// # Errors
/// Any stage's error; the run directory is then not created, and its staging folder is kept
/// with status.json (`failed` or `interrupted`) so that `valex run --resume` can continue it.
pub fn run(spec: RunSpec, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let _span = info_span!("run", experiment = %spec.name).entered();
    let final_path = match &opts.resume {
        Some(partial) => partial.final_path.clone(),
        None => opts.out.clone().unwrap_or_else(|| {
            opts.runs_root
                .join(format!("{}-{}", spec.name, utc_timestamp()))
        }),
    };
    let (mut dir, mut progress) = crate::resume::open_run_dir(&final_path, opts)?;
    let mut timer = Timer {
        interrupt: opts.interrupt.clone(),
        ..Timer::default()
    };
    let result = run_staged(spec, opts, &dir, &mut progress, &mut timer).and_then(|summary| {
        let run_dir = dir.commit()?;
        Ok(RunSummary { run_dir, ..summary })
    });
    match result {
        Ok(summary) => Ok(summary),
        Err(mut e) => {
            crate::resume::record_end(&dir, &mut e, &timer.current);
            Err(e)
        }
    }
}

/// The stages of [`run`], writing into the staging folder of `dir`.
fn run_staged(
    spec: RunSpec,
    opts: &RunOptions,
    dir: &RunDir,
    progress: &mut Progress,
    timer: &mut Timer,
) -> Result<RunSummary, RunError> {
    let Prepared {
        data,
        mut backend,
        inputs,
        provenance,
        neutral,
    } = prepare(&spec, opts, timer)?;
    crate::resume::check_inputs(dir, progress, &inputs)?;
    let model = backend.info().clone();
    let c = &spec.components;
    crate::evaluate::check_backend(backend.as_mut(), &spec)?;

    let mut results = json!({
        "valex_version": VALEX_VERSION,
        "experiment": { "name": spec.name, "seed": spec.seed },
        "provenance": provenance,
        "components": spec.records.iter().map(|(role, r)| json!({"role": role, "id": r.id, "params": r.params})).collect::<Vec<_>>(),
        "model": { "architecture": model.architecture, "n_layers": model.n_layers, "n_neurons": model.n_neurons },
    });
    results["dataset"] = dataset_report(&data, &opts.base_dir);

    // `[record] self_check = true`: backend self-checks on a sample before the main pass; a
    // failed check stops the run (exit 1) and the report goes into run.json.
    let mut self_check = Value::Null;
    if let Some(rec) = spec.record.as_ref().filter(|r| r.self_check) {
        let report = timer.time("self-check", || {
            let mut copts = crate::check::CheckOptions::default();
            if let Some(t) = rec.self_check_tolerance {
                copts.tolerance = t;
            }
            let texts = crate::check::sample_texts(Some(rec), &data.items, copts.sample)?;
            // The reference model (if any) is loaded for the checks only and dropped before
            // the main pass.
            let mut reference = match &spec.components.reference_backend {
                Some(r) => Some(
                    r.load()
                        .map_err(RunError::component("load reference model"))?,
                ),
                None => None,
            };
            crate::check::self_check_with_reference(
                backend.as_mut(),
                reference.as_deref_mut(),
                &rec.tap,
                &texts,
                copts,
            )
        })?;
        if !report.passed() {
            return Err(RunError::Component {
                stage: "self-check".to_owned(),
                source: valex_core::ComponentError::stage(report.lines().join("; ")),
            });
        }
        self_check = report.to_json();
    }

    let mut table = String::new();
    if let Some(rec) = &spec.record {
        let (stats, stats_prov) = match &opts.statistics {
            None => {
                let prov = json!({
                    "provenance": results["provenance"].clone(),
                    "record": record_settings(rec),
                });
                let stats = match crate::resume::completed_statistics(dir, progress)? {
                    Some(stats) => stats,
                    None => timer.time("record", || {
                        let mut ck = Checkpointer {
                            dir,
                            progress: &mut *progress,
                            every: rec.checkpoint_every(),
                            interrupt: opts.interrupt.as_deref(),
                            provenance: prov.clone(),
                        };
                        record(
                            backend.as_mut(),
                            rec,
                            &data.items,
                            None,
                            spec.seed,
                            Some(&mut ck),
                        )
                    })?,
                };
                (stats, prov)
            }
            Some(path) => statistics_for(path, rec, &results["provenance"])?,
        };
        valex_stats_io::write_stats(&dir.staging().join("statistics"), &stats, &stats_prov)?;
        crate::resume::record_complete(dir, progress)?;
        let stats_sha = valex_stats_io::sha256_file(&dir.staging().join("statistics.safetensors"))?;
        results["record"] = json!({
            "tap": rec.tap,
            "positions": rec.positions,
            "label_by": rec.label_by,
            "statistics_sha256": stats_sha,
            "labels": stats.labels.iter().map(|l| json!({"name": l.name, "items": l.items, "tokens": l.tokens})).collect::<Vec<_>>(),
        });
        if !rec.conditions.is_empty() {
            results["record"]["conditions"] =
                json!(rec.conditions.iter().map(|c| &c.name).collect::<Vec<_>>());
        }

        if let Some(scorer) = &c.scorer {
            // `[score] group_by`: the scorer runs once per group of labels.
            let grouped = spec
                .score_group_by
                .map(|by| crate::grouped::GroupedScorer::new(scorer.as_ref(), by));
            let scorer: &dyn valex_core::Scorer = match &grouped {
                Some(g) => g,
                None => scorer.as_ref(),
            };
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
            // Selection stability over the bootstrap replicates recorded (record.bootstrap).
            let stability = if stats.n_replicates() > 0 {
                Some(timer.time("stability", || {
                    crate::stability::selection_stability(scorer, &stats, &labels, &out.sets, None)
                        .map_err(RunError::component("score"))
                })?)
            } else {
                None
            };
            let set_prov = valex_stats_io::SetProvenance {
                scorer: scorer_rec.id.clone(),
                params: scorer_rec.params.clone(),
                labels: labels.clone(),
                details: out.details.clone(),
                statistics_sha256: Some(stats_sha.clone()),
                model_sha256: Some(model.content_sha256.clone()),
                dataset_sha256: results["provenance"]["dataset_sha256"].clone(),
                source: json!({"layout": "valex-stats", "file": "statistics.safetensors"}),
                stability: stability
                    .as_deref()
                    .map_or(Value::Null, crate::stability::stability_json),
            };
            valex_stats_io::write_neuron_sets(
                &dir.staging().join("neurons.json"),
                &out.sets,
                &set_prov.to_json(),
            )?;
            results["selection"] = json!({
                "scorer": scorer_rec.id,
                "rule": valex_stats_io::SetProvenance::selection_of(&out.details),
                "details": out.details,
                "sets": out.sets.iter().enumerate().map(|(k, (l, s))| json!({
                    "label": l,
                    "n_neurons": s.len(),
                    "per_layer": s.per_layer_counts(),
                    "stability": stability.as_ref().map_or(Value::Null, |st| st[k].summary()),
                })).collect::<Vec<_>>(),
            });

            if let (Some(ev), Some(evaluator)) = (&spec.evaluate, &c.evaluator) {
                let (doc, t) = timer.time("evaluate", || {
                    crate::evaluate::evaluate(
                        backend.as_mut(),
                        &spec,
                        rec,
                        ev,
                        evaluator.as_ref(),
                        &stats,
                        &out.sets,
                        &data.items,
                        &neutral,
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
        dir.write_output(&f.name, &f.bytes)?;
    }

    let run_json = json!({
        "valex_version": VALEX_VERSION,
        "git_describe": GIT_DESCRIBE,
        "experiment": spec.name,
        "seed": spec.seed,
        "started_utc": progress.started_utc,
        "finished_utc": utc_rfc3339(),
        "command_line": progress.command_line,
        "resumes": progress.resumes,
        "run_dir": dir.final_path().display().to_string(),
        "host": hostname(),
        "components": results["components"].clone(),
        "plugins": opts.plugins,
        "base_dir": absolute(&opts.base_dir).display().to_string(),
        "inputs": inputs.iter().map(|(role, h, p)| json!({"role": role, "path": absolute(p).display().to_string(), "sha256": h})).collect::<Vec<_>>(),
        "dataset_items": crate::verify::item_digests(&data.items),
        "model_sha256": model.content_sha256,
        "outputs": reporters_out.iter().map(|f| json!({"file": f.name, "sha256": sha256_hex(&f.bytes)})).collect::<Vec<_>>(),
        "timings_s": timer.timings.iter().map(|(s, t)| json!({"stage": s, "seconds": t})).collect::<Vec<_>>(),
        "self_check": self_check,
    });
    let mut bytes = serde_json::to_vec_pretty(&run_json).expect("json values serialise");
    bytes.push(b'\n');
    dir.write_output("run.json", &bytes)?;
    Ok(RunSummary {
        run_dir: dir.final_path().to_path_buf(),
        results,
        table,
    })
}

/// Reads statistics recorded elsewhere (e.g. merged shards) and checks that they were recorded
/// from the same inputs with the same record settings as this run.
fn statistics_for(
    path: &Path,
    rec: &RecordSpec,
    provenance: &Value,
) -> Result<(ActivationStats, Value), RunError> {
    let (stats, sidecar) = valex_stats_io::read_stats(path)?;
    let prov = sidecar.get("provenance").cloned().unwrap_or(Value::Null);
    if prov["record"] != record_settings(rec) {
        return Err(RunError::Config(format!(
            "{}: recorded with other [record] settings than this manifest's",
            path.display()
        )));
    }
    for key in ["model_sha256", "dataset_sha256"] {
        if prov["provenance"][key] != provenance[key] {
            return Err(RunError::Config(format!(
                "{}: {key} differs from this run's inputs",
                path.display()
            )));
        }
    }
    Ok((
        stats,
        json!({ "provenance": provenance, "record": record_settings(rec), "merged_shards": prov["merged_shards"] }),
    ))
}

/// `path` made absolute (canonical when it exists), for run.json.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    let p = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| std::env::current_dir().map_or_else(|_| p.to_path_buf(), |d| d.join(p)))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Item count and every row the reader skipped (`skip_invalid = true`), for results.json.
fn dataset_report(data: &valex_core::DatasetLoad, base: &Path) -> Value {
    if !data.skipped.is_empty() {
        warn!(
            skipped = data.skipped.len(),
            "the dataset reader skipped invalid rows (listed in results.json)"
        );
    }
    json!({
        "items": data.items.len(),
        "skipped": data.skipped.len(),
        "skipped_rows": data.skipped.iter().map(|r| json!({
            "file": relative_name(&r.file, base),
            "location": r.location,
            "reason": r.reason,
        })).collect::<Vec<_>>(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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
