//! Parsing the support-percentage answer of the C-voice evaluation prompt
//! (`最终结论：选项A：x% 选项B：y%`, shared/METHOD.md §1.4 b; the authors' parser is not
//! released, so this one is ours).
//!
//! Rules, applied in order:
//! 1. Full-width forms are folded to ASCII (`：`→`:`, `％`→`%`, `（`→`(`, `０-９`, `Ａ`/`Ｂ`,
//!    the ideographic space), so both writing styles parse alike.
//! 2. When the text has a conclusion marker (`最终结论`, `最終結論`, `final conclusion`, any
//!    case), the part after its first occurrence is parsed first; the whole text is the
//!    fallback.
//! 3. Labels are `选项A` / `選項A` / `Option A` (any case, spaces allowed); each label's number
//!    is the first `N%` or `N %` (N a number with optional decimals) between the label and
//!    the next label or line end. The first A label with a number and the first B label
//!    with a number win.
//! 4. Without such labels, bare `A: N%` / `B: N%` pairs are accepted.
//! 5. Both numbers must lie in `[0, 100]`; they need not add up to 100.
//!
//! Anything else is unparseable (`None`); the evaluator counts and shows those answers.

use std::sync::LazyLock;

use regex::Regex;

static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:选项|選項|option)\s*([AB])").expect("a valid label regex")
});

static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d{1,3}(?:\.\d+)?)\s*%").expect("a valid number regex"));

static BARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^A-Za-z])([AB])\s*:\s*(\d{1,3}(?:\.\d+)?)\s*%").expect("a valid regex")
});

static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)最终结论|最終結論|final\s+conclusion").expect("a valid marker regex")
});

/// Folds full-width ASCII forms (U+FF01..U+FF5E) and the ideographic space to ASCII.
pub fn fold_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => {
                char::from_u32(c as u32 - 0xFEE0).expect("the shifted range is ASCII")
            }
            _ => c,
        })
        .collect()
}

fn in_range(x: f64) -> Option<f64> {
    (0.0..=100.0).contains(&x).then_some(x)
}

/// The labelled pair in `text`, rule 3.
fn labelled(text: &str) -> Option<(f64, f64)> {
    let labels: Vec<(usize, usize, bool)> = LABEL
        .captures_iter(text)
        .map(|c| {
            let m = c.get(0).expect("group 0 exists");
            (m.start(), m.end(), &c[1] == "A" || &c[1] == "a")
        })
        .collect();
    let (mut a, mut b) = (None, None);
    for (i, &(_, end, is_a)) in labels.iter().enumerate() {
        let stop = labels.get(i + 1).map_or(text.len(), |l| l.0);
        let gap = &text[end..stop];
        let gap = gap.split('\n').next().unwrap_or_default();
        let Some(n) = NUMBER.captures(gap).and_then(|c| c[1].parse::<f64>().ok()) else {
            continue;
        };
        let slot = if is_a { &mut a } else { &mut b };
        if slot.is_none() {
            *slot = Some(n);
        }
    }
    Some((in_range(a?)?, in_range(b?)?))
}

/// The bare pair in `text`, rule 4.
fn bare(text: &str) -> Option<(f64, f64)> {
    let (mut a, mut b) = (None, None);
    for c in BARE.captures_iter(text) {
        let n = c[2].parse::<f64>().ok();
        let slot = if &c[1] == "A" { &mut a } else { &mut b };
        if slot.is_none() {
            *slot = n;
        }
    }
    Some((in_range(a?)?, in_range(b?)?))
}

/// The `(A%, B%)` support rates stated in `answer`, or `None` when it states no pair.
pub fn parse_support(answer: &str) -> Option<(f64, f64)> {
    let text = fold_width(answer);
    let parse = |t: &str| labelled(t).or_else(|| bare(t));
    if let Some(m) = MARKER.find(&text)
        && let Some(pair) = parse(&text[m.end()..])
    {
        return Some(pair);
    }
    parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_released_format_in_both_widths_and_languages() {
        let cases = [
            (
                "最终结论：选项A：70% 选项B：30%理解与分析：……",
                (70.0, 30.0),
            ),
            ("最终结论：选项A：７０％ 选项B：３０％", (70.0, 30.0)),
            ("最终结论:选项A:62.5% 选项B:37.5%", (62.5, 37.5)),
            ("最终结论：选项Ａ：80 % 选项Ｂ：20 %", (80.0, 20.0)),
            (
                "Final conclusion: Option A: 35% Option B: 65% Understanding and analysis: ...",
                (35.0, 65.0),
            ),
            (
                "final conclusion: option a: 100%, option b: 0%",
                (100.0, 0.0),
            ),
            ("选项A（诚实守信）：90%\n选项B（隐瞒）：10%", (90.0, 10.0)),
            ("選項A：55％ 選項B：45％", (55.0, 45.0)),
            ("最终结论：A：60% B：40%", (60.0, 40.0)),
            ("Option A support rate is 75%; Option B 25%.", (75.0, 25.0)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_support(text), Some(want), "{text}");
        }
    }

    #[test]
    fn the_conclusion_line_wins_over_earlier_numbers() {
        let t = "分析：选项A 有 10% 的风险，选项B 有 90% 的收益。\n最终结论：选项A：20% 选项B：80%";
        assert_eq!(parse_support(t), Some((20.0, 80.0)));
        // Without a usable conclusion the whole text is parsed.
        let t = "最终结论：见下。\nOption A: 40% Option B: 60%";
        assert_eq!(parse_support(t), Some((40.0, 60.0)));
    }

    #[test]
    fn unparseable_answers_give_none() {
        for text in [
            "",
            "我认为选项A更好。",
            "最终结论：选项A：[支持率，百分比形式] 选项B：[支持率，百分比形式]",
            "Option A: 70%",
            "选项A：150% 选项B：-50%",
            "a a a a a a",
        ] {
            assert_eq!(parse_support(text), None, "{text}");
        }
    }

    #[test]
    fn the_template_echo_does_not_borrow_the_next_labels_number() {
        // A's gap ends at the next label, so A has no number here.
        let t = "选项A：[支持率] 选项B：30%";
        assert_eq!(parse_support(t), None);
        assert_eq!(fold_width("Ａ：１％\u{3000}"), "A:1% ");
    }
}
