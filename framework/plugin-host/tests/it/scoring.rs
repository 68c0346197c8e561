//! Results: the external scorer against a direct computation and through the registry; the
//! intervention and reporter proxies; forwarded logs.

use serde_json::json;
use valex_core::{ActivationStats, Intervention, ModelInfo, NeuronSet, Reporter, SplitMix64};
use valex_plugin_host::{ExternalIntervention, ExternalReporter, ExternalScorer, PluginHost};

use crate::support::{Capture, example_copy, example_lib};

/// Random statistics from planted per-neuron means (seeded).
fn random_stats(n_layers: usize, n_neurons: usize, labels: &[&str]) -> ActivationStats {
    let names: Vec<String> = labels.iter().map(|s| (*s).to_owned()).collect();
    let mut s = ActivationStats::new("mlp.gate_act", n_layers, n_neurons, &names);
    let mut rng = SplitMix64::derive(7, "plugin-host/scoring");
    for l in &mut s.labels {
        let tokens = 50 + rng.below(50);
        l.tokens = tokens as f64;
        l.items = 5;
        for k in 0..n_layers * n_neurons {
            let (mut sum, mut sq, mut active) = (0.0, 0.0, 0.0);
            let mean = rng.next_f64() * 2.0 - 1.0;
            for _ in 0..tokens {
                let a = mean + rng.next_f64() - 0.5;
                sum += a;
                sq += a * a;
                active += f64::from(u8::from(a > 0.0));
            }
            (l.sum[k], l.sum_sq[k], l.active[k]) = (sum, sq, active);
        }
    }
    s
}

/// The standardised mean difference written out independently of the plugin.
fn direct_smd(s: &ActivationStats, label: usize, labels: &[usize], k: usize) -> f64 {
    let l = &s.labels[label];
    let (mut t, mut sum, mut sq) = (0.0, 0.0, 0.0);
    for &o in labels.iter().filter(|&&o| o != label) {
        t += s.labels[o].tokens;
        sum += s.labels[o].sum[k];
        sq += s.labels[o].sum_sq[k];
    }
    let m1 = l.sum[k] / l.tokens;
    let v1 = (l.sum_sq[k] / l.tokens - m1 * m1).max(0.0);
    let m2 = sum / t;
    let v2 = (sq / t - m2 * m2).max(0.0);
    let sd = ((v1 + v2) / 2.0).sqrt();
    if sd > 0.0 { (m1 - m2) / sd } else { 0.0 }
}

#[test]
fn external_max_smd_equals_a_direct_computation() {
    let s = random_stats(3, 40, &["a", "b", "c"]);
    let labels: Vec<String> = ["c", "a"].iter().map(|x| (*x).to_owned()).collect();
    let idx = [2usize, 0];
    let mut host = PluginHost::new();
    let lib = host.load(&example_lib()).unwrap();
    let top_k = 7;
    let ext = ExternalScorer::create(&lib, "scorer/max-smd", &json!({"top_k": top_k})).unwrap();
    let out = ext.score_with_scores(&s, &labels).unwrap();
    let n = 3 * 40;
    let mut max_diff = 0.0f64;
    for (li, (label, scores)) in out.scores.iter().enumerate() {
        assert_eq!(label, &labels[li]);
        let direct: Vec<f64> = (0..n).map(|k| direct_smd(&s, idx[li], &idx, k)).collect();
        for k in 0..n {
            max_diff = max_diff.max((scores[k] - direct[k]).abs());
        }
        let mut order: Vec<usize> = (0..n).filter(|&k| direct[k] > 0.0).collect();
        order.sort_by(|&x, &y| direct[y].total_cmp(&direct[x]).then(x.cmp(&y)));
        let mut want = NeuronSet::empty(3);
        for &k in order.iter().take(top_k) {
            want.insert(k / 40, (k % 40) as u32);
        }
        assert_eq!(out.output.sets[li], (label.clone(), want));
    }
    assert!(max_diff < 1e-12, "largest difference {max_diff}");

    // Through the registry, as a manifest uses it: the same sets.
    let mut b = valex_core::RegistryBuilder::new();
    host.register(&mut b).unwrap();
    let scorer = b
        .build()
        .scorer(
            "scorer/max-smd",
            &json!({"top_k": top_k}),
            &Default::default(),
        )
        .unwrap();
    assert_eq!(scorer.score(&s, &labels).unwrap().sets, out.output.sets);
    assert_eq!(out.output.details["labels"][0]["selected"], json!(top_k));
}

#[test]
fn intervention_and_reporter_proxies_carry_data_both_ways() {
    let lib = PluginHost::new().load(&example_lib()).unwrap();
    let scale =
        ExternalIntervention::create(&lib, "intervention/example-scale", &json!({"factor": 0.5}))
            .unwrap();
    let info = ModelInfo {
        architecture: "llama".into(),
        n_layers: 2,
        n_neurons: 4,
        hidden_size: 8,
        vocab_size: 10,
        content_sha256: String::new(),
    };
    let set = NeuronSet::from_layers(vec![vec![3, 1], vec![]]);
    let cx = valex_core::EditContext::default();
    let edit = scale.edit(&set, "mlp.gate_act", &info, &cx).unwrap();
    assert_eq!(
        edit.factors().unwrap(),
        vec![vec![(1, 0.5), (3, 0.5)], vec![]]
    );
    let bad = NeuronSet::from_layers(vec![vec![4], vec![]]);
    let e = scale.edit(&bad, "mlp.gate_act", &info, &cx).unwrap_err();
    assert!(e.to_string().contains("layer 0: neuron 4 >= 4"), "{e}");

    let rep = ExternalReporter::create(&lib, "reporter/example-summary", &json!({})).unwrap();
    let files = rep
        .report(&json!({"experiment": {"name": "x"}, "selection": {"sets": [{"label": "a", "n_neurons": 3}]}}))
        .unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "summary.txt");
    assert_eq!(
        String::from_utf8(files[0].bytes.clone()).unwrap(),
        "experiment: x\na: 3 neurons\n"
    );
}

#[test]
fn plugin_logs_arrive_through_tracing_with_the_plugin_name() {
    // A fresh copy: its own dlopen, so `init` sees this test's subscriber.
    let dir = tempfile::tempdir().unwrap();
    let copy = example_copy(dir.path(), "liblogs.so");
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        let lib = PluginHost::new().load(&copy).unwrap();
        let ext = ExternalScorer::create(&lib, "scorer/max-smd", &json!({"top_k": 2})).unwrap();
        let s = random_stats(1, 5, &["a", "b"]);
        valex_core::Scorer::score(&ext, &s, &["a".to_owned(), "b".to_owned()]).unwrap();
    });
    let events = capture.0.lock().unwrap().clone();
    let forwarded: Vec<_> = events
        .iter()
        .filter(|e| e.field("plugin") == Some("valex-plugin-example"))
        .filter(|e| {
            e.field("message")
                .is_some_and(|m| m.starts_with("max-smd scoring"))
        })
        .collect();
    assert_eq!(forwarded.len(), 1, "events: {events:#?}");
    let e = forwarded[0];
    assert_eq!(e.level, "INFO");
    assert_eq!(e.field("message"), Some("max-smd scoring labels=2 top_k=2"));
    assert_eq!(e.field("plugin_target"), Some("valex_plugin_example::smd"));
}
