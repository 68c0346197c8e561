//! [`OnnxModel`]: an `.onnx` file read and checked before any session exists.
//!
//! Owns decoding (weights stay shared `Bytes`, never copied), the checks that give one clear
//! line each (not ONNX, unsupported opset, missing or short external-data file, graph inputs
//! valex cannot feed), the element type of the model, the files it reads, and the
//! dynamic-shape check of a batch against the graph's declared input dims. It does not
//! look for FFNs (`pattern.rs`) or change the graph (`rewrite.rs`).

use std::path::{Path, PathBuf};

use prost::Message;
use prost::bytes::Bytes;
use valex_core::ComponentError;

use crate::proto::{self, ModelProto, TensorProto, dtype, tensor_type};

/// Lowest opset of the default domain valex rewrites (ReduceSum and Unsqueeze take their
/// axes as inputs from opset 13 on).
pub const MIN_OPSET: i64 = 13;

/// Highest opset of the default domain ONNX Runtime 1.31 runs.
pub const MAX_OPSET: i64 = 26;

/// Graph inputs valex knows how to feed.
pub const KNOWN_INPUTS: [&str; 3] = ["input_ids", "attention_mask", "position_ids"];

/// One graph input: element type and dims (`None` = symbolic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// Input name.
    pub name: String,
    /// ONNX element type code.
    pub elem_type: i32,
    /// Declared dims, if the input declares a shape.
    pub dims: Option<Vec<Option<i64>>>,
}

/// A decoded and checked ONNX model.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    /// The `.onnx` file.
    pub path: PathBuf,
    /// The decoded model (initializer bytes share the file buffer).
    pub proto: ModelProto,
    /// Opset of the default domain.
    pub opset: i64,
    /// The graph inputs, all of them among [`KNOWN_INPUTS`].
    pub inputs: Vec<InputSpec>,
    /// The output holding logits (`logits`, else the first output).
    pub logits: String,
    /// Element type of the logits (f32, f16 or bf16).
    pub float_type: i32,
    /// External data files, sorted, as absolute paths.
    pub external_files: Vec<PathBuf>,
}

impl OnnxModel {
    /// Reads and checks `path`.
    ///
    /// # Errors
    /// Unreadable file, not an ONNX model, no graph, an opset outside
    /// [`MIN_OPSET`]..=[`MAX_OPSET`], a missing or short external-data file, no `input_ids`
    /// or an input valex cannot feed, or a non-float logits output.
    pub fn read(path: &Path) -> Result<Self, ComponentError> {
        let bytes = std::fs::read(path).map_err(|e| {
            ComponentError::input(format!("model {} could not be read", path.display()))
                .with_source(e)
        })?;
        Self::from_bytes(path, Bytes::from(bytes))
    }

    /// Decodes and checks model bytes; `path` is where external data is looked up and what
    /// messages name.
    ///
    /// # Errors
    /// As [`Self::read`].
    pub fn from_bytes(path: &Path, bytes: Bytes) -> Result<Self, ComponentError> {
        let p = path.display();
        let proto = ModelProto::decode(bytes).map_err(|e| {
            ComponentError::input(format!("model {p} is not an ONNX model")).with_source(e)
        })?;
        let Some(graph) = &proto.graph else {
            return Err(ComponentError::input(format!("model {p} has no graph")));
        };
        let opset = proto
            .opset_import
            .iter()
            .find(|o| matches!(o.domain(), "" | "ai.onnx"))
            .map(|o| o.version())
            .ok_or_else(|| {
                ComponentError::input(format!("model {p} imports no opset of the default domain"))
            })?;
        if !(MIN_OPSET..=MAX_OPSET).contains(&opset) {
            return Err(ComponentError::input(format!(
                "model {p}: opset {opset} is not supported; valex needs opset {MIN_OPSET} to {MAX_OPSET} (re-export with e.g. opset_version=17)"
            )));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let external_files = check_external_data(&p.to_string(), dir, &graph.initializer)?;
        let mut inputs = Vec::new();
        for v in &graph.input {
            // Older exporters list initializers as inputs too; those need no feeding.
            if graph.initializer.iter().any(|t| t.name() == v.name()) {
                continue;
            }
            if !KNOWN_INPUTS.contains(&v.name()) {
                return Err(ComponentError::input(format!(
                    "model {p}: graph input {:?} cannot be fed; valex feeds {} (export without the KV cache: optimum task text-generation, not text-generation-with-past)",
                    v.name(),
                    KNOWN_INPUTS.join(", ")
                )));
            }
            let (elem_type, dims) = tensor_type(v).ok_or_else(|| {
                ComponentError::input(format!(
                    "model {p}: graph input {:?} is not a tensor",
                    v.name()
                ))
            })?;
            inputs.push(InputSpec {
                name: v.name().to_owned(),
                elem_type,
                dims,
            });
        }
        if !inputs.iter().any(|i| i.name == "input_ids") {
            return Err(ComponentError::input(format!(
                "model {p}: the graph has no input named input_ids (inputs: {})",
                graph
                    .input
                    .iter()
                    .map(|v| v.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let out = graph
            .output
            .iter()
            .find(|o| o.name() == "logits")
            .or(graph.output.first())
            .ok_or_else(|| ComponentError::input(format!("model {p}: the graph has no outputs")))?;
        let float_type = tensor_type(out).map_or(0, |t| t.0);
        if ![dtype::FLOAT, dtype::FLOAT16, dtype::BFLOAT16].contains(&float_type) {
            return Err(ComponentError::input(format!(
                "model {p}: output {:?} has element type {float_type}, not float32, float16 or bfloat16 logits",
                out.name()
            )));
        }
        Ok(OnnxModel {
            path: path.to_owned(),
            logits: out.name().to_owned(),
            float_type,
            proto,
            opset,
            inputs,
            external_files,
        })
    }

    /// The graph (present: checked at read).
    pub fn graph(&self) -> &proto::GraphProto {
        self.proto
            .graph
            .as_ref()
            .expect("checked when the model was read")
    }

    /// The folder external data is read from.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The input called `name`, if the graph has it.
    pub fn input(&self, name: &str) -> Option<&InputSpec> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// Checks a `[rows, seq]` batch against the declared dims of every input.
    ///
    /// # Errors
    /// One line naming the input, its fixed dims and the batch's shape.
    pub fn check_batch_shape(&self, rows: usize, seq: usize) -> Result<(), ComponentError> {
        for i in &self.inputs {
            let Some(dims) = &i.dims else { continue };
            let want = [rows as i64, seq as i64];
            let bad = dims.len() != 2
                || dims
                    .iter()
                    .zip(want)
                    .any(|(d, w)| d.is_some_and(|d| d != w));
            if bad {
                let shown: Vec<String> = dims
                    .iter()
                    .map(|d| d.map_or("?".to_owned(), |n| n.to_string()))
                    .collect();
                return Err(ComponentError::input(format!(
                    "model {}: input {} has shape [{}] but the batch is [{rows}, {seq}]; re-export with dynamic axes (batch, seq)",
                    self.path.display(),
                    i.name,
                    shown.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Checks that every external-data initializer's file exists and is long enough; returns the
/// files, sorted and deduplicated.
fn check_external_data(
    model: &str,
    dir: &Path,
    inits: &[TensorProto],
) -> Result<Vec<PathBuf>, ComponentError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for t in inits {
        if t.data_location() != proto::tensor_proto::DataLocation::External {
            continue;
        }
        let get = |k: &str| {
            t.external_data
                .iter()
                .find(|e| e.key() == k)
                .map(|e| e.value().to_owned())
        };
        let Some(location) = get("location") else {
            return Err(ComponentError::input(format!(
                "model {model}: initializer {:?} is external but names no location",
                t.name()
            )));
        };
        let file = dir.join(&location);
        let Ok(meta) = std::fs::metadata(&file) else {
            return Err(ComponentError::input(format!(
                "model {model}: external data file {location:?} of initializer {:?} is missing (looked for {})",
                t.name(),
                file.display()
            )));
        };
        let offset: u64 = get("offset").and_then(|s| s.parse().ok()).unwrap_or(0);
        let length: Option<u64> = get("length").and_then(|s| s.parse().ok());
        if let Some(len) = length
            && offset + len > meta.len()
        {
            return Err(ComponentError::input(format!(
                "model {model}: external data file {} is {} bytes but initializer {:?} needs bytes {offset}..{}",
                file.display(),
                meta.len(),
                t.name(),
                offset + len
            )));
        }
        if !files.contains(&file) {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{GraphProto, OperatorSetIdProto, StringStringEntryProto, node, tensor_info};

    fn model(opset: i64, inputs: &[&str]) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            graph: Some(GraphProto {
                node: vec![node("Identity", "i", &["input_ids"], &["logits"])],
                input: inputs
                    .iter()
                    .map(|n| tensor_info(n, dtype::INT64, &[Err("batch"), Ok(16)]))
                    .collect(),
                output: vec![tensor_info("logits", dtype::FLOAT, &[Err("b")])],
                ..GraphProto::default()
            }),
            ..ModelProto::default()
        }
    }

    fn read(m: &ModelProto) -> Result<OnnxModel, ComponentError> {
        OnnxModel::from_bytes(Path::new("/m/model.onnx"), Bytes::from(m.encode_to_vec()))
    }

    #[test]
    fn reads_inputs_and_logits_type() {
        let m = read(&model(17, &["input_ids", "attention_mask"])).unwrap();
        assert_eq!(
            (m.opset, m.float_type, m.logits.as_str()),
            (17, dtype::FLOAT, "logits")
        );
        assert_eq!(m.inputs.len(), 2);
        assert!(m.input("attention_mask").is_some() && m.input("position_ids").is_none());
    }

    #[test]
    fn rejects_bad_opset_bytes_and_inputs_in_one_line() {
        let e = read(&model(11, &["input_ids"])).unwrap_err().to_string();
        assert_eq!(
            e,
            "model /m/model.onnx: opset 11 is not supported; valex needs opset 13 to 26 (re-export with e.g. opset_version=17)"
        );
        let e = OnnxModel::from_bytes(Path::new("/m/x.onnx"), Bytes::from_static(b"\xff\xff"))
            .unwrap_err();
        assert_eq!(e.message, "model /m/x.onnx is not an ONNX model");
        let e = read(&model(17, &["input_ids", "past_key_values.0.key"])).unwrap_err();
        assert!(
            e.message
                .contains("graph input \"past_key_values.0.key\" cannot be fed"),
            "{e}"
        );
        assert!(!e.message.contains('\n'));
        let e = read(&model(17, &["ids"])).unwrap_err();
        assert!(
            e.message.contains("graph input \"ids\" cannot be fed"),
            "{e}"
        );
    }

    #[test]
    fn fixed_dims_mismatch_is_one_line() {
        let m = read(&model(17, &["input_ids"])).unwrap();
        assert!(m.check_batch_shape(3, 16).is_ok());
        let e = m.check_batch_shape(3, 20).unwrap_err();
        assert_eq!(
            e.message,
            "model /m/model.onnx: input input_ids has shape [?, 16] but the batch is [3, 20]; re-export with dynamic axes (batch, seq)"
        );
    }

    #[test]
    fn missing_external_data_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = model(17, &["input_ids"]);
        let entry = |k: &str, v: &str| StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v.into()),
        };
        m.graph.as_mut().unwrap().initializer.push(TensorProto {
            name: Some("w".into()),
            dims: vec![4],
            data_type: Some(dtype::FLOAT),
            data_location: Some(proto::tensor_proto::DataLocation::External as i32),
            external_data: vec![
                entry("location", "w.bin"),
                entry("offset", "0"),
                entry("length", "16"),
            ],
            ..TensorProto::default()
        });
        let path = dir.path().join("model.onnx");
        let bytes = Bytes::from(m.encode_to_vec());
        let e = OnnxModel::from_bytes(&path, bytes.clone()).unwrap_err();
        assert_eq!(
            e.message,
            format!(
                "model {}: external data file \"w.bin\" of initializer \"w\" is missing (looked for {})",
                path.display(),
                dir.path().join("w.bin").display()
            )
        );
        std::fs::write(dir.path().join("w.bin"), [0u8; 8]).unwrap();
        let e = OnnxModel::from_bytes(&path, bytes.clone()).unwrap_err();
        assert!(
            e.message
                .ends_with("is 8 bytes but initializer \"w\" needs bytes 0..16"),
            "{e}"
        );
        std::fs::write(dir.path().join("w.bin"), [0u8; 16]).unwrap();
        let ok = OnnxModel::from_bytes(&path, bytes).unwrap();
        assert_eq!(ok.external_files, [dir.path().join("w.bin")]);
    }
}
