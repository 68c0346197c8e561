//! `valex bench`: the timing rows, the peak memory and the `--profile` sections (not the
//! speed itself: timings are for docs/performance.md, never for tests).

use serde_json::Value;
use valex_test_support::Case;

#[test]
fn bench_writes_rows_peak_memory_and_profiled_sections() {
    let case = Case::new().args([
        "bench",
        "--shape",
        "tiny",
        "--batch",
        "2",
        "--seq",
        "8",
        "--iters",
        "2",
        "--modes",
        "layers,stats",
        "--profile",
        "--json",
        "b.json",
    ]);
    let out = case.assert_exit(0);
    assert!(out.stdout.contains("profile stats:"), "{}", out.stdout);
    let v: Value =
        serde_json::from_slice(&std::fs::read(case.path().join("b.json")).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        // 2 iterations of 2 rows of 8 tokens (the half-length first quarter of the rows is
        // no row at --batch 2).
        assert_eq!(row["tokens"], 32, "{row}");
        if cfg!(target_os = "linux") {
            assert!(row["peak_rss_mib"].as_f64().unwrap() > 1.0, "{row}");
        }
        let sections = row["profile"]["sections"].as_array().unwrap();
        let calls = |name: &str| {
            sections
                .iter()
                .find(|s| s["name"] == name)
                .map(|s| s["calls"].as_u64().unwrap())
        };
        // tiny has 2 layers: 2 iterations x 2 layers of gate and SiLU, and the statistics
        // pass stops after the last layer's SiLU (no up/down projection there).
        assert_eq!(calls("mlp.gate"), Some(4), "{row}");
        assert_eq!(calls("mlp.down"), Some(2), "{row}");
        let host = calls("stats.host");
        match row["mode"].as_str().unwrap() {
            "stats" => assert_eq!(host, Some(2), "one accumulation per iteration"),
            _ => assert_eq!(host, None, "layers-only computes no statistics"),
        }
    }
    // Without --profile there are no sections.
    let case = Case::new().args([
        "bench", "--shape", "tiny", "--batch", "2", "--seq", "8", "--iters", "1", "--modes",
        "layers", "--json", "b.json",
    ]);
    case.assert_exit(0);
    let v: Value =
        serde_json::from_slice(&std::fs::read(case.path().join("b.json")).unwrap()).unwrap();
    assert!(v["rows"][0]["profile"].is_null());
}
