//! `dataset/c-voice`: the released C-voice files, read as published (xlsx, with calamine).
//!
//! Layout of the folder `path` (../shared/METHOD.md §1.3):
//! - activation set: one `<value>-final.xlsx` per value; its first sheet has the header row
//!   `冲突类型 决策困境 选择A 选择B` (conflict label "V vs X", dilemma, aligned option starting
//!   "A.", violating option starting "B."); the "A." / "B." prefixes are stripped;
//! - evaluation set: `test-zh-200.xlsx` with one sheet per value, header row
//!   `Type Context Action1 Action2` (label, first-person story, aligned, violating).
//!
//! Columns are found by their header, so their order and extra columns do not matter.
//! Every item is Chinese, has no rationale and no translation; its value comes from the file
//! or sheet name, its conflict motive from the label (see [`parse_label`]). A row with an
//! empty cell, a wrong option prefix or a label that names another value is an error naming
//! file, sheet, row and column, unless `skip_invalid = true` (then it is skipped and listed).
//! Missing files, sheets or columns and unknown value ids are always errors. Rows whose
//! cells are all empty are not rows (like blank lines in JSON Lines).

use std::path::{Path, PathBuf};

use calamine::{Data, Range, Reader, Xlsx, open_workbook};
use serde::Deserialize;
use valex_core::{
    ComponentError, ConfigError, Dataset, DatasetLoad, FactoryContext, Item, ItemKind, Language,
};

use crate::rows::RowPolicy;
use crate::values::{CORE_VALUES, core_value, core_value_list};

/// File name suffix of the activation files (`富强-final.xlsx`).
pub const ACTIVATION_SUFFIX: &str = "-final.xlsx";
/// File name of the evaluation workbook.
pub const EVALUATION_FILE: &str = "test-zh-200.xlsx";
/// Header names of the activation columns: label, dilemma, aligned, violating.
pub const ACTIVATION_COLUMNS: [&str; 4] = ["冲突类型", "决策困境", "选择A", "选择B"];
/// Header names of the evaluation columns: label, story, aligned, violating.
pub const EVALUATION_COLUMNS: [&str; 4] = ["Type", "Context", "Action1", "Action2"];

/// Which part of C-voice to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// The `<value>-final.xlsx` files.
    Activation,
    /// `test-zh-200.xlsx`.
    Evaluation,
}

fn both_parts() -> Vec<Part> {
    vec![Part::Activation, Part::Evaluation]
}

/// Params of `dataset/c-voice`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CVoiceConfig {
    /// The folder holding the released files (relative to the manifest's folder).
    pub path: String,
    /// Parts to read (default both).
    #[serde(default = "both_parts")]
    pub parts: Vec<Part>,
    /// Values to read, by Chinese name (default all 12).
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// Skip invalid rows and list them in the run's results instead of failing.
    #[serde(default)]
    pub skip_invalid: bool,
}

/// The C-voice reader.
#[derive(Debug, Clone)]
pub struct CVoiceDataset {
    dir: PathBuf,
    parts: Vec<Part>,
    values: Vec<&'static str>,
    skip_invalid: bool,
}

impl CVoiceDataset {
    /// A reader of both parts and all 12 values in `dir`, failing on invalid rows.
    pub fn new(dir: PathBuf) -> Self {
        CVoiceDataset {
            dir,
            parts: both_parts(),
            values: CORE_VALUES.iter().map(|v| v.zh).collect(),
            skip_invalid: false,
        }
    }

    /// Reads only `parts`.
    #[must_use]
    pub fn parts(mut self, parts: Vec<Part>) -> Self {
        self.parts = parts;
        self
    }

    /// Skips and lists invalid rows instead of failing.
    #[must_use]
    pub fn skip_invalid(mut self, skip: bool) -> Self {
        self.skip_invalid = skip;
        self
    }

    /// Reads only these values (simplified Chinese names, known core values).
    ///
    /// # Errors
    /// A name that is not a core value.
    pub fn values(mut self, values: &[String]) -> Result<Self, ConfigError> {
        let mut out = Vec::new();
        for v in values {
            match core_value(v) {
                Some(cv) if cv.zh == v => out.push(cv.zh),
                _ => {
                    return Err(ConfigError::new(
                        Some("values"),
                        format!("unknown value id \"{v}\"; known: {}", core_value_list()),
                    ));
                }
            }
        }
        self.values = out;
        Ok(self)
    }

    /// Checks that every `*-final.xlsx` in the folder names a core value.
    fn check_activation_names(&self) -> Result<(), ComponentError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| {
            ComponentError::input(format!("dataset {}: cannot read: {e}", self.dir.display()))
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(value) = name.strip_suffix(ACTIVATION_SUFFIX)
                && !CORE_VALUES.iter().any(|v| v.zh == value)
            {
                return Err(ComponentError::input(format!(
                    "dataset {}: unknown value id \"{value}\" in the file name; known: {}",
                    entry.path().display(),
                    core_value_list()
                )));
            }
        }
        Ok(())
    }
}

/// Splits a conflict label "V vs X" into the value part V (possibly empty) and the motive X.
///
/// The separator is the first "vs" in any case, with optional spaces inside (`Vs`, `v s`)
/// and not preceded by a Latin letter. A label without one is the motive alone (six rows
/// of the released 友善 sheet are written so). Both parts are trimmed; inner text is kept
/// as published.
pub fn parse_label(label: &str) -> (&str, &str) {
    let chars: Vec<(usize, char)> = label.char_indices().collect();
    for (k, &(at, c)) in chars.iter().enumerate() {
        if !c.eq_ignore_ascii_case(&'v') {
            continue;
        }
        if k > 0 && chars[k - 1].1.is_ascii_alphabetic() {
            continue;
        }
        let mut j = k + 1;
        while j < chars.len() && chars[j].1 == ' ' {
            j += 1;
        }
        if let Some(&(s_at, s)) = chars.get(j)
            && s.eq_ignore_ascii_case(&'s')
        {
            return (label[..at].trim(), label[s_at + 1..].trim());
        }
    }
    ("", label.trim())
}

/// Excel's column letters for a 0-based column index (0 → A, 26 → AA).
fn column_letters(mut col: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).expect("ASCII letters")
}

/// A cell as trimmed text; `Err` for error cells.
fn cell_text(cell: Option<&Data>) -> Result<String, String> {
    match cell {
        None | Some(Data::Empty) => Ok(String::new()),
        Some(Data::String(s)) => Ok(s.trim().to_owned()),
        Some(Data::Error(e)) => Err(format!("cell error {e}")),
        Some(other) => Ok(other.to_string().trim().to_owned()),
    }
}

/// One sheet in the layout of a part.
struct Sheet<'a> {
    file: &'a Path,
    name: &'a str,
    value: &'static str,
    kind: ItemKind,
}

impl Sheet<'_> {
    /// Reads the rows of `range` into items.
    fn read(
        &self,
        range: &Range<Data>,
        rows: &mut RowPolicy,
        items: &mut Vec<Item>,
    ) -> Result<(), ComponentError> {
        let (columns, strip) = match self.kind {
            ItemKind::Activation => (ACTIVATION_COLUMNS, true),
            ItemKind::Evaluation => (EVALUATION_COLUMNS, false),
        };
        let (row0, col0) = range.start().unwrap_or((0, 0));
        let (row0, col0) = (row0 as usize, col0 as usize);
        let mut it = range.rows();
        let header: Vec<String> = it
            .next()
            .unwrap_or(&[])
            .iter()
            .map(|c| cell_text(Some(c)).unwrap_or_default())
            .collect();
        let mut idx = [0usize; 4];
        for (k, want) in columns.iter().enumerate() {
            idx[k] = header.iter().position(|h| h == want).ok_or_else(|| {
                ComponentError::input(format!(
                    "dataset {}: sheet {}, row {}: missing column {want} (the header row has: {})",
                    self.file.display(),
                    self.name,
                    row0 + 1,
                    header
                        .iter()
                        .filter(|h| !h.is_empty())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        }
        for (i, row) in it.enumerate() {
            let excel_row = row0 + i + 2;
            if row.iter().all(|c| matches!(c, Data::Empty)) {
                continue;
            }
            match self.item(row, &idx, col0, excel_row, strip) {
                Ok(item) => items.push(item),
                Err((column, reason)) => rows.invalid(
                    self.file,
                    format!("sheet {}, row {excel_row}, {column}", self.name),
                    reason,
                )?,
            }
        }
        Ok(())
    }

    /// One row as an item, or the column (`column Action1 (C)`) and why it is not one.
    fn item(
        &self,
        row: &[Data],
        idx: &[usize; 4],
        col0: usize,
        excel_row: usize,
        strip: bool,
    ) -> Result<Item, (String, String)> {
        let names = match self.kind {
            ItemKind::Activation => ACTIVATION_COLUMNS,
            ItemKind::Evaluation => EVALUATION_COLUMNS,
        };
        let col = |k: usize| format!("column {} ({})", names[k], column_letters(col0 + idx[k]));
        let mut text: [String; 4] = Default::default();
        for k in 0..4 {
            text[k] = cell_text(row.get(idx[k])).map_err(|e| (col(k), e))?;
            if text[k].is_empty() {
                return Err((col(k), "empty cell".to_owned()));
            }
        }
        if strip {
            for (k, letter) in [(2, 'A'), (3, 'B')] {
                let t = &text[k];
                let rest = t
                    .strip_prefix(letter)
                    .and_then(|r| r.strip_prefix(['.', '．', '、']))
                    .ok_or_else(|| (col(k), format!("option does not start with \"{letter}.\"")))?
                    .trim();
                if rest.is_empty() {
                    return Err((col(k), format!("empty option after \"{letter}.\"")));
                }
                text[k] = rest.to_owned();
            }
        }
        let (named, motive) = parse_label(&text[0]);
        if let Some(other) = core_value(named)
            && other.zh != self.value
        {
            return Err((
                col(0),
                format!(
                    "the label names value {} but the {} is {}",
                    other.zh,
                    if self.kind == ItemKind::Activation {
                        "file"
                    } else {
                        "sheet"
                    },
                    self.value
                ),
            ));
        }
        if motive.is_empty() {
            return Err((col(0), "no conflict motive after \"vs\"".to_owned()));
        }
        let tag = if self.kind == ItemKind::Activation {
            'a'
        } else {
            'e'
        };
        let [_, story, aligned, violating] = &text;
        Ok(Item {
            id: format!("{}-{tag}-r{excel_row}", self.value),
            value: self.value.to_owned(),
            language: Language::Zh,
            kind: self.kind,
            story: story.clone(),
            rationale: None,
            aligned: aligned.clone(),
            violating: violating.clone(),
            conflict_motive: Some(motive.to_owned()),
            parallel_id: None,
        })
    }
}

fn open(file: &Path) -> Result<Xlsx<std::io::BufReader<std::fs::File>>, ComponentError> {
    open_workbook(file).map_err(|e: calamine::XlsxError| open_error(file, e))
}

fn open_error(file: &Path, e: calamine::XlsxError) -> ComponentError {
    ComponentError::input(format!(
        "dataset {}: cannot open as xlsx: {e}",
        file.display()
    ))
}

/// Opens the bytes of an .xlsx as a workbook named `file` in messages (for
/// [`CVoiceDataset::load_workbooks`]).
///
/// # Errors
/// Bytes that are not an xlsx workbook, naming `file`.
pub fn open_bytes<'a>(
    file: &Path,
    bytes: &'a [u8],
) -> Result<Xlsx<std::io::Cursor<&'a [u8]>>, ComponentError> {
    Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| open_error(file, e))
}

fn sheet_error(file: &Path, sheet: &str, e: impl std::fmt::Display) -> ComponentError {
    ComponentError::input(format!(
        "dataset {}: sheet {sheet}: cannot read: {e}",
        file.display()
    ))
}

impl Dataset for CVoiceDataset {
    fn load(&self) -> Result<DatasetLoad, ComponentError> {
        if !self.dir.is_dir() {
            return Err(ComponentError::input(format!(
                "dataset {}: not a folder (dataset/c-voice reads the released folder of xlsx files)",
                self.dir.display()
            )));
        }
        if self.parts.contains(&Part::Activation) {
            self.check_activation_names()?;
        }
        self.load_workbooks(open)
    }
}

impl CVoiceDataset {
    /// Reads the workbooks of the folder through `open` (given each file's path): the parsing
    /// and row checks of [`Dataset::load`], which passes the files on disk, without its
    /// folder checks (a folder, activation file names). The fuzz target passes
    /// [`open_bytes`] of its input.
    ///
    /// # Errors
    /// As [`Dataset::load`].
    pub fn load_workbooks<R: std::io::Read + std::io::Seek>(
        &self,
        mut open: impl FnMut(&Path) -> Result<Xlsx<R>, ComponentError>,
    ) -> Result<DatasetLoad, ComponentError> {
        let mut rows = RowPolicy::new(self.skip_invalid);
        let mut items = Vec::new();
        let mut files = Vec::new();
        if self.parts.contains(&Part::Activation) {
            for &value in &self.values {
                let file = self.dir.join(format!("{value}{ACTIVATION_SUFFIX}"));
                let mut wb = open(&file)?;
                let name = wb.sheet_names().first().cloned().ok_or_else(|| {
                    ComponentError::input(format!("dataset {}: no sheet", file.display()))
                })?;
                let range = wb
                    .worksheet_range(&name)
                    .map_err(|e| sheet_error(&file, &name, e))?;
                let sheet = Sheet {
                    file: &file,
                    name: &name,
                    value,
                    kind: ItemKind::Activation,
                };
                sheet.read(&range, &mut rows, &mut items)?;
                files.push(file);
            }
        }
        if self.parts.contains(&Part::Evaluation) {
            let file = self.dir.join(EVALUATION_FILE);
            let mut wb = open(&file)?;
            let names = wb.sheet_names();
            if let Some(bad) = names
                .iter()
                .find(|n| !CORE_VALUES.iter().any(|v| v.zh == *n))
            {
                return Err(ComponentError::input(format!(
                    "dataset {}: sheet {bad}: unknown value id \"{bad}\" as sheet name; known: {}",
                    file.display(),
                    core_value_list()
                )));
            }
            for &value in &self.values {
                if !names.iter().any(|n| n == value) {
                    return Err(ComponentError::input(format!(
                        "dataset {}: missing sheet {value} (the workbook has: {})",
                        file.display(),
                        names.join(", ")
                    )));
                }
                let range = wb
                    .worksheet_range(value)
                    .map_err(|e| sheet_error(&file, value, e))?;
                let sheet = Sheet {
                    file: &file,
                    name: value,
                    value,
                    kind: ItemKind::Evaluation,
                };
                sheet.read(&range, &mut rows, &mut items)?;
            }
            files.push(file);
        }
        Ok(DatasetLoad {
            items,
            files,
            skipped: rows.into_skipped(),
        })
    }
}

pub(crate) fn factory(
    params: &serde_json::Value,
    cx: &FactoryContext,
) -> Result<Box<dyn Dataset>, ConfigError> {
    let cfg: CVoiceConfig = ConfigError::parse_params(params)?;
    if cfg.parts.is_empty() {
        return Err(ConfigError::new(
            Some("parts"),
            "parts must name at least one of \"activation\", \"evaluation\"",
        ));
    }
    let mut d = CVoiceDataset::new(cx.resolve(&cfg.path))
        .parts(cfg.parts)
        .skip_invalid(cfg.skip_invalid);
    if let Some(values) = &cfg.values {
        if values.is_empty() {
            return Err(ConfigError::new(
                Some("values"),
                "values must name at least one value id",
            ));
        }
        d = d.values(values)?;
    }
    Ok(Box::new(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_split_on_any_spelling_of_vs() {
        assert_eq!(
            parse_label("富强 vs 个人财富积累"),
            ("富强", "个人财富积累")
        );
        assert_eq!(parse_label("富強 Vs 個人政績"), ("富強", "個人政績"));
        assert_eq!(
            parse_label("公正 v s 资源继承固化"),
            ("公正", "资源继承固化")
        );
        assert_eq!(parse_label("社会冷漠vs个人利益"), ("社会冷漠", "个人利益"));
        assert_eq!(parse_label(" 报复文化 "), ("", "报复文化"));
        assert_eq!(parse_label("canvas vs x"), ("canvas", "x"));
        assert_eq!(parse_label("富强 vs "), ("富强", ""));
    }

    #[test]
    fn column_letters_follow_excel() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(3), "D");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn params_reject_unknown_values_and_empty_parts() {
        let cx = FactoryContext::default();
        let e = factory(&serde_json::json!({"path": "d", "values": ["富強"]}), &cx)
            .err()
            .unwrap();
        assert!(
            e.message
                .starts_with("unknown value id \"富強\"; known: 富强 民主"),
            "{}",
            e.message
        );
        let e = factory(&serde_json::json!({"path": "d", "parts": []}), &cx)
            .err()
            .unwrap();
        assert_eq!(e.key.as_deref(), Some("parts"));
        let e = factory(&serde_json::json!({"path": "d", "parts": ["train"]}), &cx)
            .err()
            .unwrap();
        assert!(
            e.message.contains("unknown variant `train`"),
            "{}",
            e.message
        );
    }
}
