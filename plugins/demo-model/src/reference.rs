//! A plain-f32 reference forward of a Llama model (HF semantics), for tests only.
//!
//! It reads the serialized `config.json` and `model.safetensors`, so the tests check the
//! bytes that ship, not in-memory builder state. Deliberately simple loops: one sequence at
//! a time, no batching, no KV cache.

use std::collections::HashMap;

use crate::ModelFiles;

/// A loaded model.
pub(crate) struct RefModel {
    hidden: usize,
    inter: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    theta: f32,
    eps: f32,
    vocab: usize,
    w: HashMap<String, Vec<f32>>,
}

/// What one forward returns.
pub(crate) struct Forward {
    /// `act(gate)` per layer, position, neuron.
    pub gate_act: Vec<Vec<Vec<f32>>>,
    /// Final-norm hidden state per position.
    pub final_hidden: Vec<Vec<f32>>,
}

/// `y[r] = Σ_c W[r, c] x[c]` for row-major `W` of shape `[rows, x.len()]`.
fn matvec(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.chunks_exact(x.len())
        .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
        .collect()
}

fn rms_norm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let var = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (var + eps).sqrt();
    x.iter().zip(weight).map(|(v, w)| v * inv * w).collect()
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

impl RefModel {
    /// Parses config and weights.
    pub(crate) fn load(files: &ModelFiles) -> Self {
        let cfg: serde_json::Value =
            serde_json::from_slice(&files.config_json).expect("config parses");
        let get = |k: &str| cfg[k].as_u64().unwrap_or_else(|| panic!("config key {k}")) as usize;
        let st =
            safetensors::SafeTensors::deserialize(&files.safetensors).expect("safetensors parse");
        let mut w = HashMap::new();
        for (name, view) in st.tensors() {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
            let data: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            w.insert(name, data);
        }
        RefModel {
            hidden: get("hidden_size"),
            inter: get("intermediate_size"),
            layers: get("num_hidden_layers"),
            heads: get("num_attention_heads"),
            kv_heads: get("num_key_value_heads"),
            head_dim: get("head_dim"),
            theta: cfg["rope_theta"].as_f64().expect("rope_theta") as f32,
            eps: cfg["rms_norm_eps"].as_f64().expect("rms_norm_eps") as f32,
            vocab: get("vocab_size"),
            w,
        }
    }

    fn t(&self, name: &str) -> &[f32] {
        self.w
            .get(name)
            .unwrap_or_else(|| panic!("missing tensor {name}"))
    }

    /// HF rotate-half RoPE applied in place to one head vector at `pos`.
    fn rope(&self, x: &mut [f32], pos: usize) {
        let half = self.head_dim / 2;
        for j in 0..half {
            let inv_freq = 1.0 / self.theta.powf(2.0 * j as f32 / self.head_dim as f32);
            let angle = pos as f32 * inv_freq;
            let (s, c) = angle.sin_cos();
            let (a, b) = (x[j], x[j + half]);
            x[j] = a * c - b * s;
            x[j + half] = b * c + a * s;
        }
    }

    /// Runs `ids`; `ablate[layer]` lists neurons whose `act(gate)` is set to 0 (after it is
    /// recorded into `gate_act`).
    pub(crate) fn forward(&self, ids: &[u32], ablate: &[Vec<usize>]) -> Forward {
        let (h, hd) = (self.hidden, self.head_dim);
        let emb = self.t("model.embed_tokens.weight");
        let mut xs: Vec<Vec<f32>> = ids
            .iter()
            .map(|&i| emb[i as usize * h..(i as usize + 1) * h].to_vec())
            .collect();
        let mut gate_act = Vec::with_capacity(self.layers);
        for l in 0..self.layers {
            let p = format!("model.layers.{l}");
            let (wq, wk, wv, wo) = (
                self.t(&format!("{p}.self_attn.q_proj.weight")),
                self.t(&format!("{p}.self_attn.k_proj.weight")),
                self.t(&format!("{p}.self_attn.v_proj.weight")),
                self.t(&format!("{p}.self_attn.o_proj.weight")),
            );
            let ln1 = self.t(&format!("{p}.input_layernorm.weight"));
            let mut qs = Vec::new();
            let mut ks = Vec::new();
            let mut vs = Vec::new();
            for (pos, x) in xs.iter().enumerate() {
                let n = rms_norm(x, ln1, self.eps);
                let mut q = matvec(wq, &n);
                let mut k = matvec(wk, &n);
                for head in q.chunks_exact_mut(hd) {
                    self.rope(head, pos);
                }
                for head in k.chunks_exact_mut(hd) {
                    self.rope(head, pos);
                }
                qs.push(q);
                ks.push(k);
                vs.push(matvec(wv, &n));
            }
            let group = self.heads / self.kv_heads;
            let scale = 1.0 / (hd as f32).sqrt();
            for t in 0..xs.len() {
                let mut concat = vec![0.0f32; self.heads * hd];
                for head in 0..self.heads {
                    let kvh = head / group;
                    let q = &qs[t][head * hd..(head + 1) * hd];
                    let scores: Vec<f32> = (0..=t)
                        .map(|s| {
                            q.iter()
                                .zip(&ks[s][kvh * hd..(kvh + 1) * hd])
                                .map(|(a, b)| a * b)
                                .sum::<f32>()
                                * scale
                        })
                        .collect();
                    let m = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
                    let z: f32 = e.iter().sum();
                    for (s, es) in e.iter().enumerate() {
                        for d in 0..hd {
                            concat[head * hd + d] += es / z * vs[s][kvh * hd + d];
                        }
                    }
                }
                let out = matvec(wo, &concat);
                for (x, o) in xs[t].iter_mut().zip(out) {
                    *x += o;
                }
            }
            let ln2 = self.t(&format!("{p}.post_attention_layernorm.weight"));
            let (wg, wu, wd) = (
                self.t(&format!("{p}.mlp.gate_proj.weight")),
                self.t(&format!("{p}.mlp.up_proj.weight")),
                self.t(&format!("{p}.mlp.down_proj.weight")),
            );
            let mut acts = Vec::with_capacity(xs.len());
            for x in xs.iter_mut() {
                let n = rms_norm(x, ln2, self.eps);
                let act: Vec<f32> = matvec(wg, &n).into_iter().map(silu).collect();
                let up = matvec(wu, &n);
                let mut prod: Vec<f32> = act.iter().zip(&up).map(|(a, u)| a * u).collect();
                for &j in ablate.get(l).map(Vec::as_slice).unwrap_or(&[]) {
                    prod[j] = 0.0;
                }
                let out = matvec(wd, &prod);
                for (xi, o) in x.iter_mut().zip(out) {
                    *xi += o;
                }
                acts.push(act);
            }
            assert_eq!(acts.first().map_or(self.inter, Vec::len), self.inter);
            gate_act.push(acts);
        }
        let normw = self.t("model.norm.weight");
        let final_hidden = xs.iter().map(|x| rms_norm(x, normw, self.eps)).collect();
        Forward {
            gate_act,
            final_hidden,
        }
    }

    /// Log-softmax over the vocabulary for one final hidden state.
    pub(crate) fn log_probs(&self, hidden: &[f32]) -> Vec<f32> {
        let logits = matvec(self.t("lm_head.weight"), hidden);
        assert_eq!(logits.len(), self.vocab);
        let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lz = logits.iter().map(|l| (l - m).exp()).sum::<f32>().ln() + m;
        logits.into_iter().map(|l| l - lz).collect()
    }

    /// `Σ log p(continuation | context)` with `ablate` applied at all positions.
    pub(crate) fn score(
        &self,
        context: &[u32],
        continuation: &[u32],
        ablate: &[Vec<usize>],
    ) -> f32 {
        let ids: Vec<u32> = context.iter().chain(continuation).copied().collect();
        let f = self.forward(&ids, ablate);
        continuation
            .iter()
            .enumerate()
            .map(|(i, &tok)| self.log_probs(&f.final_hidden[context.len() + i - 1])[tok as usize])
            .sum()
    }
}
