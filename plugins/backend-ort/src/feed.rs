//! Feeding a session: right-padded batches ([`Padded`]) and the input tensors of one forward
//! ([`Feed`]) in the element types the graph declares.
//!
//! Rows are right-padded with token id 0; `attention_mask` is 1 on real tokens and 0 on
//! padding; `position_ids` count each row's tokens from 0. Only inputs the session declares
//! are fed (pruning may drop some).

use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor};
use valex_core::ComponentError;

use crate::model_file::InputSpec;
use crate::proto::dtype;
use crate::rewrite;

/// Rows right-padded to one length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Padded {
    /// Number of rows.
    pub rows: usize,
    /// Padded length.
    pub seq: usize,
    /// Real tokens per row.
    pub lens: Vec<usize>,
    /// `[rows, seq]` token ids, 0 past each row's end.
    pub ids: Vec<u32>,
}

impl Padded {
    /// Right-pads `rows` with id 0.
    pub fn right(rows: &[&[u32]]) -> Self {
        let seq = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut ids = vec![0u32; rows.len() * seq];
        for (b, r) in rows.iter().enumerate() {
            ids[b * seq..b * seq + r.len()].copy_from_slice(r);
        }
        Padded {
            rows: rows.len(),
            seq,
            lens: rows.iter().map(|r| r.len()).collect(),
            ids,
        }
    }

    /// Zeroes the values of padding positions in `[rows, seq, width]` values.
    pub fn zero_past_ends(&self, values: &mut [f32], width: usize) {
        for (b, &len) in self.lens.iter().enumerate() {
            let start = (b * self.seq + len) * width;
            let end = ((b + 1) * self.seq * width).min(values.len());
            if start < end {
                values[start..end].fill(0.0);
            }
        }
    }
}

/// A tensor input of ONNX Runtime from a shape and row-major data.
fn tensor<T>(shape: Vec<usize>, data: Vec<T>) -> Result<DynValue, ComponentError>
where
    T: ort::value::PrimitiveTensorElementType + Clone + std::fmt::Debug + 'static,
{
    Tensor::from_array((shape, data))
        .map(Tensor::into_dyn)
        .map_err(|e| ComponentError::stage("an input tensor could not be created").with_source(e))
}

/// An integer-like input in the element type `elem_type` the graph declares.
fn int_tensor(
    name: &str,
    elem_type: i32,
    shape: Vec<usize>,
    data: Vec<i64>,
) -> Result<DynValue, ComponentError> {
    match elem_type {
        dtype::INT64 => tensor(shape, data),
        6 => tensor(shape, data.into_iter().map(|v| v as i32).collect()),
        dtype::BOOL => tensor(shape, data.into_iter().map(|v| v != 0).collect()),
        dtype::FLOAT => tensor(shape, data.into_iter().map(|v| v as f32).collect()),
        other => Err(ComponentError::input(format!(
            "graph input {name} has element type {other}; valex feeds int64, int32, bool or float32"
        ))),
    }
}

/// The inputs of one forward.
pub struct Feed {
    values: Vec<(String, DynValue)>,
    error: Option<ComponentError>,
}

impl Feed {
    /// `input_ids`, and `attention_mask` / `position_ids` where the graph has them.
    pub fn new(inputs: &[InputSpec], p: &Padded) -> Self {
        let mut f = Feed {
            values: Vec::new(),
            error: None,
        };
        let shape = vec![p.rows, p.seq];
        for spec in inputs {
            let data: Vec<i64> = match spec.name.as_str() {
                "input_ids" => p.ids.iter().map(|&i| i64::from(i)).collect(),
                "attention_mask" => (0..p.rows * p.seq)
                    .map(|k| i64::from(k % p.seq.max(1) < p.lens[k / p.seq.max(1)]))
                    .collect(),
                "position_ids" => (0..p.rows * p.seq)
                    .map(|k| (k % p.seq.max(1)) as i64)
                    .collect(),
                _ => continue,
            };
            let v = int_tensor(&spec.name, spec.elem_type, shape.clone(), data);
            f.push(&spec.name, v);
        }
        f
    }

    fn push(&mut self, name: &str, v: Result<DynValue, ComponentError>) {
        match v {
            Ok(v) => self.values.push((name.to_owned(), v)),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    /// Adds the count mask (`[rows, seq]`, row-major).
    #[must_use]
    pub fn with_count_mask(mut self, mask: Vec<bool>, rows: usize, seq: usize) -> Self {
        let v = tensor(vec![rows, seq], mask);
        self.push(rewrite::COUNT_MASK, v);
        self
    }

    /// Adds the per-layer edit masks (`[neurons]` each).
    #[must_use]
    pub fn with_masks(mut self, masks: &[Vec<f32>]) -> Self {
        for (layer, m) in masks.iter().enumerate() {
            let v = tensor(vec![m.len()], m.clone());
            self.push(&rewrite::mask_input(layer), v);
        }
        self
    }

    /// Adds picked flat positions and their target ids.
    #[must_use]
    pub fn with_picks(mut self, pick: Vec<i64>, target: Vec<i64>) -> Self {
        let n = pick.len();
        let v = tensor(vec![n], pick);
        self.push(rewrite::PICK, v);
        let v = tensor(vec![n, 1], target);
        self.push(rewrite::TARGET, v);
        self
    }

    /// The values `session` declares as inputs.
    ///
    /// # Errors
    /// A tensor could not be built, or the session needs an input this feed lacks.
    pub fn into_inputs(
        self,
        session: &Session,
    ) -> Result<Vec<(String, SessionInputValue<'static>)>, ComponentError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let declared: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for d in &declared {
            if !self.values.iter().any(|(n, _)| n == d) {
                return Err(ComponentError::stage(format!(
                    "the instrumented graph needs input {d}, which valex does not feed"
                )));
            }
        }
        Ok(self
            .values
            .into_iter()
            .filter(|(n, _)| declared.contains(&n.as_str()))
            .map(|(n, v)| (n, SessionInputValue::from(v)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_right_and_zeroes_padding_values() {
        let p = Padded::right(&[&[5, 6, 7], &[8]]);
        assert_eq!((p.rows, p.seq, p.lens.clone()), (2, 3, vec![3, 1]));
        assert_eq!(p.ids, [5, 6, 7, 8, 0, 0]);
        let mut v: Vec<f32> = (0..12).map(|x| x as f32 + 1.0).collect();
        p.zero_past_ends(&mut v, 2);
        assert_eq!(v, [1., 2., 3., 4., 5., 6., 7., 8., 0., 0., 0., 0.]);
    }
}
