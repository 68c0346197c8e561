//! `reporter/csv`: tidy long-format tables that `pandas.read_csv` reads with its defaults
//! (UTF-8, comma, one header row, RFC 4180 quoting, LF line ends, empty field = missing).
//!
//! Files (names are params): `evaluation.csv` (one row per value × language × condition),
//! `neurons_per_layer.csv` (label × layer), `cross_value.csv` (language × ablated × evaluated)
//! and `side_effects.csv` (every leaf of `evaluation.side_effects`). Every file is written on
//! every run (header only when the document has no such part), and every row ends with the
//! same provenance columns, so each file stands alone. Columns: docs/reporters.md.

use serde::Deserialize;
use serde_json::Value;
use valex_core::{ComponentError, ConfigError, FactoryContext, OutputFile, Reporter};

use crate::params::check_file_names;
use crate::results::{ResultsView, leaves, num};

/// Params of `reporter/csv`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// Evaluation table (default `evaluation.csv`).
    #[serde(default = "default_evaluation")]
    pub evaluation: String,
    /// Per-layer neuron counts (default `neurons_per_layer.csv`).
    #[serde(default = "default_neurons")]
    pub neurons: String,
    /// Cross-value matrix (default `cross_value.csv`).
    #[serde(default = "default_cross")]
    pub cross_value: String,
    /// Side effects (default `side_effects.csv`).
    #[serde(default = "default_side")]
    pub side_effects: String,
}

fn default_evaluation() -> String {
    "evaluation.csv".to_owned()
}
fn default_neurons() -> String {
    "neurons_per_layer.csv".to_owned()
}
fn default_cross() -> String {
    "cross_value.csv".to_owned()
}
fn default_side() -> String {
    "side_effects.csv".to_owned()
}

/// Columns of `evaluation.csv`, before the provenance columns.
pub const EVALUATION_COLUMNS: &[&str] = &[
    "experiment",
    "value",
    "language",
    "label",
    "condition",
    "kind",
    "intervention",
    "n_items",
    "n_neurons",
    "metric",
    "baseline",
    "rate",
    "delta",
    "ci_lo",
    "ci_hi",
    "p_permutation",
    "specificity",
    "delta_random_mean",
    "n_paired",
    "answers",
    "unparsed",
    "unscored_items",
    "baseline_unparsed",
    "baseline_unscored_items",
];

/// Provenance columns that end every row of every file.
pub const PROVENANCE_COLUMNS: &[&str] = &[
    "manifest_sha256",
    "model_sha256",
    "dataset_sha256",
    "valex_version",
];

/// Writes the CSV tables.
#[derive(Debug, Clone)]
pub struct CsvReporter {
    cfg: CsvConfig,
}

/// One field, quoted per RFC 4180 when it holds a comma, quote, CR or LF (or starts or ends
/// with a space, which some readers trim).
pub fn field(s: &str) -> String {
    let needs = s.contains([',', '"', '\r', '\n']) || s.starts_with(' ') || s.ends_with(' ');
    if needs {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

struct Table {
    text: String,
    provenance: Vec<String>,
}

impl Table {
    fn new(columns: &[&str], provenance: Vec<String>) -> Self {
        let mut t = Table {
            text: String::new(),
            provenance,
        };
        let header: Vec<String> = columns
            .iter()
            .chain(PROVENANCE_COLUMNS)
            .map(|c| (*c).to_owned())
            .collect();
        t.line(&header);
        t
    }

    fn line(&mut self, fields: &[String]) {
        let quoted: Vec<String> = fields.iter().map(|f| field(f)).collect();
        self.text.push_str(&quoted.join(","));
        self.text.push('\n');
    }

    fn row(&mut self, fields: Vec<String>) {
        let mut all = fields;
        all.extend(self.provenance.iter().cloned());
        self.line(&all);
    }
}

fn opt<T: ToString>(x: Option<T>) -> String {
    x.map_or_else(String::new, |x| x.to_string())
}

impl CsvReporter {
    /// The four tables as `(file name, text)`.
    pub fn tables(&self, results: &Value) -> Vec<(String, String)> {
        let v = ResultsView::from_results(results);
        let p = &v.provenance;
        let prov = vec![
            opt(p.manifest_sha256.clone()),
            opt(p.model_sha256.clone()),
            opt(p.dataset_digest()),
            opt(p.valex_version.clone()),
        ];
        let experiment = opt(v.experiment.clone());

        let mut ev = Table::new(EVALUATION_COLUMNS, prov.clone());
        for c in &v.cells {
            for k in &c.conditions {
                ev.row(vec![
                    experiment.clone(),
                    c.value.clone(),
                    c.language.clone(),
                    c.label.clone(),
                    k.name.clone(),
                    opt(k.kind.clone()),
                    opt(k.intervention.clone()),
                    opt(c.n_items),
                    opt(k.n_neurons),
                    opt(c.metric.clone()),
                    num(c.baseline),
                    num(k.rate),
                    num(k.delta),
                    num(k.ci95.map(|x| x.0)),
                    num(k.ci95.map(|x| x.1)),
                    num(k.p_permutation),
                    num(c.specificity),
                    num(c.delta_random_mean),
                    opt(k.n_paired),
                    opt(k.unscored.as_ref().and_then(|u| u.answers)),
                    opt(k.unscored.as_ref().and_then(|u| u.unparsed)),
                    opt(k.unscored.as_ref().and_then(|u| u.items)),
                    opt(c.baseline_unscored.as_ref().and_then(|u| u.unparsed)),
                    opt(c.baseline_unscored.as_ref().and_then(|u| u.items)),
                ]);
            }
        }

        let mut nl = Table::new(&["experiment", "label", "layer", "n_neurons"], prov.clone());
        for s in &v.sets {
            for (layer, n) in s.per_layer.iter().enumerate() {
                nl.row(vec![
                    experiment.clone(),
                    s.label.clone(),
                    layer.to_string(),
                    n.to_string(),
                ]);
            }
        }

        let mut cv = Table::new(
            &["experiment", "language", "ablated", "evaluated", "delta"],
            prov.clone(),
        );
        for m in &v.cross {
            for (a, row) in m.labels.iter().zip(&m.delta) {
                for (e, d) in m.labels.iter().zip(row) {
                    cv.row(vec![
                        experiment.clone(),
                        m.language.clone(),
                        a.clone(),
                        e.clone(),
                        num(*d),
                    ]);
                }
            }
        }

        let mut se = Table::new(&["experiment", "path", "value"], prov);
        if let Some(s) = &v.side_effects {
            for (path, val) in leaves(s) {
                let text = match val {
                    Value::String(s) => s,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                se.row(vec![experiment.clone(), path, text]);
            }
        }

        vec![
            (self.cfg.evaluation.clone(), ev.text),
            (self.cfg.neurons.clone(), nl.text),
            (self.cfg.cross_value.clone(), cv.text),
            (self.cfg.side_effects.clone(), se.text),
        ]
    }
}

impl Reporter for CsvReporter {
    fn report(&self, results: &Value) -> Result<Vec<OutputFile>, ComponentError> {
        Ok(self
            .tables(results)
            .into_iter()
            .map(|(name, text)| OutputFile {
                name,
                bytes: text.into_bytes(),
            })
            .collect())
    }
}

/// Builds `reporter/csv` from its params.
///
/// # Errors
/// Unknown params, a file name that is not a plain name, or two tables with the same name.
pub fn csv_factory(params: &Value, _cx: &FactoryContext) -> Result<Box<dyn Reporter>, ConfigError> {
    let cfg: CsvConfig = ConfigError::parse_params(params)?;
    check_file_names(&[
        ("evaluation", &cfg.evaluation),
        ("neurons", &cfg.neurons),
        ("cross_value", &cfg.cross_value),
        ("side_effects", &cfg.side_effects),
    ])?;
    Ok(Box::new(CsvReporter { cfg }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_per_rfc_4180() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("诚信"), "诚信");
    }

    #[test]
    fn empty_document_gives_headers_only() {
        let r = CsvReporter {
            cfg: ConfigError::parse_params(&Value::Null).unwrap(),
        };
        let t = r.tables(&json!({}));
        assert_eq!(t.len(), 4);
        assert_eq!(
            t[0].1,
            format!(
                "{},{}\n",
                EVALUATION_COLUMNS.join(","),
                PROVENANCE_COLUMNS.join(",")
            )
        );
        for (_, text) in &t {
            assert_eq!(text.lines().count(), 1);
        }
    }

    #[test]
    fn rejects_unknown_params_and_repeated_names() {
        let cx = FactoryContext::default();
        let e = csv_factory(&json!({"evaluaton": "x.csv"}), &cx)
            .err()
            .unwrap();
        assert!(e.message.contains("unknown field `evaluaton`"), "{e}");
        let e = csv_factory(&json!({"neurons": "evaluation.csv"}), &cx)
            .err()
            .unwrap();
        assert_eq!(e.key.as_deref(), Some("neurons"));
    }
}
