//! LoRA matmuls without a merged weight (`cuda/lora.cu`, Punica's SGMV, arXiv 2310.18547):
//! `y = x·Wᵀ + (alpha/r)·(x·Aₛᵀ)·Bₛᵀ` for rows grouped in segments, segment `s` using adapter
//! `adapters[s]`. The fused path is one cuBLAS GEMM and two SGMV launches whatever the number of
//! adapters; the unfused path (what PEFT does per adapter) is the base GEMM, then per adapter
//! two cuBLAS GEMMs into temporaries and a scaled add into `y`. Operands are views whose
//! extents (rows of the segments, leading dimensions, the adapters used) are checked before
//! launching.

use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};

use super::buffer::{GpuInts, GpuView, GpuViewMut, int, span};
use super::elementwise::{axpy, launch};
use super::gemm::{Operand, gemm, linear};
use super::{CudaError, DType, Gpu};

const FILE: &str = "lora.cu";

/// Rows grouped by adapter: segment `s` is rows `starts[s]..starts[s+1]` and uses adapter
/// `adapters[s]` (`-1`: no adapter), with its device copy.
#[derive(Debug)]
pub struct Segments {
    starts: Vec<usize>,
    adapters: Vec<i32>,
    dev_starts: GpuInts,
    dev_adapters: GpuInts,
}

impl Segments {
    /// Checks and uploads a segment table: `starts` ascending from 0, one more than `adapters`.
    pub fn new(gpu: &Gpu, starts: &[usize], adapters: &[i32]) -> Result<Self, CudaError> {
        if starts.len() != adapters.len() + 1 || starts.first() != Some(&0) || starts.windows(2).any(|w| w[0] > w[1]) {
            return Err(CudaError::Shape(format!(
                "lora: bad segment table {starts:?} for {} adapters",
                adapters.len()
            )));
        }
        Ok(Segments {
            starts: starts.to_vec(),
            adapters: adapters.to_vec(),
            dev_starts: GpuInts::from_indices(gpu, starts.iter().copied())?,
            dev_adapters: GpuInts::from_host(gpu, adapters)?,
        })
    }

    /// Total rows.
    pub fn rows(&self) -> usize {
        self.starts.last().copied().unwrap_or(0)
    }

    fn max_len(&self) -> usize {
        self.starts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
    }

    /// Adapters a product over these segments reads: one more than the largest index used.
    fn adapters_reached(&self) -> usize {
        self.iter().filter(|&(_, len, a)| a >= 0 && len > 0).map(|(_, _, a)| a as usize + 1).max().unwrap_or(0)
    }

    /// `(first row, rows, adapter)` per segment.
    pub fn iter(&self) -> impl Iterator<Item = (usize, usize, i32)> + '_ {
        self.starts.windows(2).zip(&self.adapters).map(|(w, &a)| (w[0], w[1] - w[0], a))
    }
}

/// The sizes of one LoRA layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoraShape {
    /// Input width.
    pub d_in: usize,
    /// Output width.
    pub d_out: usize,
    /// Rank.
    pub rank: usize,
    /// Adapters stacked in A and B.
    pub adapters: usize,
}

impl LoraShape {
    /// Floating-point operations for `rows` rows (base product and both LoRA products).
    pub fn flops(&self, rows: usize) -> f64 {
        2.0 * rows as f64 * (self.d_in * self.d_out + self.rank * (self.d_in + self.d_out)) as f64
    }

    /// Bytes that must move at least once: x, y, W and the adapters' A and B.
    pub fn bytes(&self, rows: usize, used_adapters: usize, dtype: DType) -> f64 {
        let elems = rows * (self.d_in + self.d_out)
            + self.d_in * self.d_out
            + used_adapters * self.rank * (self.d_in + self.d_out);
        (elems * dtype.size()) as f64
    }
}

/// Which SGMV kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SgmvKernel {
    /// Tensor cores (bf16/f16; k and strides multiples of 8).
    Mma,
    /// CUDA cores (any type and shape).
    Simt,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct SgmvParams {
    x: u64,
    w: u64,
    c: u64,
    seg_start: u64,
    seg_adapter: u64,
    x_row_stride: i64,
    w_adapter_stride: i64,
    w_row_stride: i64,
    c_row_stride: i64,
    n: i32,
    k: i32,
    accumulate: i32,
    alpha: f32,
}

// SAFETY: `#[repr(C)]` plain data laid out as `struct SgmvParams` of lora.cu (five pointers, four
// int64, three ints, one float).
unsafe impl DeviceRepr for SgmvParams {}

/// One SGMV product: for every row `m` of segment `s` with adapter `a = adapters[s] >= 0`,
/// `c[m, :n] (+)= alpha · x[m, :k] · w[a]ᵀ` where `w[a]` is `[n, k]` at element
/// `a·w_adapter_stride` of `w`. Operands are `(view, leading dimension)`; the element type is
/// x's.
#[allow(clippy::too_many_arguments)]
pub fn sgmv(
    gpu: &Gpu,
    (x, x_ld): (GpuView<'_>, usize),
    (w, w_adapter_stride, w_ld): (GpuView<'_>, usize, usize),
    (c, c_ld): (GpuViewMut<'_>, usize),
    (n, k): (usize, usize),
    alpha: f32,
    accumulate: bool,
    segments: &Segments,
    kernel: Option<SgmvKernel>,
) -> Result<(), CudaError> {
    let (dtype, rows) = (x.dtype(), segments.rows());
    x.fits("sgmv x", dtype, span(k, &[(rows, x_ld)]))?;
    w.fits("sgmv w", dtype, span(k, &[(n, w_ld), (segments.adapters_reached(), w_adapter_stride)]))?;
    c.fits("sgmv c", dtype, span(n, &[(rows, c_ld)]))?;
    int(rows, "sgmv rows")?;
    let (x_ptr, w_ptr, c_ptr) = (x.ptr(gpu), w.ptr(gpu), c.ptr(gpu));
    let aligned =
        [k, x_ld, w_ld, w_adapter_stride].iter().all(|v| v.is_multiple_of(8)) && x_ptr % 16 == 0 && w_ptr % 16 == 0;
    let chosen = if dtype != DType::F32 && aligned { SgmvKernel::Mma } else { SgmvKernel::Simt };
    let kernel = kernel.unwrap_or(chosen);
    if kernel == SgmvKernel::Mma && chosen != SgmvKernel::Mma {
        return Err(CudaError::Shape("sgmv: the tensor-core kernel does not take these arguments".into()));
    }
    let segs = segments.adapters.len();
    if segs == 0 || segments.max_len() == 0 || n == 0 {
        return Ok(());
    }
    let params = SgmvParams {
        x: x_ptr,
        w: w_ptr,
        c: c_ptr,
        seg_start: segments.dev_starts.ptr(gpu),
        seg_adapter: segments.dev_adapters.ptr(gpu),
        x_row_stride: x_ld as i64,
        w_adapter_stride: w_adapter_stride as i64,
        w_row_stride: w_ld as i64,
        c_row_stride: c_ld as i64,
        n: int(n, "sgmv n")?,
        k: int(k, "sgmv k")?,
        accumulate: i32::from(accumulate),
        alpha,
    };
    let (name, tile, threads) = match kernel {
        SgmvKernel::Mma => (format!("sgmv_mma_{}", dtype.kernel_suffix()), 64, 128),
        SgmvKernel::Simt => (format!("sgmv_simt_{}", dtype.kernel_suffix()), 16, 256),
    };
    let cfg = LaunchConfig {
        grid_dim: (n.div_ceil(tile) as u32, segs as u32, segments.max_len().div_ceil(tile) as u32),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    };
    launch!(gpu, FILE, name, cfg, &params)
}

/// The inputs of one LoRA layer: `x [rows, d_in]`, `w [d_out, d_in]`, `a [adapters, rank,
/// d_in]`, `b [adapters, d_out, rank]`; the output `y [rows, d_out]` and the scratch
/// `t [rows, rank]` are separate views.
#[derive(Debug, Clone, Copy)]
pub struct LoraArgs<'a> {
    /// Input rows.
    pub x: GpuView<'a>,
    /// Base weight.
    pub w: GpuView<'a>,
    /// Stacked down-projections.
    pub a: GpuView<'a>,
    /// Stacked up-projections.
    pub b: GpuView<'a>,
    /// `alpha / rank`.
    pub scale: f32,
}

/// The fused path: `y = x·Wᵀ` (cuBLAS), `t = scale·x·Aₛᵀ` (SGMV shrink), `y += t·Bₛᵀ` (SGMV expand).
pub fn lora_fused(
    gpu: &Gpu,
    args: &LoraArgs<'_>,
    (mut y, mut t): (GpuViewMut<'_>, GpuViewMut<'_>),
    shape: &LoraShape,
    segments: &Segments,
    kernel: Option<SgmvKernel>,
) -> Result<(), CudaError> {
    let (rows, d_in, d_out, r) = (segments.rows(), shape.d_in, shape.d_out, shape.rank);
    linear(gpu, args.x, args.w, y.reborrow(), rows, d_in, d_out, 0.0)?;
    let (x, a, b) = ((args.x, d_in), (args.a, r * d_in, d_in), (args.b, d_out * r, r));
    sgmv(gpu, x, a, (t.reborrow(), r), (r, d_in), args.scale, false, segments, kernel)?;
    sgmv(gpu, (t.as_view(), r), b, (y, d_out), (d_out, r), 1.0, true, segments, kernel)
}

/// The unfused path: `y = x·Wᵀ`, then per segment with an adapter `t = x·Aᵀ`, `d = t·Bᵀ` (cuBLAS)
/// and `y += scale·d`. `delta` is `[rows, d_out]` scratch.
pub fn lora_unfused(
    gpu: &Gpu,
    args: &LoraArgs<'_>,
    (mut y, mut t, mut delta): (GpuViewMut<'_>, GpuViewMut<'_>, GpuViewMut<'_>),
    shape: &LoraShape,
    segments: &Segments,
) -> Result<(), CudaError> {
    let (rows, d_in, d_out, r) = (segments.rows(), shape.d_in, shape.d_out, shape.rank);
    linear(gpu, args.x, args.w, y.reborrow(), rows, d_in, d_out, 0.0)?;
    for (start, len, adapter) in segments.iter() {
        if adapter < 0 || len == 0 {
            continue;
        }
        let ad = adapter as usize;
        let x = args.x.slice(start * d_in, len * d_in)?;
        let mut ts = t.reborrow().slice(start * r, len * r)?;
        let mut ds = delta.reborrow().slice(start * d_out, len * d_out)?;
        let ys = y.reborrow().slice(start * d_out, len * d_out)?;
        let (wa, wb) = (args.a.slice(ad * r * d_in, r * d_in)?, args.b.slice(ad * d_out * r, d_out * r)?);
        gemm(gpu, (len, r, d_in), Operand::n(x, d_in), Operand::t(wa, d_in), ts.reborrow(), r, 1.0, 0.0)?;
        gemm(gpu, (len, d_out, r), Operand::n(ts.as_view(), r), Operand::t(wb, r), ds.reborrow(), d_out, 1.0, 0.0)?;
        axpy(gpu, ys, ds.as_view(), args.scale, len * d_out)?;
    }
    Ok(())
}
