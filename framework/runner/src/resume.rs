//! Resumable runs (issue #9): what a run's staging folder records so that
//! `valex run --resume RUN_DIR` continues an interrupted, killed or failed run without losing
//! or double-counting an item, and gives the same bytes as an uninterrupted run.
//!
//! - `progress.json` ([`Progress`]): the run's identity (final path, base folder, manifest
//!   files, plugin libraries, the resolved manifest's hash), the sha256 of every input once
//!   read, and the record stage's position: how many batches of its deterministic item order
//!   the checkpoint holds. A resume with other inputs or record settings is refused.
//! - `checkpoint-NNNNNNNN.safetensors` + `.json`: the statistics after NNNNNNNN batches,
//!   written with the statistics writer (f64 sums survive exactly). The new checkpoint is
//!   written first, then progress.json points at it, then the old one is removed, so a kill at
//!   any moment leaves a consistent pair. Once the record stage is complete, progress.json
//!   points at the run's `statistics` file instead.
//! - The record loop asks a [`Checkpointer`] between batches whether to write a checkpoint
//!   (every `record.checkpoint_every` batches) or to stop (the interrupt flag, set by Ctrl-C).
//!
//! Depends on the run directory (`run_dir.rs`) and valex-stats-io; it knows no stage.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, warn};
use valex_core::ActivationStats;
use valex_manifest::RecordConfig;

use crate::error::RunError;
use crate::pipeline::{RunOptions, absolute};
use crate::run_dir::{CHECKPOINT_PREFIX, PROGRESS_FILE, RunDir, read_status};

const PROGRESS_FORMAT: &str = "valex-progress";
const PROGRESS_VERSION: u64 = 1;
/// The stem of the run's own statistics in the staging folder.
const STATISTICS_STEM: &str = "statistics";

/// The bookkeeping of a run in progress (`progress.json` in its staging folder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Always `valex-progress`.
    pub format: String,
    /// Format version (1).
    pub version: u64,
    /// Folder relative paths of the manifest resolve against (absolute).
    pub base_dir: PathBuf,
    /// The manifest and its includes as first read (absolute), for run.json.
    pub manifest_files: Vec<PathBuf>,
    /// sha256 of `manifest.resolved.toml`.
    pub manifest_sha256: String,
    /// Plugin libraries loaded by the run (absolute).
    pub plugins: Vec<PathBuf>,
    /// Statistics given with `--stats` instead of recording.
    pub statistics: Option<PathBuf>,
    /// The run was started with `--force`.
    pub force: bool,
    /// The command line that started the run.
    pub command_line: Vec<String>,
    /// When the run started (UTC, RFC 3339).
    pub started_utc: String,
    /// One entry per resume: `{utc, command_line, batches_done}`.
    #[serde(default)]
    pub resumes: Vec<Value>,
    /// Every input file read, with its sha256 (empty until the inputs were read).
    #[serde(default)]
    pub inputs: Vec<InputRecord>,
    /// The record stage's position (absent until it started).
    #[serde(default)]
    pub record: Option<RecordProgress>,
}

/// One input file and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    /// `manifest`, `dataset` or `model`.
    pub role: String,
    /// The file (absolute).
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: String,
}

/// How far the record stage got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordProgress {
    /// The `[record]` settings that shape the statistics.
    pub settings: Value,
    /// Items chosen for recording, in their deterministic order.
    pub items_total: usize,
    /// Rows per batch.
    pub batch_size: usize,
    /// Batches in all.
    pub batches_total: usize,
    /// Batches whose statistics the checkpoint holds (the first `batches_done`).
    pub batches_done: usize,
    /// Items in those batches.
    pub items_done: usize,
    /// Stem of the checkpoint in the staging folder (`checkpoint-00000012`, or `statistics`
    /// once complete); `None` before the first checkpoint.
    pub checkpoint: Option<String>,
    /// The whole recording is in `statistics`.
    pub complete: bool,
}

/// An incomplete run found by `valex run --resume`.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialRun {
    /// Its staging folder (`.NAME.partial`).
    pub staging: PathBuf,
    /// The run directory it becomes.
    pub final_path: PathBuf,
    /// Its progress.json.
    pub progress: Progress,
    /// Its status.json (`Value::Null` when absent).
    pub status: Value,
}

impl PartialRun {
    /// Finds the incomplete run of `path`: either the run directory the run was started with
    /// (its staging folder `.NAME.partial` beside it is used) or the staging folder itself.
    ///
    /// # Errors
    /// [`RunError::NotResumable`] naming what was looked for: no staging folder, a finished
    /// run, or a missing or unreadable progress.json.
    pub fn find(path: &Path) -> Result<Self, RunError> {
        let not = |reason: String| RunError::NotResumable {
            path: path.to_path_buf(),
            reason,
        };
        let (staging, final_path) = match RunDir::final_path_of(path).filter(|_| path.is_dir()) {
            Some(f) => (path.to_path_buf(), f),
            None => (RunDir::partial_path(path), path.to_path_buf()),
        };
        if !staging.is_dir() {
            if final_path.join("run.json").is_file() {
                return Err(not("it is a finished run".to_owned()));
            }
            return Err(not(format!(
                "no incomplete run found (looked for {})",
                staging.display()
            )));
        }
        let file = staging.join(PROGRESS_FILE);
        let bytes = std::fs::read(&file).map_err(|_| {
            not(format!(
                "{} is missing (the run stopped before it began); start it again with --force",
                file.display()
            ))
        })?;
        let progress: Progress =
            serde_json::from_slice(&bytes).map_err(|e| not(format!("{}: {e}", file.display())))?;
        if progress.format != PROGRESS_FORMAT || progress.version != PROGRESS_VERSION {
            return Err(not(format!(
                "{}: format {} version {} is not {PROGRESS_FORMAT} version {PROGRESS_VERSION}",
                file.display(),
                progress.format,
                progress.version
            )));
        }
        let status = read_status(&staging);
        Ok(PartialRun {
            staging,
            final_path,
            progress,
            status,
        })
    }

    /// The resolved manifest the run started with.
    pub fn manifest_path(&self) -> PathBuf {
        self.staging.join("manifest.resolved.toml")
    }
}

/// The `[record]` settings that shape the statistics: all but `checkpoint_every`, which
/// changes no number. Stored as the statistics' provenance and compared on resume and merge.
pub(crate) fn record_settings(rec: &RecordConfig) -> Value {
    let mut v = json!(rec);
    if let Some(m) = v.as_object_mut() {
        m.remove("checkpoint_every");
    }
    v
}

/// Creates the staging folder of a new run, or reopens the one of `opts.resume`, and
/// returns it with its progress (written to disk).
pub(crate) fn open_run_dir(
    final_path: &Path,
    opts: &RunOptions,
) -> Result<(RunDir, Progress), RunError> {
    let manifest_sha256 = crate::pipeline::sha256_hex(opts.resolved_manifest.as_bytes());
    let (dir, mut progress) = match &opts.resume {
        None => {
            let dir = RunDir::create(final_path, opts.force)?;
            dir.write("manifest.resolved.toml", opts.resolved_manifest.as_bytes())?;
            let progress = Progress {
                format: PROGRESS_FORMAT.to_owned(),
                version: PROGRESS_VERSION,
                base_dir: absolute(&opts.base_dir),
                manifest_files: opts.manifest_files.iter().map(|p| absolute(p)).collect(),
                manifest_sha256,
                plugins: opts
                    .plugins
                    .iter()
                    .filter_map(|p| p["path"].as_str().map(|s| absolute(Path::new(s))))
                    .collect(),
                statistics: opts.statistics.as_deref().map(absolute),
                force: opts.force,
                command_line: opts.command_line.clone(),
                started_utc: crate::provenance::utc_rfc3339(),
                resumes: Vec::new(),
                inputs: Vec::new(),
                record: None,
            };
            (dir, progress)
        }
        Some(partial) => {
            if partial.progress.manifest_sha256 != manifest_sha256 {
                return Err(RunError::NotResumable {
                    path: partial.staging.clone(),
                    reason:
                        "its manifest.resolved.toml was edited (sha256 differs from progress.json)"
                            .to_owned(),
                });
            }
            let dir = RunDir::reopen(&partial.staging, final_path, opts.force)?;
            let mut progress = partial.progress.clone();
            let done = progress.record.as_ref().map_or(0, |r| r.batches_done);
            info!(
                staging = %partial.staging.display(),
                batches_done = done,
                status = %partial.status["status"].as_str().unwrap_or("unknown"),
                "resuming an incomplete run"
            );
            progress.resumes.push(json!({
                "utc": crate::provenance::utc_rfc3339(),
                "command_line": opts.command_line,
                "batches_done": done,
            }));
            (dir, progress)
        }
    };
    write_progress(&dir, &mut progress)?;
    Ok((dir, progress))
}

fn write_progress(dir: &RunDir, progress: &mut Progress) -> Result<(), RunError> {
    let mut bytes = serde_json::to_vec_pretty(progress).expect("progress serialises");
    bytes.push(b'\n');
    dir.write(PROGRESS_FILE, &bytes)?;
    Ok(())
}

/// Records the run's inputs, or, when progress.json has them already (a resume), checks that
/// none changed: a resume on other inputs would mix two experiments.
pub(crate) fn check_inputs(
    dir: &RunDir,
    progress: &mut Progress,
    inputs: &[(String, String, PathBuf)],
) -> Result<(), RunError> {
    let now: Vec<InputRecord> = inputs
        .iter()
        .map(|(role, sha256, path)| InputRecord {
            role: role.clone(),
            path: absolute(path),
            sha256: sha256.clone(),
        })
        .collect();
    if progress.inputs.is_empty() {
        progress.inputs = now;
        return write_progress(dir, progress);
    }
    let mut problems = Vec::new();
    for was in &progress.inputs {
        match now
            .iter()
            .find(|n| n.role == was.role && n.path == was.path)
        {
            None => problems.push(format!(
                "input {} {} is no longer read",
                was.role,
                was.path.display()
            )),
            Some(n) if n.sha256 != was.sha256 => problems.push(format!(
                "input {} {} changed since the run started (sha256 was {}…, now {}…)",
                was.role,
                was.path.display(),
                short(&was.sha256),
                short(&n.sha256)
            )),
            Some(_) => {}
        }
    }
    for n in &now {
        if !progress
            .inputs
            .iter()
            .any(|w| w.role == n.role && w.path == n.path)
        {
            problems.push(format!(
                "input {} {} is new since the run started",
                n.role,
                n.path.display()
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(RunError::NotResumable {
        path: dir.final_path().to_path_buf(),
        reason: format!(
            "{}; restore the inputs, or start a new run with --force",
            problems.join("; ")
        ),
    })
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// The statistics of a resumed run whose record stage was complete, read back from the
/// staging folder.
pub(crate) fn completed_statistics(
    dir: &RunDir,
    progress: &Progress,
) -> Result<Option<ActivationStats>, RunError> {
    match &progress.record {
        Some(r) if r.complete => {
            let (stats, _) = valex_stats_io::read_stats(&dir.staging().join(STATISTICS_STEM))?;
            info!("the record stage was complete: statistics read back from the staging folder");
            Ok(Some(stats))
        }
        _ => Ok(None),
    }
}

/// Marks the record stage complete (its statistics are in the staging folder's `statistics`
/// file) and removes the last checkpoint.
pub(crate) fn record_complete(dir: &RunDir, progress: &mut Progress) -> Result<(), RunError> {
    let Some(r) = progress.record.as_mut() else {
        return Ok(());
    };
    r.complete = true;
    r.batches_done = r.batches_total;
    r.items_done = r.items_total;
    let old = r.checkpoint.replace(STATISTICS_STEM.to_owned());
    write_progress(dir, progress)?;
    remove_checkpoint(dir, old.as_deref());
    Ok(())
}

fn remove_checkpoint(dir: &RunDir, stem: Option<&str>) {
    if let Some(stem) = stem.filter(|s| s.starts_with(CHECKPOINT_PREFIX)) {
        let paths = valex_stats_io::stats_paths(&dir.staging().join(stem));
        // Best effort: a leftover checkpoint is removed when the run commits.
        let _ = std::fs::remove_file(paths.tensors);
        let _ = std::fs::remove_file(paths.sidecar);
    }
}

/// Writes checkpoints for the record loop and tells it when to stop.
pub(crate) struct Checkpointer<'a> {
    pub(crate) dir: &'a RunDir,
    pub(crate) progress: &'a mut Progress,
    /// Batches between checkpoints (0: only when interrupted).
    pub(crate) every: usize,
    pub(crate) interrupt: Option<&'a AtomicBool>,
    /// The statistics' provenance (checkpoints add their position to it).
    pub(crate) provenance: Value,
}

impl Checkpointer<'_> {
    /// Where the record loop starts: the statistics of the first `batches_done` batches from
    /// the checkpoint of a resumed run, or `None` to start from the first batch.
    pub(crate) fn start(
        &mut self,
        items_total: usize,
        batch_size: usize,
    ) -> Result<Option<(ActivationStats, usize)>, RunError> {
        let settings = self.provenance["record"].clone();
        let batches_total = items_total.div_ceil(batch_size);
        if let Some(r) = &self.progress.record {
            let mismatch = if r.settings != settings {
                Some("the [record] settings differ from the checkpoint's".to_owned())
            } else if (r.items_total, r.batch_size) != (items_total, batch_size) {
                Some(format!(
                    "the checkpoint has {} items in batches of {}, this run {items_total} in batches of {batch_size}",
                    r.items_total, r.batch_size
                ))
            } else {
                None
            };
            if let Some(reason) = mismatch {
                return Err(RunError::NotResumable {
                    path: self.dir.final_path().to_path_buf(),
                    reason,
                });
            }
            if let Some(stem) = &r.checkpoint {
                let (stats, sidecar) = valex_stats_io::read_stats(&self.dir.staging().join(stem))?;
                let at = &sidecar["provenance"]["checkpoint"];
                if at["batches_done"].as_u64() != Some(r.batches_done as u64) {
                    return Err(RunError::NotResumable {
                        path: self.dir.final_path().to_path_buf(),
                        reason: format!(
                            "checkpoint {stem} does not hold the {} batches progress.json names",
                            r.batches_done
                        ),
                    });
                }
                info!(
                    batches_done = r.batches_done,
                    items_done = r.items_done,
                    "record resumes from a checkpoint"
                );
                return Ok(Some((stats, r.batches_done)));
            }
        }
        self.progress.record = Some(RecordProgress {
            settings,
            items_total,
            batch_size,
            batches_total,
            batches_done: 0,
            items_done: 0,
            checkpoint: None,
            complete: false,
        });
        write_progress(self.dir, self.progress)?;
        Ok(None)
    }

    /// Called before batch `batches_done` (all earlier ones are in `stats`): writes a
    /// checkpoint every `every` batches, and when the run was interrupted writes one and
    /// stops with [`RunError::Interrupted`].
    pub(crate) fn between_batches(
        &mut self,
        stats: &ActivationStats,
        batches_done: usize,
        items_done: usize,
    ) -> Result<(), RunError> {
        let interrupted = self.interrupt.is_some_and(|f| f.load(Ordering::SeqCst));
        if interrupted || (self.every > 0 && batches_done.is_multiple_of(self.every)) {
            self.write(stats, batches_done, items_done)?;
        }
        if interrupted {
            let total = self.progress.record.as_ref().map_or(0, |r| r.items_total);
            return Err(RunError::Interrupted {
                stage: "record".to_owned(),
                detail: format!(" after {items_done} of {total} items (checkpoint written)"),
                resume: None,
            });
        }
        Ok(())
    }

    fn write(
        &mut self,
        stats: &ActivationStats,
        batches_done: usize,
        items_done: usize,
    ) -> Result<(), RunError> {
        let stem = format!("{CHECKPOINT_PREFIX}{batches_done:08}");
        let mut prov = self.provenance.clone();
        prov["checkpoint"] = json!({"batches_done": batches_done, "items_done": items_done});
        valex_stats_io::write_stats(&self.dir.staging().join(&stem), stats, &prov)?;
        let r = self
            .progress
            .record
            .as_mut()
            .expect("start() recorded the record progress");
        r.batches_done = batches_done;
        r.items_done = items_done;
        let old = r.checkpoint.replace(stem);
        write_progress(self.dir, self.progress)?;
        remove_checkpoint(self.dir, old.as_deref());
        tracing::debug!(batches_done, items_done, "checkpoint written");
        Ok(())
    }
}

/// Records how a run ended that did not commit: `interrupted` (and the run directory to
/// resume, in the error) or `failed` with the error's text and the stage.
pub(crate) fn record_end(dir: &RunDir, err: &mut RunError, stage: &str) {
    // Outputs of a run that did not commit must not look like a finished run's.
    dir.discard_outputs();
    let mut chain = err.to_string();
    let mut src = std::error::Error::source(err);
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    let status = if let RunError::Interrupted { resume, .. } = err {
        *resume = Some(dir.final_path().to_path_buf());
        "interrupted"
    } else {
        warn!(
            staging = %dir.staging().display(),
            "the incomplete run is kept; once the cause is fixed, continue it with `valex run --resume {}`",
            dir.final_path().display()
        );
        "failed"
    };
    if let Err(e) = dir.write_status(status, Some(stage), Some(&chain)) {
        warn!(error = %e, "cannot write status.json");
    }
}
