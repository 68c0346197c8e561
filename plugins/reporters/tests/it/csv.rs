//! `reporter/csv`: snapshots, RFC 4180 round trip, row counts.

use serde_json::json;

use crate::{full, minimal, render};

/// A minimal RFC 4180 reader: rows of fields (quoted fields may hold commas, quotes, newlines).
fn parse(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "no trailing partial row"
    );
    rows
}

fn tables(results: &serde_json::Value) -> Vec<(String, String)> {
    render("reporter/csv", json!({}), results)
}

#[test]
fn full_fixture_snapshots() {
    for (name, text) in tables(&full()) {
        insta::assert_snapshot!(format!("full-{name}"), text);
    }
}

#[test]
fn minimal_fixture_snapshots() {
    for (name, text) in tables(&minimal()) {
        insta::assert_snapshot!(format!("minimal-{name}"), text);
    }
}

#[test]
fn every_row_has_every_column_and_one_row_per_condition() {
    for doc in [full(), minimal()] {
        let t = tables(&doc);
        let names: Vec<&str> = t.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "evaluation.csv",
                "neurons_per_layer.csv",
                "cross_value.csv",
                "side_effects.csv"
            ]
        );
        for (name, text) in &t {
            let rows = parse(text);
            let width = rows[0].len();
            assert!(rows.iter().all(|r| r.len() == width), "{name}: ragged rows");
            assert_eq!(
                &rows[0][width - 4..],
                [
                    "manifest_sha256",
                    "model_sha256",
                    "dataset_sha256",
                    "valex_version"
                ],
                "{name}"
            );
            for r in &rows[1..] {
                assert_eq!(
                    r[width - 1],
                    "0.0.0-test",
                    "{name}: provenance on every row"
                );
                assert_eq!(r[width - 3].len(), 64, "{name}: model sha256");
            }
        }
        let ev = parse(&t[0].1);
        let conditions: usize = doc["evaluation"]["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["conditions"].as_array().unwrap().len())
            .sum();
        assert_eq!(ev.len() - 1, conditions);
        let sets = doc["selection"]["sets"].as_array().unwrap().len();
        let layers = doc["model"]["n_layers"].as_u64().unwrap() as usize;
        assert_eq!(parse(&t[1].1).len() - 1, sets * layers);
        // Each (language, ablated, evaluated) of the cross-value matrix.
        let langs = doc["evaluation"]["cross_value"].as_array().unwrap().len();
        assert_eq!(parse(&t[2].1).len() - 1, langs * sets * sets);
    }
}

#[test]
fn optional_keys_fill_columns_only_when_present() {
    let col = |rows: &[Vec<String>], name: &str| {
        let i = rows[0].iter().position(|c| c == name).unwrap();
        rows[1..].iter().map(|r| r[i].clone()).collect::<Vec<_>>()
    };
    let f = parse(&tables(&full())[0].1);
    let m = parse(&tables(&minimal())[0].1);
    assert!(col(&f, "ci_lo").iter().any(|x| !x.is_empty()));
    assert!(
        col(&f, "intervention")
            .iter()
            .any(|x| x == "intervention/zero")
    );
    assert!(col(&f, "condition").iter().any(|x| x == "scale-5"));
    for c in [
        "ci_lo",
        "ci_hi",
        "p_permutation",
        "intervention",
        "specificity",
    ] {
        assert!(col(&m, c).iter().all(String::is_empty), "{c} must be empty");
    }
    // Kinds are derived from the names when the results have none.
    let kinds = col(&m, "kind");
    assert!(
        kinds
            .iter()
            .all(|k| ["own", "random", "other-set"].contains(&k.as_str()))
    );
    // Side effects: rows only when present.
    assert!(parse(&tables(&full())[3].1).len() > 1);
    assert_eq!(parse(&tables(&minimal())[3].1).len(), 1);
}

#[test]
fn quoting_survives_commas_quotes_and_newlines() {
    let mut doc = minimal();
    doc["experiment"]["name"] = "a,\"b\"\nc".into();
    let rows = parse(&tables(&doc)[0].1);
    assert_eq!(rows[1][0], "a,\"b\"\nc");
}

#[test]
fn bad_params_name_the_key() {
    let mut b = valex_core::RegistryBuilder::new();
    valex_core::Plugin::register(&valex_reporters::ReportersPlugin, &mut b).unwrap();
    let reg = b.build();
    let cx = valex_core::FactoryContext::default();
    let e = reg
        .reporter("reporter/csv", &json!({"cross_value": "a/b.csv"}), &cx)
        .err()
        .unwrap();
    assert_eq!(e.key.as_deref(), Some("cross_value"));
    assert_eq!(
        e.message,
        "cross_value \"a/b.csv\" must be a plain file name inside the run directory"
    );
    let e = reg
        .reporter("reporter/csv", &json!({"prefix": "x"}), &cx)
        .err()
        .unwrap();
    assert!(e.message.starts_with("unknown field `prefix`"), "{e}");
}
