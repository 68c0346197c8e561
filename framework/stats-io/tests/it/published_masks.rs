//! Exact reproduction of the 48 published C-voice masks (Qwen2.5-7B, 12 values x
//! {semantic, decision} x {support, conflict}) from the released counts, through
//! `read_released_counts` and `scorer/lape`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use valex_core::{NeuronSet, Scorer};
use valex_scorers::{LapeConfig, LapeScorer, NormalizeBy};
use valex_stats_io::read_released_counts;

const VALUES: [&str; 12] = [
    "富强", "民主", "文明", "和谐", "自由", "平等", "公正", "法治", "爱国", "敬业", "诚信", "友善",
];

fn reference_dir() -> Option<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/c-voice-qwen2.5-7b");
    if dir.join("over_zero.safetensors").is_file() && dir.join("published_masks.json").is_file() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/reference/c-voice-qwen2.5-7b not found");
        None
    }
}

fn published_set(v: &Value) -> NeuronSet {
    let layers: Vec<Vec<u32>> = v
        .as_array()
        .expect("published mask is a list of layers")
        .iter()
        .map(|l| {
            l.as_array()
                .expect("layer is a list")
                .iter()
                .map(|i| u32::try_from(i.as_u64().expect("index")).expect("fits u32"))
                .collect()
        })
        .collect();
    NeuronSet::from_layers(layers)
}

#[test]
fn lape_reproduces_all_48_published_masks() {
    let Some(dir) = reference_dir() else {
        return;
    };
    let published: Value = serde_json::from_slice(
        &std::fs::read(dir.join("published_masks.json")).expect("read published masks"),
    )
    .expect("published masks are JSON");
    let settings = [("semantic", 0.5), ("decision", 0.95)];
    let mut matched = 0;
    let mut mismatches = Vec::new();
    let mut exported = Vec::new();
    for value in VALUES {
        let labels = vec![format!("{value}/support"), format!("{value}/conflict")];
        let stats = read_released_counts(&dir, Some(&labels)).expect("released counts load");
        assert_eq!((stats.n_layers, stats.n_neurons), (28, 18944));
        for (setting, rate) in settings {
            let scorer = LapeScorer::new(LapeConfig {
                top_rate: 0.01,
                filter_rate: rate,
                activation_bar_ratio: rate,
                normalize_by: NormalizeBy::Items,
            })
            .expect("valid config");
            let out = scorer.score(&stats, &labels).expect("lape scores");
            assert_eq!(out.details["selected"], 5304);
            exported.extend(
                out.sets
                    .iter()
                    .map(|(l, s)| (format!("{l}/{setting}"), s.clone())),
            );
            for ((label, ours), condition) in out.sets.iter().zip(["support", "conflict"]) {
                assert_eq!(label, &format!("{value}/{condition}"));
                let theirs = published_set(&published[value][setting][condition]);
                if *ours == theirs {
                    matched += 1;
                } else {
                    let common = ours.intersection_len(&theirs);
                    mismatches.push(format!(
                        "{value} {setting} {condition}: ours {} published {} common {common}",
                        ours.len(),
                        theirs.len()
                    ));
                }
            }
        }
    }
    eprintln!("published masks reproduced exactly: {matched} of 48");
    // LAPE's layout round-trips the reproduced masks.
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("mask.safetensors");
    valex_stats_io::export_lape_masks(&p, &exported).expect("exports");
    assert_eq!(
        valex_stats_io::import_lape_masks(&p, None).expect("imports"),
        exported
    );
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(matched, 48);
}
