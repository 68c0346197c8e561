//! Prompt templates of `[record] template`: `{story}\nReason: {rationale}`.
//!
//! Placeholders are `{story}`, `{rationale}`, `{aligned}`, `{violating}`, `{value}` (the
//! value id), `{value_name}` (the value's name in the item's language) and
//! `{conflict_motive}`; a literal brace is written `{{` or `}}`. This module checks templates (at load time) and
//! renders them, reporting the byte span of every substituted placeholder so a runner can
//! map `positions = "story"` onto tokens. It depends on nothing but std.

use std::ops::Range;

use thiserror::Error;

/// The placeholders a record template may use.
pub const PLACEHOLDERS: [&str; 7] = [
    "story",
    "rationale",
    "aligned",
    "violating",
    "value",
    "value_name",
    "conflict_motive",
];

/// A template that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// `{name}` with a name that is not a placeholder.
    ///
    /// Resolution: use one of [`PLACEHOLDERS`], or write `{{` for a literal brace.
    #[error(
        "unknown placeholder {{{name}}}; allowed: {{story}} {{rationale}} {{aligned}} {{violating}} {{value}} {{value_name}} {{conflict_motive}} (write {{{{ and }}}} for literal braces)"
    )]
    UnknownPlaceholder {
        /// The name between the braces.
        name: String,
    },
    /// A `{` without its `}`.
    ///
    /// Resolution: close the placeholder, or write `{{` for a literal brace.
    #[error("unclosed {{ at byte {at} (write {{{{ for a literal brace)")]
    Unclosed {
        /// Byte offset of the `{`.
        at: usize,
    },
    /// A `}` that closes nothing.
    ///
    /// Resolution: write `}}` for a literal brace.
    #[error("unmatched }} at byte {at} (write }}}} for a literal brace)")]
    Unmatched {
        /// Byte offset of the `}`.
        at: usize,
    },
    /// The caller has no text for a placeholder the template uses.
    ///
    /// Resolution: supply the field (an evaluation item has no rationale, for example).
    #[error("no text for placeholder {{{name}}}")]
    MissingValue {
        /// The placeholder.
        name: String,
    },
}

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text (braces already unescaped).
    Text(String),
    /// A placeholder, one of [`PLACEHOLDERS`].
    Placeholder(&'static str),
}

/// Splits `template` into literal text and placeholders.
///
/// # Errors
/// Unknown placeholders and unbalanced braces.
pub fn parse_template(template: &str) -> Result<Vec<Segment>, TemplateError> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = template.char_indices().peekable();
    while let Some((i, c)) = rest.next() {
        match c {
            '{' if rest.peek().map(|&(_, n)| n) == Some('{') => {
                rest.next();
                text.push('{');
            }
            '}' if rest.peek().map(|&(_, n)| n) == Some('}') => {
                rest.next();
                text.push('}');
            }
            '{' => {
                let Some(len) = template[i + 1..].find('}') else {
                    return Err(TemplateError::Unclosed { at: i });
                };
                let name = &template[i + 1..i + 1 + len];
                let Some(known) = PLACEHOLDERS.iter().find(|p| **p == name) else {
                    return Err(TemplateError::UnknownPlaceholder {
                        name: name.to_owned(),
                    });
                };
                if !text.is_empty() {
                    out.push(Segment::Text(std::mem::take(&mut text)));
                }
                out.push(Segment::Placeholder(known));
                while rest.next_if(|&(j, _)| j <= i + 1 + len).is_some() {}
            }
            '}' => return Err(TemplateError::Unmatched { at: i }),
            _ => text.push(c),
        }
    }
    if !text.is_empty() {
        out.push(Segment::Text(text));
    }
    Ok(out)
}

/// A rendered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The full text.
    pub text: String,
    /// For every substituted placeholder, in order: its name and the byte range of the
    /// substituted text inside [`Rendered::text`].
    pub spans: Vec<(&'static str, Range<usize>)>,
}

impl Rendered {
    /// Byte ranges of every occurrence of `placeholder`.
    pub fn spans_of(&self, placeholder: &str) -> Vec<Range<usize>> {
        self.spans
            .iter()
            .filter(|(p, _)| *p == placeholder)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

/// Renders `template`, asking `field` for the text of each placeholder.
///
/// # Errors
/// A malformed template, or `field` returning `None` for a placeholder the template uses.
pub fn render_template<'a>(
    template: &str,
    field: impl Fn(&str) -> Option<&'a str>,
) -> Result<Rendered, TemplateError> {
    let mut text = String::new();
    let mut spans = Vec::new();
    for seg in parse_template(template)? {
        match seg {
            Segment::Text(t) => text.push_str(&t),
            Segment::Placeholder(name) => {
                let value = field(name).ok_or_else(|| TemplateError::MissingValue {
                    name: name.to_owned(),
                })?;
                let start = text.len();
                text.push_str(value);
                spans.push((name, start..text.len()));
            }
        }
    }
    Ok(Rendered { text, spans })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders_with_spans_and_escaped_braces() {
        let r = render_template("{{x}} {story}\nReason: {rationale}}}", |name| match name {
            "story" => Some("Once."),
            "rationale" => Some("Because."),
            _ => None,
        })
        .unwrap();
        assert_eq!(r.text, "{x} Once.\nReason: Because.}");
        assert_eq!(&r.text[r.spans_of("story")[0].clone()], "Once.");
        assert_eq!(&r.text[r.spans_of("rationale")[0].clone()], "Because.");
        assert_eq!(r.spans.len(), 2);
    }

    #[test]
    fn handles_multibyte_text_around_placeholders() {
        let r = render_template("{story}\n理由：{rationale}", |n| {
            Some(if n == "story" { "故事" } else { "因为" })
        })
        .unwrap();
        assert_eq!(r.text, "故事\n理由：因为");
        assert_eq!(&r.text[r.spans_of("rationale")[0].clone()], "因为");
    }

    #[test]
    fn rejects_unknown_and_unbalanced_placeholders() {
        assert_eq!(
            parse_template("{stroy}").unwrap_err(),
            TemplateError::UnknownPlaceholder {
                name: "stroy".into()
            }
        );
        assert_eq!(
            parse_template("a {story").unwrap_err(),
            TemplateError::Unclosed { at: 2 }
        );
        assert_eq!(
            parse_template("a } b").unwrap_err(),
            TemplateError::Unmatched { at: 2 }
        );
        insta::assert_snapshot!(
            parse_template("{x}").unwrap_err().to_string(),
            @"unknown placeholder {x}; allowed: {story} {rationale} {aligned} {violating} {value} {value_name} {conflict_motive} (write {{ and }} for literal braces)"
        );
    }

    #[test]
    fn reports_missing_field_text() {
        let e = render_template("{aligned}", |_| None).unwrap_err();
        assert_eq!(e.to_string(), "no text for placeholder {aligned}");
    }
}
