//! `reporter/markdown`: snapshots with and without the optional keys.

use serde_json::json;

use crate::{full, minimal, render};

fn md(results: &serde_json::Value) -> String {
    let files = render("reporter/markdown", json!({}), results);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "report.md");
    files[0].1.clone()
}

#[test]
fn full_fixture_snapshot() {
    insta::assert_snapshot!("full-report.md", md(&full()));
}

#[test]
fn minimal_fixture_snapshot() {
    insta::assert_snapshot!("minimal-report.md", md(&minimal()));
}

#[test]
fn provenance_comes_first_and_absent_keys_print_dashes() {
    let m = md(&minimal());
    let prov = m.find("## Provenance").unwrap();
    let sel = m.find("## Selection").unwrap();
    assert!(prov < sel);
    assert!(m.contains("- manifest sha256: `"));
    // No CI, no p, no specificity in today's documents: dashes, never a failure.
    let eval = &m[m.find("## Evaluation").unwrap()..];
    let first_row = eval.lines().find(|l| l.starts_with("| 富强 |")).unwrap();
    assert_eq!(
        first_row,
        "| 富强 | zh | 4 | 6 | 1.000 | -0.750 | – | – | +0.000 | – |"
    );
    let f = md(&full());
    assert!(f.contains("scale-5"));
    assert!(f.contains("## Side effects"));
    assert!(!m.contains("## Side effects"));
}

#[test]
fn custom_file_name() {
    let files = render("reporter/markdown", json!({"file": "r.md"}), &minimal());
    assert_eq!(files[0].0, "r.md");
}
