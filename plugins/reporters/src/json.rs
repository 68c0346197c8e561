//! `reporter/json`: `results.json`, the run's full results document, pretty-printed with a
//! trailing newline. It is byte-for-byte deterministic: the runner puts no timestamps, host
//! names or absolute paths into results (those live in run.json).

use serde::Deserialize;
use valex_core::{ComponentError, ConfigError, FactoryContext, OutputFile, Reporter};

use crate::params::check_file_name;

/// Params of `reporter/json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonConfig {
    /// Output file name inside the run directory (default `results.json`).
    #[serde(default = "default_name")]
    pub file: String,
}

fn default_name() -> String {
    "results.json".to_owned()
}

/// Writes the results document as JSON.
#[derive(Debug, Clone)]
pub struct JsonReporter {
    file: String,
}

impl Reporter for JsonReporter {
    fn report(&self, results: &serde_json::Value) -> Result<Vec<OutputFile>, ComponentError> {
        let mut bytes = serde_json::to_vec_pretty(results)
            .map_err(|e| ComponentError::stage(format!("reporter/json: {e}")))?;
        bytes.push(b'\n');
        Ok(vec![OutputFile {
            name: self.file.clone(),
            bytes,
        }])
    }
}

/// Builds `reporter/json` from its params.
///
/// # Errors
/// Unknown params or a file name that is not a plain name.
pub fn json_factory(
    params: &serde_json::Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Reporter>, ConfigError> {
    let cfg: JsonConfig = ConfigError::parse_params(params)?;
    check_file_name("file", &cfg.file)?;
    Ok(Box::new(JsonReporter { file: cfg.file }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_pretty_json_with_newline() {
        let r = json_factory(&serde_json::Value::Null, &FactoryContext::default()).unwrap();
        let out = r.report(&serde_json::json!({"b": 1, "a": [1.5]})).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "results.json");
        assert_eq!(
            String::from_utf8(out[0].bytes.clone()).unwrap(),
            "{\n  \"b\": 1,\n  \"a\": [\n    1.5\n  ]\n}\n"
        );
    }

    #[test]
    fn rejects_paths_as_file_names() {
        let e = json_factory(
            &serde_json::json!({"file": "../x.json"}),
            &FactoryContext::default(),
        )
        .err()
        .unwrap();
        assert_eq!(e.key.as_deref(), Some("file"));
    }
}
