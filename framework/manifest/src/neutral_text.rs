//! `[evaluate] neutral_text = { zh = "...", en = "..." }`: the neutral text files of the
//! perplexity side-effect check (docs/evaluation.md#side-effects-perplexity-on-neutral-text).
//!
//! Checked when components are resolved (so `valex validate`, `valex run` and `valex verify`,
//! which resolves against the original manifest's folder, all see it), before any model work:
//! every language of `evaluate.languages` needs a file, and every file given must be readable
//! and hold at least one non-blank line. Paths are relative to the top-level manifest's folder
//! (like component params paths); the runner reads and hashes them again. This module reads
//! files but knows nothing of layering or of models.

use std::path::Path;

use crate::error::{ManifestError, ManifestErrorKind as K};
use crate::load::Origins;
use crate::raw::Manifest;

/// Every problem with `evaluate.neutral_text` of `m`, one error per key.
pub(crate) fn check(m: &Manifest, base_dir: &Path, origins: &Origins) -> Vec<ManifestError> {
    let mut errors = Vec::new();
    let Some(ev) = &m.evaluate else {
        return errors;
    };
    let Some(nt) = &ev.neutral_text else {
        return errors;
    };
    for &lang in &ev.languages {
        let key = format!("evaluate.neutral_text.{}", lang.as_str());
        let Some(rel) = nt.for_language(lang) else {
            errors.push(
                ManifestError::new(
                    K::MissingKey,
                    format!(
                        "no neutral text file for language {0} (evaluate.languages has it); add {0} = \"data/neutral.{0}.txt\"",
                        lang.as_str()
                    ),
                )
                .at("evaluate.neutral_text")
                .from_origin(origins.nearest("evaluate.neutral_text")),
            );
            continue;
        };
        let path = base_dir.join(rel);
        let problem = match std::fs::read_to_string(&path) {
            Err(e) => Some(format!(
                "cannot read neutral text file {} (relative to the manifest's folder): {e}",
                path.display()
            )),
            Ok(t) if t.lines().all(|l| l.trim().is_empty()) => Some(format!(
                "neutral text file {} holds no text (it needs at least one non-blank line)",
                path.display()
            )),
            Ok(_) => None,
        };
        if let Some(p) = problem {
            errors.push(
                ManifestError::new(K::Read, p)
                    .at(&key)
                    .from_origin(origins.get(&key)),
            );
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::tests::{load_ok, opts, registry, with_files};

    const HEAD: &str = "schema_version = 1\n[experiment]\nname = \"t\"\n[model]\nbackend = \"backend/dummy\"\nparams = { path = \"m\" }\n[dataset]\nuse = \"dataset/jsonl\"\nparams = { path = \"d.jsonl\" }\n[record]\n[score]\nuse = \"scorer/lape\"\n[evaluate]\nuse = \"evaluator/forced-choice\"\n";

    fn load_err(path: &str) -> String {
        match crate::load_and_resolve(Path::new(path), &opts(&[], &[]), &registry()) {
            Ok(_) => panic!("expected errors from {path}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn neutral_text_paths_stay_relative_in_the_manifest() {
        let m = format!("{HEAD}neutral_text = {{ zh = \"d/n.zh.txt\", en = \"d/n.en.txt\" }}\n");
        with_files(
            &[
                ("exp/m.toml", &m),
                ("exp/d/n.zh.txt", "今天 天气 很 好\n"),
                ("exp/d/n.en.txt", "the sky is blue\n"),
            ],
            || {
                let l = load_ok("exp/m.toml", &opts(&[], &[]));
                let nt = l.manifest.evaluate.as_ref().unwrap().neutral_text.clone();
                assert_eq!(nt.unwrap().en.as_deref(), Some("d/n.en.txt"));
                assert!(
                    l.resolved_toml.contains("neutral_text"),
                    "{}",
                    l.resolved_toml
                );
            },
        );
    }

    #[test]
    fn missing_files_languages_and_keys_are_one_line_each() {
        let m = format!("{HEAD}neutral_text = {{ zh = \"nope.txt\", fr = \"x\" }}\n");
        with_files(&[("m.toml", &m)], || {
            let out = load_err("m.toml");
            assert!(
                out.contains("m.toml: evaluate.neutral_text.fr (from m.toml): unknown key \"fr\""),
                "{out}"
            );
        });
        let m = format!("{HEAD}neutral_text = {{ zh = \"nope.txt\", en = \"blank.txt\" }}\n");
        with_files(&[("m.toml", &m), ("blank.txt", "\n  \n")], || {
            let out = load_err("m.toml");
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.len(), 2, "{out}");
            assert!(
                lines[0].starts_with("m.toml: evaluate.neutral_text.zh (from m.toml): cannot read neutral text file nope.txt (relative to the manifest's folder): "),
                "{out}"
            );
            assert_eq!(
                lines[1],
                "m.toml: evaluate.neutral_text.en (from m.toml): neutral text file blank.txt holds no text (it needs at least one non-blank line)"
            );
        });
        let m = format!("{HEAD}neutral_text = {{ zh = \"z.txt\" }}\n");
        with_files(&[("m.toml", &m), ("z.txt", "天气 好\n")], || {
            let out = load_err("m.toml");
            assert_eq!(
                out.trim(),
                "m.toml: evaluate.neutral_text (from m.toml): no neutral text file for language en (evaluate.languages has it); add en = \"data/neutral.en.txt\""
            );
        });
    }
}
