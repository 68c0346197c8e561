//! The demo model's `tokenizer.json` (HF `tokenizers` format), written as plain JSON.
//!
//! A WordLevel model over [`crate::vocabulary`]. Normalizer: NFKC then Lowercase (full-width
//! punctuation becomes ASCII, English is case-folded). Pre-tokenizer: WhitespaceSplit, then a
//! Split regex with behaviour `Isolated` whose alternatives are tried in order:
//! 1. every Chinese keyword (longest first), so `诚信` stays one token;
//! 2. any other single Han character (`\p{Han}`);
//! 3. a run of word characters that are not Han, punctuation or symbols (English words,
//!    numbers);
//! 4. any other single non-space character (punctuation).
//!
//! The post-processor (TemplateProcessing) prepends `<s>`. No `tokenizers` dependency here;
//! the tests load the JSON with `tokenizers` 0.23 to prove it is accepted.

use serde_json::{Map, Value, json};

use crate::vocab::{BOS_ID, SPECIAL_TOKENS, zh_keywords_longest_first};

/// The pre-tokenizer's Split pattern.
pub(crate) fn split_pattern() -> String {
    let keywords = zh_keywords_longest_first().join("|");
    format!(r"{keywords}|\p{{Han}}|[^\s\p{{Han}}\p{{P}}\p{{S}}]+|\S")
}

/// `tokenizer.json` for `vocab` (ids in list order; the first entries must be
/// [`SPECIAL_TOKENS`]), pretty-printed.
pub(crate) fn tokenizer_json(vocab: &[String]) -> Vec<u8> {
    let added_tokens: Vec<Value> = SPECIAL_TOKENS
        .iter()
        .enumerate()
        .map(|(id, content)| {
            json!({
                "id": id,
                "content": content,
                "single_word": false,
                "lstrip": false,
                "rstrip": false,
                "normalized": false,
                "special": true
            })
        })
        .collect();
    let mut vocab_map = Map::new();
    for (id, piece) in vocab.iter().enumerate() {
        vocab_map.insert(piece.clone(), json!(id));
    }
    let bos = SPECIAL_TOKENS[BOS_ID as usize];
    let doc = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens,
        "normalizer": {
            "type": "Sequence",
            "normalizers": [{ "type": "NFKC" }, { "type": "Lowercase" }]
        },
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                { "type": "WhitespaceSplit" },
                {
                    "type": "Split",
                    "pattern": { "Regex": split_pattern() },
                    "behavior": "Isolated",
                    "invert": false
                }
            ]
        },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                { "SpecialToken": { "id": bos, "type_id": 0 } },
                { "Sequence": { "id": "A", "type_id": 0 } }
            ],
            "pair": [
                { "SpecialToken": { "id": bos, "type_id": 0 } },
                { "Sequence": { "id": "A", "type_id": 0 } },
                { "Sequence": { "id": "B", "type_id": 1 } }
            ],
            "special_tokens": {
                bos: { "id": bos, "ids": [BOS_ID], "tokens": [bos] }
            }
        },
        "decoder": null,
        "model": {
            "type": "WordLevel",
            "vocab": Value::Object(vocab_map),
            "unk_token": SPECIAL_TOKENS[crate::vocab::UNK_ID as usize]
        }
    });
    serde_json::to_vec_pretty(&doc).expect("a JSON value always serializes")
}
