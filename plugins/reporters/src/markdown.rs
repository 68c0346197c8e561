//! `reporter/markdown`: one `report.md` with the provenance block at the top, then tables:
//! the selection per value, neurons per layer, the evaluation (Δ with CIs against the random
//! control), every own-set and random condition, the cross-value matrix per language and the
//! side effects when the document has them. Missing numbers print as "–".

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;
use valex_core::{ComponentError, ConfigError, FactoryContext, OutputFile, Reporter};

use crate::format::{DASH, ci, count, delta, mean, p_value, rate, text};
use crate::params::check_file_name;
use crate::results::{ResultsView, UNSCORED_COLUMNS, leaves};

/// Params of `reporter/markdown`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkdownConfig {
    /// Output file name (default `report.md`).
    #[serde(default = "default_file")]
    pub file: String,
}

fn default_file() -> String {
    "report.md".to_owned()
}

/// Writes report.md.
#[derive(Debug, Clone)]
pub struct MarkdownReporter {
    file: String,
}

/// Escapes text for a markdown table cell or line: markup characters get a backslash,
/// `<`/`>` become entities, line breaks become spaces.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(ch);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn table(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    out.push_str(&line(header));
    let sep: Vec<String> = header.iter().map(|_| "---".to_owned()).collect();
    out.push_str(&line(&sep));
    for r in rows {
        out.push_str(&line(r));
    }
    out.push('\n');
}

fn code(s: Option<&str>) -> String {
    s.map_or_else(|| DASH.to_owned(), |s| format!("`{}`", s.replace('`', "")))
}

/// Renders the report.
pub fn render(results: &Value) -> String {
    let v = ResultsView::from_results(results);
    let mut out = String::new();
    let name = v.experiment.as_deref().unwrap_or("experiment");
    let _ = writeln!(out, "# valex report: {}\n", escape(name));

    // Provenance.
    out.push_str("## Provenance\n\n");
    let p = &v.provenance;
    let seed = v.seed.map_or_else(String::new, |s| format!(", seed {s}"));
    let _ = writeln!(out, "- experiment: {}{seed}", code(v.experiment.as_deref()));
    let _ = writeln!(out, "- valex version: {}", code(p.valex_version.as_deref()));
    let _ = writeln!(
        out,
        "- manifest sha256: {}",
        code(p.manifest_sha256.as_deref())
    );
    let (arch, layers, neurons) = &v.model;
    let _ = writeln!(
        out,
        "- model sha256: {} ({}, {} layers × {} neurons)",
        code(p.model_sha256.as_deref()),
        escape(&text(arch.as_deref())),
        count(*layers),
        count(*neurons)
    );
    match p.dataset_sha256.as_slice() {
        [] => {
            let _ = writeln!(out, "- dataset sha256: {DASH}");
        }
        files => {
            out.push_str("- dataset sha256:\n");
            for (f, h) in files {
                let _ = writeln!(out, "  - {}: {}", escape(f), code(Some(h)));
            }
        }
    }
    if !v.components.is_empty() {
        let list: Vec<String> = v
            .components
            .iter()
            .map(|(role, id)| format!("{} ({})", code(Some(id)), escape(role)))
            .collect();
        let _ = writeln!(out, "- components: {}", list.join(", "));
    }
    out.push('\n');

    // Selection.
    if !v.sets.is_empty() {
        let _ = writeln!(
            out,
            "## Selection\n\nScorer {}; {} sets.\n",
            code(v.scorer.as_deref()),
            v.sets.len()
        );
        let rows: Vec<Vec<String>> = v
            .sets
            .iter()
            .map(|s| {
                let used = s.per_layer.iter().filter(|&&n| n > 0).count();
                let peak = s
                    .per_layer
                    .iter()
                    .enumerate()
                    .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)))
                    .filter(|(_, n)| **n > 0)
                    .map_or_else(|| DASH.to_owned(), |(i, n)| format!("{i} ({n})"));
                vec![escape(&s.label), count(s.n_neurons), used.to_string(), peak]
            })
            .collect();
        let header = ["label", "neurons", "layers used", "peak layer (neurons)"].map(str::to_owned);
        table(&mut out, &header, &rows);

        out.push_str("### Neurons per layer\n\n");
        let n = v.n_layers();
        let mut header = vec!["label".to_owned()];
        header.extend((0..n).map(|l| format!("L{l}")));
        let rows: Vec<Vec<String>> = v
            .sets
            .iter()
            .map(|s| {
                let mut r = vec![escape(&s.label)];
                r.extend((0..n).map(|l| s.per_layer.get(l).copied().unwrap_or(0).to_string()));
                r
            })
            .collect();
        table(&mut out, &header, &rows);
    }

    // Evaluation.
    if !v.cells.is_empty() {
        let metric = v.cells.iter().find_map(|c| c.metric.clone());
        let _ = writeln!(
            out,
            "## Evaluation\n\nMetric {}. Δ = rate with the neurons edited − baseline; \
             Δ random is the mean over the matched random controls (range in brackets).\n",
            code(metric.as_deref())
        );
        let rows: Vec<Vec<String>> = v
            .cells
            .iter()
            .map(|c| {
                let own = c.primary_own();
                let range = c.random_range().map(|(lo, hi)| {
                    if (hi - lo).abs() < f64::EPSILON {
                        String::new()
                    } else {
                        format!(" [{lo:+.3}, {hi:+.3}]")
                    }
                });
                vec![
                    escape(&c.shown),
                    escape(&c.language),
                    count(c.n_items),
                    count(own.and_then(|o| o.n_neurons)),
                    rate(c.baseline),
                    delta(own.and_then(|o| o.delta)),
                    ci(own.and_then(|o| o.ci95)),
                    p_value(own.and_then(|o| o.p_permutation)),
                    format!("{}{}", delta(c.random_mean()), range.unwrap_or_default()),
                    rate(c.specificity),
                ]
            })
            .collect();
        let header = [
            "value",
            "lang",
            "items",
            "neurons",
            "baseline",
            "Δ targeted",
            "95% CI",
            "p (perm.)",
            "Δ random",
            "specificity",
        ]
        .map(str::to_owned);
        table(&mut out, &header, &rows);
        let _ = writeln!(
            out,
            "Mean over {} cells: Δ targeted {}, Δ random {}.\n",
            v.cells.len(),
            delta(mean(
                v.cells
                    .iter()
                    .map(|c| c.primary_own().and_then(|o| o.delta))
            )),
            delta(mean(v.cells.iter().map(|c| c.random_mean())))
        );

        out.push_str("### Conditions\n\nEvery own-set and random condition of every cell.\n\n");
        let mut rows = Vec::new();
        for c in &v.cells {
            for k in c
                .conditions
                .iter()
                .filter(|k| k.kind.as_deref() != Some("other-set"))
            {
                rows.push(vec![
                    escape(&c.shown),
                    escape(&c.language),
                    escape(&k.name),
                    escape(&text(k.kind.as_deref())),
                    escape(&text(k.intervention.as_deref())),
                    count(k.n_neurons),
                    rate(k.rate),
                    delta(k.delta),
                    ci(k.ci95),
                    p_value(k.p_permutation),
                ]);
            }
        }
        let header = [
            "value",
            "lang",
            "condition",
            "kind",
            "intervention",
            "neurons",
            "rate",
            "Δ",
            "95% CI",
            "p (perm.)",
        ]
        .map(str::to_owned);
        table(&mut out, &header, &rows);

        let unscored = v.unscored_rows();
        if !unscored.is_empty() {
            out.push_str(
                "### Unparsed answers\n\nAnswers the evaluator could not parse, per condition. \
                 An item counts where at least one of its answers parsed; Δ, CI and p use the \
                 items scored in both the baseline and the condition.\n\n",
            );
            let rows: Vec<Vec<String>> = unscored
                .into_iter()
                .map(|r| r.into_iter().map(|x| escape(&x)).collect())
                .collect();
            let header = UNSCORED_COLUMNS.map(str::to_owned);
            table(&mut out, &header, &rows);
            let examples = v.unscored_examples(5, 160);
            if !examples.is_empty() {
                out.push_str("Examples:\n\n");
                for (where_, answer) in examples {
                    let _ = writeln!(out, "- {}: {}", escape(&where_), escape(&answer));
                }
                out.push('\n');
            }
        }
    }

    // Cross-value matrices.
    for m in &v.cross {
        let _ = writeln!(
            out,
            "## Cross-value matrix ({})\n\nΔ of the evaluated value (column) with the ablated \
             value's neurons (row) edited; the diagonal is the targeted ablation.\n",
            escape(&m.language)
        );
        let mut header = vec!["ablated \\\\ evaluated".to_owned()];
        header.extend(m.labels.iter().map(|l| escape(l)));
        let rows: Vec<Vec<String>> = m
            .labels
            .iter()
            .zip(&m.delta)
            .map(|(a, row)| {
                let mut r = vec![escape(a)];
                r.extend(row.iter().map(|d| delta(*d)));
                r
            })
            .collect();
        table(&mut out, &header, &rows);
    }

    // Side effects.
    if let Some(s) = &v.side_effects {
        out.push_str("## Side effects\n\n");
        let rows: Vec<Vec<String>> = leaves(s)
            .into_iter()
            .map(|(path, val)| {
                let t = match val {
                    Value::String(s) => s,
                    Value::Null => DASH.to_owned(),
                    Value::Number(n) => n
                        .as_f64()
                        .map_or_else(|| n.to_string(), |x| format!("{x:.4}")),
                    other => other.to_string(),
                };
                vec![escape(&path), escape(&t)]
            })
            .collect();
        table(&mut out, &["key".to_owned(), "value".to_owned()], &rows);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

impl Reporter for MarkdownReporter {
    fn report(&self, results: &Value) -> Result<Vec<OutputFile>, ComponentError> {
        Ok(vec![OutputFile {
            name: self.file.clone(),
            bytes: render(results).into_bytes(),
        }])
    }
}

/// Builds `reporter/markdown` from its params.
///
/// # Errors
/// Unknown params or a file name that is not a plain name.
pub fn markdown_factory(
    params: &Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Reporter>, ConfigError> {
    let cfg: MarkdownConfig = ConfigError::parse_params(params)?;
    check_file_name("file", &cfg.file)?;
    Ok(Box::new(MarkdownReporter { file: cfg.file }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_markup_in_labels() {
        assert_eq!(escape("a|b*<c>\nd"), "a\\|b\\*&lt;c&gt; d");
    }

    #[test]
    fn renders_an_empty_document_with_dashes() {
        let md = render(&json!({}));
        assert!(
            md.starts_with("# valex report: experiment\n\n## Provenance\n"),
            "{md}"
        );
        assert!(md.contains("- manifest sha256: –"), "{md}");
        assert!(!md.contains("## Evaluation"));
        assert!(md.ends_with('\n') && !md.ends_with("\n\n"));
    }

    #[test]
    fn lists_unparsed_answers_only_when_there_are_some() {
        let cell = |unscored: serde_json::Value| {
            json!({"evaluation": {"cells": [{"value": "v", "language": "en", "baseline": 50.0,
                "conditions": [{"condition": "targeted", "kind": "own", "rate": 40.0,
                    "delta": -10.0, "n_paired": 3, "unscored": unscored}]}]}})
        };
        let md = render(&cell(json!({"answers": 8, "unparsed": 3, "items": 1,
            "examples": [{"item": "i7", "order": "aligned-second", "answer": "no *idea*"}]})));
        assert!(md.contains("### Unparsed answers"), "{md}");
        assert!(md.contains("| v | en | targeted | 8 | 3 | 1 |"), "{md}");
        assert!(
            md.contains("- v · en · targeted · i7 (aligned-second): no \\*idea\\*"),
            "{md}"
        );
        assert!(!render(&cell(serde_json::Value::Null)).contains("Unparsed"));
    }

    #[test]
    fn rejects_unknown_params() {
        let e = markdown_factory(&json!({"fil": "x.md"}), &FactoryContext::default())
            .err()
            .unwrap();
        assert!(e.message.contains("unknown field `fil`"), "{e}");
    }
}
