//! Chat templates: HF `chat_template` (Jinja) rendered with minijinja, and tokenization with
//! offsets mapped back to the caller's text.
//!
//! Owns [`ChatTemplate`] (read from `tokenizer_config.json` or `chat_template.jinja`) and the
//! plain encode path. With a template, a prompt becomes the content of one user message
//! (after an optional system message), the template is rendered with
//! `add_generation_prompt = true` exactly as HF `apply_chat_template` does (Jinja with
//! `trim_blocks` and `lstrip_blocks`, `bos_token`/`eos_token` from the tokenizer config,
//! `raise_exception`, Python string methods), the reply is appended, and the whole text is
//! tokenized without adding special tokens (the template writes them). Offsets of tokens
//! from the prompt and the reply point into `prompt + reply`; template tokens get `(0, 0)`.

use std::path::Path;

use minijinja::{Environment, ErrorKind, context};
use tokenizers::Tokenizer;
use valex_core::{ComponentError, Encoding};

/// Name of the template in its environment.
const NAME: &str = "chat";

/// A parsed chat template with the special tokens it refers to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    system: Option<String>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

/// The files a model directory's chat template may come from, in lookup order.
pub const TEMPLATE_FILES: [&str; 2] = ["chat_template.jinja", "tokenizer_config.json"];

/// A special token in tokenizer_config.json: a string or `{"content": ...}`.
fn token_text(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(o) => o
            .get("content")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        None => String::new(),
    }
}

impl ChatTemplate {
    /// Reads the template of a model directory: `chat_template.jinja` if present, else the
    /// `chat_template` key of `tokenizer_config.json` (a string, or a list of named templates
    /// of which `default` is used). Special tokens come from `tokenizer_config.json`.
    ///
    /// # Errors
    /// No template, unreadable or malformed files, or a template that does not parse.
    pub fn from_dir(dir: &Path, system: Option<String>) -> Result<Self, ComponentError> {
        let cfg_path = dir.join("tokenizer_config.json");
        let cfg: serde_json::Value = match std::fs::read(&cfg_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ComponentError::input(format!(
                    "tokenizer config {} is not valid JSON: {e}",
                    cfg_path.display()
                ))
            })?,
            Err(_) => serde_json::Value::Null,
        };
        let jinja = dir.join("chat_template.jinja");
        let (label, source) = if jinja.is_file() {
            let s = std::fs::read_to_string(&jinja).map_err(|e| {
                ComponentError::input(format!(
                    "chat template {} could not be read",
                    jinja.display()
                ))
                .with_source(e)
            })?;
            (format!("chat template {}", jinja.display()), s)
        } else {
            let label = format!("tokenizer config {}", cfg_path.display());
            let source = match cfg.get("chat_template") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Array(list)) => list
                    .iter()
                    .find(|t| t.get("name").and_then(serde_json::Value::as_str) == Some("default"))
                    .and_then(|t| t.get("template"))
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| {
                        ComponentError::input(format!(
                            "{label}: key chat_template lists no template named \"default\""
                        ))
                    })?
                    .to_owned(),
                _ => {
                    return Err(ComponentError::input(format!(
                        "model directory {} has no chat template (no chat_template.jinja and no \
                         key chat_template in tokenizer_config.json); set chat_template = false",
                        dir.display()
                    )));
                }
            };
            (label, source)
        };
        Self::new(
            &label,
            source,
            token_text(cfg.get("bos_token")),
            token_text(cfg.get("eos_token")),
            system,
        )
    }

    /// Parses `source`; `label` names where it came from in errors.
    ///
    /// # Errors
    /// The template does not parse.
    pub fn new(
        label: &str,
        source: String,
        bos_token: String,
        eos_token: String,
        system: Option<String>,
    ) -> Result<Self, ComponentError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| ComponentError::stage("jinja syntax config").with_source(e))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template_owned(NAME, source).map_err(|e| {
            ComponentError::input(format!("{label}: chat template does not parse: {e}"))
        })?;
        Ok(ChatTemplate {
            env,
            bos_token,
            eos_token,
            system,
        })
    }

    /// Renders one user turn holding `content`, with the generation prompt.
    ///
    /// # Errors
    /// The template raises or fails.
    pub fn render(&self, content: &str) -> Result<String, ComponentError> {
        self.render_with(self.system.as_deref(), content)
    }

    /// The end-of-sequence token text from the tokenizer config (may be empty).
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders an optional system message (instead of the configured one) and one user turn
    /// holding `content`, with the generation prompt.
    ///
    /// # Errors
    /// The template raises or fails.
    pub fn render_with(
        &self,
        system: Option<&str>,
        content: &str,
    ) -> Result<String, ComponentError> {
        let mut messages = Vec::new();
        if let Some(s) = system {
            messages.push(context! { role => "system", content => s });
        }
        messages.push(context! { role => "user", content => content });
        let tmpl = self
            .env
            .get_template(NAME)
            .map_err(|e| ComponentError::stage("chat template missing").with_source(e))?;
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        })
        .map_err(|e| ComponentError::input(format!("chat template failed to render: {e}")))
    }

    /// Tokenizes `prompt` as the user turn followed by `reply` after the assistant header.
    /// The user content is `prompt` without surrounding whitespace. Offsets point into
    /// `prompt + reply`; tokens written by the template get `(0, 0)`.
    ///
    /// # Errors
    /// The template fails or changes the message content (offsets could not be mapped), or
    /// the tokenizer rejects the text.
    pub fn encode(
        &self,
        tokenizer: &Tokenizer,
        prompt: &str,
        reply: &str,
    ) -> Result<Encoding, ComponentError> {
        let content = prompt.trim();
        let lead = prompt.len() - prompt.trim_start().len();
        // Render around a marker to find where the content goes, then check that the real
        // rendering is exactly the marker's prefix + content + suffix.
        const MARK: &str = "\u{E000}valex-content\u{E001}";
        let unmappable = || {
            ComponentError::input(
                "chat template does not write the message content unchanged, so token offsets \
                 cannot be mapped back to the prompt; set chat_template = false",
            )
        };
        let marked = self.render(MARK)?;
        let at = marked.find(MARK).ok_or_else(unmappable)?;
        let (prefix, suffix) = (&marked[..at], &marked[at + MARK.len()..]);
        let rendered = self.render(content)?;
        if rendered.len() != prefix.len() + content.len() + suffix.len()
            || !rendered.starts_with(prefix)
            || !rendered.ends_with(suffix)
        {
            return Err(unmappable());
        }
        let full = format!("{rendered}{reply}");
        let enc = encode_plain(tokenizer, &full, false)?;
        let content_at = prefix.len();
        let reply_at = rendered.len();
        let map = |(s, e): (usize, usize)| -> (usize, usize) {
            let clip = |lo: usize, hi: usize, shift_to: usize| -> Option<(usize, usize)> {
                let (a, b) = (s.max(lo), e.min(hi));
                (b > a).then(|| (a - lo + shift_to, b - lo + shift_to))
            };
            clip(content_at, content_at + content.len(), lead)
                .or_else(|| clip(reply_at, reply_at + reply.len(), prompt.len()))
                .unwrap_or((0, 0))
        };
        Ok(Encoding {
            offsets: enc.offsets.into_iter().map(map).collect(),
            ids: enc.ids,
        })
    }
}

/// Tokenizes `text` (adding the tokenizer's special tokens when `special`), byte offsets.
///
/// # Errors
/// The tokenizer rejects the text.
pub fn encode_plain(
    tokenizer: &Tokenizer,
    text: &str,
    special: bool,
) -> Result<Encoding, ComponentError> {
    let enc = tokenizer.encode(text, special).map_err(|e| {
        let mut err =
            ComponentError::input(format!("tokenizer rejected a text of {} bytes", text.len()));
        err.source = Some(e);
        err
    })?;
    Ok(Encoding {
        ids: enc.get_ids().to_vec(),
        offsets: enc.get_offsets().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Qwen2.5's template, shortened to the no-tools branch.
    pub const QWEN_LIKE: &str = "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}{%- if message.role == 'user' %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

    fn template(src: &str, system: Option<&str>) -> ChatTemplate {
        ChatTemplate::new(
            "test",
            src.to_owned(),
            "<s>".into(),
            "</s>".into(),
            system.map(str::to_owned),
        )
        .unwrap()
    }

    #[test]
    fn renders_user_turn_with_generation_prompt_and_optional_system() {
        let t = template(QWEN_LIKE, None);
        assert_eq!(
            t.render("hi").unwrap(),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        let t = template(QWEN_LIKE, Some("Be brief."));
        assert!(
            t.render("hi")
                .unwrap()
                .starts_with("<|im_start|>system\nBe brief.<|im_end|>")
        );
    }

    #[test]
    fn bos_token_python_methods_and_raise_exception_work() {
        let t = template(
            "{{ bos_token }}{% for m in messages %}{{ m['content'].strip().upper() }}{% endfor %}",
            None,
        );
        assert_eq!(t.render("  ab ").unwrap(), "<s>AB");
        let t = template("{{ raise_exception('only user turns') }}", None);
        let e = t.render("x").unwrap_err().to_string();
        assert!(e.contains("only user turns"), "{e}");
        let e = ChatTemplate::new("cfg", "{% if %}".into(), String::new(), String::new(), None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cfg: chat template does not parse"), "{e}");
    }

    #[test]
    fn template_that_rewrites_content_is_refused_for_offsets() {
        let tok = crate::tests_support::word_tokenizer(&["A", "B"]);
        let t = template(
            "{% for m in messages %}{{ m['content'].upper() }}{% endfor %}",
            None,
        );
        let e = t.encode(&tok, "a b", "").unwrap_err().to_string();
        assert!(e.contains("cannot be mapped back to the prompt"), "{e}");
        // Content rewritten only for some inputs (the marker survives): caught by the check.
        let t = template(
            "{% for m in messages %}{{ m['content'].replace('a', 'A') }}{% endfor %}",
            None,
        );
        let e = t.encode(&tok, "a b", "").unwrap_err().to_string();
        assert!(e.contains("cannot be mapped back to the prompt"), "{e}");
    }

    #[test]
    fn offsets_point_into_prompt_plus_reply() {
        let tok = crate::tests_support::word_tokenizer(&["<u>", "</u>", "cat", "sat", "dog"]);
        let t = template("<u> {{ messages[0]['content'] }} </u> ", None);
        // Rendered: "<u> cat sat </u> " + "dog"; the user content is the trimmed prompt.
        let e = t.encode(&tok, " cat sat ", "dog").unwrap();
        assert_eq!(e.ids, [0, 2, 3, 1, 4]);
        assert_eq!(e.offsets, [(0, 0), (1, 4), (5, 8), (0, 0), (9, 12)]);
        assert_eq!(&" cat sat dog"[9..12], "dog");
    }
}
