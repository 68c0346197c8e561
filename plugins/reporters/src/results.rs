//! A read-only view of the results document (results.json) as the table and figure reporters
//! need it. Every field is optional: a key that is absent or `null` reads as `None` (rendered
//! as "–" or an empty CSV field), so reporters never fail on older or partial documents and
//! pick up the optional evaluation keys (`kind`, `intervention`, `ci95`, `p_permutation`,
//! `specificity`, `delta_random_mean`, `side_effects`) when the runner writes them.
//!
//! This module only reads `serde_json::Value`s; it must not depend on the runner.

use serde_json::Value;

/// The run's provenance: hashes of its inputs and the valex version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    /// valex version that produced the results.
    pub valex_version: Option<String>,
    /// sha256 of the resolved manifest.
    pub manifest_sha256: Option<String>,
    /// Content sha256 of the model.
    pub model_sha256: Option<String>,
    /// `(file, sha256)` of every dataset file, in document order.
    pub dataset_sha256: Vec<(String, String)>,
}

impl Provenance {
    /// One hash for all dataset files: the file's own sha256 when there is one file, else the
    /// sha256 of the lines `"{file}\t{sha256}\n"` sorted by file name (documented in
    /// docs/reporters.md); `None` when the document lists no file.
    pub fn dataset_digest(&self) -> Option<String> {
        use sha2::Digest;
        match self.dataset_sha256.as_slice() {
            [] => None,
            [(_, h)] => Some(h.clone()),
            many => {
                let mut lines: Vec<String> =
                    many.iter().map(|(f, h)| format!("{f}\t{h}\n")).collect();
                lines.sort();
                Some(hex::encode(sha2::Sha256::digest(lines.concat().as_bytes())))
            }
        }
    }
}

/// One value's selected neuron set.
#[derive(Debug, Clone, PartialEq)]
pub struct SetView {
    /// Statistics label (`诚信`, or `诚信/zh` with `label_by = "value-language"`).
    pub label: String,
    /// Neurons in the set.
    pub n_neurons: Option<u64>,
    /// Neurons per layer, layer 0 first.
    pub per_layer: Vec<u64>,
}

/// One evaluated condition of a cell (targeted ablation, a random control, another set, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionView {
    /// Condition name (`targeted`, `random-1`, `set-of/民主`, `scale-5`, ...).
    pub name: String,
    /// `own`, `random` or `other-set`: the document's `kind`, else derived from the name.
    pub kind: Option<String>,
    /// Whether `kind` was derived from the name rather than read.
    pub kind_derived: bool,
    /// Intervention id, when the document names it.
    pub intervention: Option<String>,
    /// Neurons edited.
    pub n_neurons: Option<u64>,
    /// The metric under this condition.
    pub rate: Option<f64>,
    /// `rate - baseline`.
    pub delta: Option<f64>,
    /// 95 % confidence interval of `delta`.
    pub ci95: Option<(f64, f64)>,
    /// Permutation p-value of `delta`.
    pub p_permutation: Option<f64>,
    /// Items scored in both the baseline and this condition (generation evaluators; absent
    /// when every item is scored).
    pub n_paired: Option<u64>,
    /// Answers that could not be parsed under this condition.
    pub unscored: Option<UnscoredView>,
}

/// Unparsed answers of a generation evaluator under one condition (the runner's `unscored`).
#[derive(Debug, Clone, PartialEq)]
pub struct UnscoredView {
    /// Answers generated (items × presentation orders).
    pub answers: Option<u64>,
    /// Answers that could not be parsed.
    pub unparsed: Option<u64>,
    /// Items without any parsed answer.
    pub items: Option<u64>,
    /// A few unparsed answers: `(item, order, answer)`.
    pub examples: Vec<(String, String, String)>,
}

fn unscored(v: &Value) -> Option<UnscoredView> {
    if !v.is_object() {
        return None;
    }
    Some(UnscoredView {
        answers: v["answers"].as_u64(),
        unparsed: v["unparsed"].as_u64(),
        items: v["items"].as_u64(),
        examples: arr(&v["examples"])
            .iter()
            .map(|e| {
                (
                    s(&e["item"]).unwrap_or_default(),
                    s(&e["order"]).unwrap_or_default(),
                    s(&e["answer"]).unwrap_or_default(),
                )
            })
            .collect(),
    })
}

/// One evaluation cell: a value in a language.
#[derive(Debug, Clone, PartialEq)]
pub struct CellView {
    /// Value id.
    pub value: String,
    /// Language (`zh`, `en`).
    pub language: String,
    /// Statistics label whose set was ablated.
    pub label: String,
    /// What tables and figures show for the cell: the value, or the label when the run
    /// recorded conditions (`record.label_by = "value-condition"`: `富强/support` and
    /// `富强/conflict` are both cells of `富强`).
    pub shown: String,
    /// Evaluation items.
    pub n_items: Option<u64>,
    /// Metric name.
    pub metric: Option<String>,
    /// Metric without intervention.
    pub baseline: Option<f64>,
    /// Specificity of the targeted effect, when the document has it.
    pub specificity: Option<f64>,
    /// Mean Δ of the random controls, as the document gives it.
    pub delta_random_mean: Option<f64>,
    /// Unparsed answers without intervention (generation evaluators).
    pub baseline_unscored: Option<UnscoredView>,
    /// Conditions in document order.
    pub conditions: Vec<ConditionView>,
}

impl CellView {
    /// The first own-set condition (`targeted` in today's documents).
    pub fn primary_own(&self) -> Option<&ConditionView> {
        self.conditions
            .iter()
            .find(|c| c.kind.as_deref() == Some("own"))
    }

    /// Own-set conditions (`targeted`, `scale-5`, `mean`, ...).
    pub fn own(&self) -> impl Iterator<Item = &ConditionView> {
        self.conditions
            .iter()
            .filter(|c| c.kind.as_deref() == Some("own"))
    }

    /// The document's `delta_random_mean`, else the mean Δ of the random conditions.
    pub fn random_mean(&self) -> Option<f64> {
        self.delta_random_mean.or_else(|| {
            let d: Vec<f64> = self
                .conditions
                .iter()
                .filter(|c| c.kind.as_deref() == Some("random"))
                .filter_map(|c| c.delta)
                .collect();
            (!d.is_empty()).then(|| d.iter().sum::<f64>() / d.len() as f64)
        })
    }

    /// The smallest and largest Δ of the random conditions.
    pub fn random_range(&self) -> Option<(f64, f64)> {
        let d: Vec<f64> = self
            .conditions
            .iter()
            .filter(|c| c.kind.as_deref() == Some("random"))
            .filter_map(|c| c.delta)
            .collect();
        let lo = d.iter().copied().reduce(f64::min)?;
        let hi = d.iter().copied().reduce(f64::max)?;
        Some((lo, hi))
    }
}

/// The cross-value matrix of one language: `delta[ablated][evaluated]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossView {
    /// Language.
    pub language: String,
    /// Labels in set order (rows: ablated, columns: evaluated).
    pub labels: Vec<String>,
    /// Δ, `None` where not evaluated.
    pub delta: Vec<Vec<Option<f64>>>,
}

/// Everything the table and figure reporters show.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsView {
    /// `experiment.name`.
    pub experiment: Option<String>,
    /// `experiment.seed`.
    pub seed: Option<u64>,
    /// Input hashes.
    pub provenance: Provenance,
    /// `(role, id)` of every component.
    pub components: Vec<(String, String)>,
    /// `model.architecture`, `n_layers`, `n_neurons`.
    pub model: (Option<String>, Option<u64>, Option<u64>),
    /// `selection.scorer`.
    pub scorer: Option<String>,
    /// Selected sets.
    pub sets: Vec<SetView>,
    /// Evaluation cells.
    pub cells: Vec<CellView>,
    /// Cross-value matrices, one per language.
    pub cross: Vec<CrossView>,
    /// `evaluation.side_effects` as given (rendered generically).
    pub side_effects: Option<Value>,
}

fn s(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// The kind of a condition from its name, for documents written before `kind` existed.
fn derived_kind(name: &str) -> Option<&'static str> {
    if name == "targeted" {
        Some("own")
    } else if name.starts_with("random-") {
        Some("random")
    } else if name.starts_with("set-of/") {
        Some("other-set")
    } else {
        None
    }
}

fn condition(c: &Value) -> ConditionView {
    let name = s(&c["condition"]).unwrap_or_default();
    let given = s(&c["kind"]);
    let kind_derived = given.is_none() && derived_kind(&name).is_some();
    let kind = given.or_else(|| derived_kind(&name).map(str::to_owned));
    let ci95 = match arr(&c["ci95"]) {
        [lo, hi] => lo.as_f64().zip(hi.as_f64()),
        _ => None,
    };
    ConditionView {
        name,
        kind,
        kind_derived,
        intervention: s(&c["intervention"]),
        n_neurons: c["n_neurons"].as_u64(),
        rate: c["rate"].as_f64(),
        delta: c["delta"].as_f64(),
        ci95,
        p_permutation: c["p_permutation"].as_f64(),
        n_paired: c["n_paired"].as_u64(),
        unscored: unscored(&c["unscored"]),
    }
}

impl ResultsView {
    /// Reads the parts of `results` the reporters show; missing parts stay empty.
    pub fn from_results(results: &Value) -> Self {
        let p = &results["provenance"];
        let dataset_sha256 = match &p["dataset_sha256"] {
            Value::Object(m) => m
                .iter()
                .filter_map(|(k, v)| s(v).map(|h| (k.clone(), h)))
                .collect(),
            Value::String(h) => vec![(String::new(), h.clone())],
            _ => Vec::new(),
        };
        let provenance = Provenance {
            valex_version: s(&p["valex_version"]).or_else(|| s(&results["valex_version"])),
            manifest_sha256: s(&p["manifest_sha256"]),
            model_sha256: s(&p["model_sha256"]),
            dataset_sha256,
        };
        let sel = &results["selection"];
        let sets = arr(&sel["sets"])
            .iter()
            .map(|x| SetView {
                label: s(&x["label"]).unwrap_or_default(),
                n_neurons: x["n_neurons"].as_u64(),
                per_layer: arr(&x["per_layer"])
                    .iter()
                    .map(|n| n.as_u64().unwrap_or(0))
                    .collect(),
            })
            .collect();
        let ev = &results["evaluation"];
        let by_condition = results["record"]["label_by"] == "value-condition";
        let cells = arr(&ev["cells"])
            .iter()
            .map(|c| CellView {
                value: s(&c["value"]).unwrap_or_default(),
                language: s(&c["language"]).unwrap_or_default(),
                label: s(&c["label"]).unwrap_or_default(),
                shown: s(&c[if by_condition { "label" } else { "value" }]).unwrap_or_default(),
                n_items: c["n_items"].as_u64(),
                metric: s(&c["metric"]),
                baseline: c["baseline"].as_f64(),
                specificity: c["specificity"].as_f64(),
                delta_random_mean: c["delta_random_mean"].as_f64(),
                baseline_unscored: unscored(&c["baseline_unscored"]),
                conditions: arr(&c["conditions"]).iter().map(condition).collect(),
            })
            .collect();
        let cross = arr(&ev["cross_value"])
            .iter()
            .map(|m| CrossView {
                language: s(&m["language"]).unwrap_or_default(),
                labels: arr(&m["labels"]).iter().filter_map(s).collect(),
                delta: arr(&m["delta"])
                    .iter()
                    .map(|row| arr(row).iter().map(Value::as_f64).collect())
                    .collect(),
            })
            .collect();
        let side_effects = match &ev["side_effects"] {
            Value::Null => None,
            v => Some(v.clone()),
        };
        let m = &results["model"];
        ResultsView {
            experiment: s(&results["experiment"]["name"]),
            seed: results["experiment"]["seed"].as_u64(),
            provenance,
            components: arr(&results["components"])
                .iter()
                .filter_map(|c| s(&c["role"]).zip(s(&c["id"])))
                .collect(),
            model: (
                s(&m["architecture"]),
                m["n_layers"].as_u64(),
                m["n_neurons"].as_u64(),
            ),
            scorer: s(&sel["scorer"]),
            sets,
            cells,
            cross,
            side_effects,
        }
    }

    /// Number of layers: the model's, else the longest per-layer list.
    pub fn n_layers(&self) -> usize {
        self.model.1.map_or_else(
            || {
                self.sets
                    .iter()
                    .map(|s| s.per_layer.len())
                    .max()
                    .unwrap_or(0)
            },
            |n| n as usize,
        )
    }
}

/// Column names of [`ResultsView::unscored_rows`], for the table reporters.
pub const UNSCORED_COLUMNS: [&str; 6] = [
    "value",
    "lang",
    "condition",
    "answers",
    "unparsed",
    "items without an answer",
];

impl ResultsView {
    /// One row per cell and condition (baseline first) that has unparsed answers: value,
    /// language, condition, answers, unparsed, items without a parsed answer; empty for
    /// evaluators that score every item.
    pub fn unscored_rows(&self) -> Vec<[String; 6]> {
        let n = |x: Option<u64>| x.map_or_else(|| "–".to_owned(), |x| x.to_string());
        self.unscored()
            .map(|(c, name, u)| {
                [
                    c.value.clone(),
                    c.language.clone(),
                    name.to_owned(),
                    n(u.answers),
                    n(u.unparsed),
                    n(u.items),
                ]
            })
            .collect()
    }

    /// Every `(cell, condition name, unparsed answers)`, the baseline of each cell first.
    fn unscored(&self) -> impl Iterator<Item = (&CellView, &str, &UnscoredView)> {
        self.cells.iter().flat_map(|c| {
            std::iter::once(("baseline", c.baseline_unscored.as_ref()))
                .chain(
                    c.conditions
                        .iter()
                        .map(|k| (k.name.as_str(), k.unscored.as_ref())),
                )
                .filter_map(move |(name, u)| u.map(|u| (c, name, u)))
        })
    }

    /// Up to `max` unparsed answers as `(value · language · condition · item (order), answer)`,
    /// answers cut to `chars` characters.
    pub fn unscored_examples(&self, max: usize, chars: usize) -> Vec<(String, String)> {
        self.unscored()
            .flat_map(|(c, name, u)| {
                u.examples.iter().map(move |(item, order, answer)| {
                    let mut a: String = answer.chars().take(chars).collect();
                    if answer.chars().count() > chars {
                        a.push('…');
                    }
                    (
                        format!("{} · {} · {name} · {item} ({order})", c.value, c.language),
                        a,
                    )
                })
            })
            .take(max)
            .collect()
    }
}

/// Every leaf of `v` as `(dotted path, value)`, arrays indexed as `[i]`, in document order.
pub fn leaves(v: &Value) -> Vec<(String, Value)> {
    fn walk(v: &Value, path: String, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(x, p, out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{path}[{i}]"), out);
                }
            }
            leaf => out.push((path, leaf.clone())),
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

/// `(\"<language> · <label> · <condition>\", ratio)` of every condition of a perplexity
/// side-effect document (`{"metric": "perplexity", "per_language": [{"language", "conditions":
/// [{"label", "condition", "ratio"}]}]}`, written by the runner's `[evaluate] neutral_text`
/// check); empty for any other document.
pub fn perplexity_ratios(side_effects: &Value) -> Vec<(String, f64)> {
    if side_effects["metric"].as_str() != Some("perplexity") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for l in arr(&side_effects["per_language"]) {
        let lang = s(&l["language"]).unwrap_or_default();
        for c in arr(&l["conditions"]) {
            if let Some(r) = c["ratio"].as_f64() {
                let label = s(&c["label"]).unwrap_or_default();
                let cond = s(&c["condition"]).unwrap_or_default();
                out.push((format!("{lang} · {label} · {cond}"), r));
            }
        }
    }
    out
}

/// A float as Rust prints it (shortest round-trip form), for data files.
pub fn num(x: Option<f64>) -> String {
    x.map_or_else(String::new, |x| format!("{x}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_missing_keys_as_none_and_derives_kinds() {
        let v = ResultsView::from_results(&json!({
            "evaluation": {"cells": [{"value": "a", "language": "zh", "conditions": [
                {"condition": "targeted", "delta": -0.5},
                {"condition": "random-1", "delta": 0.1},
                {"condition": "random-2", "delta": 0.3},
                {"condition": "mean", "kind": "own", "ci95": [0.1, 0.2]},
            ]}]}
        }));
        let c = &v.cells[0];
        assert_eq!(c.baseline, None);
        assert_eq!(c.conditions[0].kind.as_deref(), Some("own"));
        assert!(c.conditions[0].kind_derived);
        assert_eq!(c.conditions[1].kind.as_deref(), Some("random"));
        assert!(!c.conditions[3].kind_derived);
        assert_eq!(c.conditions[3].ci95, Some((0.1, 0.2)));
        assert_eq!(c.own().count(), 2);
        assert!((c.random_mean().unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(c.random_range(), Some((0.1, 0.3)));
        assert!(v.side_effects.is_none());
        assert_eq!(v.provenance.dataset_digest(), None);
    }

    #[test]
    fn unparsed_answers_are_listed_per_condition_with_examples() {
        let u = |n: u64| {
            json!({"answers": 4, "unparsed": n, "items": n / 2,
            "examples": [{"item": "e1", "order": "aligned-first", "answer": "我认为|两者都好"}]})
        };
        let v = ResultsView::from_results(&json!({
            "evaluation": {"cells": [{"value": "诚信", "language": "zh",
                "baseline_unscored": u(2),
                "conditions": [
                    {"condition": "targeted", "n_paired": 1, "unscored": u(3)},
                    {"condition": "random-1", "n_paired": 2},
                ]}]}
        }));
        assert_eq!(v.cells[0].conditions[0].n_paired, Some(1));
        assert_eq!(
            v.unscored_rows(),
            vec![
                ["诚信", "zh", "baseline", "4", "2", "1"].map(str::to_owned),
                ["诚信", "zh", "targeted", "4", "3", "1"].map(str::to_owned),
            ]
        );
        let ex = v.unscored_examples(1, 3);
        assert_eq!(
            ex,
            vec![(
                "诚信 · zh · baseline · e1 (aligned-first)".to_owned(),
                "我认为…".to_owned()
            )]
        );
        assert!(
            ResultsView::from_results(&json!({"evaluation": {"cells": [{"value": "a"}]}}))
                .unscored_rows()
                .is_empty()
        );
    }

    #[test]
    fn dataset_digest_is_the_file_hash_or_a_sorted_digest() {
        let mut p = Provenance {
            dataset_sha256: vec![("a".into(), "h1".into())],
            ..Provenance::default()
        };
        assert_eq!(p.dataset_digest().as_deref(), Some("h1"));
        p.dataset_sha256 = vec![("b".into(), "h2".into()), ("a".into(), "h1".into())];
        let d = p.dataset_digest().unwrap();
        p.dataset_sha256.reverse();
        assert_eq!(p.dataset_digest().unwrap(), d, "order-independent");
        assert_eq!(d.len(), 64);
    }

    #[test]
    fn perplexity_ratios_label_language_value_and_condition() {
        let se = json!({"metric": "perplexity", "per_language": [{"language": "zh", "baseline": 9.0,
            "conditions": [{"label": "诚信", "condition": "targeted", "ppl": 9.9, "ratio": 1.1}]}]});
        assert_eq!(
            perplexity_ratios(&se),
            vec![("zh · 诚信 · targeted".to_owned(), 1.1)]
        );
        assert!(perplexity_ratios(&json!({"ppl": {"zh": 3.0}})).is_empty());
    }

    #[test]
    fn leaves_flatten_objects_and_arrays() {
        let l = leaves(&json!({"ppl": {"zh": [1.5, 2]}, "n": "x"}));
        assert_eq!(
            l,
            vec![
                ("ppl.zh[0]".to_owned(), json!(1.5)),
                ("ppl.zh[1]".to_owned(), json!(2)),
                ("n".to_owned(), json!("x")),
            ]
        );
    }

    #[test]
    fn cells_show_the_label_only_with_record_conditions() {
        let cells = json!({"cells": [
            {"value": "富强", "language": "zh", "label": "富强/support"},
            {"value": "富强", "language": "zh", "label": "富强/conflict"},
        ]});
        let shown = |label_by: &str| {
            ResultsView::from_results(
                &json!({"record": {"label_by": label_by}, "evaluation": cells}),
            )
            .cells
            .into_iter()
            .map(|c| c.shown)
            .collect::<Vec<_>>()
        };
        assert_eq!(shown("value-condition"), ["富强/support", "富强/conflict"]);
        assert_eq!(shown("value"), ["富强", "富强"]);
    }
}
