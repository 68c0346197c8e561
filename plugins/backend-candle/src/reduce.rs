//! Per-row statistics of one layer's tap: the reduction of the recording pass.
//!
//! Owns [`row_stats`]: for every row of a padded batch, over that row's counted positions,
//! the count of values `> 0`, the sum and the sum of squares of every neuron, as f32. Each row
//! is reduced on its own, in position order, so its sums do not depend on which other rows
//! share its batch (sharded, resumed and differently batched recordings agree to the last bit
//! of f32). On the CPU this is one pass over the activations with no temporaries; on other
//! devices it is a masked sum on the device, and only `[rows, 3 · n]` numbers come back.

use candle_core::{DType, Storage, Tensor};

/// Counted flat positions (indices into the batch's `[batch * seq]` tokens) of each row.
pub type RowPositions = [Vec<usize>];

/// `[rows][3 · n]`: count of `> 0`, sum, sum of squares of each neuron over the row's
/// counted positions, for `act` of shape `[batch * seq, n]` (any float dtype; reduced in f32).
///
/// # Errors
/// Device errors or a shape mismatch.
pub fn row_stats(
    act: &Tensor,
    rows: &RowPositions,
    batch: usize,
    seq: usize,
) -> candle_core::Result<Vec<Vec<f32>>> {
    let n = act.dim(1)?;
    let a = act.to_dtype(DType::F32)?;
    if let Some(out) = cpu_row_stats(&a, rows, n)? {
        return Ok(out);
    }
    device_row_stats(&a, rows, batch, seq, n)
}

/// The CPU path: one pass over the (contiguous, f32) activations of the counted positions.
fn cpu_row_stats(
    a: &Tensor,
    rows: &RowPositions,
    n: usize,
) -> candle_core::Result<Option<Vec<Vec<f32>>>> {
    let (storage, layout) = a.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Ok(None);
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        return Ok(None);
    };
    let data = &cpu.as_slice::<f32>()?[start..end];
    let mut out = Vec::with_capacity(rows.len());
    for positions in rows {
        let mut r = vec![0.0_f32; 3 * n];
        let (active, rest) = r.split_at_mut(n);
        let (sum, sum_sq) = rest.split_at_mut(n);
        for &p in positions {
            let x = data.get(p * n..(p + 1) * n).ok_or_else(|| {
                candle_core::Error::Msg(format!("counted position {p} is outside the batch"))
            })?;
            for (((c, s), q), &v) in active
                .iter_mut()
                .zip(sum.iter_mut())
                .zip(sum_sq.iter_mut())
                .zip(x)
            {
                *c += f32::from(u8::from(v > 0.0));
                *s += v;
                *q += v * v;
            }
        }
        out.push(r);
    }
    Ok(Some(out))
}

/// The device path: a `[batch, seq, 1]` mask multiplied in and summed over positions.
fn device_row_stats(
    a: &Tensor,
    rows: &RowPositions,
    batch: usize,
    seq: usize,
    n: usize,
) -> candle_core::Result<Vec<Vec<f32>>> {
    let mut m = vec![0.0_f32; batch * seq];
    for positions in rows {
        for &p in positions {
            m[p] = 1.0;
        }
    }
    let m = Tensor::from_vec(m, (batch, seq, 1), a.device())?;
    let am = a.reshape((batch, seq, n))?.broadcast_mul(&m)?;
    // The mask is 0 or 1, so `a * m > 0` exactly where a counted value is `> 0`.
    let active = am.gt(0.0_f32)?.to_dtype(DType::F32)?.sum(1)?;
    let sum = am.sum(1)?;
    let sum_sq = am.sqr()?.sum(1)?;
    let host: Vec<Vec<f32>> = Tensor::cat(&[active, sum, sum_sq], 1)?.to_vec2()?;
    // Row b of the batch holds the positions b * seq .. (b + 1) * seq.
    Ok(rows
        .iter()
        .map(|positions| {
            positions
                .first()
                .map_or_else(|| vec![0.0; 3 * n], |&p| host[p / seq].clone())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// `[batch * seq, n]` values with both signs.
    fn act() -> Tensor {
        let v: Vec<f32> = (0..2 * 3 * 4)
            .map(|i| ((i * 7) % 11) as f32 - 5.0)
            .collect();
        Tensor::from_vec(v, (6, 4), &Device::Cpu).unwrap()
    }

    #[test]
    fn cpu_and_device_paths_agree_with_sums_by_hand() {
        let a = act();
        let rows = vec![vec![0, 2], vec![3, 4, 5]];
        let cpu = row_stats(&a, &rows, 2, 3).unwrap();
        let dev = device_row_stats(&a, &rows, 2, 3, 4).unwrap();
        assert_eq!(cpu, dev);
        let v: Vec<Vec<f32>> = a.to_vec2().unwrap();
        for (r, positions) in rows.iter().enumerate() {
            for j in 0..4 {
                let xs: Vec<f32> = positions.iter().map(|&p| v[p][j]).collect();
                let active = xs.iter().filter(|&&x| x > 0.0).count() as f32;
                let sum: f32 = xs.iter().sum();
                let sq: f32 = xs.iter().map(|x| x * x).sum();
                assert_eq!(cpu[r][j], active);
                assert_eq!(cpu[r][4 + j], sum);
                assert_eq!(cpu[r][8 + j], sq);
            }
        }
    }

    #[test]
    fn bf16_is_reduced_in_f32_and_bad_positions_are_errors() {
        let a = act().to_dtype(DType::BF16).unwrap();
        let rows = vec![vec![1]];
        let got = row_stats(&a, &rows, 2, 3).unwrap();
        let want: Vec<f32> = act().to_vec2::<f32>().unwrap()[1].clone();
        assert_eq!(got[0][4..8], want[..]);
        let e = row_stats(&act(), &[vec![6]], 2, 3).unwrap_err();
        assert!(e.to_string().contains("counted position 6"), "{e}");
    }
}
