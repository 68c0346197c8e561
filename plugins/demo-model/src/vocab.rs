//! The twelve values, their keyword lists, and the model's vocabulary.
//!
//! The vocabulary is the committed file `src/vocab.txt` (one piece per line, sorted by bytes),
//! preceded by four special tokens. It is generated from
//! `experiments/value-study/data/demo.jsonl` plus every keyword and [`EXTRA_TEXT`] by the test
//! `vocab::tests::vocab_file_is_up_to_date`, which fails with instructions when the data
//! changes (regenerate with `VALEX_BLESS=1 cargo test -p valex-demo-model vocab`). Committing
//! the list, rather than reading the data at build time, keeps the model bytes stable when
//! the data is edited without regenerating.

use std::collections::HashMap;

/// The 12 values as `(Chinese name, English name)`, in the order of METHOD.md §1.1
/// (the order of `value_list` in the released code).
pub const VALUES: [(&str, &str); 12] = [
    ("富强", "Prosperity"),
    ("民主", "Democracy"),
    ("文明", "Civility"),
    ("和谐", "Harmony"),
    ("自由", "Freedom"),
    ("平等", "Equality"),
    ("公正", "Justice"),
    ("法治", "Rule of Law"),
    ("爱国", "Patriotism"),
    ("敬业", "Dedication"),
    ("诚信", "Integrity"),
    ("友善", "Friendliness"),
];

/// The keyword tokens of one value: the words the planted circuit reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueKeywords {
    /// The value's Chinese name (as in [`VALUES`]).
    pub value: &'static str,
    /// Chinese keywords: multi-character words the tokenizer keeps whole.
    pub zh: &'static [&'static str],
    /// English keywords: lowercase whole words.
    pub en: &'static [&'static str],
}

/// Keywords of every value, in [`VALUES`] order. The lists are disjoint; the dataset's
/// stories and aligned options use only their own value's keywords, violating options none.
pub const KEYWORDS: [ValueKeywords; 12] = [
    ValueKeywords {
        value: "富强",
        zh: &["富强", "繁荣", "发展", "富裕", "兴旺"],
        en: &[
            "prosperity",
            "prosperous",
            "thriving",
            "develop",
            "development",
            "flourish",
        ],
    },
    ValueKeywords {
        value: "民主",
        zh: &["民主", "投票", "表决", "选举", "协商"],
        en: &[
            "democracy",
            "democratic",
            "vote",
            "votes",
            "voting",
            "voted",
            "election",
            "consult",
        ],
    },
    ValueKeywords {
        value: "文明",
        zh: &["文明", "礼貌", "礼让", "素质", "公德"],
        en: &[
            "civility",
            "civil",
            "polite",
            "politely",
            "courteous",
            "courteously",
            "manners",
        ],
    },
    ValueKeywords {
        value: "和谐",
        zh: &["和谐", "和睦", "和解", "团结", "和气"],
        en: &[
            "harmony",
            "harmonious",
            "reconcile",
            "unity",
            "peace",
            "peacefully",
        ],
    },
    ValueKeywords {
        value: "自由",
        zh: &["自由", "自主", "选择权", "意愿"],
        en: &["freedom", "free", "freely", "liberty", "autonomy"],
    },
    ValueKeywords {
        value: "平等",
        zh: &["平等", "一视同仁", "同等", "平权"],
        en: &["equality", "equal", "equally"],
    },
    ValueKeywords {
        value: "公正",
        zh: &["公正", "公平", "公道", "正义"],
        en: &["justice", "fair", "fairly", "fairness", "impartial"],
    },
    ValueKeywords {
        value: "法治",
        zh: &["法治", "法律", "依法", "守法", "合法"],
        en: &["law", "laws", "legal", "legally", "lawful"],
    },
    ValueKeywords {
        value: "爱国",
        zh: &["爱国", "祖国", "国家", "国旗", "民族"],
        en: &[
            "patriotism",
            "patriotic",
            "country",
            "motherland",
            "homeland",
            "nation",
        ],
    },
    ValueKeywords {
        value: "敬业",
        zh: &["敬业", "尽职", "认真", "职责", "兢兢业业"],
        en: &[
            "dedication",
            "dedicated",
            "diligent",
            "diligently",
            "duty",
            "conscientious",
        ],
    },
    ValueKeywords {
        value: "诚信",
        zh: &["诚信", "诚实", "守信", "承诺", "真相"],
        en: &[
            "integrity",
            "honest",
            "honestly",
            "honesty",
            "truth",
            "promise",
        ],
    },
    ValueKeywords {
        value: "友善",
        zh: &["友善", "友好", "善意", "关心", "善良"],
        en: &[
            "friendly",
            "kind",
            "kindly",
            "kindness",
            "warmly",
            "welcoming",
        ],
    },
];

/// Prompt text that experiments wrap around the data (record templates, forced-choice
/// prompts); its pieces join the vocabulary so such prompts encode without `[UNK]`.
pub const EXTRA_TEXT: &[&str] = &[
    "理由：{rationale} 情境：选项：你的回答：答案：选择：请选择：",
    "假设困境：最终结论：选项A：选项B：支持率 理解与分析 你会怎么做？更合适的做法是 我选择 我会",
    "Reason: Situation: Story: Options: Option A Option B Answer: Choice: Question: Q: A: B:",
    "Which option would you choose? What should you do? The better choice is I would choose I will",
    "情境：{story} A. B. 我的选择： Situation: My choice: I prefer my option",
    "abcdefghijklmnopqrstuvwxyz 0 1 2 3 4 5 6 7 8 9 10 100 % . , ; : ! ? ' \" ( ) [ ] { } - _ / + = * & # @ …",
    "。，、；：！？“”‘’（）《》【】—",
];

/// Special tokens, in id order: `[PAD]` 0, `<s>` (BOS) 1, `</s>` (EOS) 2, `[UNK]` 3.
pub const SPECIAL_TOKENS: [&str; 4] = ["[PAD]", "<s>", "</s>", "[UNK]"];

/// Id of `<s>`.
pub const BOS_ID: u32 = 1;
/// Id of `</s>`.
pub const EOS_ID: u32 = 2;
/// Id of `[PAD]`.
pub const PAD_ID: u32 = 0;
/// Id of `[UNK]`.
pub const UNK_ID: u32 = 3;

/// The committed piece list (without special tokens).
const VOCAB_TXT: &str = include_str!("vocab.txt");

/// The full vocabulary in id order: special tokens, then the pieces of `vocab.txt`.
pub fn vocabulary() -> Vec<String> {
    SPECIAL_TOKENS
        .iter()
        .map(|s| (*s).to_owned())
        .chain(
            VOCAB_TXT
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        )
        .collect()
}

/// For every token id that is a keyword, the index of its value in [`VALUES`].
///
/// Keywords missing from the vocabulary are skipped (a test checks there are none).
pub(crate) fn keyword_values(vocab: &[String]) -> HashMap<u32, usize> {
    let index: HashMap<&str, u32> = vocab
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                p.as_str(),
                u32::try_from(i).expect("vocabulary fits in u32"),
            )
        })
        .collect();
    let mut out = HashMap::new();
    for (v, kw) in KEYWORDS.iter().enumerate() {
        for w in kw.zh.iter().chain(kw.en.iter()) {
            if let Some(&id) = index.get(w) {
                out.insert(id, v);
            }
        }
    }
    out
}

/// The Chinese keywords of all values, longest first (then by bytes), for the tokenizer's
/// isolating regex: longer words must win over their prefixes.
pub(crate) fn zh_keywords_longest_first() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = KEYWORDS.iter().flat_map(|k| k.zh.iter().copied()).collect();
    all.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then(a.cmp(b)));
    all
}

#[cfg(test)]
mod tests;
