//! Integration tests of the built-in reporters on a hand-made results fixture (one test
//! binary): snapshots of the CSV and Markdown output, structural checks of the HTML, with and
//! without the optional evaluation keys.
#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test] functions are test code too: unwrap is the assertion"
)]

mod csv;
mod html;
mod markdown;

use serde_json::Value;

/// The fixture: a trimmed results.json of the demo run (2 values × 2 languages, cross-value
/// matrix) plus every optional key (`kind`, `intervention`, `ci95`, `p_permutation`,
/// `specificity`, `delta_random_mean`, an extra own-set condition, `side_effects`). The
/// valex version is fixed so snapshots survive version bumps.
pub fn full() -> Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results-full.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["valex_version"] = "0.0.0-test".into();
    v["provenance"]["valex_version"] = "0.0.0-test".into();
    v
}

/// The fixture without any optional key: what today's runner writes.
pub fn minimal() -> Value {
    let mut v = full();
    let ev = v["evaluation"].as_object_mut().unwrap();
    ev.remove("side_effects");
    for cell in ev["cells"].as_array_mut().unwrap() {
        let c = cell.as_object_mut().unwrap();
        c.remove("specificity");
        c.remove("delta_random_mean");
        let conds = c["conditions"].as_array_mut().unwrap();
        conds.retain(|k| {
            let name = k["condition"].as_str().unwrap();
            name == "targeted" || name.starts_with("random-") || name.starts_with("set-of/")
        });
        for k in conds {
            let k = k.as_object_mut().unwrap();
            for key in ["kind", "intervention", "ci95", "p_permutation"] {
                k.remove(key);
            }
        }
    }
    v
}

/// Renders `results` with reporter `id` built from `params`, as `(name, text)` files.
pub fn render(id: &str, params: Value, results: &Value) -> Vec<(String, String)> {
    let mut b = valex_core::RegistryBuilder::new();
    valex_core::Plugin::register(&valex_reporters::ReportersPlugin, &mut b).unwrap();
    let reg = b.build();
    let r = reg
        .reporter(id, &params, &valex_core::FactoryContext::default())
        .unwrap();
    r.report(results)
        .unwrap()
        .into_iter()
        .map(|f| (f.name, String::from_utf8(f.bytes).unwrap()))
        .collect()
}
