//! The CUDA path of [`super::RowReducer`]: one fused kernel per layer, results kept on the
//! device until the batch ends.
//!
//! One thread per (batch row `b`, neuron `j`) walks the row's positions `s = 0 .. seq` in
//! order and, where the mask is set, adds `x > 0`, `x` and `x * x` of
//! `x = f32(act[(b * seq + s) * n + j])` to three f32 accumulators (consecutive threads read
//! consecutive neurons, so the reads are coalesced). Per call it reads the activations once in
//! their own dtype and `batch * seq` mask bytes (uploaded once per batch), and writes
//! `[batch, 3 · n]` f32 into a device buffer of its own: no f32 copy of the activations, no
//! temporaries, and no synchronisation until [`Pending::finish`] copies every layer's buffer
//! back (the kernels and copies run in order on candle's stream, so an activation freed
//! after its launch is still read correctly).
//!
//! The arithmetic is the CPU path's exactly: bf16 and f16 widen to f32 exactly, additions and
//! products are round-to-nearest without FMA contraction (`__fadd_rn`, `__fmul_rn`, NVRTC's
//! `--fmad=false`) and subnormals are kept (`--ftz=false`), in position order, so both paths
//! agree bit for bit. The source is compiled once per process with NVRTC (no headers: the
//! conversions are written out) and loaded once per device.

use std::sync::OnceLock;

use candle_core::cuda_backend::WrapErr;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};
use candle_core::{DType, Device, Storage, Tensor};
use half::{bf16, f16};

/// Name of the module in candle's per-device cache of custom modules.
const MODULE: &str = "valex_row_stats";

/// Threads per block (neurons per block).
const BLOCK: u32 = 256;

/// The kernels: `row_stats_bf16`, `row_stats_f16` and `row_stats_f32`, with arguments
/// `(act, mask, out, seq, n)`; grid `(ceil(n / BLOCK), batch)`.
const SRC: &str = r#"
__device__ __forceinline__ float to_f32_bf16(unsigned short h) {
    return __uint_as_float(((unsigned int)h) << 16);
}
__device__ __forceinline__ float to_f32_f16(unsigned short h) {
    float f;
    asm("{ cvt.f32.f16 %0, %1; }" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ float to_f32_f32(float x) { return x; }

#define ROW_STATS(NAME, T, CONVERT)                                                        \
extern "C" __global__ void NAME(const T* __restrict__ act,                                 \
                                const unsigned char* __restrict__ mask,                    \
                                float* __restrict__ out,                                   \
                                unsigned long long seq,                                    \
                                unsigned long long n) {                                    \
    const unsigned long long j =                                                           \
        (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;                         \
    const unsigned long long b = blockIdx.y;                                               \
    if (j >= n) return;                                                                    \
    float c = 0.0f, sum = 0.0f, sq = 0.0f;                                                 \
    for (unsigned long long s = 0; s < seq; ++s) {                                         \
        const unsigned long long p = b * seq + s;                                          \
        if (mask[p]) {                                                                     \
            const float x = CONVERT(act[p * n + j]);                                       \
            c = __fadd_rn(c, x > 0.0f ? 1.0f : 0.0f);                                      \
            sum = __fadd_rn(sum, x);                                                       \
            sq = __fadd_rn(sq, __fmul_rn(x, x));                                           \
        }                                                                                  \
    }                                                                                      \
    float* o = out + b * 3ULL * n;                                                         \
    o[j] = c;                                                                              \
    o[n + j] = sum;                                                                        \
    o[2ULL * n + j] = sq;                                                                  \
}

ROW_STATS(row_stats_bf16, unsigned short, to_f32_bf16)
ROW_STATS(row_stats_f16, unsigned short, to_f32_f16)
ROW_STATS(row_stats_f32, float, to_f32_f32)
"#;

/// The PTX of [`SRC`], compiled once per process (an error is kept and returned each time).
fn ptx() -> candle_core::Result<&'static str> {
    static PTX: OnceLock<Result<String, String>> = OnceLock::new();
    PTX.get_or_init(|| {
        let opts = CompileOptions {
            fmad: Some(false),
            ftz: Some(false),
            prec_div: Some(true),
            prec_sqrt: Some(true),
            name: Some("valex_row_stats.cu".to_string()),
            ..Default::default()
        };
        compile_ptx_with_opts(SRC, opts)
            .map(|p| p.to_src())
            .map_err(|e| e.to_string())
    })
    .as_deref()
    .map_err(|e| {
        candle_core::Error::Msg(format!(
            "compiling the row statistics kernel with NVRTC failed: {e}"
        ))
    })
}

/// A batch's mask on the device and the outputs of its layers so far.
pub(super) struct Pending {
    dev: candle_core::cuda_backend::CudaDevice,
    mask: CudaSlice<u8>,
    batch: usize,
    seq: usize,
    /// Per pushed layer: `[batch, 3 · n]` f32 on the device, and `n`.
    outs: Vec<(CudaSlice<f32>, usize)>,
}

impl Pending {
    /// Uploads `mask` (`[batch * seq]`, 1 where a position is counted) to `device`.
    ///
    /// # Errors
    /// `device` is not a CUDA device, or a CUDA error.
    pub(super) fn new(
        device: &Device,
        mask: &[u8],
        batch: usize,
        seq: usize,
    ) -> candle_core::Result<Self> {
        let Device::Cuda(dev) = device else {
            candle_core::bail!("row statistics: not a CUDA device");
        };
        if batch > 65_535 {
            candle_core::bail!("a batch of {batch} rows is too large");
        }
        let mask = if mask.is_empty() {
            dev.alloc_zeros::<u8>(1)?
        } else {
            dev.clone_htod(mask)?
        };
        Ok(Pending {
            dev: dev.clone(),
            mask,
            batch,
            seq,
            outs: Vec::new(),
        })
    }

    /// Queues the kernel for `act` (`[batch * seq, n]` on this device; bf16, f16 or f32 are
    /// read as they are, any other dtype is converted to f32 first).
    ///
    /// # Errors
    /// A shape mismatch, or a CUDA or NVRTC error.
    pub(super) fn push(&mut self, act: &Tensor) -> candle_core::Result<()> {
        let (batch, seq) = (self.batch, self.seq);
        let (len, n) = act.dims2()?;
        if len != batch * seq {
            candle_core::bail!(
                "row statistics: activations of {len} positions for a batch of {batch} x {seq}"
            );
        }
        let mut out = self.dev.alloc_zeros::<f32>(batch * 3 * n)?;
        if len == 0 || n == 0 {
            self.outs.push((out, n));
            return Ok(());
        }
        let grid_y = u32::try_from(batch).map_err(|_| {
            candle_core::Error::Msg(format!("a batch of {batch} rows is too large"))
        })?;
        let grid_x = u32::try_from(n.div_ceil(BLOCK as usize))
            .map_err(|_| candle_core::Error::Msg(format!("{n} neurons are too many")))?;
        let act = match act.dtype() {
            DType::BF16 | DType::F16 | DType::F32 => act.contiguous()?,
            _ => act.to_dtype(DType::F32)?.contiguous()?,
        };
        let (storage, layout) = act.storage_and_layout();
        let Storage::Cuda(cuda) = &*storage else {
            candle_core::bail!("row statistics: the activations are not on a CUDA device");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("row statistics: the activations are not contiguous");
        };
        let dev = &cuda.device;
        if dev.id() != self.dev.id() {
            candle_core::bail!("row statistics: the activations moved to another CUDA device");
        }
        let (seq_arg, n_arg) = (seq as u64, n as u64);
        let cfg = LaunchConfig {
            grid_dim: (grid_x, grid_y, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let mask = &self.mask;
        // Each arm passes the activations as a view of exactly their `[start, end)` = `len * n`
        // elements, of the element type its kernel takes.
        macro_rules! launch {
            ($t:ty, $name:literal) => {{
                let func = dev.get_or_load_custom_func($name, MODULE, ptx()?)?;
                let a = cuda.as_cuda_slice::<$t>()?.slice(start..end);
                let mut builder = func.builder();
                builder.arg(&a);
                builder.arg(mask);
                builder.arg(&mut out);
                builder.arg(&seq_arg);
                builder.arg(&n_arg);
                // SAFETY: the argument list matches the kernel's `(const T*, const u8*,
                // float*, u64 seq, u64 n)`, T being bf16 and f16 as 16-bit words or f32. The
                // kernel reads `act[p * n + j]` for p < batch * seq = len and j < n, inside
                // the `len * n` elements of `a` (the contiguous `[len, n]` activations), and
                // `mask[p]` for p < len = the mask's `batch * seq` bytes; it writes
                // `out[b * 3n + k]` for b < batch (grid y) and k < 3n, inside the
                // `batch * 3 * n` floats of `out`.
                unsafe { builder.launch(cfg) }.w()?;
            }};
        }
        match act.dtype() {
            DType::BF16 => launch!(bf16, "row_stats_bf16"),
            DType::F16 => launch!(f16, "row_stats_f16"),
            _ => launch!(f32, "row_stats_f32"),
        }
        self.outs.push((out, n));
        Ok(())
    }

    /// Every pushed layer's flat `[batch, 3 · n]` statistics and its `n`, in push order.
    ///
    /// # Errors
    /// A CUDA error.
    pub(super) fn finish(self) -> candle_core::Result<Vec<(Vec<f32>, usize)>> {
        self.outs
            .iter()
            .map(|(out, n)| Ok((self.dev.clone_dtoh(out)?, *n)))
            .collect()
    }
}
