//! Checks of valex's own bilingual benchmark, experiments/value-study/data/benchmark/
//! `<slug>.jsonl` (one file per value; docs/datasets.md): schema, conventions, counts,
//! translations, duplicates. Files that do not exist yet are reported and skipped; every
//! file that exists must pass.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use valex_core::{Dataset, Item, ItemKind, Language};
use valex_datasets::stats::{DatasetStats, StatsOptions};
use valex_datasets::{CORE_VALUES, CoreValue, JsonlDataset};

/// At least this many activation and evaluation items per value and language (issue 6).
const MIN_ACTIVATION: usize = 50;
const MIN_EVALUATION: usize = 25;

fn repo() -> PathBuf {
    valex_test_support::repo_root()
}

/// The benchmark files that exist, with their value; says which are missing.
fn present() -> Vec<(&'static CoreValue, PathBuf)> {
    let dir = repo().join("experiments/value-study/data/benchmark");
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for v in &CORE_VALUES {
        let p = dir.join(format!("{}.jsonl", v.slug));
        if p.is_file() {
            out.push((v, p));
        } else {
            missing.push(v.slug);
        }
    }
    if !missing.is_empty() {
        #[expect(clippy::print_stderr, reason = "skipped files must be visible")]
        {
            eprintln!(
                "benchmark files not present yet (not checked): {}",
                missing.join(", ")
            );
        }
    }
    out
}

fn load(path: &Path) -> Vec<Item> {
    JsonlDataset::new(path.to_path_buf())
        .load()
        .unwrap_or_else(|e| panic!("{e}"))
        .items
}

/// The JSON Schema printed in docs/datasets.md (the first ```json block after "JSON Schema").
fn documented_schema() -> Value {
    let doc = std::fs::read_to_string(repo().join("docs/datasets.md")).unwrap();
    let at = doc
        .find("JSON Schema")
        .expect("docs/datasets.md has a JSON Schema");
    let start = doc[at..].find("```json\n").expect("a json block") + at + 8;
    let end = doc[start..].find("```").expect("the block ends") + start;
    serde_json::from_str(&doc[start..end]).expect("the documented schema is valid JSON")
}

/// A validator for the subset of JSON Schema the documented schema uses: `type` (one or a
/// list), `enum`, `required`, `properties`, `additionalProperties: false`, `minLength`.
fn validate(schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("unsupported type keyword {t}"),
        };
        let ok = types.iter().any(|t| match *t {
            "string" => v.is_string(),
            "null" => v.is_null(),
            "object" => v.is_object(),
            other => panic!("unsupported type {other}"),
        });
        if !ok {
            errors.push(format!("{path}: expected {types:?}, found {v}"));
            return;
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errors.push(format!("{path}: {v} is not one of {e:?}"));
    }
    if let (Some(min), Some(s)) = (schema.get("minLength").and_then(Value::as_u64), v.as_str())
        && (s.chars().count() as u64) < min
    {
        errors.push(format!("{path}: shorter than {min}"));
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                errors.push(format!("{path}: missing required {r}"));
            }
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(s, val, &format!("{path}.{k}"), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{path}: additional property {k}"));
                }
                None => {}
            }
        }
    }
}

#[test]
fn the_schema_validator_rejects_what_the_schema_forbids() {
    let schema = documented_schema();
    let good: Value = serde_json::from_str(
        r#"{"id":"x","value":"诚信","language":"en","kind":"evaluation","story":"s","rationale":null,"aligned":"a","violating":"b","conflict_motive":"m","parallel_id":"p"}"#,
    )
    .unwrap();
    let mut errors = Vec::new();
    validate(&schema, &good, "$", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let mut bad = good.clone();
    bad["language"] = "fr".into();
    bad["story"] = "".into();
    bad["extra"] = 1.into();
    bad.as_object_mut().unwrap().remove("aligned");
    validate(&schema, &bad, "$", &mut errors);
    assert_eq!(errors.len(), 4, "{errors:?}");
    // The demo data is in the same format.
    let demo =
        std::fs::read_to_string(repo().join("experiments/value-study/data/demo.jsonl")).unwrap();
    for (i, line) in demo.lines().enumerate() {
        let mut e = Vec::new();
        validate(&schema, &serde_json::from_str(line).unwrap(), "$", &mut e);
        assert!(e.is_empty(), "demo.jsonl line {}: {e:?}", i + 1);
    }
}

#[test]
fn benchmark_lines_validate_against_the_documented_schema() {
    let schema = documented_schema();
    let fields: BTreeSet<&str> = [
        "id",
        "value",
        "language",
        "kind",
        "story",
        "rationale",
        "aligned",
        "violating",
        "conflict_motive",
        "parallel_id",
    ]
    .into();
    let mut errors = Vec::new();
    for (_, path) in present() {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for (i, line) in text.lines().enumerate() {
            let at = format!("{name} line {}", i + 1);
            let v: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(format!("{at}: {e}"));
                    continue;
                }
            };
            validate(&schema, &v, &at, &mut errors);
            let keys: BTreeSet<&str> = v
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            if keys != fields {
                errors.push(format!("{at}: fields {keys:?}, expected all of {fields:?}"));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn benchmark_items_follow_the_id_value_and_rationale_conventions() {
    let mut errors = Vec::new();
    for (v, path) in present() {
        for it in load(&path) {
            let tag = match it.kind {
                ItemKind::Activation => 'a',
                ItemKind::Evaluation => 'e',
            };
            let lang = it.language.as_str();
            let pid = it.parallel_id.clone().unwrap_or_default();
            let nn = pid.strip_prefix(&format!("{}-{tag}", v.slug)).unwrap_or("");
            if nn.len() != 2 || !nn.bytes().all(|b| b.is_ascii_digit()) {
                errors.push(format!(
                    "{}: parallel_id {pid:?} is not {}-{tag}NN",
                    it.id, v.slug
                ));
            }
            if it.id != format!("{pid}-{lang}") {
                errors.push(format!("{}: id is not {pid}-{lang}", it.id));
            }
            if it.value != v.zh {
                errors.push(format!("{}: value {} in {}.jsonl", it.id, it.value, v.slug));
            }
            let has_rationale = it.rationale.as_ref().is_some_and(|r| !r.trim().is_empty());
            if has_rationale != (it.kind == ItemKind::Activation) {
                errors.push(format!(
                    "{}: a rationale is required for activation items and absent from evaluation items",
                    it.id
                ));
            }
            if it
                .conflict_motive
                .as_ref()
                .is_none_or(|m| m.trim().is_empty())
            {
                errors.push(format!("{}: no conflict motive", it.id));
            }
            for (name, o) in [("aligned", &it.aligned), ("violating", &it.violating)] {
                let t = o.trim_start();
                if t.starts_with("A.") || t.starts_with("B.") || t.starts_with("A、") {
                    errors.push(format!("{}: {name} starts with an option letter", it.id));
                }
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn benchmark_counts_reach_the_minimum_per_value_language_and_kind() {
    let mut errors = Vec::new();
    for (v, path) in present() {
        let stats = DatasetStats::compute(&load(&path), &StatsOptions::default());
        for lang in [Language::Zh, Language::En] {
            for (kind, min) in [
                (ItemKind::Activation, MIN_ACTIVATION),
                (ItemKind::Evaluation, MIN_EVALUATION),
            ] {
                let n = stats.count(v.zh, lang, kind);
                if n < min {
                    errors.push(format!(
                        "{}.jsonl: {n} {kind:?} items in {}, need at least {min}",
                        v.slug,
                        lang.as_str()
                    ));
                }
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn all_items() -> Vec<Item> {
    present().iter().flat_map(|(_, p)| load(p)).collect()
}

#[test]
fn every_benchmark_item_has_its_translation() {
    let items = all_items();
    let stats = DatasetStats::compute(&items, &StatsOptions::default());
    assert_eq!(stats.parallel.items_with_parallel_id, items.len());
    let problems: Vec<String> = stats
        .parallel
        .problems
        .iter()
        .map(|p| format!("{} ({}): {}", p.parallel_id, p.ids.join(", "), p.problem))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    if !items.is_empty() {
        assert_eq!(stats.parallel.complete * 2, items.len());
    }
}

/// No two stories of one language, across all files and both kinds, are the same or near
/// the same (Jaccard similarity of shingle sets ≥ the documented threshold, see
/// `valex_datasets::similarity`), and no item offers the same option twice.
#[test]
fn benchmark_has_no_exact_or_near_duplicate_stories() {
    let items = all_items();
    let stats = DatasetStats::compute(&items, &StatsOptions::default());
    let story = |id: &str| {
        items
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.story.clone())
            .unwrap_or_default()
    };
    let mut errors: Vec<String> = stats
        .exact_duplicates
        .iter()
        .map(|g| format!("same story: {}", g.ids.join(", ")))
        .collect();
    errors.extend(stats.near_duplicates.iter().map(|p| {
        format!(
            "near-duplicate stories ({:.2}): {} / {}\n    {}\n    {}",
            p.similarity,
            p.a,
            p.b,
            story(&p.a),
            story(&p.b)
        )
    }));
    errors.extend(
        stats
            .identical_options
            .iter()
            .map(|id| format!("{id}: aligned and violating options are the same")),
    );
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
