//! Descriptive statistics and quality checks of a loaded dataset (`valex data stats`):
//! counts per value, language and kind; length distributions; exact and near-duplicate
//! stories; items whose two options are the same; parallel (translation) coverage.
//!
//! Pure functions over items; no I/O. Lengths count characters (whitespace excluded) for
//! Chinese and whitespace-separated words for English. Duplicates compare stories within one
//! language with the measure of [`crate::similarity`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use valex_core::{Item, ItemKind, Language};

use crate::similarity::{Shingler, normalise, similar_pairs};
use crate::values::CORE_VALUES;

/// What to compute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsOptions {
    /// Near-duplicate threshold on the Jaccard similarity of stories, in (0, 1].
    pub near_threshold: f64,
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions {
            near_threshold: crate::similarity::DEFAULT_NEAR_THRESHOLD,
        }
    }
}

/// Items of one value, language and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountRow {
    /// Value id.
    pub value: String,
    /// Language.
    pub language: Language,
    /// Kind.
    pub kind: ItemKind,
    /// Number of items.
    pub items: usize,
    /// Items with a rationale.
    pub with_rationale: usize,
    /// Distinct conflict motives.
    pub motives: usize,
}

/// The distribution of one text field's length.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LengthRow {
    /// Language.
    pub language: Language,
    /// Kind.
    pub kind: ItemKind,
    /// `story`, `rationale`, `aligned` or `violating`.
    pub field: &'static str,
    /// `characters` (Chinese) or `words` (English).
    pub unit: &'static str,
    /// Number of texts measured.
    pub n: usize,
    /// Shortest.
    pub min: usize,
    /// 10th percentile (nearest rank).
    pub p10: usize,
    /// Median (nearest rank).
    pub median: usize,
    /// Mean.
    pub mean: f64,
    /// 90th percentile (nearest rank).
    pub p90: usize,
    /// Longest.
    pub max: usize,
}

/// Items whose stories normalise to the same text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateGroup {
    /// Language.
    pub language: Language,
    /// The ids, in dataset order.
    pub ids: Vec<String>,
}

/// Two items whose stories are near duplicates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearPair {
    /// Language.
    pub language: Language,
    /// The earlier item.
    pub a: String,
    /// The later item.
    pub b: String,
    /// Jaccard similarity of their stories' shingles.
    pub similarity: f64,
}

/// A translation group with a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParallelProblem {
    /// The `parallel_id`.
    pub parallel_id: String,
    /// The ids in the group.
    pub ids: Vec<String>,
    /// What is wrong (`no en item`, `two zh items`, `values differ: 诚信, 友善`).
    pub problem: String,
}

/// How well items are linked to their translations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParallelCoverage {
    /// Items with a `parallel_id`.
    pub items_with_parallel_id: usize,
    /// Distinct `parallel_id`s.
    pub groups: usize,
    /// Groups with exactly one item per language of the dataset and the same value and kind.
    pub complete: usize,
    /// Every other group, with its problem.
    pub problems: Vec<ParallelProblem>,
}

/// Everything `valex data stats` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetStats {
    /// Number of items.
    pub items: usize,
    /// Languages present.
    pub languages: Vec<Language>,
    /// Counts, by value (core values in METHOD.md order, then others by name), language, kind.
    pub counts: Vec<CountRow>,
    /// Length distributions by language, kind and field.
    pub lengths: Vec<LengthRow>,
    /// The near-duplicate threshold used.
    pub near_threshold: f64,
    /// Groups of exact duplicate stories.
    pub exact_duplicates: Vec<DuplicateGroup>,
    /// Pairs of near-duplicate stories that are not exact duplicates.
    pub near_duplicates: Vec<NearPair>,
    /// Ids of items whose aligned and violating options normalise to the same text.
    pub identical_options: Vec<String>,
    /// Translation coverage.
    pub parallel: ParallelCoverage,
}

/// The length of `text` in the unit of `language`.
pub fn text_length(text: &str, language: Language) -> usize {
    match language {
        Language::Zh => text.chars().filter(|c| !c.is_whitespace()).count(),
        Language::En => text.split_whitespace().count(),
    }
}

fn unit(language: Language) -> &'static str {
    match language {
        Language::Zh => "characters",
        Language::En => "words",
    }
}

fn value_rank(value: &str) -> (usize, &str) {
    let rank = CORE_VALUES
        .iter()
        .position(|v| v.zh == value)
        .unwrap_or(CORE_VALUES.len());
    (rank, value)
}

fn counts(items: &[Item]) -> Vec<CountRow> {
    type Key<'a> = ((usize, &'a str), Language, ItemKind);
    let mut acc: BTreeMap<Key<'_>, (usize, usize, BTreeSet<&str>)> = BTreeMap::new();
    for it in items {
        let e = acc
            .entry((value_rank(&it.value), it.language, it.kind))
            .or_default();
        e.0 += 1;
        e.1 += usize::from(it.rationale.as_ref().is_some_and(|r| !r.trim().is_empty()));
        if let Some(m) = &it.conflict_motive {
            e.2.insert(m.as_str());
        }
    }
    acc.into_iter()
        .map(|(((_, value), language, kind), (n, r, m))| CountRow {
            value: value.to_owned(),
            language,
            kind,
            items: n,
            with_rationale: r,
            motives: m.len(),
        })
        .collect()
}

fn distribution(
    language: Language,
    kind: ItemKind,
    field: &'static str,
    mut v: Vec<usize>,
) -> LengthRow {
    v.sort_unstable();
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    LengthRow {
        language,
        kind,
        field,
        unit: unit(language),
        n: v.len(),
        min: v[0],
        p10: rank(0.1),
        median: rank(0.5),
        mean: v.iter().sum::<usize>() as f64 / v.len() as f64,
        p90: rank(0.9),
        max: v[v.len() - 1],
    }
}

fn lengths(items: &[Item]) -> Vec<LengthRow> {
    let mut acc: BTreeMap<(Language, ItemKind, usize), Vec<usize>> = BTreeMap::new();
    const FIELDS: [&str; 4] = ["story", "rationale", "aligned", "violating"];
    for it in items {
        let texts = [
            Some(&it.story),
            it.rationale.as_ref(),
            Some(&it.aligned),
            Some(&it.violating),
        ];
        for (f, t) in texts.iter().enumerate() {
            if let Some(t) = t {
                acc.entry((it.language, it.kind, f))
                    .or_default()
                    .push(text_length(t, it.language));
            }
        }
    }
    acc.into_iter()
        .map(|((l, k, f), v)| distribution(l, k, FIELDS[f], v))
        .collect()
}

fn duplicates(items: &[Item], threshold: f64) -> (Vec<DuplicateGroup>, Vec<NearPair>) {
    let mut exact = Vec::new();
    let mut near = Vec::new();
    let languages: BTreeSet<Language> = items.iter().map(|i| i.language).collect();
    for lang in languages {
        let of_lang: Vec<&Item> = items.iter().filter(|i| i.language == lang).collect();
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (k, it) in of_lang.iter().enumerate() {
            groups.entry(normalise(&it.story)).or_default().push(k);
        }
        let mut group_of = vec![usize::MAX; of_lang.len()];
        let mut lang_exact: Vec<Vec<usize>> =
            groups.into_values().filter(|g| g.len() > 1).collect();
        lang_exact.sort();
        for (gi, g) in lang_exact.iter().enumerate() {
            for &k in g {
                group_of[k] = gi;
            }
        }
        let mut sh = Shingler::new();
        let sets: Vec<Vec<u32>> = of_lang
            .iter()
            .map(|it| sh.shingles(&it.story, lang))
            .collect();
        for (i, j, s) in similar_pairs(&sets, threshold) {
            if group_of[i] != usize::MAX && group_of[i] == group_of[j] {
                continue;
            }
            near.push(NearPair {
                language: lang,
                a: of_lang[i].id.clone(),
                b: of_lang[j].id.clone(),
                similarity: s,
            });
        }
        exact.extend(lang_exact.into_iter().map(|g| DuplicateGroup {
            language: lang,
            ids: g.into_iter().map(|k| of_lang[k].id.clone()).collect(),
        }));
    }
    (exact, near)
}

fn parallel(items: &[Item], languages: &[Language]) -> ParallelCoverage {
    let mut groups: BTreeMap<&str, Vec<&Item>> = BTreeMap::new();
    for it in items {
        if let Some(p) = &it.parallel_id {
            groups.entry(p.as_str()).or_default().push(it);
        }
    }
    let mut complete = 0;
    let mut problems = Vec::new();
    for (pid, group) in &groups {
        let mut why = Vec::new();
        for &lang in languages {
            match group.iter().filter(|i| i.language == lang).count() {
                0 => why.push(format!("no {} item", lang.as_str())),
                1 => {}
                n => why.push(format!("{n} {} items", lang.as_str())),
            }
        }
        let values: BTreeSet<&str> = group.iter().map(|i| i.value.as_str()).collect();
        if values.len() > 1 {
            why.push(format!(
                "values differ: {}",
                values.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        if group.iter().any(|i| i.kind != group[0].kind) {
            why.push("kinds differ".to_owned());
        }
        if why.is_empty() {
            complete += 1;
        } else {
            problems.push(ParallelProblem {
                parallel_id: (*pid).to_owned(),
                ids: group.iter().map(|i| i.id.clone()).collect(),
                problem: why.join("; "),
            });
        }
    }
    ParallelCoverage {
        items_with_parallel_id: groups.values().map(Vec::len).sum(),
        groups: groups.len(),
        complete,
        problems,
    }
}

impl DatasetStats {
    /// Computes every statistic of `items`.
    pub fn compute(items: &[Item], opts: &StatsOptions) -> DatasetStats {
        let languages: Vec<Language> = items
            .iter()
            .map(|i| i.language)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (exact_duplicates, near_duplicates) = duplicates(items, opts.near_threshold);
        DatasetStats {
            items: items.len(),
            counts: counts(items),
            lengths: lengths(items),
            near_threshold: opts.near_threshold,
            exact_duplicates,
            near_duplicates,
            identical_options: items
                .iter()
                .filter(|i| normalise(&i.aligned) == normalise(&i.violating))
                .map(|i| i.id.clone())
                .collect(),
            parallel: parallel(items, &languages),
            languages,
        }
    }

    /// The count of one value, language and kind (0 when absent).
    pub fn count(&self, value: &str, language: Language, kind: ItemKind) -> usize {
        self.counts
            .iter()
            .find(|c| c.value == value && c.language == language && c.kind == kind)
            .map_or(0, |c| c.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, lang: Language, kind: ItemKind, story: &str, pid: Option<&str>) -> Item {
        Item {
            id: id.into(),
            value: "诚信".into(),
            language: lang,
            kind,
            story: story.into(),
            rationale: (kind == ItemKind::Activation).then(|| "因为".into()),
            aligned: "说实话".into(),
            violating: "隐瞒".into(),
            conflict_motive: Some("面子".into()),
            parallel_id: pid.map(str::to_owned),
        }
    }

    #[test]
    fn counts_lengths_duplicates_and_coverage_on_a_small_set() {
        use ItemKind::{Activation as A, Evaluation as E};
        use Language::{En, Zh};
        let items = vec![
            item(
                "1",
                Zh,
                A,
                "老王在菜市场捡到一个钱包，里面有很多现金和证件。",
                Some("p1"),
            ),
            item(
                "2",
                En,
                A,
                "Old Wang finds a wallet at the market.",
                Some("p1"),
            ),
            item(
                "3",
                Zh,
                A,
                "老王在菜市场捡到一个钱包,里面有很多现金和证件!",
                Some("p2"),
            ),
            item(
                "4",
                Zh,
                E,
                "老王在菜市场捡到一个钱包，里面有很多现金和身份证件。",
                None,
            ),
            item(
                "5",
                En,
                E,
                "My boss asks me to hide a defect from a client.",
                Some("p3"),
            ),
            item("6", En, E, "My boss asks me to hide a defect.", Some("p3")),
        ];
        let s = DatasetStats::compute(&items, &StatsOptions::default());
        assert_eq!(s.items, 6);
        assert_eq!(s.count("诚信", Zh, A), 2);
        assert_eq!(s.count("诚信", En, E), 2);
        assert_eq!(s.count("友善", En, E), 0);
        let zh_a = &s.counts[0];
        assert_eq!((zh_a.with_rationale, zh_a.motives), (2, 1));
        let story_zh_a = s
            .lengths
            .iter()
            .find(|l| l.language == Zh && l.kind == A && l.field == "story")
            .unwrap();
        assert_eq!(
            (story_zh_a.min, story_zh_a.max, story_zh_a.unit),
            (24, 24, "characters")
        );
        let story_en_e = s
            .lengths
            .iter()
            .find(|l| l.language == En && l.kind == E && l.field == "story")
            .unwrap();
        assert_eq!(
            (story_en_e.min, story_en_e.median, story_en_e.max),
            (8, 8, 11)
        );
        assert_eq!(story_en_e.mean, 9.5);
        // 1 and 3 differ only in punctuation; 4 adds two characters.
        assert_eq!(s.exact_duplicates.len(), 1);
        assert_eq!(s.exact_duplicates[0].ids, ["1", "3"]);
        let near: Vec<_> = s
            .near_duplicates
            .iter()
            .map(|p| (p.a.as_str(), p.b.as_str()))
            .collect();
        assert_eq!(near, [("1", "4"), ("3", "4"), ("5", "6")]);
        assert!(
            s.near_duplicates
                .iter()
                .all(|p| p.similarity >= 0.3 && p.similarity < 1.0)
        );
        assert_eq!(s.identical_options, Vec::<String>::new());
        assert_eq!(s.parallel.groups, 3);
        assert_eq!(s.parallel.items_with_parallel_id, 5);
        assert_eq!(s.parallel.complete, 1);
        let problems: Vec<_> = s
            .parallel
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.parallel_id, p.problem))
            .collect();
        assert_eq!(problems, ["p2: no en item", "p3: no zh item; 2 en items"]);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let r = distribution(
            Language::En,
            ItemKind::Activation,
            "story",
            (1..=10).rev().collect(),
        );
        assert_eq!((r.min, r.p10, r.median, r.p90, r.max), (1, 1, 5, 9, 10));
        assert_eq!(r.mean, 5.5);
    }
}
