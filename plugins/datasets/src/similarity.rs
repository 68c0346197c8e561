//! Normalised text similarity, for finding exact and near-duplicate dilemmas.
//!
//! The measure, documented in docs/datasets.md:
//! 1. **normalise**: full-width ASCII forms become ASCII (`Ａ１，` → `A1,`), letters are
//!    lowercased, and everything that is not a letter or digit (punctuation, spaces, symbols)
//!    separates tokens;
//! 2. **tokens**: every CJK character is one token, every maximal run of other letters and
//!    digits is one token;
//! 3. **shingles**, units of about one word: for Chinese, the set of token bigrams (two
//!    characters); for English, the set of character 4-grams of the tokens joined by single
//!    spaces (4-grams, unlike word bigrams, still match when a paraphrase changes word forms
//!    and function words). A text shorter than one shingle is its own shingle;
//! 4. **similarity**: the Jaccard index of two shingle sets, |A ∩ B| / |A ∪ B|.
//!
//! Two texts are exact duplicates when their token sequences are equal, near duplicates when
//! their similarity reaches a threshold ([`DEFAULT_NEAR_THRESHOLD`] unless chosen). Only
//! texts of the same language are compared.
//! [`similar_pairs`] finds every pair above a threshold exactly, without comparing all pairs
//! (prefix filtering: two sets with Jaccard ≥ t share a token among the first
//! |x| − ⌈t·|x|⌉ + 1 tokens of each, under one global token order).

use std::collections::HashMap;

use valex_core::Language;

/// The near-duplicate threshold `valex data stats` and the benchmark tests use.
///
/// Calibrated (docs/datasets.md): in the released C-voice stories, pairs above 0.4 are one
/// dilemma reworded, and pairs at 0.30–0.35 share protagonist, setting and most phrases and
/// differ in one detail of the conflict; close English paraphrases written for the tests
/// score 0.31–0.42; the most similar distinct dilemmas of valex's benchmark score 0.19 (zh)
/// and 0.24 (en).
pub const DEFAULT_NEAR_THRESHOLD: f64 = 0.3;

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F)
}

/// The tokens of `text` after normalisation (see the module docs).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        let c = match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        if is_cjk(c) {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            out.push(c.to_string());
        } else if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The normalised form of `text`: its tokens joined by single spaces. Two texts are exact
/// duplicates when their normalised forms are equal.
pub fn normalise(text: &str) -> String {
    tokens(text).join(" ")
}

/// The shingles of `text` in `language` (see the module docs), possibly repeated.
pub fn shingle_strings(text: &str, language: Language) -> Vec<String> {
    let toks = tokens(text);
    match language {
        Language::Zh if toks.len() >= 2 => toks
            .windows(2)
            .map(|w| format!("{} {}", w[0], w[1]))
            .collect(),
        Language::Zh => toks,
        Language::En => {
            let joined: Vec<char> = toks.join(" ").chars().collect();
            if joined.len() <= 4 {
                vec![joined.into_iter().collect()]
            } else {
                joined.windows(4).map(|w| w.iter().collect()).collect()
            }
        }
    }
}

/// Interns shingles as small integers so sets are cheap to compare.
#[derive(Debug, Default)]
pub struct Shingler {
    ids: HashMap<String, u32>,
}

impl Shingler {
    /// A new, empty interner.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sorted, de-duplicated shingle ids of `text`, a text in `language`.
    pub fn shingles(&mut self, text: &str, language: Language) -> Vec<u32> {
        let grams = shingle_strings(text, language);
        let mut out: Vec<u32> = grams
            .into_iter()
            .map(|g| {
                let next = self.ids.len() as u32;
                *self.ids.entry(g).or_insert(next)
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Jaccard index of two sorted, de-duplicated sets (1 for two empty sets).
pub fn jaccard(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common as f64 / (a.len() + b.len() - common) as f64
}

/// Every pair `(i, j, similarity)` with `i < j` and Jaccard ≥ `threshold` (in (0, 1]),
/// sorted by `i` then `j`. Exact: the result equals comparing all pairs.
pub fn similar_pairs(sets: &[Vec<u32>], threshold: f64) -> Vec<(usize, usize, f64)> {
    let t = threshold.clamp(f64::MIN_POSITIVE, 1.0);
    let mut freq: HashMap<u32, u32> = HashMap::new();
    for s in sets {
        for &x in s {
            *freq.entry(x).or_insert(0) += 1;
        }
    }
    // Rare tokens first: short prefixes then produce few candidates.
    let ordered: Vec<Vec<u32>> = sets
        .iter()
        .map(|s| {
            let mut o = s.clone();
            o.sort_unstable_by_key(|x| (freq[x], *x));
            o
        })
        .collect();
    let prefix_len = |n: usize| -> usize {
        if n == 0 {
            0
        } else {
            // ceil(t n) with a small tolerance against 0.7 * 10 = 7.000000000000001.
            let need = (t * n as f64 - 1e-9).ceil().max(1.0) as usize;
            n - need.min(n) + 1
        }
    };
    let mut index: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut out = Vec::new();
    let mut seen = vec![usize::MAX; sets.len()];
    for (x, o) in ordered.iter().enumerate() {
        if o.is_empty() {
            // Empty sets are only similar to each other (Jaccard 1).
            for (y, s) in sets[..x].iter().enumerate() {
                if s.is_empty() {
                    out.push((y, x, 1.0));
                }
            }
            continue;
        }
        for tok in &o[..prefix_len(o.len())] {
            if let Some(list) = index.get(tok) {
                for &y in list {
                    if seen[y] == x {
                        continue;
                    }
                    seen[y] = x;
                    let sim = jaccard(&sets[y], &sets[x]);
                    if sim >= t {
                        out.push((y, x, sim));
                    }
                }
            }
        }
        for tok in &o[..prefix_len(o.len())] {
            index.entry(*tok).or_default().push(x);
        }
    }
    out.sort_by_key(|&(i, j, _)| (i, j));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_ignores_case_punctuation_width_and_spacing() {
        assert_eq!(normalise("Hello,  World!"), "hello world");
        assert_eq!(normalise("ＡＢＣ，１２"), "abc 12");
        assert_eq!(
            normalise("我是一名医生,工作繁忙。"),
            "我 是 一 名 医 生 工 作 繁 忙"
        );
        assert_eq!(normalise("用AI写作业"), "用 ai 写 作 业");
        assert_eq!(
            normalise("我是一名医生，工作繁忙"),
            normalise("我是一名医生,工作繁忙!")
        );
    }

    #[test]
    fn jaccard_of_bigram_sets_is_hand_checked() {
        let mut s = Shingler::new();
        // "甲乙丙" → {甲乙, 乙丙}; "甲乙丁" → {甲乙, 乙丁}: 1 common of 3.
        let x = s.shingles("甲乙丙", Language::Zh);
        let y = s.shingles("甲，乙。丁", Language::Zh);
        assert!((jaccard(&x, &y) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(jaccard(&x, &x), 1.0);
        // "ab cd" → {"ab c", "b cd"}; "ab ce" → {"ab c", "b ce"}: 1 of 3.
        let x = s.shingles("AB cd", Language::En);
        let y = s.shingles("ab, ce!", Language::En);
        assert!((jaccard(&x, &y) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            s.shingles("one", Language::En),
            s.shingles("ONE!", Language::En)
        );
        assert_eq!(shingle_strings("好", Language::Zh), ["好"]);
    }

    fn sim(a: &str, b: &str, language: Language) -> f64 {
        let mut s = Shingler::new();
        jaccard(&s.shingles(a, language), &s.shingles(b, language))
    }

    /// The default threshold separates rewordings of one dilemma from distinct dilemmas
    /// that share a setting (texts written for this test). A heavy rewording that shares
    /// few phrases (地铁里有位老人摔倒了，旁边的人都装作没看见…) scores about 0.17 and is
    /// not caught: the measure finds copies and light edits, not every paraphrase.
    #[test]
    fn default_threshold_separates_paraphrases_from_distinct_dilemmas() {
        let t = DEFAULT_NEAR_THRESHOLD;
        let paraphrases = [
            (
                "On the subway, I see an old man fall, and the people around me do nothing. I want to help him, but I worry that I might be misunderstood.",
                "On the subway I see an old man fall while everyone around me ignores him. I want to help, but I am afraid of being misunderstood.",
                Language::En,
            ),
            (
                "As a female engineer, I want the same opportunities at work as my male colleagues, but the company favours male employees.",
                "As a female engineer, I hope to get the same promotion chances as my male colleagues. But the leadership prefers to promote men.",
                Language::En,
            ),
            (
                "I am a doctor with a heavy workload and often work overtime. To pursue excellence I neglected my health and feel exhausted.",
                "I am a doctor and my work is busy. To pursue excellence, I often work late into the night, neglecting my own health.",
                Language::En,
            ),
            (
                "在地铁上，我看到一位老人摔倒了，周围的人都无动于衷。我想扶他，又担心被误会。",
                "在地铁上，我看到一个老人摔倒了，周围的人都视而不见。我想帮他，但担心自己被误解。",
                Language::Zh,
            ),
        ];
        for (a, b, l) in paraphrases {
            assert!(sim(a, b, l) >= t, "{:.3}: {a} / {b}", sim(a, b, l));
        }
        let distinct = [
            (
                "Li Na runs a small bakery. A supplier offers her cheaper flour if she skips the invoice, saving her a month's rent.",
                "Li Na runs a small bakery. Her assistant asks for Friday off to visit a sick parent during the busiest week of the year.",
                Language::En,
            ),
            (
                "李娜开了一家小面包店。供货商说不开发票就能便宜供面粉，省下的钱够交一个月房租。",
                "李娜开了一家小面包店。店员想在一年最忙的那周请假回家照顾生病的母亲。",
                Language::Zh,
            ),
        ];
        for (a, b, l) in distinct {
            assert!(sim(a, b, l) < t, "{:.3}: {a} / {b}", sim(a, b, l));
        }
    }

    /// Prefix filtering must find exactly what the all-pairs comparison finds.
    #[test]
    fn similar_pairs_equals_all_pairs_comparison() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let sets: Vec<Vec<u32>> = (0..300)
            .map(|_| {
                let n = (next() % 12) as usize;
                let mut v: Vec<u32> = (0..n).map(|_| (next() % 25) as u32).collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        for t in [0.2, 0.5, 0.7, 1.0] {
            let fast = similar_pairs(&sets, t);
            let mut slow = Vec::new();
            for j in 0..sets.len() {
                for i in 0..j {
                    let s = jaccard(&sets[i], &sets[j]);
                    if s >= t {
                        slow.push((i, j, s));
                    }
                }
            }
            slow.sort_by_key(|&(i, j, _)| (i, j));
            assert_eq!(fast, slow, "threshold {t}");
            assert!(!slow.is_empty(), "threshold {t} found nothing to compare");
        }
    }
}
