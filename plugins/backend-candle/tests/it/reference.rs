//! A naive f64 forward of a [`Tiny`] model, written from the HF Llama/Qwen2 definitions
//! with plain loops, to check the candle implementation against.

use std::collections::HashMap;

use crate::fixture::Tiny;

pub struct Reference {
    /// `[position][vocab]`.
    pub logits: Vec<Vec<f64>>,
    /// `[layer][position][neuron]`, SiLU(gate) after the edit.
    pub gate_act: Vec<Vec<Vec<f64>>>,
}

fn matvec(w: &[f32], out: usize, x: &[f64]) -> Vec<f64> {
    let n = x.len();
    (0..out)
        .map(|o| (0..n).map(|k| f64::from(w[o * n + k]) * x[k]).sum())
        .collect()
}

fn rms(x: &[f64], g: &[f32], eps: f64) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let r = 1.0 / (ms + eps).sqrt();
    x.iter()
        .zip(g)
        .map(|(v, g)| v * r * f64::from(*g))
        .collect()
}

/// Forward of one unpadded row; `edit` is `(layer, neuron, factor)`.
pub fn forward(m: &Tiny, ids: &[u32], edit: &[(usize, usize, f64)]) -> Reference {
    let w: HashMap<String, Vec<f32>> = m.tensors().into_iter().map(|(n, _, v)| (n, v)).collect();
    let (h, inter, d, nh, nkv) = (m.hidden, m.inter, m.head_dim(), m.heads, m.kv_heads);
    let eps = 1e-6;
    let get = |n: &str| w.get(n).unwrap_or_else(|| panic!("{n}"));
    let bias = |x: Vec<f64>, n: &str| -> Vec<f64> {
        match w.get(n) {
            Some(b) => x.iter().zip(b).map(|(a, b)| a + f64::from(*b)).collect(),
            None => x,
        }
    };
    let emb = get("model.embed_tokens.weight");
    let mut xs: Vec<Vec<f64>> = ids
        .iter()
        .map(|&id| {
            emb[id as usize * h..(id as usize + 1) * h]
                .iter()
                .map(|v| f64::from(*v))
                .collect()
        })
        .collect();
    let rope = |v: &mut [f64], pos: usize| {
        for j in 0..d / 2 {
            let f = 10000_f64.powf(-2.0 * j as f64 / d as f64);
            let (c, s) = ((pos as f64 * f).cos(), (pos as f64 * f).sin());
            let (a, b) = (v[j], v[j + d / 2]);
            v[j] = a * c - b * s;
            v[j + d / 2] = b * c + a * s;
        }
    };
    let mut gate_act = Vec::new();
    for l in 0..m.layers {
        let p = format!("model.layers.{l}");
        let hn: Vec<Vec<f64>> = xs
            .iter()
            .map(|x| rms(x, get(&format!("{p}.input_layernorm.weight")), eps))
            .collect();
        let proj = |name: &str, out: usize| -> Vec<Vec<f64>> {
            hn.iter()
                .map(|x| {
                    bias(
                        matvec(get(&format!("{p}.self_attn.{name}.weight")), out, x),
                        &format!("{p}.self_attn.{name}.bias"),
                    )
                })
                .collect()
        };
        let mut q = proj("q_proj", nh * d);
        let mut k = proj("k_proj", nkv * d);
        let v = proj("v_proj", nkv * d);
        for t in 0..ids.len() {
            for hh in 0..nh {
                rope(&mut q[t][hh * d..(hh + 1) * d], t);
            }
            for hh in 0..nkv {
                rope(&mut k[t][hh * d..(hh + 1) * d], t);
            }
        }
        for t in 0..ids.len() {
            let mut cat = vec![0.0; nh * d];
            for hh in 0..nh {
                let g = hh / (nh / nkv);
                let qv = &q[t][hh * d..(hh + 1) * d];
                let scores: Vec<f64> = (0..=t)
                    .map(|s| {
                        qv.iter()
                            .zip(&k[s][g * d..(g + 1) * d])
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                            / (d as f64).sqrt()
                    })
                    .collect();
                let mx = scores.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = scores.iter().map(|s| (s - mx).exp()).sum();
                for (s, sc) in scores.iter().enumerate() {
                    let pr = (sc - mx).exp() / z;
                    for j in 0..d {
                        cat[hh * d + j] += pr * v[s][g * d + j];
                    }
                }
            }
            let o = matvec(get(&format!("{p}.self_attn.o_proj.weight")), h, &cat);
            for j in 0..h {
                xs[t][j] += o[j];
            }
        }
        let mut acts = Vec::new();
        for x in xs.iter_mut() {
            let hn = rms(x, get(&format!("{p}.post_attention_layernorm.weight")), eps);
            let gate = matvec(get(&format!("{p}.mlp.gate_proj.weight")), inter, &hn);
            let up = matvec(get(&format!("{p}.mlp.up_proj.weight")), inter, &hn);
            let mut act: Vec<f64> = gate.iter().map(|g| g / (1.0 + (-g).exp())).collect();
            for &(el, j, f) in edit {
                if el == l {
                    act[j] *= f;
                }
            }
            let prod: Vec<f64> = act.iter().zip(&up).map(|(a, u)| a * u).collect();
            let down = matvec(get(&format!("{p}.mlp.down_proj.weight")), h, &prod);
            for j in 0..h {
                x[j] += down[j];
            }
            acts.push(act);
        }
        gate_act.push(acts);
    }
    let head = if m.tie {
        "model.embed_tokens.weight"
    } else {
        "lm_head.weight"
    };
    let logits = xs
        .iter()
        .map(|x| matvec(get(head), m.vocab, &rms(x, get("model.norm.weight"), eps)))
        .collect();
    Reference { logits, gate_act }
}
