//! `[[plugins]]`: the plugin libraries a manifest names, with paths resolved relative to the
//! file that sets them (an included file's plugins are relative to that file, not to the
//! top-level manifest). Front ends read them with [`plugin_refs`] before resolving components,
//! load the libraries, and register their components; this crate never loads a library.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::ManifestErrors;
use crate::files::normalize;
use crate::load::{LoadOptions, Origins, layer};

/// A plugin library named by a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    /// The library path: relative ones joined to the folder of the file that set them
    /// (as displayed, i.e. relative to the current folder when the manifest path is).
    pub path: PathBuf,
    /// The key, `plugins[0].path`.
    pub key: String,
    /// The layer that set it (`experiments/x.toml`, `include ...`, `flag --set ...`).
    pub origin: Option<String>,
    /// `plugins[i].call_timeout_secs` when set to a positive integer (resolving the manifest
    /// reports other values).
    pub call_timeout_secs: Option<u64>,
}

/// Rewrites every relative `plugins[i].path` of the merged tree against the folder of the
/// file that set it; values from `--set` and `VALEX_*` stay relative to the current folder.
pub(crate) fn resolve_paths(
    json: &mut serde_json::Value,
    origins: &Origins,
    dirs: &BTreeMap<String, PathBuf>,
) {
    let Some(items) = json.get_mut("plugins").and_then(|p| p.as_array_mut()) else {
        return;
    };
    for (i, item) in items.iter_mut().enumerate() {
        let key = format!("plugins[{i}].path");
        let Some(path) = item.get_mut("path") else {
            continue;
        };
        let Some(s) = path.as_str() else { continue };
        if s.is_empty() || Path::new(s).is_absolute() {
            continue;
        }
        let dir = origins
            .nearest(&key)
            .and_then(|o| dirs.get(o))
            .cloned()
            .unwrap_or_default();
        *path = serde_json::Value::String(normalize(&dir.join(s)).display().to_string());
    }
}

/// The plugin libraries `path` names after every layer is applied, in order. Other problems
/// of the manifest are not reported here (resolving it reports them all); malformed
/// `[[plugins]]` entries are skipped for the same reason.
///
/// # Errors
/// Unreadable or malformed manifest files and include cycles (nothing can be read then).
pub fn plugin_refs(path: &Path, opts: &LoadOptions) -> Result<Vec<PluginRef>, ManifestErrors> {
    let layered = layer(path, opts)?;
    let Some(items) = layered.json.get("plugins").and_then(|p| p.as_array()) else {
        return Ok(Vec::new());
    };
    Ok(items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let key = format!("plugins[{i}].path");
            let p = item.get("path")?.as_str()?;
            (!p.is_empty()).then(|| PluginRef {
                path: PathBuf::from(p),
                call_timeout_secs: item
                    .get("call_timeout_secs")
                    .and_then(serde_json::Value::as_u64)
                    .filter(|&s| s > 0),
                origin: layered.origins.nearest(&key).map(str::to_owned),
                key,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    const BODY: &str = "[experiment]\nname = \"t\"\n[model]\nbackend = \"backend/x\"\n[dataset]\nuse = \"dataset/x\"\n";

    #[test]
    fn plugin_paths_are_relative_to_the_file_that_sets_them() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "base/common.toml",
            "[[plugins]]\npath = \"../libs/liba.so\"\n",
        );
        write(
            d.path(),
            "exp/m.toml",
            &format!("schema_version = 1\ninclude = [\"../base/common.toml\"]\n{BODY}"),
        );
        let m = d.path().join("exp/m.toml");
        let refs = plugin_refs(&m, &LoadOptions::default()).unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].path, d.path().join("libs/liba.so"));
        assert_eq!(refs[0].key, "plugins[0].path");
        assert!(refs[0].origin.as_deref().unwrap().starts_with("include "));

        // The manifest's own list replaces the include's (arrays replace), relative to it.
        write(
            d.path(),
            "exp/n.toml",
            &format!(
                "schema_version = 1\ninclude = [\"../base/common.toml\"]\n{BODY}[[plugins]]\npath = \"libb.so\"\n"
            ),
        );
        let n = d.path().join("exp/n.toml");
        let refs = plugin_refs(&n, &LoadOptions::default()).unwrap();
        assert_eq!(
            refs.iter().map(|r| r.path.clone()).collect::<Vec<_>>(),
            [d.path().join("exp/libb.so")]
        );
        let loaded = crate::load(&n, &LoadOptions::default()).unwrap();
        assert_eq!(
            loaded.manifest.plugins[0].path,
            d.path().join("exp/libb.so").display().to_string()
        );
        assert!(
            loaded.resolved_toml.contains("[[plugins]]"),
            "{}",
            loaded.resolved_toml
        );

        // From --set: relative to the current folder.
        let opts = LoadOptions {
            env: Vec::new(),
            sets: vec!["plugins=[{ path = \"x/libc.so\" }]".into()],
        };
        let refs = plugin_refs(&n, &opts).unwrap();
        assert_eq!(refs[0].path, PathBuf::from("x/libc.so"));
    }

    #[test]
    fn malformed_plugin_entries_are_schema_errors() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "m.toml",
            &format!("schema_version = 1\n{BODY}[[plugins]]\npaht = \"a.so\"\n"),
        );
        let e = crate::load(&d.path().join("m.toml"), &LoadOptions::default()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("plugins[0].paht"), "{text}");
        assert!(text.contains("did you mean \"path\""), "{text}");
        assert!(
            text.contains("plugins[0].path: missing required key"),
            "{text}"
        );
    }

    #[test]
    fn call_timeout_is_read_and_zero_is_rejected() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "m.toml",
            &format!(
                "schema_version = 1\n{BODY}[[plugins]]\npath = \"a.so\"\ncall_timeout_secs = 5\n[[plugins]]\npath = \"b.so\"\n"
            ),
        );
        let m = d.path().join("m.toml");
        let refs = plugin_refs(&m, &LoadOptions::default()).unwrap();
        assert_eq!(
            refs.iter().map(|r| r.call_timeout_secs).collect::<Vec<_>>(),
            [Some(5), None]
        );
        let loaded = crate::load(&m, &LoadOptions::default()).unwrap();
        assert_eq!(
            loaded.manifest.plugins[0]
                .call_timeout_secs
                .map(|s| s.get()),
            Some(5)
        );
        write(
            d.path(),
            "z.toml",
            &format!(
                "schema_version = 1\n{BODY}[[plugins]]\npath = \"a.so\"\ncall_timeout_secs = 0\n"
            ),
        );
        let e = crate::load(&d.path().join("z.toml"), &LoadOptions::default()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("call_timeout_secs"), "{text}");
        assert_eq!(
            plugin_refs(&d.path().join("z.toml"), &LoadOptions::default()).unwrap()[0]
                .call_timeout_secs,
            None
        );
    }
}
