//! Self-checks of a loaded backend on a sample of the experiment's own texts, run by
//! `valex check` and, with `[record] self_check = true`, before the main pass of `valex run`.
//!
//! Owns the checks and their report. Each check compares two ways of computing the same
//! numbers and reports the relative error `max |a - b| / max |b|` against a tolerance:
//! - `taps`: every tap the backend declares fires in every layer with the documented shape
//!   `[rows, seq, n_neurons]` and finite values (through [`ModelBackend::inspect`]);
//! - `padding`: each text alone and inside one padded batch give the same logits and
//!   record-tap activations at the text's real positions;
//! - `batch`: recording the sample one row per batch and all rows in one batch gives the
//!   same statistics (sums and sums of squares within the tolerance; the count of `act > 0`
//!   may differ only where a value sits at 0 within rounding: at most 0.1 % of the cells);
//! - `score_padding`: continuation log-probabilities alone and in one batch agree.
//!
//! A backend without `inspect` gets `taps` and `padding` reported as skipped. Texts are cut
//! to between half of [`CheckOptions::max_tokens`] and all of it (text `i` of `n` keeps
//! `max_tokens * (n + i) / 2n` tokens), so the batches hold padding and the checks stay cheap
//! on large models.

use serde_json::{Value, json};
use valex_core::{ActivationStats, Item, ItemKind, ModelBackend, RecordBatch, ScoreRequest};
use valex_manifest::RecordConfig as RecordSpec;

use crate::error::RunError;
use crate::spec::{RunSpec, render_item};

/// How much to check and how strictly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckOptions {
    /// Texts in the sample.
    pub sample: usize,
    /// Tokens kept per text.
    pub max_tokens: usize,
    /// Largest relative error that passes.
    pub tolerance: f64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            sample: 8,
            max_tokens: 32,
            tolerance: 1e-3,
        }
    }
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Within the tolerance.
    Passed,
    /// Outside the tolerance, or malformed output.
    Failed,
    /// The backend does not support what the check needs.
    Skipped,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckResult {
    /// `taps`, `padding`, `batch` or `score_padding`.
    pub name: &'static str,
    /// The outcome.
    pub status: Status,
    /// The largest relative error seen (when the check compares numbers).
    pub max_rel_error: Option<f64>,
    /// One line saying what was compared and what was found.
    pub detail: String,
}

/// All checks of one backend.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckReport {
    /// The tap recorded.
    pub tap: String,
    /// Texts in the sample.
    pub sample: usize,
    /// The tolerance applied.
    pub tolerance: f64,
    /// Every check, in order.
    pub checks: Vec<CheckResult>,
}

impl CheckReport {
    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Failed)
    }

    /// The report as JSON (for run.json), with `passed`.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("the report serialises");
        v["passed"] = json!(self.passed());
        v
    }

    /// One line per check: `name: status (detail)`.
    pub fn lines(&self) -> Vec<String> {
        self.checks
            .iter()
            .map(|c| {
                let s = match c.status {
                    Status::Passed => "passed",
                    Status::Failed => "FAILED",
                    Status::Skipped => "skipped",
                };
                format!("{}: {s} ({})", c.name, c.detail)
            })
            .collect()
    }
}

/// The sample: the first `n` activation items of the record languages rendered with the
/// record template, or the first `n` items' stories without a `[record]` section. With
/// `label_by = "value-condition"` the sampled items take the record conditions' templates in
/// turn (item k of the sample the template of condition `k % conditions`), so a sample of
/// at least as many items as conditions checks every condition's prompt.
///
/// # Errors
/// A template that does not render.
pub fn sample_texts(
    rec: Option<&RecordSpec>,
    items: &[Item],
    n: usize,
) -> Result<Vec<String>, RunError> {
    let mut out = Vec::new();
    for it in items {
        if out.len() == n {
            break;
        }
        match rec {
            Some(rec) => {
                if it.kind != ItemKind::Activation || !rec.languages.contains(&it.language) {
                    continue;
                }
                let ci = (rec.label_by == valex_manifest::LabelBy::ValueCondition
                    && !rec.conditions.is_empty())
                .then(|| out.len() % rec.conditions.len());
                let (template, key) = crate::record::row_template(rec, ci, it.language);
                let r = render_item(template, it)
                    .map_err(|m| RunError::Config(format!("{key}: {m}")))?;
                out.push(r.text);
            }
            None => out.push(it.story.clone()),
        }
    }
    Ok(out)
}

/// Loads the dataset and the model of `spec` and runs every check on its sample (for
/// `valex check`). The tolerance comes from `[record] self_check_tolerance` when set.
///
/// # Errors
/// Loading errors, or a sample that cannot be built (no items, bad template).
pub fn check_spec(spec: &RunSpec, opts: CheckOptions) -> Result<CheckReport, RunError> {
    let c = &spec.components;
    let data = c
        .dataset
        .load()
        .map_err(RunError::component("load dataset"))?;
    let mut backend = c
        .backend
        .load()
        .map_err(RunError::component("load model"))?;
    let tap = spec
        .record
        .as_ref()
        .map(|r| r.tap.clone())
        .or_else(|| backend.capabilities().taps.first().cloned())
        .unwrap_or_default();
    let texts = sample_texts(spec.record.as_ref(), &data.items, opts.sample)?;
    let mut reference = match &c.reference_backend {
        Some(r) => Some(
            r.load()
                .map_err(RunError::component("load reference model"))?,
        ),
        None => None,
    };
    self_check_with_reference(
        backend.as_mut(),
        reference.as_deref_mut(),
        &tap,
        &texts,
        opts,
    )
}

/// Runs every check on `texts` with `tap` as the recorded tap.
///
/// # Errors
/// Texts that do not encode, or fewer than two usable texts.
pub fn self_check(
    backend: &mut dyn ModelBackend,
    tap: &str,
    texts: &[String],
    opts: CheckOptions,
) -> Result<CheckReport, RunError> {
    self_check_with_reference(backend, None, tap, texts, opts)
}

/// [`self_check`], plus the `reference` check against a second backend when one is given.
///
/// # Errors
/// Texts that do not encode, or fewer than two usable texts.
pub fn self_check_with_reference(
    backend: &mut dyn ModelBackend,
    reference: Option<&mut (dyn ModelBackend + '_)>,
    tap: &str,
    texts: &[String],
    opts: CheckOptions,
) -> Result<CheckReport, RunError> {
    // Rows are cut to different lengths (from half of max_tokens up), so the batches of the
    // checks really hold padding.
    let mut rows = Vec::new();
    let n = texts.len().max(1);
    for (i, t) in texts.iter().enumerate() {
        let mut ids = backend
            .encode(t)
            .map_err(RunError::component("self-check"))?
            .ids;
        ids.truncate((opts.max_tokens * (n + i) / (2 * n)).max(2));
        if ids.len() >= 2 {
            rows.push(ids);
        }
    }
    if rows.len() < 2 {
        return Err(RunError::Config(format!(
            "self-check: needs at least 2 texts of 2 tokens or more, found {}",
            rows.len()
        )));
    }
    let mut checks = vec![
        check_taps(backend, &rows, opts),
        check_padding(backend, tap, &rows, opts),
        check_batch(backend, tap, &rows, opts),
        check_score_padding(backend, &rows, opts),
    ];
    if let Some(reference) = reference {
        checks.push(check_reference(backend, reference, tap, texts, &rows, opts));
    }
    Ok(CheckReport {
        tap: tap.to_owned(),
        sample: rows.len(),
        tolerance: opts.tolerance,
        checks,
    })
}

fn result(name: &'static str, err: f64, tol: f64, detail: String) -> CheckResult {
    CheckResult {
        name,
        status: if err <= tol {
            Status::Passed
        } else {
            Status::Failed
        },
        max_rel_error: Some(err),
        detail: format!("{detail}; max relative error {err:.2e} (tolerance {tol:.0e})"),
    }
}

fn failed(name: &'static str, detail: String) -> CheckResult {
    CheckResult {
        name,
        status: Status::Failed,
        max_rel_error: None,
        detail,
    }
}

fn skipped_or_failed(name: &'static str, e: &valex_core::ComponentError) -> CheckResult {
    if e.message.contains("does not support inspect") {
        CheckResult {
            name,
            status: Status::Skipped,
            max_rel_error: None,
            detail: e.message.clone(),
        }
    } else {
        failed(name, format!("inspect failed: {e}"))
    }
}

/// Accumulates `max |a - b|` and `max |b|`.
#[derive(Default)]
struct Rel {
    diff: f64,
    scale: f64,
}

impl Rel {
    fn add(&mut self, a: &[f32], b: &[f32]) {
        for (x, y) in a.iter().zip(b) {
            self.diff = self.diff.max(f64::from((x - y).abs()));
            self.scale = self.scale.max(f64::from(y.abs()));
        }
    }

    fn value(&self) -> f64 {
        if self.scale > 0.0 {
            self.diff / self.scale
        } else {
            self.diff
        }
    }
}

/// Relative error of the sums and sums of squares of two labels' statistics, how many counts
/// of `act > 0` differ, and of how many cells.
fn label_diff(a: &valex_core::LabelStats, b: &valex_core::LabelStats) -> (f64, usize, usize) {
    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let mut rel = Rel::default();
    rel.add(&f(&a.sum), &f(&b.sum));
    rel.add(&f(&a.sum_sq), &f(&b.sum_sq));
    let flips = a
        .active
        .iter()
        .zip(&b.active)
        .filter(|(x, y)| x != y)
        .count();
    (rel.value(), flips, a.active.len().max(1))
}

fn check_taps(
    backend: &mut dyn ModelBackend,
    rows: &[Vec<u32>],
    opts: CheckOptions,
) -> CheckResult {
    let info = backend.info().clone();
    let taps = backend.capabilities().taps;
    let two = &rows[..2];
    let ins = match backend.inspect(two, &taps) {
        Ok(i) => i,
        Err(e) => return skipped_or_failed("taps", &e),
    };
    let _ = opts;
    for tap in &taps {
        for layer in 0..info.n_layers {
            let Some(t) = ins.taps.iter().find(|t| &t.tap == tap && t.layer == layer) else {
                return failed("taps", format!("tap {tap} did not fire in layer {layer}"));
            };
            let want = two.len() * ins.seq * info.n_neurons;
            if t.width != info.n_neurons || t.values.len() != want {
                return failed(
                    "taps",
                    format!(
                        "tap {tap} of layer {layer} has width {} and {} values; documented shape [rows, seq, n_neurons] = [{}, {}, {}]",
                        t.width,
                        t.values.len(),
                        two.len(),
                        ins.seq,
                        info.n_neurons
                    ),
                );
            }
            if let Some(x) = t.values.iter().find(|x| !x.is_finite()) {
                return failed("taps", format!("tap {tap} of layer {layer} holds {x}"));
            }
        }
    }
    CheckResult {
        name: "taps",
        status: Status::Passed,
        max_rel_error: None,
        detail: format!(
            "{} taps x {} layers fired with shape [rows, seq, {}]",
            taps.len(),
            info.n_layers,
            info.n_neurons
        ),
    }
}

fn check_padding(
    backend: &mut dyn ModelBackend,
    tap: &str,
    rows: &[Vec<u32>],
    opts: CheckOptions,
) -> CheckResult {
    let taps = vec![tap.to_owned()];
    let batch = match backend.inspect(rows, &taps) {
        Ok(i) => i,
        Err(e) => return skipped_or_failed("padding", &e),
    };
    let mut rel = Rel::default();
    for (b, row) in rows.iter().enumerate() {
        let alone = match backend.inspect(std::slice::from_ref(row), &taps) {
            Ok(i) => i,
            Err(e) => return failed("padding", format!("inspect failed: {e}")),
        };
        let n = row.len();
        let at = |seq: usize, b: usize, w: usize| (b * seq) * w..(b * seq + n) * w;
        rel.add(
            &alone.logits[at(alone.seq, 0, alone.vocab)],
            &batch.logits[at(batch.seq, b, batch.vocab)],
        );
        for (t_alone, t_batch) in alone.taps.iter().zip(&batch.taps) {
            let w = t_alone.width;
            rel.add(
                &t_alone.values[at(alone.seq, 0, w)],
                &t_batch.values[at(batch.seq, b, w)],
            );
        }
    }
    result(
        "padding",
        rel.value(),
        opts.tolerance,
        format!(
            "{} texts alone vs in one batch padded to {}: logits and {tap}",
            rows.len(),
            batch.seq
        ),
    )
}

fn check_batch(
    backend: &mut dyn ModelBackend,
    tap: &str,
    rows: &[Vec<u32>],
    opts: CheckOptions,
) -> CheckResult {
    let info = backend.info().clone();
    let labels = vec!["sample".to_owned()];
    let new = || ActivationStats::new(tap, info.n_layers, info.n_neurons, &labels);
    let batch_of = |rows: &[Vec<u32>], first: u64| RecordBatch {
        ids: rows.to_vec(),
        positions: rows.iter().map(|r| vec![true; r.len()]).collect(),
        labels: vec![0; rows.len()],
        keys: (first..first + rows.len() as u64).collect(),
    };
    let mut together = new();
    let mut one_by_one = new();
    let run = |stats: &mut ActivationStats,
               backend: &mut dyn ModelBackend,
               rows: &[Vec<u32>],
               first: u64|
     -> Result<(), valex_core::ComponentError> {
        for (i, r) in rows.iter().enumerate() {
            stats.count_item(0, first + i as u64, r.len() as f64);
        }
        backend.record(tap, &batch_of(rows, first), None, stats)
    };
    if let Err(e) = run(&mut together, backend, rows, 0) {
        return failed("batch", format!("record failed: {e}"));
    }
    for (i, r) in rows.iter().enumerate() {
        if let Err(e) = run(&mut one_by_one, backend, std::slice::from_ref(r), i as u64) {
            return failed("batch", format!("record failed: {e}"));
        }
    }
    let (err, flips, cells) = label_diff(&together.labels[0], &one_by_one.labels[0]);
    let mut r = result(
        "batch",
        err,
        opts.tolerance,
        format!(
            "{} texts in one batch vs one per batch: sums, sums of squares and counts of {tap} > 0 ({flips} of {cells} counts differ)",
            rows.len()
        ),
    );
    if flips as f64 > 1e-3 * cells as f64 {
        r.status = Status::Failed;
    }
    r
}

/// The statistics of `rows` recorded in one batch, as one label.
fn sample_stats(
    backend: &mut dyn ModelBackend,
    tap: &str,
    rows: &[Vec<u32>],
) -> Result<ActivationStats, valex_core::ComponentError> {
    let info = backend.info().clone();
    let mut stats = ActivationStats::new(tap, info.n_layers, info.n_neurons, &["sample".into()]);
    for (i, r) in rows.iter().enumerate() {
        stats.count_item(0, i as u64, r.len() as f64);
    }
    let batch = RecordBatch {
        ids: rows.to_vec(),
        positions: rows.iter().map(|r| vec![true; r.len()]).collect(),
        labels: vec![0; rows.len()],
        keys: (0..rows.len() as u64).collect(),
    };
    backend.record(tap, &batch, None, &mut stats)?;
    Ok(stats)
}

/// The sample's continuation requests: each row cut in half.
fn half_cut_requests(rows: &[Vec<u32>]) -> Vec<ScoreRequest> {
    rows.iter()
        .map(|r| {
            let cut = (r.len() / 2).max(1);
            ScoreRequest {
                context: r[..cut].to_vec(),
                continuation: r[cut..].to_vec(),
            }
        })
        .collect()
}

/// `reference`: the second backend (`[model.reference]`) tokenizes the sample's texts to the
/// same ids and gives the same statistics of the recorded tap (sums and sums of squares; the
/// count of `act > 0` may differ in at most `max(0.1 %, tolerance)` of the cells) and the
/// same continuation log-probabilities, within the tolerance.
fn check_reference(
    backend: &mut dyn ModelBackend,
    reference: &mut dyn ModelBackend,
    tap: &str,
    texts: &[String],
    rows: &[Vec<u32>],
    opts: CheckOptions,
) -> CheckResult {
    const NAME: &str = "reference";
    let (a, b) = (backend.info().clone(), reference.info().clone());
    if (a.n_layers, a.n_neurons, a.vocab_size) != (b.n_layers, b.n_neurons, b.vocab_size) {
        return failed(
            NAME,
            format!(
                "the reference model has {} layers x {} neurons and a vocabulary of {}; this one {} x {} and {}",
                b.n_layers, b.n_neurons, b.vocab_size, a.n_layers, a.n_neurons, a.vocab_size
            ),
        );
    }
    for (i, t) in texts.iter().enumerate() {
        match (backend.encode(t), reference.encode(t)) {
            (Ok(x), Ok(y)) if x.ids == y.ids => {}
            (Ok(x), Ok(y)) => {
                let at = x.ids.iter().zip(&y.ids).take_while(|(p, q)| p == q).count();
                return failed(
                    NAME,
                    format!(
                        "the tokenizers differ on sample text {i} at token {at} ({} vs {} tokens)",
                        x.ids.len(),
                        y.ids.len()
                    ),
                );
            }
            (Err(e), _) | (_, Err(e)) => {
                return failed(NAME, format!("encoding sample text {i} failed: {e}"));
            }
        }
    }
    let (mine, theirs) = match (
        sample_stats(backend, tap, rows),
        sample_stats(reference, tap, rows),
    ) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) => return failed(NAME, format!("record failed: {e}")),
        (_, Err(e)) => return failed(NAME, format!("record on the reference failed: {e}")),
    };
    let (stats_err, flips, cells) = label_diff(&mine.labels[0], &theirs.labels[0]);
    let reqs = half_cut_requests(rows);
    let mut logp = Rel::default();
    match (backend.score(&reqs, None), reference.score(&reqs, None)) {
        (Ok(p), Ok(q)) => {
            for (p, q) in p.iter().zip(&q) {
                logp.add(p, q);
            }
        }
        (Err(e), _) => return failed(NAME, format!("score failed: {e}")),
        (_, Err(e)) => return failed(NAME, format!("score on the reference failed: {e}")),
    }
    let err = stats_err.max(logp.value());
    let flips_allowed = 1e-3_f64.max(opts.tolerance) * cells as f64;
    let mut r = result(
        NAME,
        err,
        opts.tolerance,
        format!(
            "{} texts on both backends: same token ids; {tap} sums and sums of squares (relative error {:.2e}, {flips} of {cells} counts of > 0 differ), continuation log-probabilities ({:.2e})",
            rows.len(),
            stats_err,
            logp.value()
        ),
    );
    if flips as f64 > flips_allowed {
        r.status = Status::Failed;
    }
    r
}

fn check_score_padding(
    backend: &mut dyn ModelBackend,
    rows: &[Vec<u32>],
    opts: CheckOptions,
) -> CheckResult {
    let reqs = half_cut_requests(rows);
    let together = match backend.score(&reqs, None) {
        Ok(s) => s,
        Err(e) => return failed("score_padding", format!("score failed: {e}")),
    };
    let mut rel = Rel::default();
    for (req, t) in reqs.iter().zip(&together) {
        match backend.score(std::slice::from_ref(req), None) {
            Ok(alone) => rel.add(&alone[0], t),
            Err(e) => return failed("score_padding", format!("score failed: {e}")),
        }
    }
    result(
        "score_padding",
        rel.value(),
        opts.tolerance,
        format!(
            "log-probabilities of {} continuations alone vs in one batch",
            reqs.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use valex_core::{
        Capabilities, ComponentError, Encoding, Inspection, ModelInfo, NeuronEdit, TapValues,
    };

    use super::*;

    /// A fake model: every value is a function of the token id and position, plus
    /// `leak * padded length` (a padding-dependence bug when `leak != 0`).
    struct Fake {
        info: ModelInfo,
        leak: f32,
        inspect: bool,
        /// Added to every byte before tokenizing (another tokenizer when not 0).
        shift: u32,
    }

    impl Fake {
        fn new(leak: f32, inspect: bool) -> Self {
            Fake {
                info: ModelInfo {
                    architecture: "fake".into(),
                    n_layers: 2,
                    n_neurons: 3,
                    hidden_size: 4,
                    vocab_size: 5,
                    content_sha256: String::new(),
                },
                leak,
                inspect,
                shift: 0,
            }
        }

        fn value(&self, id: u32, t: usize, j: usize, seq: usize) -> f32 {
            (id as f32 + 1.0) * (t as f32 + 1.0) - j as f32 + self.leak * seq as f32
        }
    }

    impl ModelBackend for Fake {
        fn info(&self) -> &ModelInfo {
            &self.info
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                taps: vec!["t".into()],
                intervention_taps: vec![],
            }
        }
        fn encode(&self, text: &str) -> Result<Encoding, ComponentError> {
            let ids: Vec<u32> = text
                .bytes()
                .map(|b| (u32::from(b) + self.shift) % 5)
                .collect();
            Ok(Encoding {
                offsets: vec![(0, 0); ids.len()],
                ids,
            })
        }
        fn record(
            &mut self,
            _tap: &str,
            batch: &RecordBatch,
            _edit: Option<&NeuronEdit>,
            stats: &mut ActivationStats,
        ) -> Result<(), ComponentError> {
            let seq = batch.ids.iter().map(Vec::len).max().unwrap_or(0);
            for (r, ids) in batch.ids.iter().enumerate() {
                for layer in 0..2 {
                    let (mut a, mut s, mut q) = (vec![0.0; 3], vec![0.0; 3], vec![0.0; 3]);
                    for (t, &id) in ids.iter().enumerate() {
                        for j in 0..3 {
                            let v = self.value(id, t, j, seq);
                            a[j] += f32::from(v > 0.0);
                            s[j] += v;
                            q[j] += v * v;
                        }
                    }
                    let n = ids.len() as f64;
                    stats.add_item_layer(batch.labels[r], batch.keys[r], layer, n, &a, &s, &q);
                }
            }
            Ok(())
        }
        fn score(
            &mut self,
            requests: &[ScoreRequest],
            _edit: Option<&NeuronEdit>,
        ) -> Result<Vec<Vec<f32>>, ComponentError> {
            let seq = requests
                .iter()
                .map(|r| r.context.len() + r.continuation.len())
                .max()
                .unwrap_or(0);
            Ok(requests
                .iter()
                .map(|r| {
                    r.continuation
                        .iter()
                        .map(|&c| -1.0 - c as f32 - self.leak * seq as f32)
                        .collect()
                })
                .collect())
        }
        fn inspect(
            &mut self,
            rows: &[Vec<u32>],
            taps: &[String],
        ) -> Result<Inspection, ComponentError> {
            if !self.inspect {
                return Err(ComponentError::config(
                    "this fake backend does not support inspect",
                ));
            }
            let seq = rows.iter().map(Vec::len).max().unwrap_or(0);
            let grid = |w: usize| -> Vec<f32> {
                let mut v = vec![0.0; rows.len() * seq * w];
                for (b, r) in rows.iter().enumerate() {
                    for (t, &id) in r.iter().enumerate() {
                        for j in 0..w {
                            v[(b * seq + t) * w + j] = self.value(id, t, j, seq);
                        }
                    }
                }
                v
            };
            Ok(Inspection {
                seq,
                lens: rows.iter().map(Vec::len).collect(),
                vocab: 5,
                logits: grid(5),
                taps: taps
                    .iter()
                    .flat_map(|tap| {
                        (0..2).map(|layer| TapValues {
                            tap: tap.clone(),
                            layer,
                            width: 3,
                            values: grid(3),
                        })
                    })
                    .collect(),
            })
        }
    }

    fn texts() -> Vec<String> {
        ["abcdefgh", "abc", "hello world", "xy z"]
            .map(str::to_owned)
            .to_vec()
    }

    #[test]
    fn a_padding_independent_backend_passes_every_check() {
        let r = self_check(
            &mut Fake::new(0.0, true),
            "t",
            &texts(),
            CheckOptions::default(),
        )
        .unwrap();
        assert!(r.passed(), "{:?}", r.lines());
        assert_eq!(r.checks.len(), 4);
        assert!(r.checks.iter().all(|c| c.status == Status::Passed));
        assert_eq!(r.to_json()["passed"], true);
    }

    #[test]
    fn padding_dependence_fails_padding_batch_and_score_checks() {
        let r = self_check(
            &mut Fake::new(0.01, true),
            "t",
            &texts(),
            CheckOptions::default(),
        )
        .unwrap();
        assert!(!r.passed());
        let status = |n: &str| r.checks.iter().find(|c| c.name == n).unwrap().status;
        assert_eq!(status("taps"), Status::Passed);
        for n in ["padding", "batch", "score_padding"] {
            assert_eq!(status(n), Status::Failed, "{n}: {:?}", r.lines());
        }
        assert!(
            r.lines()[1].starts_with("padding: FAILED"),
            "{:?}",
            r.lines()
        );
        // A loose tolerance lets the same small leak pass.
        let loose = CheckOptions {
            tolerance: 0.5,
            ..CheckOptions::default()
        };
        let r = self_check(&mut Fake::new(0.01, true), "t", &texts(), loose).unwrap();
        assert!(r.passed(), "{:?}", r.lines());
    }

    #[test]
    fn without_inspect_taps_and_padding_are_skipped() {
        let r = self_check(
            &mut Fake::new(0.0, false),
            "t",
            &texts(),
            CheckOptions::default(),
        )
        .unwrap();
        assert!(r.passed());
        let skipped: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| c.status == Status::Skipped)
            .map(|c| c.name)
            .collect();
        assert_eq!(skipped, ["taps", "padding"]);
    }

    #[test]
    fn too_few_texts_is_an_error() {
        let e = self_check(
            &mut Fake::new(0.0, true),
            "t",
            &["a".to_owned()],
            CheckOptions::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("at least 2 texts"), "{e}");
    }

    #[test]
    fn the_sample_takes_every_record_conditions_template_in_turn() {
        use valex_core::{ItemKind, Language};
        let item = |id: &str, kind| Item {
            id: id.into(),
            value: "v".into(),
            language: Language::Zh,
            kind,
            story: format!("story {id}"),
            rationale: None,
            aligned: "a".into(),
            violating: "b".into(),
            conflict_motive: None,
            parallel_id: None,
        };
        let items = vec![
            item("1", ItemKind::Activation),
            item("2", ItemKind::Evaluation),
            item("3", ItemKind::Activation),
            item("4", ItemKind::Activation),
        ];
        let mut rec = crate::record::test_record_spec(
            valex_manifest::LabelBy::ValueCondition,
            &[Language::Zh],
            0,
            "plain {story}",
            &[("support", "S {story}"), ("conflict", "C {story}")],
        );
        let texts = sample_texts(Some(&rec), &items, 3).unwrap();
        assert_eq!(texts, ["S story 1", "C story 3", "S story 4"]);
        rec.label_by = valex_manifest::LabelBy::Value;
        let texts = sample_texts(Some(&rec), &items, 2).unwrap();
        assert_eq!(texts, ["plain story 1", "plain story 3"]);
        // A condition template that does not render is found even when it is not the first.
        rec.label_by = valex_manifest::LabelBy::ValueCondition;
        rec.conditions[1].template.zh = "C {nope}".into();
        let e = sample_texts(Some(&rec), &items, 2).unwrap_err().to_string();
        assert!(e.contains("record.conditions[1].template.zh"), "{e}");
    }

    #[test]
    fn the_reference_check_compares_ids_statistics_and_log_probabilities() {
        let check = |reference: &mut Fake| {
            self_check_with_reference(
                &mut Fake::new(0.0, true),
                Some(reference),
                "t",
                &texts(),
                CheckOptions::default(),
            )
            .unwrap()
        };
        let reference_of = |r: &CheckReport| r.checks.last().unwrap().clone();
        // The same model through a backend without inspect: passes, as a fifth check.
        let r = check(&mut Fake::new(0.0, false));
        assert_eq!(r.checks.len(), 5);
        let c = reference_of(&r);
        assert_eq!((c.name, c.status), ("reference", Status::Passed), "{c:?}");
        assert_eq!(c.max_rel_error, Some(0.0));
        assert!(r.passed());
        // Other numbers (a padding-dependent reference) fail with the error found.
        let c = reference_of(&check(&mut Fake::new(0.05, false)));
        assert_eq!(c.status, Status::Failed, "{c:?}");
        assert!(c.max_rel_error.unwrap() > 1e-3, "{c:?}");
        // Another tokenizer, or another shape, fails before any number is compared.
        let mut other = Fake::new(0.0, false);
        other.shift = 1;
        let c = reference_of(&check(&mut other));
        assert_eq!(c.status, Status::Failed);
        assert!(
            c.detail
                .contains("tokenizers differ on sample text 0 at token 0"),
            "{c:?}"
        );
        let mut other = Fake::new(0.0, false);
        other.info.n_layers = 3;
        let c = reference_of(&check(&mut other));
        assert_eq!(c.status, Status::Failed);
        assert!(c.detail.contains("3 layers x 3 neurons"), "{c:?}");
        // Without a reference there are four checks.
        let r = self_check(
            &mut Fake::new(0.0, true),
            "t",
            &texts(),
            CheckOptions::default(),
        );
        assert_eq!(r.unwrap().checks.len(), 4);
    }
}
