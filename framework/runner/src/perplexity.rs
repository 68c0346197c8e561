//! The perplexity side-effect check (`[evaluate] neutral_text`, issue #7): per language, the
//! perplexity of a neutral text without an edit (the baseline) and with each value's own set
//! edited by each own-set condition (`targeted`, then `[[evaluate.conditions]]`), reported in
//! `results.json → evaluation.side_effects`.
//!
//! Perplexity follows LAPE's `ppl.py` (shared/METHOD.md §5.4) but reports
//! `exp(total NLL / total predicted tokens)` over all texts of a language. Each non-blank line
//! of the file is one text; it is encoded alone and scored with [`ModelBackend::score`] as
//! windows of at most [`WINDOW_TOKENS`] tokens that overlap by one token: the window's first
//! token is the context and the rest its continuation, so every token after a line's first
//! (its BOS token when the tokenizer adds one) is predicted exactly once.
//!
//! This module owns the numbers and the JSON layout; it must not know concrete backends or
//! interventions.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use valex_core::{Language, ModelBackend, NeuronEdit, ScoreRequest, SplitMix64};

use crate::analysis::{bootstrap_indices, quantile};
use crate::error::RunError;

/// Longest window (tokens) sent to the backend in one score request.
pub const WINDOW_TOKENS: usize = 512;

/// Score requests sent to the backend in one call.
const REQUESTS_PER_CALL: usize = 32;

/// One language's neutral text, read and hashed before any model work.
#[derive(Debug, Clone)]
pub(crate) struct NeutralText {
    pub(crate) language: Language,
    /// The path as the manifest gives it (relative to the manifest's folder).
    pub(crate) name: String,
    /// The file read.
    pub(crate) path: PathBuf,
    pub(crate) sha256: String,
    /// Non-blank lines, trimmed.
    pub(crate) lines: Vec<String>,
}

/// Reads the neutral text file of every language in `languages` (`neutral` maps a language
/// to its path relative to `base_dir`).
///
/// # Errors
/// A missing entry, an unreadable file or a file without text: one message naming the key
/// `evaluate.neutral_text.<lang>` and the file.
pub(crate) fn read_texts(
    languages: &[Language],
    neutral: impl Fn(Language) -> Option<String>,
    base_dir: &Path,
) -> Result<Vec<NeutralText>, RunError> {
    let mut out = Vec::new();
    for &language in languages {
        let key = format!("evaluate.neutral_text.{}", language.as_str());
        let name = neutral(language).ok_or_else(|| {
            RunError::Config(format!(
                "{key}: no neutral text file for language {}",
                language.as_str()
            ))
        })?;
        let path = base_dir.join(&name);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            RunError::Config(format!(
                "{key}: cannot read neutral text file {}: {e}",
                path.display()
            ))
        })?;
        let lines: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if lines.is_empty() {
            return Err(RunError::Config(format!(
                "{key}: neutral text file {} holds no text",
                path.display()
            )));
        }
        out.push(NeutralText {
            language,
            name,
            sha256: valex_stats_io::sha256_file(&path)?,
            path,
            lines,
        });
    }
    Ok(out)
}

/// The score requests of one text's token ids: windows of at most `window` tokens
/// overlapping by one (context = the window's first token). Fewer than two tokens: none.
pub(crate) fn windows(ids: &[u32], window: usize) -> Vec<ScoreRequest> {
    let window = window.max(2);
    let mut out = Vec::new();
    let mut start = 0;
    while start + 1 < ids.len() {
        let end = (start + window).min(ids.len());
        out.push(ScoreRequest {
            context: vec![ids[start]],
            continuation: ids[start + 1..end].to_vec(),
        });
        start = end - 1;
    }
    out
}

/// One language's texts, encoded: per text its score requests.
pub(crate) struct Encoded {
    requests: Vec<ScoreRequest>,
    /// For every request, the text it belongs to.
    text_of: Vec<usize>,
    n_texts: usize,
}

impl Encoded {
    /// Encodes every line of `text` with `backend`'s tokenizer.
    ///
    /// # Errors
    /// The tokenizer's error.
    pub(crate) fn new(backend: &dyn ModelBackend, text: &NeutralText) -> Result<Self, RunError> {
        let (mut requests, mut text_of) = (Vec::new(), Vec::new());
        for (i, line) in text.lines.iter().enumerate() {
            let enc = backend
                .encode(line)
                .map_err(RunError::component("evaluate (perplexity)"))?;
            for r in windows(&enc.ids, WINDOW_TOKENS) {
                requests.push(r);
                text_of.push(i);
            }
        }
        Ok(Encoded {
            requests,
            text_of,
            n_texts: text.lines.len(),
        })
    }

    /// Predicted tokens per text.
    fn tokens(&self) -> Vec<f64> {
        let mut t = vec![0.0; self.n_texts];
        for (r, &i) in self.requests.iter().zip(&self.text_of) {
            t[i] += r.continuation.len() as f64;
        }
        t
    }
}

/// NLL (nats) summed per text under `edit`.
///
/// # Errors
/// The backend's error, or a reply of the wrong shape.
pub(crate) fn nll_per_text(
    backend: &mut dyn ModelBackend,
    enc: &Encoded,
    edit: Option<&NeuronEdit>,
) -> Result<Vec<f64>, RunError> {
    let mut nll = vec![0.0; enc.n_texts];
    let stage = "evaluate (perplexity)";
    for (k, chunk) in enc.requests.chunks(REQUESTS_PER_CALL).enumerate() {
        let lps = backend
            .score(chunk, edit)
            .map_err(RunError::component(stage))?;
        if lps.len() != chunk.len() {
            return Err(RunError::Config(format!(
                "{stage}: the backend scored {} of {} requests",
                lps.len(),
                chunk.len()
            )));
        }
        for (j, lp) in lps.iter().enumerate() {
            let i = enc.text_of[k * REQUESTS_PER_CALL + j];
            nll[i] -= lp.iter().map(|&x| f64::from(x)).sum::<f64>();
        }
    }
    Ok(nll)
}

/// `exp(Σ nll / Σ tokens)` over the texts `idx` (all texts when `None`).
pub(crate) fn perplexity(nll: &[f64], tokens: &[f64], idx: Option<&[u32]>) -> f64 {
    let (n, t) = match idx {
        None => (nll.iter().sum::<f64>(), tokens.iter().sum::<f64>()),
        Some(idx) => idx.iter().fold((0.0, 0.0), |(n, t), &i| {
            (n + nll[i as usize], t + tokens[i as usize])
        }),
    };
    (n / t).exp()
}

/// The 95 % percentile bootstrap CI of `ppl(cond) − ppl(base)`, texts resampled with the same
/// indices for both; `None` without resamples.
fn delta_ci(base: &[f64], cond: &[f64], tokens: &[f64], indices: &[Vec<u32>]) -> Option<[f64; 2]> {
    if indices.is_empty() {
        return None;
    }
    let mut d: Vec<f64> = indices
        .iter()
        .map(|idx| perplexity(cond, tokens, Some(idx)) - perplexity(base, tokens, Some(idx)))
        .filter(|x| x.is_finite())
        .collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    Some([quantile(&d, 0.025), quantile(&d, 0.975)])
}

/// One edited condition of a language: `(label, condition, intervention id, neurons, edit)`.
pub(crate) struct EditedCondition {
    pub(crate) label: String,
    pub(crate) condition: String,
    pub(crate) intervention: String,
    pub(crate) n_neurons: usize,
    pub(crate) edit: NeuronEdit,
}

/// One language's entry of `side_effects.per_language`: the baseline perplexity and, per
/// condition of `conditions`, its perplexity, ratio to the baseline, Δ and Δ's 95 % CI.
///
/// # Errors
/// Tokenizer or backend errors.
pub(crate) fn language_entry(
    backend: &mut dyn ModelBackend,
    text: &NeutralText,
    conditions: &[EditedCondition],
    seed: u64,
    bootstrap: usize,
) -> Result<Value, RunError> {
    let enc = Encoded::new(backend, text)?;
    let tokens = enc.tokens();
    let n_tokens: f64 = tokens.iter().sum();
    if n_tokens == 0.0 {
        return Err(RunError::Config(format!(
            "evaluate.neutral_text.{}: {} has no line of two or more tokens to predict",
            text.language.as_str(),
            text.name
        )));
    }
    let lang = text.language.as_str();
    let mut rng = SplitMix64::derive(seed, &format!("side-effects/perplexity/bootstrap/{lang}"));
    let indices = bootstrap_indices(&mut rng, enc.n_texts, bootstrap);
    let base = nll_per_text(backend, &enc, None)?;
    let base_ppl = perplexity(&base, &tokens, None);
    let mut rows = Vec::new();
    for c in conditions {
        let nll = nll_per_text(backend, &enc, Some(&c.edit))?;
        let ppl = perplexity(&nll, &tokens, None);
        rows.push(json!({
            "label": c.label,
            "condition": c.condition,
            "intervention": c.intervention,
            "n_neurons": c.n_neurons,
            "ppl": ppl,
            "ratio": ppl / base_ppl,
            "delta": ppl - base_ppl,
            "ci95": delta_ci(&base, &nll, &tokens, &indices),
        }));
    }
    Ok(json!({
        "language": lang,
        "file": text.name,
        "sha256": text.sha256,
        "n_texts": enc.n_texts,
        "n_tokens": n_tokens,
        "baseline": base_ppl,
        "conditions": rows,
    }))
}

/// The fixed keys of `evaluation.side_effects` around the per-language entries.
pub(crate) fn document(per_language: Vec<Value>, bootstrap: usize) -> Value {
    json!({
        "metric": "perplexity",
        "definition": "exp(total NLL / total predicted tokens) over the neutral text's non-blank lines; ratio = ppl / baseline",
        "window_tokens": WINDOW_TOKENS,
        "bootstrap": bootstrap,
        "ci": "95 % percentile bootstrap of Δ = ppl(condition) − ppl(baseline), lines resampled with the same indices for both",
        "per_language": per_language,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use valex_core::{
        ActivationStats, Capabilities, ComponentError, Encoding, ModelInfo, RecordBatch,
    };

    /// Word-per-token model: token `t` has log-prob `-(t as f32) / 10`, scaled by the edit's
    /// first op factor when there is an edit.
    struct Fake(ModelInfo);
    impl ModelBackend for Fake {
        fn info(&self) -> &ModelInfo {
            &self.0
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                taps: vec![],
                intervention_taps: vec![],
            }
        }
        fn encode(&self, text: &str) -> Result<Encoding, ComponentError> {
            let ids: Vec<u32> = text
                .split_whitespace()
                .map(|w| w.parse().expect("numbers"))
                .collect();
            let offsets = vec![(0, 0); ids.len()];
            Ok(Encoding { ids, offsets })
        }
        fn record(
            &mut self,
            _: &str,
            _: &RecordBatch,
            _: Option<&NeuronEdit>,
            _: &mut ActivationStats,
        ) -> Result<(), ComponentError> {
            Ok(())
        }
        fn score(
            &mut self,
            r: &[ScoreRequest],
            e: Option<&NeuronEdit>,
        ) -> Result<Vec<Vec<f32>>, ComponentError> {
            let f = e.map_or(1.0, |e| e.layers[0][0].1.scale);
            Ok(r.iter()
                .map(|q| {
                    q.continuation
                        .iter()
                        .map(|&t| -(t as f32) / 10.0 * f)
                        .collect()
                })
                .collect())
        }
    }

    fn fake() -> Fake {
        Fake(ModelInfo {
            architecture: "fake".into(),
            n_layers: 1,
            n_neurons: 1,
            hidden_size: 1,
            vocab_size: 10,
            content_sha256: String::new(),
        })
    }

    fn text(lines: &[&str]) -> NeutralText {
        NeutralText {
            language: Language::En,
            name: "n.txt".into(),
            path: PathBuf::from("n.txt"),
            sha256: "h".into(),
            lines: lines.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn windows_overlap_by_one_and_predict_every_token_once() {
        let w = windows(&[1, 2, 3, 4, 5], 3);
        let parts: Vec<(Vec<u32>, Vec<u32>)> =
            w.into_iter().map(|r| (r.context, r.continuation)).collect();
        assert_eq!(parts, vec![(vec![1], vec![2, 3]), (vec![3], vec![4, 5])]);
        assert!(windows(&[7], 3).is_empty());
        assert_eq!(windows(&[1, 2], 512)[0].continuation, vec![2]);
    }

    #[test]
    fn perplexity_is_exp_of_total_nll_over_predicted_tokens() {
        // Line 1 predicts 2 and 3 (NLL 0.2 + 0.3), line 2 predicts 4 (0.4), line 3 nothing.
        let t = text(&["1 2 3", "9 4", "5"]);
        let mut b = fake();
        let edit = NeuronEdit::multiply("mlp.gate_act", vec![vec![(0, 2.0)]]);
        let conds = vec![EditedCondition {
            label: "v".into(),
            condition: "targeted".into(),
            intervention: "intervention/scale".into(),
            n_neurons: 1,
            edit,
        }];
        let e = language_entry(&mut b, &t, &conds, 7, 50).unwrap();
        let base = (0.9f64 / 3.0).exp();
        assert!((e["baseline"].as_f64().unwrap() - base).abs() < 1e-6, "{e}");
        assert_eq!(e["n_tokens"], json!(3.0));
        assert_eq!(e["n_texts"], json!(3));
        let c = &e["conditions"][0];
        let ppl = (1.8f64 / 3.0).exp();
        assert!((c["ppl"].as_f64().unwrap() - ppl).abs() < 1e-6, "{c}");
        let ratio = c["ratio"].as_f64().unwrap();
        assert_eq!(
            ratio,
            c["ppl"].as_f64().unwrap() / e["baseline"].as_f64().unwrap()
        );
        let ci = c["ci95"].as_array().unwrap();
        assert!(ci[0].as_f64().unwrap() <= ci[1].as_f64().unwrap());
        assert!(
            ci[0].as_f64().unwrap() > 0.0,
            "doubling every NLL raises PPL: {c}"
        );
    }

    #[test]
    fn texts_without_predicted_tokens_are_an_error_naming_the_key() {
        let e = language_entry(&mut fake(), &text(&["3", "4"]), &[], 1, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "evaluate.neutral_text.en: n.txt has no line of two or more tokens to predict"
        );
    }

    #[test]
    fn read_texts_names_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "x y\n\n  z w  \n").unwrap();
        std::fs::write(dir.path().join("b.txt"), "\n \n").unwrap();
        let pick = |l: Language| match l {
            Language::En => Some("a.txt".to_owned()),
            Language::Zh => Some("b.txt".to_owned()),
        };
        let t = read_texts(&[Language::En], pick, dir.path()).unwrap();
        assert_eq!(t[0].lines, vec!["x y", "z w"]);
        let e = read_texts(&[Language::Zh], pick, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("evaluate.neutral_text.zh: neutral text file "),
            "{e}"
        );
        assert!(e.ends_with("b.txt holds no text"), "{e}");
    }
}
