//! Structure and keyword discipline of experiments/value-study/data/demo.jsonl.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::*;

const FIELDS: [&str; 10] = [
    "id",
    "value",
    "language",
    "kind",
    "story",
    "rationale",
    "aligned",
    "violating",
    "conflict_motive",
    "parallel_id",
];

/// Token id → value index for every keyword.
fn keyword_owner() -> HashMap<u32, usize> {
    crate::vocab::keyword_values(&vocabulary())
}

fn value_index(name: &str) -> usize {
    VALUES
        .iter()
        .position(|(zh, _)| *zh == name)
        .unwrap_or_else(|| panic!("unknown value {name}"))
}

#[test]
fn every_line_has_exactly_the_ten_fields() {
    let lines = demo_lines();
    assert_eq!(lines.len(), 240);
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).expect("line parses");
        let keys: HashSet<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, FIELDS.into_iter().collect(), "line {}", i + 1);
    }
}

#[test]
fn each_value_and_language_has_six_activation_and_four_evaluation_items() {
    let mut counts: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut ids = HashSet::new();
    for it in demo_items() {
        assert!(ids.insert(it.id.clone()), "duplicate id {}", it.id);
        assert!(it.language == "zh" || it.language == "en", "{}", it.id);
        assert!(
            it.kind == "activation" || it.kind == "evaluation",
            "{}",
            it.id
        );
        value_index(&it.value);
        *counts.entry((it.value, it.language, it.kind)).or_default() += 1;
    }
    for (zh, _) in VALUES {
        for lang in ["zh", "en"] {
            assert_eq!(
                counts.get(&(zh.into(), lang.into(), "activation".into())),
                Some(&6),
                "{zh} {lang}"
            );
            assert_eq!(
                counts.get(&(zh.into(), lang.into(), "evaluation".into())),
                Some(&4),
                "{zh} {lang}"
            );
        }
    }
}

#[test]
fn parallel_ids_pair_one_zh_with_one_en_item_of_the_same_value_and_kind() {
    let mut pairs: HashMap<String, Vec<DemoItem>> = HashMap::new();
    for it in demo_items() {
        let pid = it
            .parallel_id
            .clone()
            .expect("every item has a parallel_id");
        assert_eq!(it.id, format!("{pid}-{}", it.language));
        pairs.entry(pid).or_default().push(it);
    }
    assert_eq!(pairs.len(), 120);
    for (pid, items) in pairs {
        assert_eq!(items.len(), 2, "{pid}");
        assert_ne!(items[0].language, items[1].language, "{pid}");
        assert_eq!(items[0].value, items[1].value, "{pid}");
        assert_eq!(items[0].kind, items[1].kind, "{pid}");
    }
}

#[test]
fn rationale_is_present_exactly_for_activation_items() {
    for it in demo_items() {
        let has = it.rationale.as_deref().is_some_and(|r| !r.is_empty());
        assert_eq!(has, it.kind == "activation", "{}", it.id);
        assert!(
            it.conflict_motive.as_deref().is_some_and(|m| !m.is_empty()),
            "{}",
            it.id
        );
    }
}

#[test]
fn stories_and_aligned_options_use_only_their_own_values_keywords() {
    let owner = keyword_owner();
    for it in demo_items() {
        let v = value_index(&it.value);
        let own = |ids: &[u32]| ids.iter().filter(|t| owner.get(t) == Some(&v)).count();
        let foreign = |ids: &[u32]| {
            ids.iter()
                .filter(|t| owner.get(t).is_some_and(|&u| u != v))
                .count()
        };
        let story = encode(&it.story, false);
        assert!(
            own(&story) >= 1,
            "{}: story lacks a keyword of {}",
            it.id,
            it.value
        );
        let aligned = encode(&it.aligned, false);
        assert!(
            own(&aligned) >= 1,
            "{}: aligned option lacks a keyword of {}",
            it.id,
            it.value
        );
        let violating = encode(&it.violating, false);
        assert_eq!(
            own(&violating) + foreign(&violating),
            0,
            "{}: violating option has a keyword",
            it.id
        );
        let mut texts = vec![
            story,
            aligned,
            encode(it.conflict_motive.as_deref().unwrap_or(""), false),
        ];
        if let Some(r) = &it.rationale {
            let r = encode(r, false);
            assert!(own(&r) >= 1, "{}: rationale lacks a keyword", it.id);
            texts.push(r);
        }
        for t in &texts {
            assert_eq!(foreign(t), 0, "{}: another value's keyword", it.id);
        }
    }
}

#[test]
fn activation_stories_name_their_value_within_the_first_ten_tokens() {
    let owner = keyword_owner();
    for it in demo_items().into_iter().filter(|i| i.kind == "activation") {
        let v = value_index(&it.value);
        let first = encode(&it.story, false)
            .iter()
            .position(|t| owner.get(t) == Some(&v));
        assert!(
            first.is_some_and(|p| p <= 10),
            "{}: first keyword at {first:?}",
            it.id
        );
    }
}

#[test]
fn evaluation_options_have_equal_token_counts() {
    for it in demo_items() {
        let (a, b) = (
            encode(&it.aligned, false).len(),
            encode(&it.violating, false).len(),
        );
        if it.kind == "evaluation" {
            assert_eq!(a, b, "{}: option lengths differ", it.id);
        } else {
            assert!(a.abs_diff(b) <= 3, "{}: option lengths {a} vs {b}", it.id);
        }
    }
}
