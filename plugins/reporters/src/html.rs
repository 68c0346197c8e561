//! `reporter/html`: one self-contained `report.html`: inline CSS, figures as inline SVG drawn
//! by [`crate::figures`], no script and no external reference, so it opens offline and can be
//! mailed as one file. Every text from the results is HTML-escaped. The output is
//! byte-identical for the same results document.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;
use valex_core::{ComponentError, ConfigError, FactoryContext, OutputFile, Reporter};

use crate::figures;
use crate::format::{DASH, ci, count, delta, mean, p_value, rate, text};
use crate::params::check_file_name;
use crate::results::{CellView, ResultsView, UNSCORED_COLUMNS, leaves, perplexity_ratios};

/// Params of `reporter/html`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HtmlConfig {
    /// Output file name (default `report.html`).
    #[serde(default = "default_file")]
    pub file: String,
}

fn default_file() -> String {
    "report.html".to_owned()
}

/// Writes report.html.
#[derive(Debug, Clone)]
pub struct HtmlReporter {
    file: String,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;\
color:#222;line-height:1.4}h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;\
padding-bottom:.2em;margin-top:2em}table{border-collapse:collapse;margin:1em 0;\
font-size:.9em}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}\
th{background:#f4f4f4}td.l,th.l{text-align:left}code{font-size:.9em;word-break:break-all}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-size:.9em;color:#555}dl{display:grid;grid-template-columns:max-content auto;\
gap:.2em 1em}dt{font-weight:600}dd{margin:0}.note{color:#555;font-size:.9em}";

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table; the first `left` columns are text (left-aligned). Cells are escaped here.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>], left: usize) {
    out.push_str("<table>\n<thead><tr>");
    for (i, h) in header.iter().enumerate() {
        let class = if i < left { " class=\"l\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let class = if i < left { " class=\"l\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", escape(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn figure(out: &mut String, id: &str, svg: &str, caption: &str) {
    let _ = write!(
        out,
        "<figure id=\"{}\">\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
        escape(id),
        escape(caption)
    );
}

fn err(e: String) -> ComponentError {
    ComponentError::stage(format!("reporter/html: figure: {e}"))
}

/// Languages of the cells in order of first appearance.
fn languages(cells: &[CellView]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in cells {
        if !out.contains(&c.language) {
            out.push(c.language.clone());
        }
    }
    out
}

/// Renders the page.
///
/// # Errors
/// A figure that plotters could not draw.
pub fn render(results: &Value) -> Result<String, ComponentError> {
    let v = ResultsView::from_results(results);
    let name = v.experiment.as_deref().unwrap_or("experiment");
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>valex report: {t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>valex report: {t}</h1>\n",
        t = escape(name)
    );

    // Provenance.
    let p = &v.provenance;
    out.push_str("<section id=\"provenance\">\n<h2>Provenance</h2>\n<dl>\n");
    let mut dl = |k: &str, val: String| {
        let _ = writeln!(out, "<dt>{}</dt><dd>{val}</dd>", escape(k));
    };
    let code = |s: Option<&str>| {
        s.map_or_else(
            || DASH.to_owned(),
            |s| format!("<code>{}</code>", escape(s)),
        )
    };
    dl("experiment", code(v.experiment.as_deref()));
    dl("seed", escape(&count(v.seed)));
    dl("valex version", code(p.valex_version.as_deref()));
    dl("manifest sha256", code(p.manifest_sha256.as_deref()));
    dl("model sha256", code(p.model_sha256.as_deref()));
    let (arch, layers, neurons) = &v.model;
    dl(
        "model",
        escape(&format!(
            "{}, {} layers × {} neurons",
            text(arch.as_deref()),
            count(*layers),
            count(*neurons)
        )),
    );
    let ds = if p.dataset_sha256.is_empty() {
        DASH.to_owned()
    } else {
        p.dataset_sha256
            .iter()
            .map(|(f, h)| format!("{}: <code>{}</code>", escape(f), escape(h)))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    dl("dataset sha256", ds);
    let comps = v
        .components
        .iter()
        .map(|(role, id)| format!("<code>{}</code> ({})", escape(id), escape(role)))
        .collect::<Vec<_>>()
        .join(", ");
    dl(
        "components",
        if comps.is_empty() {
            DASH.to_owned()
        } else {
            comps
        },
    );
    out.push_str("</dl>\n</section>\n");

    // Selection.
    if !v.sets.is_empty() {
        let _ = write!(
            out,
            "<section id=\"selection\">\n<h2>Selection</h2>\n<p>Scorer {}; {} sets.</p>\n",
            code(v.scorer.as_deref()),
            v.sets.len()
        );
        if let Some(svg) = figures::neurons_per_layer(&v.sets, v.n_layers()).map_err(err)? {
            figure(
                &mut out,
                "fig-neurons-per-layer",
                &svg,
                "Selected neurons per layer, stacked by label.",
            );
        }
        let rows: Vec<Vec<String>> = v
            .sets
            .iter()
            .map(|s| {
                let mut r = vec![s.label.clone(), count(s.n_neurons)];
                r.extend(
                    (0..v.n_layers()).map(|l| s.per_layer.get(l).copied().unwrap_or(0).to_string()),
                );
                r
            })
            .collect();
        let layer_names: Vec<String> = (0..v.n_layers()).map(|l| format!("L{l}")).collect();
        let mut header = vec!["label", "neurons"];
        header.extend(layer_names.iter().map(String::as_str));
        table(&mut out, &header, &rows, 1);
        out.push_str("</section>\n");
    }

    // Evaluation.
    if !v.cells.is_empty() {
        let metric = v.cells.iter().find_map(|c| c.metric.clone());
        let _ = write!(
            out,
            "<section id=\"evaluation\">\n<h2>Evaluation</h2>\n<p>Metric {}. Δ = rate with \
             the neurons edited − baseline. Red: the value's own neurons (first own-set \
             condition) with its 95% CI where the results have one; grey: mean of the matched \
             random controls with their min–max range.</p>\n",
            code(metric.as_deref())
        );
        for (k, lang) in languages(&v.cells).iter().enumerate() {
            let cells: Vec<&CellView> = v.cells.iter().filter(|c| &c.language == lang).collect();
            if let Some(svg) = figures::delta_vs_random(&cells).map_err(err)? {
                figure(
                    &mut out,
                    &format!("fig-delta-{}", k + 1),
                    &svg,
                    &format!("Δ per value ({lang}): targeted vs random control."),
                );
            }
        }
        let rows: Vec<Vec<String>> = v
            .cells
            .iter()
            .map(|c| {
                let own = c.primary_own();
                vec![
                    c.shown.clone(),
                    c.language.clone(),
                    count(c.n_items),
                    count(own.and_then(|o| o.n_neurons)),
                    rate(c.baseline),
                    delta(own.and_then(|o| o.delta)),
                    ci(own.and_then(|o| o.ci95)),
                    p_value(own.and_then(|o| o.p_permutation)),
                    delta(c.random_mean()),
                    c.random_range().map_or_else(
                        || DASH.to_owned(),
                        |(lo, hi)| format!("[{lo:+.3}, {hi:+.3}]"),
                    ),
                    rate(c.specificity),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "value",
                "lang",
                "items",
                "neurons",
                "baseline",
                "Δ targeted",
                "95% CI",
                "p (perm.)",
                "Δ random",
                "random range",
                "specificity",
            ],
            &rows,
            2,
        );
        let _ = writeln!(
            out,
            "<p>Mean over {} cells: Δ targeted {}, Δ random {}.</p>",
            v.cells.len(),
            escape(&delta(mean(
                v.cells
                    .iter()
                    .map(|c| c.primary_own().and_then(|o| o.delta))
            ))),
            escape(&delta(mean(v.cells.iter().map(CellView::random_mean))))
        );
        let mut rows = Vec::new();
        for c in &v.cells {
            for k in c
                .conditions
                .iter()
                .filter(|k| k.kind.as_deref() != Some("other-set"))
            {
                rows.push(vec![
                    c.shown.clone(),
                    c.language.clone(),
                    k.name.clone(),
                    text(k.kind.as_deref()),
                    text(k.intervention.as_deref()),
                    count(k.n_neurons),
                    rate(k.rate),
                    delta(k.delta),
                    ci(k.ci95),
                    p_value(k.p_permutation),
                ]);
            }
        }
        out.push_str("<details>\n<summary>Every own-set and random condition</summary>\n");
        table(
            &mut out,
            &[
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
            ],
            &rows,
            5,
        );
        out.push_str("</details>\n");
        let unscored = v.unscored_rows();
        if !unscored.is_empty() {
            out.push_str(
                "<h3>Unparsed answers</h3>\n<p>Answers the evaluator could not parse, per \
                 condition. Δ, CI and p use the items scored in both the baseline and the \
                 condition.</p>\n",
            );
            let rows: Vec<Vec<String>> = unscored.into_iter().map(Vec::from).collect();
            table(&mut out, &UNSCORED_COLUMNS, &rows, 3);
            let examples = v.unscored_examples(5, 160);
            if !examples.is_empty() {
                out.push_str("<ul class=\"examples\">\n");
                for (where_, answer) in examples {
                    let _ = writeln!(
                        out,
                        "<li><b>{}</b>: {}</li>",
                        escape(&where_),
                        escape(&answer)
                    );
                }
                out.push_str("</ul>\n");
            }
        }
        out.push_str("</section>\n");
    }

    // Cross-value matrices.
    if !v.cross.is_empty() {
        out.push_str(
            "<section id=\"cross-value\">\n<h2>Cross-value matrix</h2>\n<p>Δ of the evaluated \
             value (column) with the ablated value's neurons (row) edited; the diagonal is the \
             targeted ablation. A value-specific set shows a strong diagonal and pale \
             off-diagonal cells.</p>\n",
        );
        for (k, m) in v.cross.iter().enumerate() {
            if let Some(svg) = figures::cross_value_heatmap(m).map_err(err)? {
                figure(
                    &mut out,
                    &format!("fig-cross-{}", k + 1),
                    &svg,
                    &format!("Cross-value Δ ({}).", m.language),
                );
            }
            let mut header = vec!["ablated \\ evaluated"];
            header.extend(m.labels.iter().map(String::as_str));
            let rows: Vec<Vec<String>> = m
                .labels
                .iter()
                .zip(&m.delta)
                .map(|(a, row)| {
                    let mut r = vec![a.clone()];
                    r.extend(row.iter().map(|d| delta(*d)));
                    r
                })
                .collect();
            let _ = writeln!(
                out,
                "<details>\n<summary>Table ({})</summary>",
                escape(&m.language)
            );
            table(&mut out, &header, &rows, 1);
            out.push_str("</details>\n");
        }
        out.push_str("</section>\n");
    }

    // Side effects.
    if let Some(s) = &v.side_effects {
        out.push_str("<section id=\"side-effects\">\n<h2>Side effects</h2>\n");
        let all = leaves(s);
        let numeric: Vec<(String, f64)> = all
            .iter()
            .filter_map(|(p, x)| x.as_f64().map(|x| (p.clone(), x)))
            .collect();
        // The perplexity check gets one bar per language, value and condition: its PPL ratio
        // (edited / baseline), drawn from 1 (no change); other documents get every number.
        let ratios = perplexity_ratios(s);
        let (bars, origin, caption) = if ratios.is_empty() {
            (numeric, 0.0, "Every number under evaluation.side_effects.")
        } else {
            (
                ratios,
                1.0,
                "Perplexity ratio on neutral text (with the value's neurons edited / baseline), per language, value and condition; bars start at 1 (no change), blue = higher perplexity.",
            )
        };
        if let Some(svg) = figures::side_effect_bars(&bars, origin).map_err(err)? {
            figure(&mut out, "fig-side-effects", &svg, caption);
        }
        let rows: Vec<Vec<String>> = all
            .into_iter()
            .map(|(p, x)| {
                let t = match x {
                    Value::String(s) => s,
                    Value::Null => DASH.to_owned(),
                    Value::Number(n) => n
                        .as_f64()
                        .map_or_else(|| n.to_string(), |x| format!("{x:.4}")),
                    other => other.to_string(),
                };
                vec![p, t]
            })
            .collect();
        table(&mut out, &["key", "value"], &rows, 1);
        out.push_str("</section>\n");
    }

    out.push_str(
        "<p class=\"note\">Written by valex <code>reporter/html</code>; every number comes \
         from results.json in the same run directory.</p>\n</body>\n</html>\n",
    );
    Ok(out)
}

impl Reporter for HtmlReporter {
    fn report(&self, results: &Value) -> Result<Vec<OutputFile>, ComponentError> {
        Ok(vec![OutputFile {
            name: self.file.clone(),
            bytes: render(results)?.into_bytes(),
        }])
    }
}

/// Builds `reporter/html` from its params.
///
/// # Errors
/// Unknown params or a file name that is not a plain name.
pub fn html_factory(
    params: &Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Reporter>, ConfigError> {
    let cfg: HtmlConfig = ConfigError::parse_params(params)?;
    check_file_name("file", &cfg.file)?;
    Ok(Box::new(HtmlReporter { file: cfg.file }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_text() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn empty_document_renders_a_page_without_figures() {
        let page = render(&json!({"experiment": {"name": "<x>"}})).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<title>valex report: &lt;x&gt;</title>"));
        assert!(!page.contains("<svg"));
        assert!(page.ends_with("</html>\n"));
    }

    #[test]
    fn rejects_unknown_params_and_paths() {
        let cx = FactoryContext::default();
        let e = html_factory(&json!({"title": "x"}), &cx).err().unwrap();
        assert!(e.message.contains("unknown field `title`"), "{e}");
        let e = html_factory(&json!({"file": "a/b.html"}), &cx)
            .err()
            .unwrap();
        assert_eq!(e.key.as_deref(), Some("file"));
    }
}
