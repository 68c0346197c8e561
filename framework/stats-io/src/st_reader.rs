//! A small safetensors reader that parses the header and reads only the tensors asked for,
//! so that loading 2 of 24 labels reads 2 of 24 tensors from disk.
//!
//! It owns header validation (offsets inside the file, byte length matching dtype x shape)
//! and decoding of `F64`/`I32` tensors into `f64`, `F32` into `f32` and `I64`/`U64` into `u64`.
//! Writing uses the `safetensors` crate.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{FileKind, StatsIoError, StatsIoErrorKind};

/// Largest header accepted (the safetensors crate uses the same limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One tensor's entry in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TensorEntry {
    pub dtype: String,
    pub shape: Vec<usize>,
    /// Absolute byte range in the file.
    pub start: u64,
    pub end: u64,
}

/// Where a reader's file comes from: the file system, or its bytes already in memory (the
/// `*_from_bytes` entry points, used by the fuzz targets). Both go through the same parsing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// Read the file at the path.
    Disk,
    /// These are the file's bytes; the path only names it in messages.
    Bytes(&'a [u8]),
}

impl<'a> Source<'a> {
    /// The whole file.
    pub fn read(self, path: &Path) -> std::io::Result<Cow<'a, [u8]>> {
        match self {
            Source::Disk => std::fs::read(path).map(Cow::Owned),
            Source::Bytes(b) => Ok(Cow::Borrowed(b)),
        }
    }

    /// The file as a safetensors reader.
    pub fn safetensors(self, path: &Path, kind: FileKind) -> Result<StReader, StatsIoError> {
        match self {
            Source::Disk => StReader::open(path, kind),
            Source::Bytes(b) => StReader::from_reader(
                Box::new(Cursor::new(b.to_vec())),
                b.len() as u64,
                path,
                kind,
            ),
        }
    }
}

/// What a [`StReader`] reads from.
trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// An open safetensors file with a parsed header.
pub(crate) struct StReader {
    file: Box<dyn ReadSeek>,
    path: PathBuf,
    kind: FileKind,
    tensors: BTreeMap<String, TensorEntry>,
    metadata: BTreeMap<String, String>,
}

fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" => 8,
        _ => return None,
    })
}

impl StReader {
    /// Opens `path` and parses its header.
    pub fn open(path: &Path, kind: FileKind) -> Result<Self, StatsIoError> {
        let err = |k: StatsIoErrorKind| StatsIoError::new(kind, path, k);
        let file = File::open(path).map_err(|e| err(StatsIoErrorKind::Read).with_source(e))?;
        let file_len = file
            .metadata()
            .map_err(|e| err(StatsIoErrorKind::Read).with_source(e))?
            .len();
        Self::from_reader(Box::new(file), file_len, path, kind)
    }

    /// Parses the header of the `file_len` bytes of `file`, a file named `path` in messages.
    fn from_reader(
        mut file: Box<dyn ReadSeek>,
        file_len: u64,
        path: &Path,
        kind: FileKind,
    ) -> Result<Self, StatsIoError> {
        let err = |k: StatsIoErrorKind| StatsIoError::new(kind, path, k);
        let bad = |m: String| err(StatsIoErrorKind::Header(m));
        let mut len_buf = [0_u8; 8];
        file.read_exact(&mut len_buf)
            .map_err(|e| bad("file is shorter than 8 bytes".into()).with_source(e))?;
        let n = u64::from_le_bytes(len_buf);
        if n > MAX_HEADER_BYTES || n > file_len.saturating_sub(8) {
            return Err(bad(format!(
                "header length {n} does not fit a file of {file_len} bytes"
            )));
        }
        let mut header = vec![0_u8; usize::try_from(n).expect("header length is below 1e8")];
        file.read_exact(&mut header)
            .map_err(|e| err(StatsIoErrorKind::Read).with_source(e))?;
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
            .map_err(|e| bad("header is not a JSON object".into()).with_source(e))?;
        let data_start = 8 + n;
        let mut tensors = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for (name, v) in map {
            if name == "__metadata__" {
                // String-to-string by the format; other values are ignored.
                if let Some(o) = v.as_object() {
                    for (k, v) in o {
                        if let Some(v) = v.as_str() {
                            metadata.insert(k.clone(), v.to_owned());
                        }
                    }
                }
                continue;
            }
            let entry = parse_entry(&name, &v, data_start, file_len).map_err(bad)?;
            tensors.insert(name, entry);
        }
        Ok(StReader {
            file,
            path: path.to_owned(),
            kind,
            tensors,
            metadata,
        })
    }

    /// The header's `__metadata__` (string values only).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The header entry of `name`.
    pub fn entry(&self, name: &str) -> Result<&TensorEntry, StatsIoError> {
        self.tensors.get(name).ok_or_else(|| {
            StatsIoError::new(
                self.kind,
                &self.path,
                StatsIoErrorKind::MissingTensor { name: name.into() },
            )
        })
    }

    /// Reads tensor `name`, checking its dtype (`F64` or `I32`) and shape, and decodes it to
    /// `f64` (exact for both).
    pub fn read_f64(
        &mut self,
        name: &str,
        expected_shape: &[usize],
        expected_dtype: &str,
    ) -> Result<Vec<f64>, StatsIoError> {
        let raw = self.read_checked(name, expected_shape, expected_dtype)?;
        Ok(match expected_dtype {
            "F64" => raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
                .collect(),
            "I32" => raw
                .chunks_exact(4)
                .map(|c| f64::from(i32::from_le_bytes(c.try_into().expect("chunk of 4"))))
                .collect(),
            other => unreachable!("read_f64 is only called with F64 or I32, not {other}"),
        })
    }

    /// Reads an `F32` tensor `name` of shape `expected_shape`.
    pub fn read_f32(
        &mut self,
        name: &str,
        expected_shape: &[usize],
    ) -> Result<Vec<f32>, StatsIoError> {
        let raw = self.read_checked(name, expected_shape, "F32")?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("chunk of 4")))
            .collect())
    }

    /// Reads an integer tensor (`I64` or `U64`, as `expected_dtype` says) of shape
    /// `expected_shape`; negative `I64` values are an error naming the tensor.
    pub fn read_u64(
        &mut self,
        name: &str,
        expected_shape: &[usize],
        expected_dtype: &str,
    ) -> Result<Vec<u64>, StatsIoError> {
        let raw = self.read_checked(name, expected_shape, expected_dtype)?;
        let words = raw
            .chunks_exact(8)
            .map(|c| <[u8; 8]>::try_from(c).expect("chunk of 8"));
        match expected_dtype {
            "U64" => Ok(words.map(u64::from_le_bytes).collect()),
            "I64" => words
                .map(|w| {
                    u64::try_from(i64::from_le_bytes(w)).map_err(|_| {
                        StatsIoError::new(
                            self.kind,
                            &self.path,
                            StatsIoErrorKind::Invalid(format!(
                                "tensor {name} holds a negative index"
                            )),
                        )
                    })
                })
                .collect(),
            other => unreachable!("read_u64 is only called with I64 or U64, not {other}"),
        }
    }

    /// The raw little-endian bytes of `name` after checking dtype and shape.
    fn read_checked(
        &mut self,
        name: &str,
        expected_shape: &[usize],
        expected_dtype: &str,
    ) -> Result<Vec<u8>, StatsIoError> {
        let entry = self.entry(name)?.clone();
        let err = |k: StatsIoErrorKind| StatsIoError::new(self.kind, &self.path, k);
        if entry.dtype != expected_dtype {
            return Err(err(StatsIoErrorKind::Dtype {
                name: name.into(),
                found: entry.dtype,
                expected: expected_dtype.into(),
            }));
        }
        if entry.shape != expected_shape {
            return Err(err(StatsIoErrorKind::Shape {
                name: name.into(),
                found: entry.shape,
                expected: expected_shape.to_vec(),
            }));
        }
        let len = usize::try_from(entry.end - entry.start).expect("tensor fits in memory");
        let mut raw = vec![0_u8; len];
        self.file
            .seek(SeekFrom::Start(entry.start))
            .and_then(|_| self.file.read_exact(&mut raw))
            .map_err(|e| err(StatsIoErrorKind::Read).with_source(e))?;
        Ok(raw)
    }
}

fn parse_entry(
    name: &str,
    v: &serde_json::Value,
    data_start: u64,
    file_len: u64,
) -> Result<TensorEntry, String> {
    let dtype = v["dtype"]
        .as_str()
        .ok_or_else(|| format!("tensor {name} has no dtype"))?
        .to_owned();
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                .collect()
        })
        .ok_or_else(|| format!("tensor {name} has no valid shape"))?;
    let offsets: Vec<u64> = v["data_offsets"]
        .as_array()
        .and_then(|a| a.iter().map(serde_json::Value::as_u64).collect())
        .filter(|o: &Vec<u64>| o.len() == 2 && o[0] <= o[1])
        .ok_or_else(|| format!("tensor {name} has no valid data_offsets"))?;
    // checked: offsets near u64::MAX must not wrap (issue 10).
    let (start, end) = match (
        data_start.checked_add(offsets[0]),
        data_start.checked_add(offsets[1]),
    ) {
        (Some(start), Some(end)) => (start, end),
        _ => {
            return Err(format!(
                "tensor {name} has data_offsets [{}, {}] beyond the file's {file_len} bytes",
                offsets[0], offsets[1]
            ));
        }
    };
    if end > file_len {
        return Err(format!(
            "tensor {name} ends at byte {end} beyond the file's {file_len} bytes"
        ));
    }
    let numel = shape
        .iter()
        .try_fold(1_u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| format!("tensor {name} has an overflowing shape"))?;
    if let Some(size) = dtype_size(&dtype)
        && numel.checked_mul(size) != Some(end - start)
    {
        return Err(format!(
            "tensor {name} holds {} bytes, but {dtype} {shape:?} needs {}",
            end - start,
            numel.saturating_mul(size)
        ));
    }
    Ok(TensorEntry {
        dtype,
        shape,
        start,
        end,
    })
}
