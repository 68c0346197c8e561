//! Per-row statistics of one layer's tap: the reduction of the recording pass.
//!
//! Owns [`RowReducer`]: for every row of a padded batch, over that row's counted positions,
//! the count of values `> 0`, the sum and the sum of squares of every neuron, as f32, layer
//! after layer. Each row is reduced on its own, in position order, so its sums do not depend
//! on which other rows share its batch (sharded, resumed and differently batched recordings
//! agree to the last bit of f32). On the CPU this is one pass over the activations with no
//! temporaries. On CUDA (a build with the `cuda` feature) it is one fused kernel per layer
//! (`reduce/cuda.rs`): it reads the activations once in their own dtype (bf16, f16 or f32)
//! and a one-byte mask of the counted positions (uploaded once per batch), and writes
//! `[batch, 3 · n]` f32 that stays on the device until [`RowReducer::finish`]: one
//! synchronisation per batch, not one per layer. Its f32 arithmetic is the CPU path's, in the
//! same order, so the two agree bit for bit. On other devices it is a masked sum with candle
//! ops, also kept on the device until the end.

use candle_core::{DType, Device, Storage, Tensor};

#[cfg(feature = "cuda")]
#[allow(unsafe_code, reason = "launching the fused CUDA kernel is an FFI call")]
mod cuda;

/// Counted flat positions (indices into the batch's `[batch * seq]` tokens) of each row.
pub type RowPositions = [Vec<usize>];

/// One layer's result: `[rows][3 · n]`, count of `> 0`, sum, sum of squares of each neuron.
pub type LayerRows = Vec<Vec<f32>>;

/// Reduces the tap of one layer after another for the rows of one padded batch.
///
/// [`push`](Self::push) queues a layer's reduction (on the CPU it runs at once);
/// [`finish`](Self::finish) returns every pushed layer's per-row statistics in push order.
pub struct RowReducer<'a> {
    rows: &'a RowPositions,
    batch: usize,
    seq: usize,
    /// `[batch * seq]`: 1 at every counted position (made once, uploaded once per device
    /// batch).
    mask: Vec<u8>,
    pending: Pending,
}

/// Results not yet handed back.
enum Pending {
    /// Nothing pushed yet (the device is known at the first push).
    Empty,
    /// CPU results, already final.
    Host(Vec<LayerRows>),
    /// The `[batch, seq, 1]` f32 mask and `[batch, 3 · n]` f32 per layer, on a device
    /// without the fused kernel.
    Device(Tensor, Vec<Tensor>),
    /// The fused kernel's outputs, on the device.
    #[cfg(feature = "cuda")]
    Cuda(cuda::Pending),
}

impl<'a> RowReducer<'a> {
    /// A reducer for `rows` of a `batch` × `seq` padded batch.
    ///
    /// # Errors
    /// A counted position outside the batch.
    pub fn new(rows: &'a RowPositions, batch: usize, seq: usize) -> candle_core::Result<Self> {
        Ok(RowReducer {
            mask: counted_mask(rows, batch * seq)?,
            rows,
            batch,
            seq,
            pending: Pending::Empty,
        })
    }

    /// Reduces `act` (`[batch * seq, n]`, any float dtype, reduced in f32): one layer.
    ///
    /// # Errors
    /// Device errors, a shape mismatch, or activations on another device than the earlier
    /// layers'.
    pub fn push(&mut self, act: &Tensor) -> candle_core::Result<()> {
        let (len, n) = act.dims2()?;
        if len != self.batch * self.seq {
            candle_core::bail!(
                "row statistics: activations of {len} positions for a batch of {} x {}",
                self.batch,
                self.seq
            );
        }
        if matches!(self.pending, Pending::Empty) {
            self.pending = self.start(act.device())?;
        }
        match &mut self.pending {
            Pending::Empty => unreachable!("started above"),
            Pending::Host(done) => {
                let a = act.to_dtype(DType::F32)?;
                let out = match cpu_row_stats(&a, self.rows, n)? {
                    Some(out) => out,
                    // A non-contiguous CPU tensor.
                    None => cpu_row_stats(&a.contiguous()?, self.rows, n)?
                        .ok_or_else(|| candle_core::Error::Msg("not a CPU tensor".into()))?,
                };
                done.push(out);
            }
            Pending::Device(mask, queued) => {
                queued.push(device_row_stats(act, mask, self.batch, self.seq, n)?);
            }
            #[cfg(feature = "cuda")]
            Pending::Cuda(p) => p.push(act)?,
        }
        Ok(())
    }

    /// Every pushed layer's `[rows][3 · n]` statistics, in push order (one copy from the
    /// device for the whole batch).
    ///
    /// # Errors
    /// Device errors.
    pub fn finish(self) -> candle_core::Result<Vec<LayerRows>> {
        let (rows, seq) = (self.rows, self.seq);
        match self.pending {
            Pending::Empty => Ok(Vec::new()),
            Pending::Host(done) => Ok(done),
            Pending::Device(_, queued) => queued
                .iter()
                .map(|t| {
                    let n = t.dim(1)? / 3;
                    let host: Vec<f32> = t.flatten_all()?.to_vec1()?;
                    Ok(by_row(&host, rows, seq, n))
                })
                .collect(),
            #[cfg(feature = "cuda")]
            Pending::Cuda(p) => Ok(p
                .finish()?
                .into_iter()
                .map(|(host, n)| by_row(&host, rows, seq, n))
                .collect()),
        }
    }

    fn start(&self, device: &Device) -> candle_core::Result<Pending> {
        Ok(match device {
            Device::Cpu => Pending::Host(Vec::new()),
            #[cfg(feature = "cuda")]
            Device::Cuda(_) => Pending::Cuda(cuda::Pending::new(
                device, &self.mask, self.batch, self.seq,
            )?),
            _ => Pending::Device(
                device_mask(&self.mask, self.batch, self.seq, device)?,
                Vec::new(),
            ),
        })
    }
}

/// `[rows][3 · n]`: count of `> 0`, sum, sum of squares of each neuron over the row's
/// counted positions, for `act` of shape `[batch * seq, n]` (any float dtype; reduced in f32):
/// a [`RowReducer`] with one layer (for the tests).
///
/// # Errors
/// Device errors or a shape mismatch.
#[cfg(test)]
fn row_stats(
    act: &Tensor,
    rows: &RowPositions,
    batch: usize,
    seq: usize,
) -> candle_core::Result<LayerRows> {
    let mut r = RowReducer::new(rows, batch, seq)?;
    r.push(act)?;
    r.finish()?
        .pop()
        .ok_or_else(|| candle_core::Error::Msg("no statistics".into()))
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

/// The device path: a `[batch, seq, 1]` mask multiplied in and summed over positions, as
/// `[batch, 3 · n]` f32 on the device.
fn device_row_stats(
    a: &Tensor,
    mask: &Tensor,
    batch: usize,
    seq: usize,
    n: usize,
) -> candle_core::Result<Tensor> {
    let a = a.to_dtype(DType::F32)?;
    let am = a.reshape((batch, seq, n))?.broadcast_mul(mask)?;
    // The mask is 0 or 1, so `a * m > 0` exactly where a counted value is `> 0`.
    let active = am.gt(0.0_f32)?.to_dtype(DType::F32)?.sum(1)?;
    let sum = am.sum(1)?;
    let sum_sq = am.sqr()?.sum(1)?;
    Tensor::cat(&[active, sum, sum_sq], 1)
}

/// The counted-position mask as a `[batch, seq, 1]` f32 tensor on `device`.
fn device_mask(
    mask: &[u8],
    batch: usize,
    seq: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let m: Vec<f32> = mask.iter().map(|&b| f32::from(b)).collect();
    Tensor::from_vec(m, (batch, seq, 1), device)
}

/// `[batch * seq]`: 1 at every counted position of `rows`, else 0.
fn counted_mask(rows: &RowPositions, len: usize) -> candle_core::Result<Vec<u8>> {
    let mut m = vec![0_u8; len];
    for &p in rows.iter().flatten() {
        *m.get_mut(p).ok_or_else(|| {
            candle_core::Error::Msg(format!("counted position {p} is outside the batch"))
        })? = 1;
    }
    Ok(m)
}

/// Each row's `3 · n` statistics out of the flat `[batch, 3 · n]` ones of the batch rows: row
/// b of the batch holds the positions `b * seq .. (b + 1) * seq`; a row with no counted
/// position gets zeros.
fn by_row(host: &[f32], rows: &RowPositions, seq: usize, n: usize) -> Vec<Vec<f32>> {
    rows.iter()
        .map(|positions| {
            positions.first().map_or_else(
                || vec![0.0; 3 * n],
                |&p| host[p / seq * 3 * n..(p / seq + 1) * 3 * n].to_vec(),
            )
        })
        .collect()
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
        let mask = device_mask(&counted_mask(&rows, 6).unwrap(), 2, 3, &Device::Cpu).unwrap();
        let dev = device_row_stats(&a, &mask, 2, 3, 4).unwrap();
        let dev = by_row(&dev.flatten_all().unwrap().to_vec1().unwrap(), &rows, 3, 4);
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
    fn a_reducer_returns_every_layer_in_push_order() {
        let rows = vec![vec![0, 1], vec![4]];
        let (a, b) = (act(), (act() * -2.0).unwrap());
        let mut r = RowReducer::new(&rows, 2, 3).unwrap();
        r.push(&a).unwrap();
        // A non-contiguous layer (a transposed copy, transposed back) reduces the same.
        let bt = b.t().unwrap().contiguous().unwrap().t().unwrap();
        assert!(!bt.is_contiguous());
        r.push(&bt).unwrap();
        let got = r.finish().unwrap();
        assert_eq!(
            got,
            [
                row_stats(&a, &rows, 2, 3).unwrap(),
                row_stats(&b, &rows, 2, 3).unwrap()
            ]
        );
        assert_ne!(got[0], got[1]);
        let mut r = RowReducer::new(&rows, 2, 3).unwrap();
        let e = r.push(&act().narrow(0, 0, 5).unwrap()).unwrap_err();
        assert!(e.to_string().contains("5 positions"), "{e}");
        assert!(
            RowReducer::new(&rows, 2, 3)
                .unwrap()
                .finish()
                .unwrap()
                .is_empty()
        );
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

#[cfg(all(test, feature = "cuda"))]
mod cuda_tests {
    use candle_core::Device;

    use super::*;

    /// `[len, n]` f32 values in about [-2, 2] (some exactly 0) from a fixed LCG.
    fn random(len: usize, n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        (0..len * n)
            .map(|i| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                if i % 17 == 0 {
                    0.0
                } else {
                    ((x >> 40) as f32 / (1_u64 << 24) as f32) * 4.0 - 2.0
                }
            })
            .collect()
    }

    #[test]
    fn cuda_kernel_equals_the_cpu_path_bit_for_bit() {
        let gpu = match Device::new_cuda(0) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("SKIPPED: no CUDA device 0 ({e})");
                return;
            }
        };
        // n = 300 spans two blocks; row 1 has nothing counted; row 3 counts non-adjacent
        // positions; every row is cut at a different length.
        let (batch, seq, n) = (4, 7, 300);
        let rows: Vec<Vec<usize>> = vec![
            (0..7).collect(),
            vec![],
            (14..19).collect(),
            vec![21, 23, 24, 27],
        ];
        let v = random(batch * seq, n, 42);
        let cpu_f32 = Tensor::from_vec(v, (batch * seq, n), &Device::Cpu).unwrap();
        for dt in [DType::BF16, DType::F16, DType::F32] {
            let cpu = cpu_f32.to_dtype(dt).unwrap();
            let want = row_stats(&cpu, &rows, batch, seq).unwrap();
            let on_gpu = cpu.to_device(&gpu).unwrap();
            let got = row_stats(&on_gpu, &rows, batch, seq).unwrap();
            assert_eq!(got.len(), rows.len());
            for (r, (g, w)) in got.iter().zip(&want).enumerate() {
                let gb: Vec<u32> = g.iter().map(|x| x.to_bits()).collect();
                let wb: Vec<u32> = w.iter().map(|x| x.to_bits()).collect();
                assert!(gb == wb, "{dt:?} row {r}: CUDA {g:?} != CPU {w:?}");
            }
            // Non-contiguous activations (a transposed `[n, len]`) give the same numbers.
            let t = on_gpu.t().unwrap().contiguous().unwrap().t().unwrap();
            assert!(!t.is_contiguous());
            assert_eq!(row_stats(&t, &rows, batch, seq).unwrap(), got, "{dt:?}");
        }
        // Several layers through one reducer: one mask upload, every result after the last.
        let l0 = cpu_f32.to_dtype(DType::BF16).unwrap();
        let l1 = (&cpu_f32 * 0.5).unwrap();
        let mut r = RowReducer::new(&rows, batch, seq).unwrap();
        r.push(&l0.to_device(&gpu).unwrap()).unwrap();
        r.push(&l1.to_device(&gpu).unwrap()).unwrap();
        assert_eq!(
            r.finish().unwrap(),
            [
                row_stats(&l0, &rows, batch, seq).unwrap(),
                row_stats(&l1, &rows, batch, seq).unwrap()
            ]
        );
        // The fused path checks positions and shapes like the others.
        let g = cpu_f32.to_device(&gpu).unwrap();
        let e = row_stats(&g, &[vec![28]], batch, seq).unwrap_err();
        assert!(e.to_string().contains("counted position 28"), "{e}");
        assert!(row_stats(&g, &[vec![0]], batch, seq + 1).is_err());
    }
}
