//! Bit-exact stand-ins for the few PyTorch/Python primitives the published selection scripts
//! use: Python's `round` (half to even), `Tensor.kthvalue` and CPU `Tensor.topk(largest=False)`
//! including how it breaks ties.
//!
//! This module owns only these numeric primitives; it knows nothing about statistics or labels.
//!
//! Why ties matter: CPU `topk` with `k * 64 <= n` calls `std::partial_sort` on `(value, index)`
//! pairs with a comparator that looks at values only. Which of several equal values at the
//! k-th place end up selected is then decided by libstdc++'s heap-select. [`smallest_k`]
//! replays that algorithm step by step, so selections with tied entropies come out exactly as
//! in the released masks. For `k * 64 > n` torch uses `std::nth_element` (introselect), whose
//! tie order is not replayed here: ties at the k-th place are then broken by lowest index.

use std::cmp::Ordering;

/// Python's `round(n * rate)` for a count `n`: the product in `f64`, rounded half to even.
///
/// # Panics
/// Never for finite non-negative `rate` (the product is then finite and non-negative).
pub fn python_round_count(n: usize, rate: f64) -> usize {
    #[expect(
        clippy::cast_precision_loss,
        reason = "Python converts the int to float the same way"
    )]
    let x = n as f64 * rate;
    let r = x.round_ties_even();
    assert!(r.is_finite() && r >= 0.0, "round({x}) out of range");
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked finite and non-negative above"
    )]
    let out = r as usize;
    out
}

/// `torch.kthvalue(values, k).values`: the `k`-th smallest value (1-based).
///
/// NaN sorts after every number, as in torch. Returns `None` when `k` is 0 or larger than
/// `values.len()` (torch raises an error then).
pub fn kthvalue(values: &[f32], k: usize) -> Option<f32> {
    if k == 0 || k > values.len() {
        return None;
    }
    let mut buf = values.to_vec();
    let (_, v, _) = buf.select_nth_unstable_by(k - 1, nan_last);
    Some(*v)
}

/// Orders numbers ascending with NaN last; equal numbers (and `-0.0` vs `0.0`) compare equal,
/// as C++ `<` does.
fn nan_last(a: &f32, b: &f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// The comparator torch passes to `std::partial_sort` for `largest=False`.
fn less(a: f32, b: f32) -> bool {
    (!a.is_nan() && b.is_nan()) || a < b
}

/// Indices of the `k` smallest `values`, as CPU `torch.topk(values, k, largest=False)` selects
/// them, ascending by index.
///
/// # Panics
/// When `k > values.len()` (torch raises an error then).
pub fn smallest_k(values: &[f32], k: usize) -> Vec<usize> {
    let n = values.len();
    assert!(k <= n, "topk: k = {k} exceeds the {n} values");
    let mut out = if k == 0 {
        Vec::new()
    } else if k.saturating_mul(64) <= n {
        heap_select(values, k)
    } else {
        lowest_index_select(values, k)
    };
    out.sort_unstable();
    out
}

/// libstdc++ `std::__heap_select(first, first + k, last, comp)` on `(value, index)` pairs:
/// the first `k` elements of the result are the selected ones.
fn heap_select(values: &[f32], k: usize) -> Vec<usize> {
    let mut heap: Vec<(f32, usize)> = values[..k].iter().copied().zip(0..k).collect();
    make_heap(&mut heap);
    for (i, &v) in values.iter().enumerate().skip(k) {
        if less(v, heap[0].0) {
            // __pop_heap(first, middle, i): the old top goes to position i (dropped), the new
            // value is sifted in from the root.
            adjust_heap(&mut heap, 0, (v, i));
        }
    }
    heap.into_iter().map(|(_, i)| i).collect()
}

/// libstdc++ `std::__make_heap` with `comp = less`.
fn make_heap(h: &mut [(f32, usize)]) {
    let len = h.len();
    if len < 2 {
        return;
    }
    let mut parent = (len - 2) / 2;
    loop {
        let value = h[parent];
        adjust_heap(h, parent, value);
        if parent == 0 {
            return;
        }
        parent -= 1;
    }
}

/// libstdc++ `std::__adjust_heap(first, hole, len, value, comp)`: moves the hole down to a
/// leaf along the larger children, then pushes `value` up from there.
fn adjust_heap(h: &mut [(f32, usize)], mut hole: usize, value: (f32, usize)) {
    let len = h.len();
    let top = hole;
    let mut second = hole;
    while len >= 1 && second < (len - 1) / 2 {
        second = 2 * (second + 1);
        if less(h[second].0, h[second - 1].0) {
            second -= 1;
        }
        h[hole] = h[second];
        hole = second;
    }
    if len.is_multiple_of(2) && len >= 2 && second == (len - 2) / 2 {
        second = 2 * (second + 1);
        h[hole] = h[second - 1];
        hole = second - 1;
    }
    // __push_heap(first, hole, top, value, comp)
    while hole > top {
        let parent = (hole - 1) / 2;
        if !less(h[parent].0, value.0) {
            break;
        }
        h[hole] = h[parent];
        hole = parent;
    }
    h[hole] = value;
}

/// The `k` smallest values; ties at the k-th value go to the lowest indices.
fn lowest_index_select(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.select_nth_unstable_by(k - 1, |&a, &b| {
        nan_last(&values[a], &values[b]).then(a.cmp(&b))
    });
    idx.truncate(k);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_round_is_half_to_even() {
        assert_eq!(python_round_count(5, 0.5), 2); // 2.5 -> 2
        assert_eq!(python_round_count(7, 0.5), 4); // 3.5 -> 4
        assert_eq!(python_round_count(10, 0.25), 2); // 2.5 -> 2
        assert_eq!(python_round_count(530_432, 0.01), 5304);
        // 1060864 * 0.95 = 1007820.8 -> 1007821
        assert_eq!(python_round_count(1_060_864, 0.95), 1_007_821);
        assert_eq!(python_round_count(3, 0.1), 0);
    }

    #[test]
    fn kthvalue_is_one_based_kth_smallest() {
        let v = [3.0, 1.0, 2.0, 2.0, f32::NAN];
        assert_eq!(kthvalue(&v, 1), Some(1.0));
        assert_eq!(kthvalue(&v, 3), Some(2.0));
        assert_eq!(kthvalue(&v, 4), Some(3.0));
        assert!(kthvalue(&v, 5).is_some_and(f32::is_nan));
        assert_eq!(kthvalue(&v, 0), None);
        assert_eq!(kthvalue(&v, 6), None);
    }

    #[test]
    fn smallest_k_selects_the_k_smallest_values() {
        let mut state = 0x1234_5678_u64;
        let values: Vec<f32> = (0..2000)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                #[expect(clippy::cast_precision_loss, reason = "small test values")]
                let v = ((state >> 33) % 50) as f32;
                v
            })
            .collect();
        for k in [1, 5, 31, 40, 500, 2000] {
            let got = smallest_k(&values, k);
            assert_eq!(got.len(), k);
            let mut chosen: Vec<f32> = got.iter().map(|&i| values[i]).collect();
            chosen.sort_by(f32::total_cmp);
            let mut all = values.clone();
            all.sort_by(f32::total_cmp);
            assert_eq!(chosen, all[..k], "k = {k}");
        }
    }

    #[test]
    fn heap_select_breaks_ties_like_libstdcxx() {
        // Expected output taken from g++ 12 / libstdc++ `std::partial_sort` with torch's
        // comparator on the same 200 (value, index) pairs: of the tied ones at the 3rd
        // place it keeps index 5, not the lowest index 0.
        let v: Vec<f32> = (0..200)
            .map(|i| match i {
                20 | 150 => 0.0,
                _ if (i * 7) % 5 == 0 => 1.0,
                _ => 2.0,
            })
            .collect();
        assert_eq!(smallest_k(&v, 3), vec![5, 20, 150]);
        // Equal values never displace the top: the first k indices stay.
        let flat = vec![0.5_f32; 200];
        assert_eq!(smallest_k(&flat, 3), vec![0, 1, 2]);
    }

    #[test]
    fn large_k_uses_lowest_index_ties() {
        let v = [2.0, 1.0, 1.0, 1.0, 0.0];
        assert_eq!(smallest_k(&v, 3), vec![1, 2, 4]);
        assert_eq!(smallest_k(&v, 0), Vec::<usize>::new());
        assert_eq!(smallest_k(&v, 5), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn nan_sorts_after_infinity() {
        let mut v = vec![f32::INFINITY; 130];
        v[5] = f32::NAN;
        v[7] = 3.0;
        let got = smallest_k(&v, 2);
        assert!(got.contains(&7));
        assert!(!got.contains(&5));
    }
}
