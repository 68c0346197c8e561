//! Verification of a finished run: are its inputs unchanged, and does a rerun produce the same
//! outputs? The CLI's `valex verify` drives these pieces (see docs/reproducibility.md).
//!
//! Inputs are checked by the sha256 that run.json recorded for every file read (manifests,
//! dataset files, model files, plugin libraries). A changed dataset file is narrowed down to
//! items through per-item digests that run.json also records. Outputs are compared byte for
//! byte (exact, the default for CPU f32 runs) or, with a tolerance, number by number.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::Digest;
use valex_core::Item;

/// One input of a run that no longer matches run.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    /// `manifest`, `dataset`, `model`, `plugin`.
    pub role: String,
    /// The file.
    pub path: PathBuf,
    /// What is wrong, e.g. `sha256 changed (was 3f2a.., now 91bc..)` or `missing`.
    pub problem: String,
}

/// A difference between an original output file and its rerun.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputDiff {
    /// File name inside the run directory.
    pub file: String,
    /// Up to a few lines describing the first differences.
    pub details: Vec<String>,
}

/// 16-hex-digit digests of every item (id → digest of its canonical JSON), in item order.
pub fn item_digests(items: &[Item]) -> Value {
    let mut m = serde_json::Map::new();
    for it in items {
        let bytes = serde_json::to_vec(it).expect("items serialise");
        m.insert(
            it.id.clone(),
            Value::String(hex::encode(&sha2::Sha256::digest(&bytes)[..8])),
        );
    }
    Value::Object(m)
}

/// Items changed, added or removed between the digests in run.json and `items`, as lines.
pub fn item_changes(recorded: &Value, items: &[Item]) -> Vec<String> {
    let now = item_digests(items);
    let (Some(old), Some(new)) = (recorded.as_object(), now.as_object()) else {
        return vec!["run.json has no per-item digests".to_owned()];
    };
    let mut out = Vec::new();
    for (id, h) in new {
        match old.get(id) {
            None => out.push(format!("item {id} was added")),
            Some(o) if o != h => out.push(format!("item {id} changed")),
            Some(_) => {}
        }
    }
    for id in old.keys() {
        if !new.contains_key(id) {
            out.push(format!("item {id} was removed"));
        }
    }
    out
}

/// Rechecks every input recorded in run.json.
pub fn check_inputs(run_json: &Value) -> Vec<InputProblem> {
    let mut out = Vec::new();
    for input in run_json["inputs"].as_array().into_iter().flatten() {
        let role = input["role"].as_str().unwrap_or("input").to_owned();
        let path = PathBuf::from(input["path"].as_str().unwrap_or_default());
        let want = input["sha256"].as_str().unwrap_or_default();
        let problem = match valex_stats_io::sha256_file(&path) {
            Err(_) if !path.exists() => Some("missing".to_owned()),
            Err(e) => Some(format!("unreadable: {e}")),
            Ok(h) if h != want => Some(format!(
                "sha256 changed (was {}.., now {}..)",
                &want[..want.len().min(12)],
                &h[..12]
            )),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            out.push(InputProblem {
                role,
                path,
                problem,
            });
        }
    }
    out
}

/// Compares the output files of two run directories: statistics, neuron sets and every
/// reporter output recorded in `run_json`. `tolerance` 0 means byte equality; otherwise JSON
/// numbers may differ by that relative amount (for GPU or reduced-precision runs).
pub fn compare_outputs(
    run_json: &Value,
    original: &Path,
    rerun: &Path,
    tolerance: f64,
) -> Vec<OutputDiff> {
    let mut files: Vec<String> = ["statistics.safetensors", "statistics.json", "neurons.json"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    for o in run_json["outputs"].as_array().into_iter().flatten() {
        if let Some(f) = o["file"].as_str() {
            files.push(f.to_owned());
        }
    }
    let mut diffs = Vec::new();
    for f in files {
        let (a, b) = (original.join(&f), rerun.join(&f));
        let details = match (std::fs::read(&a), std::fs::read(&b)) {
            (Err(_), Err(_)) => continue,
            (Ok(_), Err(_)) => vec!["missing from the rerun".to_owned()],
            (Err(_), Ok(_)) => vec!["missing from the original run".to_owned()],
            (Ok(x), Ok(y)) if x == y => continue,
            (Ok(x), Ok(y)) => match (
                serde_json::from_slice::<Value>(&x),
                serde_json::from_slice::<Value>(&y),
            ) {
                (Ok(vx), Ok(vy)) => {
                    let mut d = Vec::new();
                    json_diff("", &vx, &vy, tolerance, &mut d);
                    if d.is_empty() {
                        continue;
                    }
                    d
                }
                _ => vec![format!(
                    "contents differ ({} vs {} bytes)",
                    x.len(),
                    y.len()
                )],
            },
        };
        diffs.push(OutputDiff { file: f, details });
    }
    diffs
}

const MAX_DIFF_LINES: usize = 8;

fn json_diff(path: &str, a: &Value, b: &Value, tol: f64, out: &mut Vec<String>) {
    if out.len() >= MAX_DIFF_LINES {
        return;
    }
    let here = if path.is_empty() {
        "(root)".to_owned()
    } else {
        path.to_owned()
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeMap<&String, ()> = x.keys().chain(y.keys()).map(|k| (k, ())).collect();
            for k in keys.keys() {
                let p = if path.is_empty() {
                    (*k).clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(*k), y.get(*k)) {
                    (Some(u), Some(v)) => json_diff(&p, u, v, tol, out),
                    (Some(_), None) => out.push(format!("{p}: missing from the rerun")),
                    (None, Some(_)) => out.push(format!("{p}: new in the rerun")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(format!(
                    "{here}: {} entries, rerun has {}",
                    x.len(),
                    y.len()
                ));
                return;
            }
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                json_diff(&format!("{path}[{i}]"), u, v, tol, out);
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (u, v) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            let close = u == v || (tol > 0.0 && (u - v).abs() <= tol * u.abs().max(v.abs()));
            if !close {
                out.push(format!("{here}: {x} vs {y} in the rerun"));
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{here}: {} vs {} in the rerun", short(a), short(b))),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}..", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_diff_names_paths_and_respects_tolerance() {
        let a = json!({"x": {"rate": 0.5, "ids": [1, 2]}, "name": "a"});
        let b = json!({"x": {"rate": 0.5000001, "ids": [1, 3]}, "name": "b"});
        let mut d = Vec::new();
        json_diff("", &a, &b, 0.0, &mut d);
        assert_eq!(
            d,
            vec![
                "name: \"a\" vs \"b\" in the rerun",
                "x.ids[1]: 2 vs 3 in the rerun",
                "x.rate: 0.5 vs 0.5000001 in the rerun"
            ]
        );
        let mut d = Vec::new();
        json_diff("", &a["x"]["rate"], &b["x"]["rate"], 1e-6, &mut d);
        assert!(d.is_empty());
    }

    #[test]
    fn item_changes_reports_changed_added_removed() {
        let item = |id: &str, story: &str| Item {
            id: id.into(),
            value: "诚信".into(),
            language: valex_core::Language::En,
            kind: valex_core::ItemKind::Evaluation,
            story: story.into(),
            rationale: None,
            aligned: "a".into(),
            violating: "b".into(),
            conflict_motive: None,
            parallel_id: None,
        };
        let old = item_digests(&[item("1", "s"), item("2", "s")]);
        let now = [item("1", "s!"), item("3", "s")];
        assert_eq!(
            item_changes(&old, &now),
            vec!["item 1 changed", "item 3 was added", "item 2 was removed"]
        );
    }

    #[test]
    fn check_inputs_reports_changed_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("d.jsonl");
        std::fs::write(&f, "x").unwrap();
        let h = valex_stats_io::sha256_file(&f).unwrap();
        let run = json!({"inputs": [
            {"role": "dataset", "path": f.display().to_string(), "sha256": h},
            {"role": "model", "path": dir.path().join("gone").display().to_string(), "sha256": "00"}
        ]});
        let p = check_inputs(&run);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].problem, "missing");
        std::fs::write(&f, "y").unwrap();
        let p = check_inputs(&run);
        assert_eq!(p.len(), 2);
        assert!(
            p[0].problem.starts_with("sha256 changed"),
            "{}",
            p[0].problem
        );
    }
}
