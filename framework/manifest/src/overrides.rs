//! Overrides from outside the files: `VALEX_*` environment variables and `--set` flags.
//! Each variable or flag becomes one layer whose origin is `env NAME` or
//! `flag --set key=value`. Values are TOML values when they parse as one, strings otherwise.

use figment::value::{Dict, Tag, Value};

use crate::convert::{figment_to_json, parse_override_value};
use crate::error::{ManifestError, ManifestErrorKind as K};
use crate::load::Layer;

/// Top-level sections that `VALEX_*` variables may set.
pub const ENV_SECTIONS: [&str; 7] = [
    "experiment",
    "model",
    "dataset",
    "record",
    "score",
    "intervention",
    "evaluate",
];

/// Parses a `--set` / `VALEX_*` value the way manifests do: a TOML value (number, boolean,
/// quoted string, array, inline table) if `raw` is one, otherwise `raw` as a plain string.
/// For front ends that take `key=value` settings outside a manifest (`valex score --set`).
pub fn parse_set_value(raw: &str) -> serde_json::Value {
    figment_to_json(&parse_override_value(raw))
}

/// Builds `{a: {b: {c: value}}}` from `[a, b, c]`.
fn nest(keys: &[String], value: Value) -> Dict {
    let mut v = value;
    for k in keys.iter().skip(1).rev() {
        let mut d = Dict::new();
        d.insert(k.clone(), v);
        v = Value::Dict(Tag::Default, d);
    }
    let mut root = Dict::new();
    if let Some(first) = keys.first() {
        root.insert(first.clone(), v);
    }
    root
}

/// The layer of one `VALEX_*` variable; `None` when the variable is not for manifests.
pub(crate) fn env_layer(name: &str, value: &str) -> Option<Result<Layer, ManifestError>> {
    let rest = name.strip_prefix("VALEX_")?;
    let keys: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
    if !ENV_SECTIONS.contains(&keys[0].as_str()) {
        return None;
    }
    let origin = format!("env {name}");
    if keys.iter().any(String::is_empty) {
        return Some(Err(ManifestError::new(
            K::BadOverride,
            "invalid variable name: empty key between `__` separators",
        )
        .from_origin(Some(origin))));
    }
    Some(Ok(Layer {
        origin,
        dict: nest(&keys, parse_override_value(value)),
    }))
}

/// The layer of one `--set key=value` flag.
pub(crate) fn set_layer(flag: &str) -> Result<Layer, ManifestError> {
    let origin = format!("flag --set {flag}");
    let Some((key, value)) = flag.split_once('=') else {
        return Err(ManifestError::new(
            K::BadOverride,
            "expected key=value, e.g. --set experiment.seed=7",
        )
        .from_origin(Some(origin)));
    };
    let key = key.trim();
    let keys: Vec<String> = key.split('.').map(str::to_owned).collect();
    let ok = keys.iter().all(|k| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if !ok {
        return Err(ManifestError::new(
            K::BadOverride,
            format!(
                "invalid key \"{key}\": write dotted names of letters, digits, _ and -, e.g. score.params.top_rate"
            ),
        )
        .from_origin(Some(origin)));
    }
    Ok(Layer {
        origin,
        dict: nest(&keys, parse_override_value(value)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_become_json_numbers_strings_arrays_and_tables() {
        assert_eq!(parse_set_value("0.02"), serde_json::json!(0.02));
        assert_eq!(parse_set_value("7"), serde_json::json!(7));
        assert_eq!(parse_set_value("tokens"), serde_json::json!("tokens"));
        assert_eq!(parse_set_value("\"a b\""), serde_json::json!("a b"));
        assert_eq!(parse_set_value("[1, 2]"), serde_json::json!([1, 2]));
        assert_eq!(
            parse_set_value("{ k = true }"),
            serde_json::json!({"k": true})
        );
    }

    #[test]
    fn env_variables_outside_sections_are_ignored() {
        assert!(env_layer("VALEX_LOG", "debug").is_none());
        assert!(env_layer("HOME", "/root").is_none());
        let l = env_layer("VALEX_SCORE__PARAMS__TOP_RATE", "0.02")
            .unwrap()
            .unwrap();
        assert_eq!(l.origin, "env VALEX_SCORE__PARAMS__TOP_RATE");
        let json = figment_to_json(&Value::Dict(Tag::Default, l.dict));
        assert_eq!(
            json,
            serde_json::json!({"score": {"params": {"top_rate": 0.02}}})
        );
        assert!(env_layer("VALEX_SCORE____X", "1").unwrap().is_err());
    }
}
