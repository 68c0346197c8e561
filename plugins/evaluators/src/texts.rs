//! Prompt texts per language, inline or from files, shared by the evaluators.
//!
//! Owns [`LangStrings`] (one optional string per language, used both for inline texts and
//! for file paths), the reading of a text file relative to the manifest's folder, the choice
//! between an inline text, a file and a default, and the placeholder check of a prompt
//! template.

use serde::Deserialize;
use valex_core::{ConfigError, FactoryContext};

/// One optional string per language: inline texts (`system`, `template`) or file paths
/// relative to the manifest's folder (`*_file`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LangStrings {
    /// Chinese.
    #[serde(default)]
    pub zh: Option<String>,
    /// English.
    #[serde(default)]
    pub en: Option<String>,
}

impl LangStrings {
    /// The string of `lang` (`"zh"` or `"en"`).
    pub fn get(&self, lang: &str) -> Option<&String> {
        match lang {
            "zh" => self.zh.as_ref(),
            _ => self.en.as_ref(),
        }
    }
}

/// The text of the file `file` (relative to the manifest's folder), one trailing newline
/// dropped; errors name `key` (`template_file.zh`).
///
/// # Errors
/// The file cannot be read.
pub(crate) fn read_text_file(
    cx: &FactoryContext,
    key: &str,
    file: &str,
) -> Result<String, ConfigError> {
    let path = cx.resolve(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigError::new(
            Some(key),
            format!("cannot read template file {}: {e}", path.display()),
        )
    })?;
    Ok(text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text)
        .to_owned())
}

/// The error for a language given both inline (`what.lang`) and as a file
/// (`what_file.lang`).
pub(crate) fn both_given(what: &str, lang: &str) -> ConfigError {
    ConfigError::new(
        Some(&format!("{what}_file.{lang}")),
        format!("set {what}.{lang} or {what}_file.{lang}, not both"),
    )
}

/// `[zh, en]`: for each language the inline text, the file's text or the default.
///
/// # Errors
/// A language given both ways, or an unreadable file.
pub(crate) fn per_language(
    cx: &FactoryContext,
    what: &str,
    inline: Option<&LangStrings>,
    files: &LangStrings,
    defaults: [fn() -> String; 2],
) -> Result<[String; 2], ConfigError> {
    let pick = |lang: &str, default: fn() -> String| match (
        inline.and_then(|s| s.get(lang)),
        files.get(lang),
    ) {
        (Some(_), Some(_)) => Err(both_given(what, lang)),
        (Some(t), None) => Ok(t.clone()),
        (None, Some(f)) => read_text_file(cx, &format!("{what}_file.{lang}"), f),
        (None, None) => Ok(default()),
    };
    Ok([pick("zh", defaults[0])?, pick("en", defaults[1])?])
}

/// Checks that the `[zh, en]` templates hold `{story}`, `{option_a}` and `{option_b}`.
///
/// # Errors
/// The first template without one of them, under `template.<lang>`.
pub(crate) fn check_placeholders(templates: [&str; 2]) -> Result<(), ConfigError> {
    for (lang, t) in ["zh", "en"].iter().zip(templates) {
        for ph in ["{story}", "{option_a}", "{option_b}"] {
            if !t.contains(ph) {
                return Err(ConfigError::new(
                    Some(&format!("template.{lang}")),
                    format!("template.{lang} lacks the placeholder {ph}"),
                ));
            }
        }
    }
    Ok(())
}
