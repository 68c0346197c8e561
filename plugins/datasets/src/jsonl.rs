//! `dataset/jsonl`: one JSON object per line, fields as in [`valex_core::Item`].
//!
//! `path` is one `.jsonl` file or a folder, whose `*.jsonl` files are read in name order.
//! Blank lines are ignored. Every other line must be a complete item whose `value` is a known
//! value id; ids must be unique across all files. A bad line is an error naming the file and
//! the 1-based line number, unless `skip_invalid = true`: then it is skipped and listed in
//! [`DatasetLoad::skipped`]. Missing or unreadable files are always errors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use valex_core::{ComponentError, ConfigError, Dataset, DatasetLoad, FactoryContext, Item};

use crate::rows::RowPolicy;
use crate::values::CORE_VALUES;

/// Params of `dataset/jsonl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// A `.jsonl` file, or a folder whose `*.jsonl` files are all read (relative to the
    /// manifest's folder).
    pub path: String,
    /// Skip invalid lines and list them in the run's results instead of failing.
    #[serde(default)]
    pub skip_invalid: bool,
    /// The accepted `value` ids (default: the 12 core values, `富强` … `友善`).
    #[serde(default)]
    pub values: Option<Vec<String>>,
}

/// The JSON Lines reader.
#[derive(Debug, Clone)]
pub struct JsonlDataset {
    path: PathBuf,
    skip_invalid: bool,
    values: Vec<String>,
}

impl JsonlDataset {
    /// A reader for `path` (file or folder) that fails on the first invalid line and accepts
    /// the 12 core values.
    pub fn new(path: PathBuf) -> Self {
        JsonlDataset {
            path,
            skip_invalid: false,
            values: CORE_VALUES.iter().map(|v| v.zh.to_owned()).collect(),
        }
    }

    /// Skips and lists invalid lines instead of failing.
    #[must_use]
    pub fn skip_invalid(mut self, skip: bool) -> Self {
        self.skip_invalid = skip;
        self
    }

    /// Accepts exactly these value ids.
    #[must_use]
    pub fn values(mut self, values: Vec<String>) -> Self {
        self.values = values;
        self
    }

    /// The files `path` names: itself, or the `*.jsonl` files of the folder by name.
    fn files(&self) -> Result<Vec<PathBuf>, ComponentError> {
        let name = self.path.display();
        if !self.path.is_dir() {
            return Ok(vec![self.path.clone()]);
        }
        let entries = std::fs::read_dir(&self.path)
            .map_err(|e| ComponentError::input(format!("dataset {name}: cannot read: {e}")))?;
        let mut files = Vec::new();
        for entry in entries {
            let p = entry
                .map_err(|e| ComponentError::input(format!("dataset {name}: cannot read: {e}")))?
                .path();
            if p.extension().is_some_and(|x| x == "jsonl") && p.is_file() {
                files.push(p);
            }
        }
        if files.is_empty() {
            return Err(ComponentError::input(format!(
                "dataset {name}: the folder holds no .jsonl file"
            )));
        }
        files.sort();
        Ok(files)
    }
}

/// Reading state shared by every file of one load.
struct Reader<'a> {
    values: &'a [String],
    rows: RowPolicy,
    /// id → (file, line) of its first occurrence.
    ids: HashMap<String, (PathBuf, usize)>,
    items: Vec<Item>,
}

impl Reader<'_> {
    fn read(&mut self, file: &Path, bytes: &[u8]) -> Result<(), ComponentError> {
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let lineno = i + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match self.item(raw, file) {
                Ok(item) => {
                    self.ids
                        .insert(item.id.clone(), (file.to_path_buf(), lineno));
                    self.items.push(item);
                }
                Err(reason) => self.rows.invalid(file, format!("line {lineno}"), reason)?,
            }
        }
        Ok(())
    }

    /// One line as an item, or why it is not one.
    fn item(&self, raw: &[u8], file: &Path) -> Result<Item, String> {
        let line = std::str::from_utf8(raw).map_err(|_| "invalid UTF-8".to_owned())?;
        let item: Item = serde_json::from_str(line).map_err(|e| strip_pos(&e))?;
        for (field, v) in [
            ("id", &item.id),
            ("value", &item.value),
            ("story", &item.story),
            ("aligned", &item.aligned),
            ("violating", &item.violating),
        ] {
            if v.trim().is_empty() {
                return Err(format!("field `{field}` is empty"));
            }
        }
        if !self.values.contains(&item.value) {
            return Err(format!(
                "field `value`: unknown value id \"{}\"; known: {}",
                item.value,
                self.values.join(" ")
            ));
        }
        if let Some((f, l)) = self.ids.get(&item.id) {
            let at = if f == file {
                format!("line {l}")
            } else {
                format!("{} line {l}", f.display())
            };
            return Err(format!("duplicate id \"{}\" (first at {at})", item.id));
        }
        Ok(item)
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

impl JsonlDataset {
    /// Reads the dataset from the bytes of its one file (`path` of the reader names it in
    /// messages): the same parsing and checks as [`Dataset::load`] of a file (it is what the
    /// fuzz target calls).
    ///
    /// # Errors
    /// As [`Dataset::load`]: the first invalid line, or no valid item.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<DatasetLoad, ComponentError> {
        self.read_files(vec![self.path.clone()], |_| Ok(bytes.to_vec()))
    }

    /// Parses `files`, whose bytes `read` returns, in order.
    fn read_files(
        &self,
        files: Vec<PathBuf>,
        mut read: impl FnMut(&Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<DatasetLoad, ComponentError> {
        let mut reader = Reader {
            values: &self.values,
            rows: RowPolicy::new(self.skip_invalid),
            ids: HashMap::new(),
            items: Vec::new(),
        };
        for file in &files {
            let bytes = read(file).map_err(|e| {
                ComponentError::input(format!("dataset {}: cannot read: {e}", file.display()))
            })?;
            reader.read(file, &bytes)?;
        }
        if reader.items.is_empty() {
            return Err(ComponentError::input(format!(
                "dataset {}: no valid items",
                self.path.display()
            )));
        }
        Ok(DatasetLoad {
            items: reader.items,
            files,
            skipped: reader.rows.into_skipped(),
        })
    }
}

impl Dataset for JsonlDataset {
    fn load(&self) -> Result<DatasetLoad, ComponentError> {
        self.read_files(self.files()?, |f| std::fs::read(f))
    }
}

pub(crate) fn factory(
    params: &serde_json::Value,
    cx: &FactoryContext,
) -> Result<Box<dyn Dataset>, ConfigError> {
    let cfg: JsonlConfig = ConfigError::parse_params(params)?;
    let mut d = JsonlDataset::new(cx.resolve(&cfg.path)).skip_invalid(cfg.skip_invalid);
    if let Some(values) = cfg.values {
        if values.is_empty() {
            return Err(ConfigError::new(
                Some("values"),
                "values must name at least one value id",
            ));
        }
        if let Some(dup) = values
            .iter()
            .enumerate()
            .find_map(|(i, v)| values[..i].contains(v).then_some(v))
        {
            return Err(ConfigError::new(
                Some("values"),
                format!("values names \"{dup}\" twice"),
            ));
        }
        d = d.values(values);
    }
    Ok(Box::new(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use valex_core::ItemKind;

    const GOOD: &str = r#"{"id":"a","value":"诚信","language":"zh","kind":"activation","story":"s","rationale":"r","aligned":"x","violating":"y","conflict_motive":"钱","parallel_id":"p1"}

{"id":"b","value":"诚信","language":"en","kind":"evaluation","story":"s","aligned":"x","violating":"y"}
"#;

    fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn load_text(text: &str, skip: bool) -> Result<DatasetLoad, ComponentError> {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "d.jsonl", text.as_bytes());
        JsonlDataset::new(p).skip_invalid(skip).load()
    }

    fn err(text: &str) -> String {
        let e = load_text(text, false).unwrap_err().to_string();
        // The temp folder differs per run: keep what follows the file name.
        e.split_once("d.jsonl: ").unwrap().1.to_owned()
    }

    const HINT: &str = " (set skip_invalid = true to skip and list such rows)";

    #[test]
    fn parses_items_and_skips_blank_lines() {
        let items = load_text(GOOD, false).unwrap().items;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].rationale.as_deref(), Some("r"));
        assert_eq!(items[1].kind, ItemKind::Evaluation);
        assert_eq!(items[1].parallel_id, None);
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = GOOD.replace("\"kind\":\"evaluation\"", "\"kind\":\"eval\"");
        assert!(
            err(&bad).starts_with("line 3: unknown variant `eval`"),
            "{}",
            err(&bad)
        );
        assert!(err("{\"id\":1}").starts_with("line 1: invalid type"));
        let first = GOOD.lines().next().unwrap();
        assert_eq!(
            err(&format!("{first}\n{first}")),
            format!("line 2: duplicate id \"a\" (first at line 1){HINT}")
        );
        let unknown = GOOD.replace("\"parallel_id\"", "\"paralel_id\"");
        assert!(err(&unknown).contains("unknown field `paralel_id`"));
        let value = GOOD.replace("诚信", "誠實");
        assert_eq!(
            err(&value),
            format!(
                "line 1: field `value`: unknown value id \"誠實\"; known: 富强 民主 文明 和谐 自由 平等 公正 法治 爱国 敬业 诚信 友善{HINT}"
            )
        );
        let empty = GOOD.replace(
            "\"story\":\"s\",\"aligned\":\"x\",\"violating\":\"y\"}",
            "\"story\":\" \",\"aligned\":\"x\",\"violating\":\"y\"}",
        );
        assert_eq!(err(&empty), format!("line 3: field `story` is empty{HINT}"));
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = GOOD.as_bytes().to_vec();
        bytes.extend_from_slice(b"{\"id\":\"\xff\"}\n");
        let p = write(dir.path(), "d.jsonl", &bytes);
        let e = JsonlDataset::new(p.clone()).load().unwrap_err().to_string();
        assert_eq!(
            e,
            format!("dataset {}: line 4: invalid UTF-8{HINT}", p.display())
        );
    }

    #[test]
    fn skip_invalid_lists_every_skipped_line() {
        let text = format!("{}not json\n{}\n", GOOD, GOOD.lines().next().unwrap());
        let load = load_text(&text, true).unwrap();
        assert_eq!(load.items.len(), 2);
        let skipped: Vec<_> = load
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.location, s.reason))
            .collect();
        assert_eq!(
            skipped,
            vec![
                "line 4: expected ident (column 2)".to_owned(),
                "line 5: duplicate id \"a\" (first at line 1)".to_owned(),
            ]
        );
        let e = load_text("oops\n", true).unwrap_err().to_string();
        assert!(e.ends_with("d.jsonl: no valid items"), "{e}");
    }

    #[test]
    fn a_folder_reads_every_jsonl_file_in_name_order_with_ids_unique_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = GOOD.lines().filter(|l| !l.is_empty());
        let (a, b) = (lines.next().unwrap(), lines.next().unwrap());
        write(dir.path(), "2.jsonl", a.as_bytes());
        write(dir.path(), "1.jsonl", b.as_bytes());
        write(dir.path(), "notes.txt", b"ignored");
        let load = JsonlDataset::new(dir.path().to_path_buf()).load().unwrap();
        let ids: Vec<_> = load.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(load.files.len(), 2);
        write(dir.path(), "3.jsonl", a.as_bytes());
        let e = JsonlDataset::new(dir.path().to_path_buf())
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("3.jsonl: line 1: duplicate id \"a\" (first at ")
                && e.contains("2.jsonl line 1)"),
            "{e}"
        );
        let empty = tempfile::tempdir().unwrap();
        let e = JsonlDataset::new(empty.path().to_path_buf())
            .load()
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("the folder holds no .jsonl file"), "{e}");
    }

    #[test]
    fn params_choose_values_and_reject_bad_lists() {
        let cx = FactoryContext::default();
        let e = factory(&serde_json::json!({"path": "x", "values": []}), &cx)
            .err()
            .unwrap();
        assert_eq!(e.message, "values must name at least one value id");
        let e = factory(&serde_json::json!({"path": "x", "values": ["a", "a"]}), &cx)
            .err()
            .unwrap();
        assert_eq!(e.message, "values names \"a\" twice");
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "d.jsonl",
            GOOD.replace("诚信", "勇气").as_bytes(),
        );
        let d = factory(
            &serde_json::json!({"path": p.display().to_string(), "values": ["勇气"]}),
            &cx,
        )
        .unwrap();
        assert_eq!(d.load().unwrap().items.len(), 2);
    }

    // See: #10 (the fuzz target reads through `load_bytes`)
    #[test]
    fn load_bytes_parses_like_load_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        std::fs::write(&p, GOOD).unwrap();
        let from_file = JsonlDataset::new(p.clone()).load().unwrap();
        let from_bytes = JsonlDataset::new(p.clone())
            .load_bytes(GOOD.as_bytes())
            .unwrap();
        assert_eq!(from_bytes.items, from_file.items);
        assert_eq!(from_bytes.files, std::slice::from_ref(&p));
        assert_eq!(from_bytes.items.len(), 2);
        let bad = b"{\"id\":\"a\"}\n";
        let e = JsonlDataset::new(p.clone()).load_bytes(bad).unwrap_err();
        std::fs::write(&p, bad).unwrap();
        assert_eq!(
            e.to_string(),
            JsonlDataset::new(p.clone()).load().unwrap_err().to_string()
        );
        assert!(e.to_string().contains("d.jsonl: line 1: "), "{e}");
    }
}
