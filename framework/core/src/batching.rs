//! Grouping rows into forwards: length buckets under a row limit and a token budget.
//!
//! Owns [`BatchPolicy`], shared by every backend so that they batch alike. Rows are sorted by
//! decreasing length (ties keep input order), so rows of similar length share a forward and
//! little padding is computed; the sorted list is then cut greedily. It knows nothing about
//! models or tensors.

/// How rows are grouped into forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Most rows per forward (at least 1).
    pub max_rows: usize,
    /// Most padded tokens per forward (`rows × longest row`); `None` = no budget. A row
    /// longer than the budget runs alone.
    pub max_tokens: Option<usize>,
}

impl BatchPolicy {
    /// A policy with a row limit only.
    pub fn rows(max_rows: usize) -> Self {
        BatchPolicy {
            max_rows: max_rows.max(1),
            max_tokens: None,
        }
    }

    /// Row indices of non-empty rows (`lens[i] > 0`), sorted by decreasing length and cut
    /// into chunks of at most `max_rows` rows and `max_tokens` padded tokens.
    pub fn chunks(&self, lens: &[usize]) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..lens.len()).filter(|&i| lens[i] > 0).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lens[i]));
        let mut out: Vec<Vec<usize>> = Vec::new();
        let mut cur: Vec<usize> = Vec::new();
        for i in order {
            // Rows come longest first, so the chunk's first row sets its padded length.
            let longest = cur.first().map_or(lens[i], |&f| lens[f]);
            let fits_rows = cur.len() < self.max_rows.max(1);
            let fits_tokens = self
                .max_tokens
                .is_none_or(|budget| (cur.len() + 1) * longest <= budget);
            if !(cur.is_empty() || fits_rows && fits_tokens) {
                out.push(std::mem::take(&mut cur));
            }
            cur.push(i);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_sorted_longest_first_and_cut_by_row_limit() {
        let p = BatchPolicy::rows(2);
        assert_eq!(
            p.chunks(&[3, 0, 5, 3, 1]),
            vec![vec![2, 0], vec![3, 4]],
            "empty rows are skipped; ties keep input order"
        );
    }

    #[test]
    fn token_budget_bounds_rows_times_longest() {
        let p = BatchPolicy {
            max_rows: 8,
            max_tokens: Some(10),
        };
        // 6 alone (2 x 6 > 10); then 4, 4 (2 x 4 = 8; a third row would make 12); then 3, 2, 2.
        let lens = [4, 6, 2, 4, 3, 2, 12];
        let chunks = p.chunks(&lens);
        assert_eq!(chunks, vec![vec![6], vec![1], vec![0, 3], vec![4, 2, 5]]);
        for c in &chunks[1..] {
            let longest = c.iter().map(|&i| lens[i]).max().unwrap();
            assert!(c.len() * longest <= 10, "{c:?}");
        }
        assert_eq!(chunks[0], vec![6], "a row over the budget runs alone");
    }

    #[test]
    fn every_row_appears_once() {
        let lens: Vec<usize> = (0..50).map(|i| (i * 7919) % 23 + 1).collect();
        for policy in [
            BatchPolicy::rows(1),
            BatchPolicy::rows(8),
            BatchPolicy {
                max_rows: 16,
                max_tokens: Some(40),
            },
        ] {
            let mut all: Vec<usize> = policy.chunks(&lens).concat();
            all.sort_unstable();
            assert_eq!(all, (0..50).collect::<Vec<_>>());
        }
    }
}
