//! `dataset/jsonl`: one JSON object per line, fields as in [`valex_core::Item`].
//!
//! Blank lines are skipped. Every other line must be a complete item; ids must be unique.
//! Errors name the file and the 1-based line number.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;
use valex_core::{ComponentError, ConfigError, Dataset, DatasetLoad, FactoryContext, Item};

/// Params of `dataset/jsonl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// Path of the `.jsonl` file (relative to the manifest's folder).
    pub path: String,
}

/// The JSON Lines reader.
#[derive(Debug, Clone)]
pub struct JsonlDataset {
    path: PathBuf,
}

impl JsonlDataset {
    /// A reader for `path`.
    pub fn new(path: PathBuf) -> Self {
        JsonlDataset { path }
    }

    /// Parses JSON Lines text; `name` is used in error messages.
    ///
    /// # Errors
    /// The first malformed line, as `<name>: line N: <problem>`.
    pub fn parse(text: &str, name: &str) -> Result<Vec<Item>, ComponentError> {
        let mut items = Vec::new();
        let mut ids = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let item: Item = serde_json::from_str(line).map_err(|e| {
                ComponentError::input(format!("dataset {name}: line {lineno}: {}", strip_pos(&e)))
            })?;
            let bad = |what: &str| {
                ComponentError::input(format!("dataset {name}: line {lineno}: {what}"))
            };
            for (field, v) in [
                ("id", &item.id),
                ("value", &item.value),
                ("story", &item.story),
                ("aligned", &item.aligned),
                ("violating", &item.violating),
            ] {
                if v.trim().is_empty() {
                    return Err(bad(&format!("field `{field}` is empty")));
                }
            }
            if !ids.insert(item.id.clone()) {
                return Err(bad(&format!("duplicate id \"{}\"", item.id)));
            }
            items.push(item);
        }
        Ok(items)
    }
}

/// serde_json appends " at line 1 column N"; the line is ours, keep only the column.
fn strip_pos(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &msg[..i], e.column()),
        None => msg,
    }
}

impl Dataset for JsonlDataset {
    fn load(&self) -> Result<DatasetLoad, ComponentError> {
        let name = self.path.display().to_string();
        let bytes = std::fs::read(&self.path)
            .map_err(|e| ComponentError::input(format!("dataset {name}: cannot read: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
            ComponentError::input(format!("dataset {name}: line {line}: invalid UTF-8"))
        })?;
        let items = Self::parse(&text, &name)?;
        if items.is_empty() {
            return Err(ComponentError::input(format!("dataset {name}: no items")));
        }
        Ok(DatasetLoad {
            items,
            files: vec![self.path.clone()],
        })
    }
}

pub(crate) fn factory(
    params: &serde_json::Value,
    cx: &FactoryContext,
) -> Result<Box<dyn Dataset>, ConfigError> {
    let cfg: JsonlConfig = ConfigError::parse_params(params)?;
    Ok(Box::new(JsonlDataset::new(cx.resolve(&cfg.path))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use valex_core::ItemKind;

    const GOOD: &str = r#"{"id":"a","value":"诚信","language":"zh","kind":"activation","story":"s","rationale":"r","aligned":"x","violating":"y","conflict_motive":"钱","parallel_id":"p1"}

{"id":"b","value":"诚信","language":"en","kind":"evaluation","story":"s","aligned":"x","violating":"y"}
"#;

    #[test]
    fn parses_items_and_skips_blank_lines() {
        let items = JsonlDataset::parse(GOOD, "d.jsonl").unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].rationale.as_deref(), Some("r"));
        assert_eq!(items[1].kind, ItemKind::Evaluation);
        assert_eq!(items[1].parallel_id, None);
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = GOOD.replace("\"kind\":\"evaluation\"", "\"kind\":\"eval\"");
        let e = JsonlDataset::parse(&bad, "d.jsonl")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("dataset d.jsonl: line 3: unknown variant `eval`"),
            "{e}"
        );
        let e = JsonlDataset::parse("{\"id\":1}", "d.jsonl")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("dataset d.jsonl: line 1: invalid type"),
            "{e}"
        );
        let dup = format!(
            "{}\n{}",
            GOOD.lines().next().unwrap(),
            GOOD.lines().next().unwrap()
        );
        let e = JsonlDataset::parse(&dup, "d.jsonl")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "dataset d.jsonl: line 2: duplicate id \"a\"");
        let unknown = GOOD.replace("\"parallel_id\"", "\"paralel_id\"");
        let e = JsonlDataset::parse(&unknown, "d.jsonl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `paralel_id`"), "{e}");
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        let mut bytes = GOOD.as_bytes().to_vec();
        bytes.extend_from_slice(b"{\"id\":\"\xff\"}\n");
        std::fs::write(&p, bytes).unwrap();
        let e = JsonlDataset::new(p.clone()).load().unwrap_err().to_string();
        assert_eq!(e, format!("dataset {}: line 4: invalid UTF-8", p.display()));
    }
}
