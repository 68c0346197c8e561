//! `[record] template_file = { zh = "...", en = "..." }` (and the same key of each
//! `[[record.conditions]]` entry): prompt templates kept in files.
//!
//! After layering, each `record.template_file.<lang>` is read (relative to the top-level
//! manifest's folder, like component params paths) and its text replaces
//! `record.template.<lang>`; one trailing newline is dropped, since text files end with one.
//! The text is then checked like an inline template, with the file as its origin, and
//! `template_file` itself is removed, so the resolved manifest (saved in every run directory)
//! holds the template text and needs no other file. An unreadable file is an error at
//! `record.template_file.<lang>`. This module reads files but knows nothing of figment's
//! layering (that is `load.rs`).

use std::path::Path;

use figment::value::Value;

use crate::error::{ManifestError, ManifestErrorKind as K};
use crate::load::Origins;

const LANGUAGES: [&str; 2] = ["zh", "en"];

fn dict_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut figment::value::Dict> {
    match v {
        Value::Dict(_, d) => match d.get_mut(key) {
            Some(Value::Dict(_, inner)) => Some(inner),
            _ => None,
        },
        _ => None,
    }
}

/// Reads every `record.template_file.<lang>` into `record.template.<lang>`, and every
/// `record.conditions[i].template_file.<lang>` into `record.conditions[i].template.<lang>`.
/// Returns the new origins (`record.template.zh` → the file's path) for the caller to record.
pub(crate) fn inline(
    root: &mut Value,
    base_dir: &Path,
    origins: &Origins,
    errors: &mut Vec<ManifestError>,
) -> Vec<(String, String)> {
    let mut new_origins = Vec::new();
    let Some(record) = dict_mut(root, "record") else {
        return new_origins;
    };
    inline_table(
        record,
        "record",
        base_dir,
        origins,
        errors,
        &mut new_origins,
    );
    if let Some(Value::Array(_, conditions)) = record.get_mut("conditions") {
        for (i, c) in conditions.iter_mut().enumerate() {
            if let Value::Dict(_, d) = c {
                let path = format!("record.conditions[{i}]");
                inline_table(d, &path, base_dir, origins, errors, &mut new_origins);
            }
        }
    }
    new_origins
}

/// Reads `<path>.template_file.<lang>` of the table `table` (at key path `path`) into
/// `<path>.template.<lang>`.
fn inline_table(
    table: &mut figment::value::Dict,
    path: &str,
    base_dir: &Path,
    origins: &Origins,
    errors: &mut Vec<ManifestError>,
    new_origins: &mut Vec<(String, String)>,
) {
    let files: Vec<(&str, String)> = match table.get("template_file") {
        Some(Value::Dict(_, d)) => LANGUAGES
            .iter()
            .filter_map(|&l| match d.get(l) {
                Some(Value::String(_, s)) => Some((l, s.clone())),
                _ => None, // absent, or a wrong type that the schema check reports
            })
            .collect(),
        _ => return,
    };
    for (lang, rel) in files {
        let key = format!("{path}.template_file.{lang}");
        let file = base_dir.join(&rel);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(
                    ManifestError::new(
                        K::Read,
                        format!(
                            "cannot read template file {} (relative to the manifest's folder): {e}",
                            file.display()
                        ),
                    )
                    .at(&key)
                    .from_origin(origins.get(&key)),
                );
                continue;
            }
        };
        let text = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text)
            .to_owned();
        if !matches!(table.get("template"), Some(Value::Dict(..))) {
            table.insert(
                "template".into(),
                Value::Dict(figment::value::Tag::Default, Default::default()),
            );
        }
        if let Some(Value::Dict(_, template)) = table.get_mut("template") {
            template.insert(lang.into(), Value::from(text));
        }
        new_origins.push((
            format!("{path}.template.{lang}"),
            file.display().to_string(),
        ));
    }
}

/// Removes `record.template_file` and every `record.conditions[i].template_file` (their files
/// were read into the `template` tables).
pub(crate) fn strip(root: &mut Value) {
    if let Some(record) = dict_mut(root, "record") {
        record.remove("template_file");
        if let Some(Value::Array(_, conditions)) = record.get_mut("conditions") {
            for c in conditions {
                if let Value::Dict(_, d) = c {
                    d.remove("template_file");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::{load_err, load_ok, opts, with_files};

    const HEAD: &str = "schema_version = 1\n[experiment]\nname = \"t\"\n[model]\nbackend = \"backend/dummy\"\n[dataset]\nuse = \"dataset/jsonl\"\n";

    #[test]
    fn template_files_replace_the_inline_text_and_name_the_file_as_origin() {
        let m = format!(
            "{HEAD}[record]\ntemplate_file = {{ zh = \"t/p.zh.txt\" }}\ntemplate = {{ zh = \"ignored {{story}}\" }}\n"
        );
        with_files(
            &[
                ("exp/m.toml", &m),
                ("exp/t/p.zh.txt", "情境：{story}\n{value_name}\n"),
            ],
            || {
                let l = load_ok("exp/m.toml", &opts(&[], &[]));
                let rec = l.manifest.record.as_ref().unwrap();
                assert_eq!(rec.template.zh, "情境：{story}\n{value_name}");
                assert_eq!(rec.template.en, "{story}\nReason: {rationale}");
                assert_eq!(l.origin("record.template.zh"), Some("exp/t/p.zh.txt"));
                assert!(
                    !l.resolved_toml.contains("template_file"),
                    "{}",
                    l.resolved_toml
                );
            },
        );
    }

    #[test]
    fn bad_template_files_are_errors_with_key_and_origin() {
        let m = format!(
            "{HEAD}[record]\ntemplate_file = {{ zh = \"nope.txt\", en = \"bad.txt\", fr = \"x\" }}\n"
        );
        with_files(&[("m.toml", &m), ("bad.txt", "{story} {moral}")], || {
            let out = load_err("m.toml", &opts(&[], &[]));
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.len(), 3, "{out}");
            assert!(
                lines[0].starts_with(
                    "m.toml: record.template_file.zh (from m.toml): cannot read template file nope.txt (relative to the manifest's folder): "
                ),
                "{out}"
            );
            assert!(
                out.contains(
                    "m.toml: record.template.en (from bad.txt): unknown placeholder {moral}"
                ),
                "{out}"
            );
            assert!(
                out.contains("m.toml: record.template_file.fr (from m.toml): unknown key \"fr\""),
                "{out}"
            );
        });
    }

    #[test]
    fn record_conditions_read_their_own_template_files() {
        let m = format!(
            "{HEAD}[record]\nlabel_by = \"value-condition\"\n[[record.conditions]]\nname = \"support\"\ntemplate_file = {{ zh = \"t/s.zh.txt\", en = \"t/s.en.txt\" }}\n[[record.conditions]]\nname = \"conflict\"\ntemplate = {{ zh = \"{{conflict_motive}}：{{story}}\", en = \"{{conflict_motive}}: {{story}}\" }}\n"
        );
        with_files(
            &[
                ("exp/m.toml", &m),
                ("exp/t/s.zh.txt", "「{value_name}」{story}\n"),
                ("exp/t/s.en.txt", "\"{value_name}\" {story}\n"),
            ],
            || {
                let l = load_ok("exp/m.toml", &opts(&[], &[]));
                let rec = l.manifest.record.as_ref().unwrap();
                let names: Vec<&str> = rec.conditions.iter().map(|c| c.name.as_str()).collect();
                assert_eq!(names, ["support", "conflict"]);
                assert_eq!(rec.conditions[0].template.zh, "「{value_name}」{story}");
                assert_eq!(rec.conditions[0].template.en, "\"{value_name}\" {story}");
                assert_eq!(rec.conditions[1].template.en, "{conflict_motive}: {story}");
                assert_eq!(
                    l.origin("record.conditions[0].template.en"),
                    Some("exp/t/s.en.txt")
                );
                assert!(
                    !l.resolved_toml.contains("template_file"),
                    "{}",
                    l.resolved_toml
                );
                assert!(l.resolved_toml.contains("[[record.conditions]]"));
            },
        );
    }
}
