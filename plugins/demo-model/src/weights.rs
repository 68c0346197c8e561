//! Construction of the demo model's weights: the planted value circuit plus seeded noise.
//!
//! Residual layout (`HIDDEN_SIZE` = 64):
//! - dim 0: a constant bias feature (every token embedding has it);
//! - dims 1..=12: concept features `e_v`, set only in the embeddings of value v's keywords;
//! - dims 13..=24: context features `c_v`, written by layer 0's attention;
//! - dims 25..=36: boost features `b_v`, written by value v's planted neurons;
//! - dims 37..=63: token-identity noise (random, the only dims random weights read or write).
//!
//! Every token embedding has the same norm (RMS exactly 1) so layer 0's RMSNorm is the
//! identity and the designed magnitudes hold there.
//!
//! The circuit:
//! 1. **Keyword attention** (layer 0, head 0). The query reads the bias dim and the key reads
//!    all concept dims, both into head dim 7, whose RoPE frequency is the lowest (rotation
//!    < 0.1 rad over 300 positions), so every keyword gets a score [`KEYWORD_SCORE`] above
//!    non-keywords: each position attends almost only to the keywords seen so far. The value
//!    copies `e_1..e_12` and `o_proj` writes them to `c_v`: after the first keyword,
//!    `c_v` ≈ `OC·EK` × (share of the attended keywords that belong to v). Before any keyword,
//!    attention spreads over non-keywords and every `c_v` is 0. Head 1 shares the kv head
//!    with `q = 0` and `o_proj = 0`; heads 2 and 3 are zero in layer 0.
//! 2. **Planted neurons** (layers 1–3, 2 per value per layer = 72): gate row
//!    `ALPHA·(c_v − Σ_{u≠v} c_u) − THETA·bias`, so `gate > 0` iff v's share of attended
//!    keywords exceeds `THETA·A0 / (ALPHA·OC·EK)` = ½ (RMSNorm scales both terms alike).
//!    Up row reads the bias (positive); down column writes `b_v`.
//! 3. **LM head**: every keyword token of value v (zh and en) has `GAMMA` on `b_v`, so when
//!    the context is about v, v's keywords gain logits and an option containing them gains
//!    log-likelihood. Zeroing v's planted neurons sets `b_v` back to 0.
//!
//! Random (non-planted) neurons read and write only the noise dims, with a negative bias
//! through dim 0 drawn per neuron, so each fires on a fixed random subset of tokens (about
//! 4–25 %) regardless of value. Attention in layers 1–3 is small and noise-only.

use std::borrow::Cow;
use std::collections::BTreeMap;

use safetensors::{Dtype, View};

use crate::arch::{
    HEAD_DIM, HIDDEN_SIZE, INTERMEDIATE_SIZE, N_HEADS, N_KV_HEADS, N_LAYERS, PLANTED_LAYERS,
    PLANTED_PER_VALUE_PER_LAYER,
};
use crate::rng::SplitMix64;
use crate::vocab::{VALUES, keyword_values};

/// Base seed of every random stream.
const SEED: u64 = 0x5641_4C45_585F_3031; // "VALEX_01"

/// Bias feature value in every embedding.
const A0: f64 = 2.0;
/// Concept feature value in a keyword's embedding.
const EK: f64 = 4.0;
/// Attention score advantage of a keyword key (after the 1/sqrt(head_dim) scaling).
const KEYWORD_SCORE: f64 = 10.0;
/// `o_proj` gain from head 0's value dims to the context dims.
const OC: f64 = 0.5;
/// Planted gate gain on context dims.
const ALPHA: f64 = 4.0;
/// Planted gate threshold through the bias dim.
const THETA: f64 = 2.0;
/// Planted up-row weight on the bias dim.
const UA: f64 = 0.5;
/// Planted down-column weight on the boost dim.
const DB: f64 = 0.14;
/// LM-head weight of a keyword token on its value's boost dim.
const GAMMA: f64 = 4.0;
/// Std of random gate rows (noise dims).
const SIGMA_GATE: f64 = 0.2;
/// Range of the random neurons' bias thresholds.
const BETA_RANGE: (f64, f64) = (1.2, 2.6);
/// Std of random up rows.
const SIGMA_UP: f64 = 0.2;
/// Std of random down columns.
const SIGMA_DOWN: f64 = 0.01;
/// Std of planted rows' tiny noise (keeps the copies distinct).
const SIGMA_PLANTED_NOISE: f64 = 0.01;
/// Std of attention weights in layers 1..=3.
const SIGMA_ATTN: f64 = 0.1;
/// Std of `o_proj` in layers 1..=3.
const SIGMA_ATTN_OUT: f64 = 0.02;
/// Std of the LM head's random rows.
const SIGMA_LM: f64 = 0.04;

/// The bias dim.
pub(crate) const BIAS_DIM: usize = 0;
/// First noise dim.
pub(crate) const NOISE_START: usize = 37;
/// Head dim carrying the keyword query/key (lowest RoPE frequency in HF's rotate-half layout).
const KEY_DIM: usize = HEAD_DIM / 2 - 1;

/// Concept dim of value `v`.
pub(crate) fn concept_dim(v: usize) -> usize {
    1 + v
}
/// Context dim of value `v`.
pub(crate) fn context_dim(v: usize) -> usize {
    13 + v
}
/// Boost dim of value `v`.
pub(crate) fn boost_dim(v: usize) -> usize {
    25 + v
}

/// One planted neuron.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planted {
    /// Index into [`VALUES`].
    pub value: usize,
    /// Layer.
    pub layer: usize,
    /// Neuron index within the layer.
    pub neuron: usize,
}

/// Where the planted neurons sit: in each planted layer a seeded permutation of the neurons
/// hands value v the positions `2v` and `2v+1` of the permutation.
pub(crate) fn planted_layout() -> Vec<Planted> {
    let mut out = Vec::new();
    for &layer in &PLANTED_LAYERS {
        let perm = stream(0x100 + layer as u64).permutation(INTERMEDIATE_SIZE);
        for value in 0..VALUES.len() {
            for k in 0..PLANTED_PER_VALUE_PER_LAYER {
                out.push(Planted {
                    value,
                    layer,
                    neuron: perm[value * PLANTED_PER_VALUE_PER_LAYER + k],
                });
            }
        }
    }
    out
}

/// A fresh random stream for one purpose.
fn stream(tag: u64) -> SplitMix64 {
    SplitMix64::new(SEED ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A row-major f64 matrix, cast to f32 when stored.
struct Mat {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Mat {
    fn zeros(rows: usize, cols: usize) -> Self {
        Mat {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }
    fn set(&mut self, r: usize, c: usize, v: f64) {
        self.data[r * self.cols + c] = v;
    }
    fn add(&mut self, r: usize, c: usize, v: f64) {
        self.data[r * self.cols + c] += v;
    }
    /// Fills `rows × cols` with N(0, std²) noise, row by row.
    fn noise(
        &mut self,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        std: f64,
        rng: &mut SplitMix64,
    ) {
        for r in rows {
            for c in cols.clone() {
                self.add(r, c, std * rng.normal());
            }
        }
    }
}

/// An f32 tensor ready for safetensors.
pub(crate) struct F32Tensor {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl F32Tensor {
    fn from_mat(m: &Mat) -> Self {
        Self::from_vec(vec![m.rows, m.cols], &m.data)
    }
    fn from_vec(shape: Vec<usize>, data: &[f64]) -> Self {
        // Little-endian regardless of the host, as safetensors requires.
        let bytes = data
            .iter()
            .flat_map(|&x| (x as f32).to_le_bytes())
            .collect();
        F32Tensor { shape, bytes }
    }
}

impl View for &F32Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Every tensor of the model by HF name (sorted).
pub(crate) fn build_tensors(vocab: &[String]) -> BTreeMap<String, F32Tensor> {
    let mut t = BTreeMap::new();
    let kw = keyword_values(vocab);
    let v_size = vocab.len();
    let noise = NOISE_START..HIDDEN_SIZE;

    // Embeddings: bias, concept (keywords only), then noise scaled so that RMS = 1 exactly.
    let mut emb = Mat::zeros(v_size, HIDDEN_SIZE);
    let mut rng = stream(1);
    for tok in 0..v_size {
        emb.set(tok, BIAS_DIM, A0);
        let mut fixed_sq = A0 * A0;
        if let Some(&v) = u32::try_from(tok).ok().and_then(|id| kw.get(&id)) {
            emb.set(tok, concept_dim(v), EK);
            fixed_sq += EK * EK;
        }
        let dir: Vec<f64> = noise.clone().map(|_| rng.normal()).collect();
        let norm = dir.iter().map(|x| x * x).sum::<f64>().sqrt();
        let radius = (HIDDEN_SIZE as f64 - fixed_sq).sqrt();
        for (i, d) in noise.clone().zip(&dir) {
            emb.set(tok, i, d / norm * radius);
        }
    }
    t.insert(
        "model.embed_tokens.weight".to_owned(),
        F32Tensor::from_mat(&emb),
    );

    let planted = planted_layout();
    let ones = vec![1.0; HIDDEN_SIZE];
    for layer in 0..N_LAYERS {
        let p = format!("model.layers.{layer}");
        let (q, k, v, o) = attention(layer);
        t.insert(
            format!("{p}.self_attn.q_proj.weight"),
            F32Tensor::from_mat(&q),
        );
        t.insert(
            format!("{p}.self_attn.k_proj.weight"),
            F32Tensor::from_mat(&k),
        );
        t.insert(
            format!("{p}.self_attn.v_proj.weight"),
            F32Tensor::from_mat(&v),
        );
        t.insert(
            format!("{p}.self_attn.o_proj.weight"),
            F32Tensor::from_mat(&o),
        );
        let here: Vec<Planted> = planted
            .iter()
            .copied()
            .filter(|q| q.layer == layer)
            .collect();
        let (gate, up, down) = mlp(layer, &here);
        t.insert(
            format!("{p}.mlp.gate_proj.weight"),
            F32Tensor::from_mat(&gate),
        );
        t.insert(format!("{p}.mlp.up_proj.weight"), F32Tensor::from_mat(&up));
        t.insert(
            format!("{p}.mlp.down_proj.weight"),
            F32Tensor::from_mat(&down),
        );
        t.insert(
            format!("{p}.input_layernorm.weight"),
            F32Tensor::from_vec(vec![HIDDEN_SIZE], &ones),
        );
        t.insert(
            format!("{p}.post_attention_layernorm.weight"),
            F32Tensor::from_vec(vec![HIDDEN_SIZE], &ones),
        );
    }
    t.insert(
        "model.norm.weight".to_owned(),
        F32Tensor::from_vec(vec![HIDDEN_SIZE], &ones),
    );

    // LM head: small random rows over the noise dims, plus the keyword boost.
    let mut head = Mat::zeros(v_size, HIDDEN_SIZE);
    let mut rng = stream(2);
    head.noise(0..v_size, noise, SIGMA_LM, &mut rng);
    for (&id, &v) in &kw {
        head.set(id as usize, boost_dim(v), GAMMA);
    }
    t.insert("lm_head.weight".to_owned(), F32Tensor::from_mat(&head));
    t
}

/// q, k, v, o projections of one layer (HF layout `[out, in]`).
fn attention(layer: usize) -> (Mat, Mat, Mat, Mat) {
    let mut q = Mat::zeros(N_HEADS * HEAD_DIM, HIDDEN_SIZE);
    let mut k = Mat::zeros(N_KV_HEADS * HEAD_DIM, HIDDEN_SIZE);
    let mut v = Mat::zeros(N_KV_HEADS * HEAD_DIM, HIDDEN_SIZE);
    let mut o = Mat::zeros(HIDDEN_SIZE, N_HEADS * HEAD_DIM);
    if layer == 0 {
        // Head 0 / kv head 0: keyword attention copying concept dims into context dims.
        let qa = 1.0;
        let ka = KEYWORD_SCORE * (HEAD_DIM as f64).sqrt() / (qa * A0 * EK);
        q.set(KEY_DIM, BIAS_DIM, qa);
        for val in 0..VALUES.len() {
            k.set(KEY_DIM, concept_dim(val), ka);
            v.set(val, concept_dim(val), 1.0);
            o.set(context_dim(val), val, OC);
        }
    } else {
        let mut rng = stream(0x200 + layer as u64);
        let noise = NOISE_START..HIDDEN_SIZE;
        q.noise(0..N_HEADS * HEAD_DIM, noise.clone(), SIGMA_ATTN, &mut rng);
        k.noise(
            0..N_KV_HEADS * HEAD_DIM,
            noise.clone(),
            SIGMA_ATTN,
            &mut rng,
        );
        v.noise(
            0..N_KV_HEADS * HEAD_DIM,
            noise.clone(),
            SIGMA_ATTN,
            &mut rng,
        );
        o.noise(noise, 0..N_HEADS * HEAD_DIM, SIGMA_ATTN_OUT, &mut rng);
    }
    (q, k, v, o)
}

/// gate, up, down projections of one layer with `planted` neurons in it.
fn mlp(layer: usize, planted: &[Planted]) -> (Mat, Mat, Mat) {
    let mut gate = Mat::zeros(INTERMEDIATE_SIZE, HIDDEN_SIZE);
    let mut up = Mat::zeros(INTERMEDIATE_SIZE, HIDDEN_SIZE);
    let mut down = Mat::zeros(HIDDEN_SIZE, INTERMEDIATE_SIZE);
    let mut rng = stream(0x300 + layer as u64);
    let noise = NOISE_START..HIDDEN_SIZE;
    for j in 0..INTERMEDIATE_SIZE {
        if let Some(p) = planted.iter().find(|p| p.neuron == j) {
            for u in 0..VALUES.len() {
                gate.set(j, context_dim(u), if u == p.value { ALPHA } else { -ALPHA });
            }
            gate.set(j, BIAS_DIM, -THETA);
            gate.noise(j..j + 1, noise.clone(), SIGMA_PLANTED_NOISE, &mut rng);
            up.set(j, BIAS_DIM, UA);
            up.noise(j..j + 1, noise.clone(), SIGMA_PLANTED_NOISE, &mut rng);
            down.set(boost_dim(p.value), j, DB);
        } else {
            gate.noise(j..j + 1, noise.clone(), SIGMA_GATE, &mut rng);
            gate.set(j, BIAS_DIM, -rng.range(BETA_RANGE.0, BETA_RANGE.1) / A0);
            up.noise(j..j + 1, noise.clone(), SIGMA_UP, &mut rng);
            down.noise(noise.clone(), j..j + 1, SIGMA_DOWN, &mut rng);
        }
    }
    (gate, up, down)
}

/// The safetensors file for `tensors` (names sorted, metadata `format = pt`).
pub(crate) fn serialize(tensors: &BTreeMap<String, F32Tensor>) -> Vec<u8> {
    let metadata = std::collections::HashMap::from([("format".to_owned(), "pt".to_owned())]);
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
        .expect("f32 tensors with consistent shapes always serialize")
}
