//! The planted circuit, checked with the reference forward over the demo dataset.
//!
//! Recording mimics the value study's defaults: each activation item is run as
//! `"{story}\n理由：{rationale}"` (en: `"{story}\nReason: {rationale}"`) and only story tokens
//! count (not `<s>`); labels are the 12 values, both languages pooled. Evaluation scores each
//! option as `Σ log p(option | <s> story)`; the aligned option wins when its sum is larger.

use std::sync::OnceLock;

use super::*;
use crate::reference::RefModel;
use crate::rng::SplitMix64;

/// Per-item comparison of the two options under three conditions.
struct EvalRow {
    id: String,
    value: usize,
    /// `log p(aligned) − log p(violating)`, no intervention.
    base: f32,
    /// The same with the item's value's planted neurons zeroed.
    planted_off: f32,
    /// The same with a random set matched per layer (same count) zeroed.
    random_off: f32,
    /// No intervention, with a question between story and option
    /// (`"{story}\n你会怎么做？"` / `"{story}\nWhat should you do?"`).
    questioned: f32,
    /// Share of the two presentation orders in which `evaluator/forced-choice`'s default
    /// protocol (both options listed in the prompt, mean log-probability per option token)
    /// picks the aligned option: no intervention, and with the value's planted neurons zeroed.
    forced_choice: (f64, f64),
}

struct Measurements {
    /// `p[label][layer][neuron]`: share of story tokens with `act > 0`, one label per value
    /// (both languages pooled).
    p: Vec<Vec<Vec<f64>>>,
    /// The same with one label per value and language (`2·v` zh, `2·v + 1` en).
    p_by_language: Vec<Vec<Vec<f64>>>,
    eval: Vec<EvalRow>,
}

/// `ablate[layer]` lists for value `v`'s planted neurons.
fn planted_mask(v: usize) -> Vec<Vec<usize>> {
    let mut m = vec![Vec::new(); N_LAYERS];
    for &(l, n) in &planted_neurons()[v].1 {
        m[l].push(n as usize);
    }
    m
}

/// A random set with the same per-layer counts as value `v`'s planted set, avoiding every
/// planted neuron.
fn random_mask(v: usize, rng: &mut SplitMix64) -> Vec<Vec<usize>> {
    let planted: std::collections::HashSet<(usize, usize)> = planted_neurons()
        .iter()
        .flat_map(|(_, ns)| ns.iter().map(|&(l, n)| (l, n as usize)))
        .collect();
    planted_mask(v)
        .iter()
        .enumerate()
        .map(|(l, ns)| {
            let mut picked = Vec::new();
            while picked.len() < ns.len() {
                let n = rng.below(INTERMEDIATE_SIZE as u64) as usize;
                if !planted.contains(&(l, n)) && !picked.contains(&n) {
                    picked.push(n);
                }
            }
            picked
        })
        .collect()
}

fn measurements() -> &'static Measurements {
    static M: OnceLock<Measurements> = OnceLock::new();
    M.get_or_init(|| {
        let model = RefModel::load(files());
        let items = demo_items();
        let value_of = |name: &str| {
            VALUES
                .iter()
                .position(|(zh, _)| *zh == name)
                .expect("known value")
        };
        let n_labels = 2 * VALUES.len();
        let mut active = vec![vec![vec![0.0f64; INTERMEDIATE_SIZE]; N_LAYERS]; n_labels];
        let mut tokens = vec![0.0f64; n_labels];
        for it in items.iter().filter(|i| i.kind == "activation") {
            let v = 2 * value_of(&it.value) + usize::from(it.language == "en");
            let sep = if it.language == "zh" {
                "\n理由："
            } else {
                "\nReason: "
            };
            let text = format!("{}{sep}{}", it.story, it.rationale.as_deref().unwrap_or(""));
            let ids = encode(&text, true);
            let story_end = encode(&it.story, true).len();
            assert_eq!(
                ids[..story_end],
                encode(&it.story, true)[..],
                "{}: story is a token prefix",
                it.id
            );
            let f = model.forward(&ids, &[]);
            for (l, acts) in f.gate_act.iter().enumerate() {
                for act in &acts[1..story_end] {
                    for (j, a) in act.iter().enumerate() {
                        if *a > 0.0 {
                            active[v][l][j] += 1.0;
                        }
                    }
                }
            }
            tokens[v] += (story_end - 1) as f64;
        }
        let ratio = |lab: &[Vec<f64>], other: Option<&[Vec<f64>]>, n: f64| -> Vec<Vec<f64>> {
            lab.iter()
                .enumerate()
                .map(|(l, layer)| {
                    layer
                        .iter()
                        .enumerate()
                        .map(|(j, c)| (c + other.map_or(0.0, |o| o[l][j])) / n)
                        .collect()
                })
                .collect()
        };
        let p_by_language = (0..n_labels)
            .map(|k| ratio(&active[k], None, tokens[k]))
            .collect();
        let p = (0..VALUES.len())
            .map(|v| {
                ratio(
                    &active[2 * v],
                    Some(&active[2 * v + 1]),
                    tokens[2 * v] + tokens[2 * v + 1],
                )
            })
            .collect();

        let mut rng = SplitMix64::new(20_250_407);
        let mut eval = Vec::new();
        for it in items.iter().filter(|i| i.kind == "evaluation") {
            let v = value_of(&it.value);
            let ctx = encode(&it.story, true);
            let (a, b) = (encode(&it.aligned, false), encode(&it.violating, false));
            let diff =
                |mask: &[Vec<usize>]| model.score(&ctx, &a, mask) - model.score(&ctx, &b, mask);
            let random = random_mask(v, &mut rng);
            let question = if it.language == "zh" {
                "\n你会怎么做？"
            } else {
                "\nWhat should you do?"
            };
            let qctx = encode(&format!("{}{question}", it.story), true);
            let questioned = model.score(&qctx, &a, &[]) - model.score(&qctx, &b, &[]);
            let forced_choice = |mask: &[Vec<usize>]| -> f64 {
                let template = if it.language == "zh" {
                    "情境：{story}\nA. {option_a}\nB. {option_b}\n我的选择："
                } else {
                    "Situation: {story}\nA. {option_a}\nB. {option_b}\nMy choice:"
                };
                let orders = [(&it.aligned, &it.violating), (&it.violating, &it.aligned)];
                orders
                    .iter()
                    .map(|(x, y)| {
                        let prompt = template
                            .replace("{story}", &it.story)
                            .replace("{option_a}", x)
                            .replace("{option_b}", y);
                        let ctx = encode(&prompt, true);
                        let sa = model.score(&ctx, &a, mask) / a.len() as f32;
                        let sb = model.score(&ctx, &b, mask) / b.len() as f32;
                        match sa.total_cmp(&sb) {
                            std::cmp::Ordering::Greater => 1.0,
                            std::cmp::Ordering::Equal => 0.5,
                            std::cmp::Ordering::Less => 0.0,
                        }
                    })
                    .sum::<f64>()
                    / 2.0
            };
            eval.push(EvalRow {
                id: it.id.clone(),
                value: v,
                base: diff(&[]),
                planted_off: diff(&planted_mask(v)),
                random_off: diff(&random),
                questioned,
                forced_choice: (forced_choice(&[]), forced_choice(&planted_mask(v))),
            });
        }
        Measurements {
            p,
            p_by_language,
            eval,
        }
    })
}

fn rate(rows: &[EvalRow], f: impl Fn(&EvalRow) -> f32) -> f64 {
    rows.iter().filter(|r| f(r) > 0.0).count() as f64 / rows.len() as f64
}

fn mean(rows: &[EvalRow], f: impl Fn(&EvalRow) -> f32) -> f64 {
    rows.iter().map(|r| f64::from(f(r))).sum::<f64>() / rows.len() as f64
}

/// Is `(layer, neuron)` planted, and for which value?
fn planted_value(layer: usize, neuron: usize) -> Option<usize> {
    planted_neurons()
        .iter()
        .position(|(_, ns)| ns.contains(&(layer, neuron as u32)))
}

#[test]
fn planted_neurons_fire_on_most_tokens_of_their_value_and_almost_never_elsewhere() {
    let m = measurements();
    for (v, (name, ns)) in planted_neurons().iter().enumerate() {
        for &(l, n) in ns {
            let own = m.p[v][l][n as usize];
            let other = (0..VALUES.len())
                .filter(|&u| u != v)
                .map(|u| m.p[u][l][n as usize])
                .fold(0.0, f64::max);
            assert!(
                own >= 0.7,
                "{name} ({l}, {n}): fires on only {own:.3} of its stories' tokens"
            );
            assert!(
                other <= 0.01,
                "{name} ({l}, {n}): fires on {other:.3} of another value's tokens"
            );
        }
    }
}

#[test]
fn random_neurons_fire_on_a_minority_of_tokens_evenly_across_values() {
    let m = measurements();
    let mut ratios = Vec::new();
    for l in 0..N_LAYERS {
        for n in (0..INTERMEDIATE_SIZE).filter(|&n| planted_value(l, n).is_none()) {
            let ps: Vec<f64> = (0..VALUES.len()).map(|v| m.p[v][l][n]).collect();
            let mean = ps.iter().sum::<f64>() / ps.len() as f64;
            assert!(
                mean < 0.5,
                "random neuron ({l}, {n}) fires on {mean:.2} of tokens"
            );
            if mean > 0.02 {
                ratios.push(ps.iter().copied().fold(0.0, f64::max) / mean);
            }
        }
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    assert!(
        median < 2.0,
        "random neurons are value-specific: median max/mean ratio {median:.2}"
    );
}

/// LAPE as in METHOD.md §5.2 (τ = k-th smallest of all P, k = round(0.95·N); lowest entropy
/// among neurons with some P > τ; assign to labels with P > τ).
fn lape(p: &[Vec<Vec<f64>>], top_rate: f64) -> Vec<(usize, usize, Vec<usize>)> {
    let k_labels = p.len();
    let mut all: Vec<f64> = p.iter().flatten().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    let tau = all[(all.len() as f64 * 0.95).round() as usize - 1];
    let mut scored = Vec::new();
    let neurons = (0..N_LAYERS).flat_map(|l| (0..INTERMEDIATE_SIZE).map(move |n| (l, n)));
    for (l, n) in neurons {
        let ps: Vec<f64> = p.iter().map(|label| label[l][n]).collect();
        let sum: f64 = ps.iter().sum();
        let h = if ps.iter().any(|&x| x > tau) {
            -ps.iter()
                .map(|&x| x / sum)
                .filter(|&q| q > 0.0)
                .map(|q| q * q.ln())
                .sum::<f64>()
        } else {
            f64::INFINITY
        };
        scored.push((h, l, n, ps));
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let take = (N_LAYERS as f64 * INTERMEDIATE_SIZE as f64 * top_rate).round() as usize;
    scored
        .into_iter()
        .take(take)
        .map(|(_, l, n, ps)| (l, n, (0..k_labels).filter(|&k| ps[k] > tau).collect()))
        .collect()
}

#[test]
fn lape_with_the_planted_top_rate_selects_exactly_the_planted_neurons() {
    let selected = lape(&measurements().p, PLANTED_TOP_RATE);
    assert_eq!(selected.len(), N_PLANTED);
    for (l, n, labels) in selected {
        let v = planted_value(l, n)
            .unwrap_or_else(|| panic!("LAPE selected unplanted neuron ({l}, {n})"));
        assert_eq!(
            labels,
            vec![v],
            "({l}, {n}) assigned to {labels:?}, planted for {v}"
        );
    }
}

#[test]
fn lape_over_value_language_labels_assigns_planted_neurons_to_both_languages() {
    let selected = lape(&measurements().p_by_language, PLANTED_TOP_RATE);
    assert_eq!(selected.len(), N_PLANTED);
    for (l, n, labels) in selected {
        let v = planted_value(l, n)
            .unwrap_or_else(|| panic!("LAPE selected unplanted neuron ({l}, {n})"));
        assert_eq!(labels, vec![2 * v, 2 * v + 1], "({l}, {n}) planted for {v}");
    }
}

#[test]
fn aligned_option_outscores_violating_on_almost_every_evaluation_item() {
    let m = measurements();
    let r = rate(&m.eval, |r| r.base);
    let losers: Vec<&str> = m
        .eval
        .iter()
        .filter(|r| r.base <= 0.0)
        .map(|r| r.id.as_str())
        .collect();
    assert!(
        r >= 0.95,
        "aligned-choice rate {r:.3}; losing items {losers:?}"
    );
    let q = rate(&m.eval, |r| r.questioned);
    assert!(
        q >= 0.95,
        "aligned-choice rate with a question before the options {q:.3}"
    );
}

#[test]
fn zeroing_the_values_planted_neurons_brings_choices_to_chance() {
    let m = measurements();
    let r = rate(&m.eval, |r| r.planted_off);
    assert!(
        (0.25..=0.75).contains(&r),
        "aligned-choice rate with planted neurons zeroed {r:.3}"
    );
    let (base, off) = (mean(&m.eval, |r| r.base), mean(&m.eval, |r| r.planted_off));
    assert!(
        off.abs() < 0.2 * base,
        "mean advantage {base:.2} → {off:.2} nats"
    );
}

#[test]
fn forced_choice_protocol_prefers_aligned_until_planted_neurons_are_zeroed() {
    let m = measurements();
    let n = m.eval.len() as f64;
    let base = m.eval.iter().map(|r| r.forced_choice.0).sum::<f64>() / n;
    let off = m.eval.iter().map(|r| r.forced_choice.1).sum::<f64>() / n;
    assert!(base >= 0.95, "forced-choice aligned_rate {base:.3}");
    assert!(
        (0.25..=0.75).contains(&off),
        "forced-choice aligned_rate with planted neurons zeroed {off:.3}"
    );
}

#[test]
fn zeroing_a_matched_random_set_keeps_the_advantage() {
    let m = measurements();
    let r = rate(&m.eval, |r| r.random_off);
    assert!(
        r >= 0.9,
        "aligned-choice rate with random neurons zeroed {r:.3}"
    );
    let (base, off) = (mean(&m.eval, |r| r.base), mean(&m.eval, |r| r.random_off));
    assert!(off > 0.8 * base, "mean advantage {base:.2} → {off:.2} nats");
}

#[test]
fn report_circuit_numbers() {
    // Not an assertion test: prints the measured numbers (run with --nocapture).
    let m = measurements();
    let mut all: Vec<f64> = m.p.iter().flatten().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    let tau = all[(all.len() as f64 * 0.95).round() as usize - 1];
    eprintln!("LAPE tau (95th pct of all P) = {tau:.3}");
    let random: Vec<f64> = (0..N_LAYERS)
        .flat_map(|l| {
            (0..INTERMEDIATE_SIZE)
                .filter(move |&n| planted_value(l, n).is_none())
                .map(move |n| (l, n))
        })
        .flat_map(|(l, n)| m.p.iter().map(move |lab| lab[l][n]))
        .collect();
    let rmean = random.iter().sum::<f64>() / random.len() as f64;
    eprintln!(
        "random neurons: mean P {rmean:.3}, max P {:.3}",
        random.iter().copied().fold(0.0, f64::max)
    );
    eprintln!(
        "value      P_own(min/mean)  P_other(max)  aligned: base  planted-off  random-off  (mean adv nats)"
    );
    for (v, (name, ns)) in planted_neurons().iter().enumerate() {
        let own: Vec<f64> = ns.iter().map(|&(l, n)| m.p[v][l][n as usize]).collect();
        let other = ns
            .iter()
            .flat_map(|&(l, n)| {
                (0..VALUES.len())
                    .filter(move |&u| u != v)
                    .map(move |u| m.p[u][l][n as usize])
            })
            .fold(0.0, f64::max);
        let rows: Vec<&EvalRow> = m.eval.iter().filter(|r| r.value == v).collect();
        let rr = |f: &dyn Fn(&EvalRow) -> f32| {
            rows.iter().filter(|r| f(r) > 0.0).count() as f64 / rows.len() as f64
        };
        let mm = |f: &dyn Fn(&EvalRow) -> f32| {
            rows.iter().map(|r| f64::from(f(r))).sum::<f64>() / rows.len() as f64
        };
        eprintln!(
            "{name}  {:.3}/{:.3}  {:.3}  {:.2} {:.2} {:.2}  ({:.2} {:.2} {:.2})",
            own.iter().copied().fold(1.0, f64::min),
            own.iter().sum::<f64>() / own.len() as f64,
            other,
            rr(&|r| r.base),
            rr(&|r| r.planted_off),
            rr(&|r| r.random_off),
            mm(&|r| r.base),
            mm(&|r| r.planted_off),
            mm(&|r| r.random_off),
        );
    }
    let n = m.eval.len() as f64;
    eprintln!(
        "forced-choice protocol (both orders, mean log-prob): aligned_rate {:.3} base, {:.3} planted zeroed",
        m.eval.iter().map(|r| r.forced_choice.0).sum::<f64>() / n,
        m.eval.iter().map(|r| r.forced_choice.1).sum::<f64>() / n
    );
    let min_margin = m.eval.iter().map(|r| r.base).fold(f32::INFINITY, f32::min);
    eprintln!(
        "smallest base advantage {min_margin:.2} nats; with a question prompt: rate {:.3}",
        rate(&m.eval, |r| r.questioned)
    );
    eprintln!(
        "ALL: aligned-choice rate base {:.3}, planted zeroed {:.3}, random zeroed {:.3}; mean advantage {:.2} / {:.2} / {:.2} nats",
        rate(&m.eval, |r| r.base),
        rate(&m.eval, |r| r.planted_off),
        rate(&m.eval, |r| r.random_off),
        mean(&m.eval, |r| r.base),
        mean(&m.eval, |r| r.planted_off),
        mean(&m.eval, |r| r.random_off)
    );
    assert_eq!(m.eval.len(), 96);
}

/// Writes the model and this reference's numbers for `tools/hf_check.py`, which repeats the
/// measurements with HF transformers' `LlamaForCausalLM` and compares.
#[test]
#[ignore = "writes files; run with VALEX_DEMO_DUMP_DIR=<dir> -- --ignored"]
fn dump_reference_for_hf_check() {
    let Ok(dir) = std::env::var("VALEX_DEMO_DUMP_DIR") else {
        eprintln!("skipping: VALEX_DEMO_DUMP_DIR not set");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    write_dir(&dir.join("model")).expect("write model");
    let m = measurements();
    let items = demo_items();
    let value_of = |name: &str| {
        VALUES
            .iter()
            .position(|(zh, _)| *zh == name)
            .expect("known value")
    };
    let eval: Vec<serde_json::Value> = m
        .eval
        .iter()
        .map(|r| {
            let it = items.iter().find(|i| i.id == r.id).expect("item");
            serde_json::json!({
                "id": r.id, "value": r.value,
                "ctx": encode(&it.story, true), "aligned": encode(&it.aligned, false),
                "violating": encode(&it.violating, false),
                "texts": [it.story, it.aligned, it.violating],
                "base": r.base, "planted_off": r.planted_off,
            })
        })
        .collect();
    let activation: Vec<serde_json::Value> = items
        .iter()
        .filter(|i| i.kind == "activation")
        .map(|it| {
            let sep = if it.language == "zh" {
                "\n理由："
            } else {
                "\nReason: "
            };
            let text = format!("{}{sep}{}", it.story, it.rationale.as_deref().unwrap_or(""));
            serde_json::json!({
                "id": it.id, "value": value_of(&it.value), "text": text, "ids": encode(&text, true),
                "story_end": encode(&it.story, true).len(),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "planted": planted_neurons().iter().map(|(_, ns)| ns.clone()).collect::<Vec<_>>(),
        "p": m.p, "eval": eval, "activation": activation,
    });
    std::fs::write(
        dir.join("reference.json"),
        serde_json::to_vec(&doc).expect("json"),
    )
    .expect("write reference");
}
