//! score(): log-probabilities of continuations.

use valex_core::{ModelBackend, ScoreRequest};

use crate::fixture::Tiny;
use crate::load;

fn log_softmax_at(logits: &[f32], tok: u32) -> f32 {
    let mx = logits.iter().cloned().fold(f32::MIN, f32::max);
    let z: f64 = logits.iter().map(|l| f64::from(l - mx).exp()).sum();
    (f64::from(logits[tok as usize] - mx) - z.ln()) as f32
}

#[test]
fn score_returns_log_probabilities_of_each_continuation_token() {
    for m in [Tiny::llama(), Tiny::qwen2()] {
        let reqs = vec![
            ScoreRequest {
                context: vec![1, 3, 4],
                continuation: vec![5, 6, 3, 7],
            },
            ScoreRequest {
                context: vec![1],
                continuation: vec![16],
            },
            ScoreRequest {
                context: vec![1, 9, 10, 11, 3, 12, 13, 14],
                continuation: vec![15, 2],
            },
        ];
        let (_d, mut b) = load(&m, 2);
        let got = b.score(&reqs, None).unwrap();
        for (r, g) in reqs.iter().zip(&got) {
            assert_eq!(g.len(), r.continuation.len());
            let full: Vec<u32> = r.context.iter().chain(&r.continuation).copied().collect();
            let dump = b.forward_taps(&[full], "mlp.gate_act", None).unwrap();
            for (k, &tok) in r.continuation.iter().enumerate() {
                let want = log_softmax_at(&dump.logits[0][r.context.len() - 1 + k], tok);
                assert!((g[k] - want).abs() < 1e-5, "{} vs {want}", g[k]);
                assert!(g[k] < 0.0);
            }
        }
        let (_d1, mut one) = load(&m, 1);
        let single = one.score(&reqs, None).unwrap();
        for (a, c) in got.iter().zip(&single) {
            for (x, y) in a.iter().zip(c) {
                assert!(
                    (x - y).abs() < 1e-5,
                    "batch size changes scores: {x} vs {y}"
                );
            }
        }
    }
}

#[test]
fn score_rejects_empty_context_or_continuation() {
    let (_d, mut b) = load(&Tiny::llama(), 8);
    let e = b
        .score(
            &[ScoreRequest {
                context: vec![1],
                continuation: vec![],
            }],
            None,
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "score request 0: empty continuation");
    let e = b
        .score(
            &[ScoreRequest {
                context: vec![],
                continuation: vec![3],
            }],
            None,
        )
        .unwrap_err();
    assert!(e.to_string().starts_with("score request 0: empty context"));
    assert!(b.score(&[], None).unwrap().is_empty());
}
