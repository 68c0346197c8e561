//! Sharded recording: `valex record --shard i/n` then `valex merge` equals one unsharded
//! recording (counts exactly, moments within 1e-12 relative), for n = 1, 2, 3, 7; and
//! `valex run --stats MERGED` runs the rest of the pipeline from it.
//!
//! Exactness needs every item to be forwarded in the same batch context in both recordings
//! (`batch_size = 1` here): CPU matmul kernels depend on the batch shape, so batching the items
//! differently changes f32 activations in their last bits (about 4e-9 relative on the sums of
//! the demo model; docs/cluster.md).

use valex_test_support::{Case, repo_root};

const MANIFEST: &str = r#"schema_version = 1
[experiment]
name = "shards"
seed = 3
[model]
backend = "backend/candle"
params = { path = "builtin:planted-demo" }
[dataset]
use = "dataset/jsonl"
params = { path = "data.jsonl" }
[record]
batch_size = 1
[score]
use = "scorer/lape"
params = { top_rate = 0.09375 }
"#;

pub(crate) fn case() -> Case {
    let data = std::fs::read_to_string(repo_root().join("experiments/value-study/data/demo.jsonl"))
        .unwrap();
    Case::new()
        .file("m.toml", MANIFEST)
        .file("data.jsonl", data)
}

fn close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = x.abs().max(y.abs()).max(f64::MIN_POSITIVE);
        assert!((x - y).abs() <= 1e-12 * scale, "{what}[{i}]: {x} vs {y}");
    }
}

#[test]
fn merged_shards_equal_one_recording() {
    let c = case();
    let exec = |args: Vec<String>| {
        let mut full = vec!["--quiet".to_owned()];
        full.extend(args);
        let out = std::process::Command::new(valex_test_support::valex_bin())
            .args(&full)
            .current_dir(c.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{full:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    exec(vec![
        "record".into(),
        "m.toml".into(),
        "--out".into(),
        "full".into(),
    ]);
    let (full, _) = valex_stats_io::read_stats(&c.path().join("full")).unwrap();
    assert!(full.labels.iter().all(|l| l.items > 0));
    for n in [1usize, 2, 3, 7] {
        let mut parts = Vec::new();
        for i in 1..=n {
            let part = format!("part-{n}-{i}");
            exec(vec![
                "record".into(),
                "m.toml".into(),
                "--shard".into(),
                format!("{i}/{n}"),
                "--out".into(),
                part.clone(),
            ]);
            parts.push(format!("{part}.safetensors"));
        }
        let merged = format!("merged-{n}");
        let mut args = vec!["merge".to_owned()];
        args.extend(parts);
        args.extend(["--out".to_owned(), merged.clone()]);
        exec(args);
        let (m, _) = valex_stats_io::read_stats(&c.path().join(&merged)).unwrap();
        assert_eq!(m.label_names(), full.label_names(), "n = {n}: label order");
        for (a, b) in full.labels.iter().zip(&m.labels) {
            assert_eq!(a.items, b.items, "n = {n} {}: items", a.name);
            assert_eq!(a.tokens, b.tokens, "n = {n} {}: tokens", a.name);
            assert_eq!(
                a.active, b.active,
                "n = {n} {}: counts must be exact",
                a.name
            );
            close(&a.sum, &b.sum, &format!("n = {n} {} sum", a.name));
            close(&a.sum_sq, &b.sum_sq, &format!("n = {n} {} sum_sq", a.name));
            close(
                &a.item_sum,
                &b.item_sum,
                &format!("n = {n} {} item_sum", a.name),
            );
            close(
                &a.item_sum_sq,
                &b.item_sum_sq,
                &format!("n = {n} {} item_sum_sq", a.name),
            );
        }
    }

    // The rest of the pipeline from merged statistics selects what a plain run selects.
    exec(vec![
        "run".into(),
        "m.toml".into(),
        "--out".into(),
        "plain".into(),
    ]);
    exec(vec![
        "run".into(),
        "m.toml".into(),
        "--stats".into(),
        "merged-3".into(),
        "--out".into(),
        "from-shards".into(),
    ]);
    let sets = |d: &str| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(c.path().join(d).join("neurons.json")).unwrap())
                .unwrap();
        v["neurons"].clone()
    };
    assert_eq!(sets("plain"), sets("from-shards"));
}

#[test]
fn merge_rejects_missing_and_repeated_shards() {
    let c = case().args(["record", "m.toml", "--shard", "1/3", "--out", "p1"]);
    c.assert_exit(0);
    let dir = c.path().to_owned();
    let merge = |args: &[&str]| {
        std::process::Command::new(valex_test_support::valex_bin())
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let out = merge(&["merge", "p1.safetensors", "--out", "m"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shards 2/3, 3/3 are missing"));
    let out = merge(&["merge", "p1.safetensors", "p1.json", "--out", "m"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("given twice"));
    assert!(!dir.join("m.safetensors").exists());
}
