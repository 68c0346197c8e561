//! Keeps `src/vocab.txt` in step with the dataset and checks the keyword lists.

use std::collections::{BTreeSet, HashSet};

use tokenizers::{
    Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, Tokenizer,
};

use super::*;
use crate::tests::{demo_items, demo_path};
use crate::tokenizer::tokenizer_json;

/// The normalized pre-tokenized pieces of `text`, using the real `tokenizers` pipeline of
/// the demo tokenizer (vocabulary-independent).
fn pieces(tok: &Tokenizer, text: &str) -> Vec<String> {
    let mut pts = PreTokenizedString::from(text);
    let norm = tok
        .get_normalizer()
        .expect("demo tokenizer has a normalizer");
    pts.normalize(|s| norm.normalize(s))
        .expect("normalization succeeds");
    tok.get_pre_tokenizer()
        .expect("demo tokenizer has a pre-tokenizer")
        .pre_tokenize(&mut pts)
        .expect("pre-tokenization succeeds");
    pts.get_splits(OffsetReferential::Normalized, OffsetType::Byte)
        .into_iter()
        .map(|(s, _, _)| s.to_owned())
        .collect()
}

/// What `vocab.txt` should contain.
fn expected_vocab_txt() -> String {
    let specials: Vec<String> = SPECIAL_TOKENS.iter().map(|s| (*s).to_owned()).collect();
    let tok = Tokenizer::from_bytes(tokenizer_json(&specials)).expect("tokenizer JSON loads");
    let mut texts: Vec<String> = Vec::new();
    for item in demo_items() {
        texts.extend([item.story, item.aligned, item.violating]);
        texts.extend(item.rationale);
        texts.extend(item.conflict_motive);
    }
    texts.extend(
        VALUES
            .iter()
            .flat_map(|(zh, en)| [(*zh).to_owned(), (*en).to_owned()]),
    );
    texts.extend(
        KEYWORDS
            .iter()
            .flat_map(|k| k.zh.iter().chain(k.en.iter()).map(|w| (*w).to_owned())),
    );
    texts.extend(EXTRA_TEXT.iter().map(|s| (*s).to_owned()));
    let set: BTreeSet<String> = texts
        .iter()
        .flat_map(|t| pieces(&tok, t))
        .filter(|p| !SPECIAL_TOKENS.contains(&p.as_str()))
        .collect();
    let mut out = set.into_iter().collect::<Vec<_>>().join("\n");
    out.push('\n');
    out
}

#[test]
fn vocab_file_is_up_to_date() {
    let expected = expected_vocab_txt();
    if expected == VOCAB_TXT {
        return;
    }
    if std::env::var("VALEX_BLESS").as_deref() == Ok("1") {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/vocab.txt");
        std::fs::write(&path, &expected).expect("write src/vocab.txt");
        eprintln!(
            "rewrote {} ({} pieces); rebuild to use it",
            path.display(),
            expected.lines().count()
        );
        return;
    }
    panic!(
        "src/vocab.txt is out of date with {} (or the keyword lists / EXTRA_TEXT); regenerate it with \
         `VALEX_BLESS=1 cargo test -p valex-demo-model vocab_file_is_up_to_date` and commit it",
        demo_path().display()
    );
}

#[test]
fn vocabulary_is_sorted_unique_and_starts_with_specials() {
    let v = vocabulary();
    assert_eq!(&v[..4], &SPECIAL_TOKENS.map(str::to_owned));
    assert!(
        v[4..].windows(2).all(|w| w[0] < w[1]),
        "vocab.txt must be sorted and unique"
    );
    assert!(
        v.len() > 1000 && v.len() < 3000,
        "vocabulary size {}",
        v.len()
    );
}

#[test]
fn every_keyword_is_one_vocabulary_token() {
    let v: HashSet<String> = vocabulary().into_iter().collect();
    for k in &KEYWORDS {
        for w in k.zh.iter().chain(k.en.iter()) {
            assert!(
                v.contains(*w),
                "keyword {w} of {} is not in the vocabulary",
                k.value
            );
        }
    }
    assert_eq!(
        keyword_values(&vocabulary()).len(),
        KEYWORDS
            .iter()
            .map(|k| k.zh.len() + k.en.len())
            .sum::<usize>()
    );
}

#[test]
fn keyword_lists_are_disjoint_lowercase_and_follow_values_order() {
    let mut seen = HashSet::new();
    for (k, (zh, _)) in KEYWORDS.iter().zip(VALUES) {
        assert_eq!(k.value, zh);
        for w in k.zh.iter().chain(k.en.iter()) {
            assert!(seen.insert(*w), "keyword {w} appears twice");
        }
        assert!(
            k.zh.iter().all(|w| w.chars().count() >= 2),
            "zh keywords are multi-character words"
        );
        assert!(
            k.en.iter()
                .all(|w| w.chars().all(|c| c.is_ascii_lowercase())),
            "en keywords are lowercase words"
        );
    }
}

#[test]
fn longest_keywords_come_first_in_the_split_pattern() {
    let kws = zh_keywords_longest_first();
    assert!(
        kws.windows(2)
            .all(|w| w[0].chars().count() >= w[1].chars().count())
    );
    assert_eq!(kws[0].chars().count(), 4);
}
