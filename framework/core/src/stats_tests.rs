use super::*;

/// One random item: `(label, key, n_tokens, per layer (active, sum, sum_sq))`.
type Item = (usize, u64, f64, Vec<(Vec<f64>, Vec<f64>, Vec<f64>)>);

const L: usize = 2;
const N: usize = 3;

fn labels() -> Vec<String> {
    vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]
}

/// Random items with SiLU-like token activations (negative values small, positive ones up to
/// a few units), reduced over tokens in f64.
fn random_items(rng: &mut SplitMix64, n_items: usize) -> Vec<Item> {
    let mut keys = [0_u64; 3];
    (0..n_items)
        .map(|_| {
            let label = usize::try_from(rng.below(3)).expect("small");
            let key = keys[label];
            keys[label] += 1;
            let n_tok = 1 + rng.below(12);
            let layers = (0..L)
                .map(|_| {
                    let (mut a, mut s, mut q) = (vec![0.0; N], vec![0.0; N], vec![0.0; N]);
                    for _ in 0..n_tok {
                        for j in 0..N {
                            let z = rng.next_f64() * 6.0 - 2.0
                                + f64::from(u32::try_from(j).expect("small"));
                            let v = z / (1.0 + (-z).exp());
                            a[j] += f64::from(u8::from(v > 0.0));
                            s[j] += v;
                            q[j] += v * v;
                        }
                    }
                    (a, s, q)
                })
                .collect();
            #[expect(clippy::cast_precision_loss, reason = "small counts")]
            let n = n_tok as f64;
            (label, key, n, layers)
        })
        .collect()
}

fn accumulate(items: &[Item], fresh: impl Fn() -> ActivationStats) -> ActivationStats {
    let mut s = fresh();
    for (label, key, n, layers) in items {
        s.count_item(*label, *key, *n);
        for (layer, (a, sm, sq)) in layers.iter().enumerate() {
            s.add_item_layer(*label, *key, layer, *n, a, sm, sq);
        }
    }
    s
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// Counts equal exactly, moments within 1e-12 relative; labels matched by name.
fn assert_same_stats(x: &ActivationStats, y: &ActivationStats) {
    assert_eq!(x.labels.len(), y.labels.len());
    for lx in &x.labels {
        let ly = &y.labels[y.label_index(&lx.name).expect("label on both sides")];
        assert_eq!(lx.tokens, ly.tokens, "tokens of {}", lx.name);
        assert_eq!(lx.items, ly.items, "items of {}", lx.name);
        assert_eq!(lx.active, ly.active, "active of {}", lx.name);
        for (f, u, v) in [
            ("sum", &lx.sum, &ly.sum),
            ("sum_sq", &lx.sum_sq, &ly.sum_sq),
            ("item_sum", &lx.item_sum, &ly.item_sum),
            ("item_sum_sq", &lx.item_sum_sq, &ly.item_sum_sq),
        ] {
            for (p, q) in u.iter().zip(v) {
                assert!(close(*p, *q), "{f} of {}: {p} vs {q}", lx.name);
            }
        }
        let sorted = |l: &LabelStats| {
            let mut m: Vec<(u64, Vec<f32>)> = l
                .item_means
                .iter()
                .map(|m| (m.key, m.means.clone()))
                .collect();
            m.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.partial_cmp(&b.1).expect("finite")));
            m
        };
        assert_eq!(sorted(lx), sorted(ly), "item means of {}", lx.name);
    }
    assert_eq!(x.n_replicates(), y.n_replicates());
    if let (Some(bx), Some(by)) = (&x.bootstrap, &y.bootstrap) {
        for (rx, ry) in bx.replicates.iter().zip(&by.replicates) {
            assert_same_stats(rx, ry);
        }
    }
}

fn fresh_full() -> ActivationStats {
    ActivationStats::new("t", L, N, &labels())
        .with_item_means()
        .with_bootstrap(11, 4)
}

#[test]
fn items_add_token_and_item_level_sums() {
    let mut s = ActivationStats::new("t", 1, 2, &labels());
    s.count_item(1, 0, 2.0);
    s.add_item_layer(1, 0, 0, 2.0, &[1.0_f32, 0.0], &[3.0, -0.5], &[5.0, 0.13]);
    s.count_item(1, 1, 4.0);
    s.add_item_layer(1, 1, 0, 4.0, &[4.0_f64, 1.0], &[2.0, 1.0], &[1.0, 1.0]);
    let b = &s.labels[1];
    assert_eq!((b.tokens, b.items), (6.0, 2));
    assert_eq!(b.active, vec![5.0, 1.0]);
    assert_eq!(b.sum, vec![5.0, 0.5]);
    // Item means: (1.5, -0.25) and (0.5, 0.25).
    assert_eq!(b.item_sum, vec![2.0, 0.0]);
    assert_eq!(b.item_sum_sq, vec![2.5, 0.125]);
    assert_eq!(s.labels[0].active, vec![0.0; 2]);
    assert!(b.item_means.is_empty(), "means are kept only on request");
    let m = b.item_moments(0).expect("item stats");
    assert_eq!((m.mean(), m.var()), (1.0, 0.5));
    let t = b.token_moments(1).expect("token sums");
    assert_eq!(t.mean(), 0.5 / 6.0);
}

#[test]
fn kept_item_means_hold_each_item_once_per_draw() {
    let mut rng = SplitMix64::new(5);
    let items = random_items(&mut rng, 30);
    let s = accumulate(&items, fresh_full);
    for (label, l) in s.labels.iter().enumerate() {
        let n_items = items.iter().filter(|i| i.0 == label).count();
        assert_eq!(l.item_means.len(), n_items);
        for im in &l.item_means {
            let (_, _, n, layers) = items
                .iter()
                .find(|i| i.0 == label && i.1 == im.key)
                .expect("kept item exists");
            for (layer, (_, sm, _)) in layers.iter().enumerate() {
                for (got, s) in im.means[layer * N..(layer + 1) * N].iter().zip(sm) {
                    #[expect(clippy::cast_possible_truncation, reason = "f32 storage")]
                    let want = (s / n) as f32;
                    assert_eq!(*got, want);
                }
            }
        }
        let boot = s.bootstrap.as_ref().expect("replicates");
        for (b, r) in boot.replicates.iter().enumerate() {
            let draws: u64 = items
                .iter()
                .filter(|i| i.0 == label)
                .map(|i| u64::from(s.bootstrap_weights(label, i.1)[b]))
                .sum();
            assert_eq!(r.labels[label].items, draws);
            assert_eq!(r.labels[label].item_means.len() as u64, draws);
        }
    }
}

#[test]
fn replicates_equal_weighted_one_shot_sums() {
    let mut rng = SplitMix64::new(9);
    let items = random_items(&mut rng, 40);
    let s = accumulate(&items, fresh_full);
    let boot = s.bootstrap.as_ref().expect("replicates");
    assert_eq!(boot.replicates.len(), 4);
    for (b, r) in boot.replicates.iter().enumerate() {
        // Replicate b is the plain statistics of the items repeated w_b times.
        let mut repeated = Vec::new();
        for it in &items {
            for _ in 0..s.bootstrap_weights(it.0, it.1)[b] {
                repeated.push(it.clone());
            }
        }
        let want = accumulate(&repeated, || ActivationStats::new("t", L, N, &labels()));
        for (lr, lw) in r.labels.iter().zip(&want.labels) {
            assert_eq!((lr.tokens, lr.items), (lw.tokens, lw.items));
            assert_eq!(lr.active, lw.active);
            for (p, q) in lr.item_sum.iter().zip(&lw.item_sum) {
                assert!(close(*p, *q), "{p} vs {q}");
            }
        }
    }
    assert_ne!(
        boot.replicates[0].labels, boot.replicates[1].labels,
        "replicates differ"
    );
}

#[test]
fn poisson_weights_are_fixed_and_have_mean_and_variance_one() {
    assert_eq!(poisson_weights(1, "a", 0, 8), poisson_weights(1, "a", 0, 8));
    assert_ne!(poisson_weights(1, "a", 0, 8), poisson_weights(1, "a", 1, 8));
    let w: Vec<f64> = (0..20_000)
        .flat_map(|k| poisson_weights(3, "x", k, 5))
        .map(f64::from)
        .collect();
    let n = w.len() as f64;
    let mean = w.iter().sum::<f64>() / n;
    let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    // 100 000 draws: standard errors ~0.003 (mean) and ~0.006 (variance).
    assert!((mean - 1.0).abs() < 0.015, "mean {mean}");
    assert!((var - 1.0).abs() < 0.03, "variance {var}");
    let zeros = w.iter().filter(|&&x| x == 0.0).count() as f64 / n;
    assert!((zeros - (-1.0_f64).exp()).abs() < 0.01, "P(0) {zeros}");
}

#[test]
fn merge_of_shards_equals_one_shot_accumulation() {
    // Property test over 60 random cases: split the items at random into 1..=4 shards,
    // accumulate each shard, merge; compare with accumulating everything at once.
    let mut rng = SplitMix64::new(2024);
    for case in 0..60 {
        let n_items = 1 + usize::try_from(rng.below(40)).expect("small");
        let items = random_items(&mut rng, n_items);
        let n_shards = 1 + usize::try_from(rng.below(4)).expect("small");
        let mut shards = vec![Vec::new(); n_shards];
        for it in &items {
            shards[usize::try_from(rng.below(n_shards as u64)).expect("small")].push(it.clone());
        }
        let one_shot = accumulate(&items, fresh_full);
        let mut merged = accumulate(&shards[0], fresh_full);
        for sh in &shards[1..] {
            merged
                .merge(&accumulate(sh, fresh_full))
                .unwrap_or_else(|e| panic!("case {case}: {e}"));
        }
        assert_same_stats(&merged, &one_shot);
    }
}

#[test]
fn merge_is_commutative_and_associative() {
    let mut rng = SplitMix64::new(77);
    for _ in 0..40 {
        let parts: Vec<ActivationStats> = (0..3)
            .map(|p| {
                let mut items = random_items(&mut rng, 12);
                for it in &mut items {
                    it.1 += 1000 * p; // keys unique across parts
                }
                // Each part knows only the labels it saw, in its own order.
                let mut s = accumulate(&items, fresh_full);
                s.labels.retain(|l| l.items > 0);
                if let Some(b) = &mut s.bootstrap {
                    let keep = s.labels.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
                    for r in &mut b.replicates {
                        r.labels.retain(|l| keep.contains(&l.name));
                    }
                }
                s.labels.reverse();
                s
            })
            .collect();
        let (a, b, c) = (&parts[0], &parts[1], &parts[2]);
        let mut ab = a.clone();
        ab.merge(b).expect("merges");
        let mut ba = b.clone();
        ba.merge(a).expect("merges");
        // Commutative exactly (IEEE addition is), up to label order.
        for l in &ab.labels {
            let o = &ba.labels[ba.label_index(&l.name).expect("same labels")];
            assert_eq!(
                (&l.active, &l.sum, &l.item_sum_sq),
                (&o.active, &o.sum, &o.item_sum_sq)
            );
        }
        assert_same_stats(&ab, &ba);
        let mut ab_c = ab.clone();
        ab_c.merge(c).expect("merges");
        let mut bc = b.clone();
        bc.merge(c).expect("merges");
        let mut a_bc = a.clone();
        a_bc.merge(&bc).expect("merges");
        assert_same_stats(&ab_c, &a_bc);
    }
}

#[test]
fn merge_rejects_other_shapes_layouts_and_replicates() {
    let mut s = ActivationStats::new("t", 2, 3, &["a".to_owned()]);
    let t = ActivationStats::new("t", 2, 4, &["a".to_owned()]);
    assert_eq!(
        s.merge(&t).expect_err("shape").to_string(),
        "cannot merge statistics of t [2x3] with t [2x4]"
    );
    let mut counts = s.clone();
    counts.labels[0] = LabelStats::counts_only("a", 1.0, 1, vec![0.0; 6]);
    assert_eq!(
        s.merge(&counts).expect_err("layout").to_string(),
        "label a: statistics have different arrays ([6, 6, 6, 6, 6] vs [6, 0, 0, 0, 0] values)"
    );
    let boot = s.clone().with_bootstrap(1, 2);
    let before = s.clone();
    assert_eq!(
        s.merge(&boot).expect_err("bootstrap").to_string(),
        "bootstrap replicates differ: none vs seed 1 x 2"
    );
    assert_eq!(s, before, "a failed merge changes nothing");
    let mut b2 = s.clone().with_bootstrap(2, 2);
    assert!(b2.merge(&boot).is_err());
}

#[test]
fn moments_give_mean_and_sample_variance() {
    let m = Moments {
        n: 4.0,
        sum: 10.0,
        sum_sq: 30.0,
    };
    assert_eq!(m.mean(), 2.5);
    assert!((m.var() - 5.0 / 3.0).abs() < 1e-15);
    assert!(
        Moments {
            n: 1.0,
            sum: 1.0,
            sum_sq: 1.0
        }
        .var()
        .is_nan()
    );
    // Large offset: mean 1000, sd 1 (x̄²/s² = 1e6): relative error stays below 1e-9.
    let xs: Vec<f64> = (0..200).map(|i| 1000.0 + f64::from(i % 7) - 3.0).collect();
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let two_pass = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let m = Moments {
        n,
        sum: xs.iter().sum(),
        sum_sq: xs.iter().map(|x| x * x).sum(),
    };
    assert!(
        (m.var() - two_pass).abs() / two_pass < 1e-9,
        "{} vs {two_pass}",
        m.var()
    );
}

// Property test (issue #10 item 2), with shrinking: any split of the items into parts,
// accumulated part by part and merged in any order, equals one-shot accumulation (counts
// exactly, moments within 1e-12 relative, kept item means and bootstrap replicates too).
// `merge_of_shards_equals_one_shot_accumulation` above covers fixed seeds in index order.
mod merge_properties {
    use super::*;
    use proptest::prelude::*;

    /// Items, the part of each item (`0..parts`), and the order the parts are merged in.
    fn split() -> impl Strategy<Value = (u64, usize, Vec<usize>, Vec<usize>)> {
        (any::<u64>(), 1_usize..40, 1_usize..=5).prop_flat_map(|(seed, n_items, parts)| {
            (
                Just(seed),
                Just(n_items),
                prop::collection::vec(0..parts, n_items),
                Just((0..parts).collect::<Vec<_>>()).prop_shuffle(),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_split_merged_in_any_order_equals_one_shot((seed, n_items, part_of, order) in split()) {
            let items = random_items(&mut SplitMix64::new(seed), n_items);
            let mut parts = vec![Vec::new(); order.len()];
            for (it, &p) in items.iter().zip(&part_of) {
                parts[p].push(it.clone());
            }
            let one_shot = accumulate(&items, fresh_full);
            let mut merged = fresh_full();
            for &p in &order {
                merged
                    .merge(&accumulate(&parts[p], fresh_full))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            assert_same_stats(&merged, &one_shot);
        }
    }
}

/// `add_items_layers` on rows of `n` neurons, against the loop of `add_item_layer` it
/// stands for: the same statistics to the bit, on the parallel path (large) and the loop
/// (small, bootstrap, kept means, a repeated layer).
#[test]
fn batched_layers_equal_the_item_by_item_loop_bit_for_bit() {
    let mut rng = SplitMix64::new(7);
    for (n, variant) in [
        (1 << 16, "large"),
        (8, "small"),
        (1 << 16, "bootstrap"),
        (1 << 16, "kept"),
    ] {
        let n_layers = 4;
        let fresh = || {
            let s = ActivationStats::new("t", n_layers, n, &labels());
            match variant {
                "bootstrap" => s.with_bootstrap(3, 2),
                "kept" => s.with_item_means(),
                _ => s,
            }
        };
        // Items of repeated labels, layers out of order and one layer left out.
        let items: Vec<(usize, u64, f64)> = (0..6)
            .map(|i| (i % 3, i as u64, 1.0 + (i % 4) as f64))
            .collect();
        let layers = [2, 0, 3];
        let rows: Vec<Vec<Vec<f32>>> = layers
            .iter()
            .map(|_| {
                items
                    .iter()
                    .map(|_| {
                        (0..3 * n)
                            .map(|_| (rng.next_f64() * 4.0 - 1.0) as f32)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let mut want = fresh();
        for (k, &layer) in layers.iter().enumerate() {
            for (i, &(label, key, t)) in items.iter().enumerate() {
                let r = &rows[k][i];
                want.add_item_layer(label, key, layer, t, &r[..n], &r[n..2 * n], &r[2 * n..]);
            }
        }
        let mut got = fresh();
        got.add_items_layers(&items, &layers, &rows);
        assert!(got == want, "{variant}: statistics differ from the loop");
        assert!(
            got.labels[0].sum[2 * n] != 0.0,
            "{variant}: layer 2 was added"
        );
        assert!(got.labels[0].sum[n] == 0.0, "{variant}: layer 1 was not");
    }
    // A repeated layer takes the loop and adds twice.
    let items = [(0, 0, 1.0)];
    let rows = vec![vec![vec![1.0_f32; 3 * 4]]; 2];
    let mut s = ActivationStats::new("t", 2, 4, &labels());
    s.add_items_layers(&items, &[1, 1], &rows);
    assert_eq!(s.labels[0].sum[4..], [2.0; 4]);
}
