//! valex-reporters: built-in reporters.
//!
//! - `reporter/json`: `results.json`, the run's full results document, pretty-printed with a
//!   trailing newline. It is byte-for-byte deterministic: the runner puts no timestamps, host
//!   names or absolute paths into results (those live in run.json).

use serde::Deserialize;
use valex_core::registry::AnyFactory;
use valex_core::{
    ComponentError, ConfigError, FactoryContext, OutputFile, Plugin, RegistryBuilder,
    RegistryError, Reporter,
};

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

fn json_factory(
    params: &serde_json::Value,
    _cx: &FactoryContext,
) -> Result<Box<dyn Reporter>, ConfigError> {
    let cfg: JsonConfig = ConfigError::parse_params(params)?;
    let ok = !cfg.file.is_empty()
        && !cfg.file.contains(['/', '\\'])
        && cfg.file != "."
        && cfg.file != "..";
    if !ok {
        return Err(ConfigError::new(
            Some("file"),
            format!(
                "file \"{}\" must be a plain file name inside the run directory",
                cfg.file
            ),
        ));
    }
    Ok(Box::new(JsonReporter { file: cfg.file }))
}

/// Registers every built-in reporter.
pub struct ReportersPlugin;

impl Plugin for ReportersPlugin {
    fn name(&self) -> &'static str {
        "valex-reporters"
    }

    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
        r.register(
            "reporter/json",
            env!("CARGO_PKG_VERSION"),
            "results.json: every number of the run, deterministic",
            AnyFactory::Reporter(json_factory),
        )?;
        Ok(())
    }
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
