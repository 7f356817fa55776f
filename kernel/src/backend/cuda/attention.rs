//! Fused attention forward (`cuda/attention.cu`, FlashAttention-2, arXiv 2307.08691) and the
//! unfused path it is measured against (cuBLAS `Q·Kᵀ`, a softmax kernel, cuBLAS `P·V`, with the
//! score matrix in global memory). Operands are views; the extent each kernel reaches (batch,
//! position and head strides of its layout) is checked against them before launching.

use cudarc::driver::sys::CUfunction_attribute_enum;
use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};

use super::buffer::{GpuInts, GpuView, GpuViewMut, int, span};
use super::elementwise::launch;
use super::gemm::{Operand, gemm_batched};
use super::{CudaError, DType, Gpu, GpuBuf};

const FILE: &str = "attention.cu";

/// Where an operand's elements are, in elements: `ptr + b·batch + pos·row + head·head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Between batch elements.
    pub batch: usize,
    /// Between positions.
    pub row: usize,
    /// Between heads.
    pub head: usize,
}

impl Layout {
    /// `[batch, seq, row_width]` with head `h` at column `h·dim` (a projection's output; the
    /// packed QKV output has `row_width = 3·heads·dim`).
    pub fn interleaved(seq: usize, row_width: usize, dim: usize) -> Layout {
        Layout { batch: seq * row_width, row: row_width, head: dim }
    }

    /// `[batch, heads, seq, dim]` (a KV cache, the unfused path's layout).
    pub fn head_major(heads: usize, seq: usize, dim: usize) -> Layout {
        Layout { batch: heads * seq * dim, row: dim, head: seq * dim }
    }

    fn aligned8(&self) -> bool {
        self.batch.is_multiple_of(8) && self.row.is_multiple_of(8) && self.head.is_multiple_of(8)
    }

    /// One past the last element of `batch × len` positions of `heads` heads of `dim`.
    fn span(&self, batch: usize, len: usize, heads: usize, dim: usize) -> Option<usize> {
        span(dim, &[(batch, self.batch), (len, self.row), (heads, self.head)])
    }
}

/// The sizes of one attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnShape {
    /// Batch elements.
    pub batch: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`; equal for multi-head attention).
    pub kv_heads: usize,
    /// Queries per batch element (the last `q_len` positions of `kv_len` when causal).
    pub q_len: usize,
    /// Keys per batch element.
    pub kv_len: usize,
    /// Head dimension.
    pub head_dim: usize,
    /// Decoder masking: query `i` sees keys `j <= i + kv_len - q_len`.
    pub causal: bool,
}

impl AttnShape {
    /// Floating-point operations of the two products, counting only visible (query, key) pairs.
    pub fn flops(&self) -> f64 {
        let pairs = if self.causal {
            let offset = (self.kv_len - self.q_len) as f64;
            let q = self.q_len as f64;
            q * offset + q * (q + 1.0) / 2.0
        } else {
            (self.q_len * self.kv_len) as f64
        };
        4.0 * (self.batch * self.heads) as f64 * pairs * self.head_dim as f64
    }

    /// Bytes read and written by a kernel that touches Q, K, V and O once.
    pub fn bytes(&self, dtype: DType) -> f64 {
        let q = self.batch * self.heads * self.q_len * self.head_dim;
        let kv = self.batch * self.kv_heads * self.kv_len * self.head_dim;
        ((2 * q + 2 * kv) * dtype.size()) as f64
    }
}

/// The inputs of one attention call (the output is a separate [`GpuViewMut`]).
#[derive(Debug, Clone, Copy)]
pub struct AttnArgs<'a> {
    /// Queries.
    pub q: GpuView<'a>,
    /// Keys.
    pub k: GpuView<'a>,
    /// Values.
    pub v: GpuView<'a>,
    /// Layouts of q, k, v and the output.
    pub layouts: [Layout; 4],
    /// `[batch, kv_len]`, nonzero = visible; `None`: no padding mask.
    pub key_mask: Option<&'a GpuInts>,
    /// Sizes and masking.
    pub shape: AttnShape,
    /// Score scale (`1/sqrt(head_dim)` when `None`).
    pub scale: Option<f32>,
}

impl AttnArgs<'_> {
    /// Checks that the views hold what the kernel reaches, with one element type.
    fn check(&self, o: &GpuViewMut<'_>) -> Result<DType, CudaError> {
        let (s, dt) = (&self.shape, self.q.dtype());
        let [lq, lk, lv, lo] = self.layouts;
        self.q.fits("attention q", dt, lq.span(s.batch, s.q_len, s.heads, s.head_dim))?;
        self.k.fits("attention k", dt, lk.span(s.batch, s.kv_len, s.kv_heads, s.head_dim))?;
        self.v.fits("attention v", dt, lv.span(s.batch, s.kv_len, s.kv_heads, s.head_dim))?;
        o.fits("attention o", dt, lo.span(s.batch, s.q_len, s.heads, s.head_dim))?;
        if let Some(m) = self.key_mask
            && s.batch.checked_mul(s.kv_len).is_none_or(|n| m.len() < n)
        {
            return Err(CudaError::Shape(format!("attention: a key mask of {} for {}x{}", m.len(), s.batch, s.kv_len)));
        }
        for (v, what) in [(s.q_len, "q_len"), (s.kv_len, "kv_len"), (s.heads, "heads"), (s.batch, "batch")] {
            int(v, what)?;
        }
        Ok(dt)
    }
}

/// Which kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttnKernel {
    /// Tensor cores (bf16/f16, head dim 64, 80 or 128, 8-element alignment).
    Mma,
    /// CUDA cores (any type, head dim up to 128).
    Simt,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct AttnParams {
    q: u64,
    k: u64,
    v: u64,
    o: u64,
    key_mask: u64,
    strides: [i64; 12],
    q_len: i32,
    kv_len: i32,
    heads: i32,
    kv_heads: i32,
    head_dim: i32,
    causal: i32,
    scale_log2: f32,
}

// SAFETY: `AttnParams` is `#[repr(C)]` plain data laid out as `struct AttnParams` of attention.cu
// (five pointers, twelve int64 strides, six ints, one float).
unsafe impl DeviceRepr for AttnParams {}

/// The kernel [`attention`] picks for these arguments and output.
pub fn pick_kernel(gpu: &Gpu, args: &AttnArgs<'_>, o: &GpuViewMut<'_>) -> Result<AttnKernel, CudaError> {
    let (s, dtype) = (&args.shape, args.q.dtype());
    let addresses = [args.q.ptr(gpu), args.k.ptr(gpu), args.v.ptr(gpu), o.ptr(gpu)];
    let aligned = args.layouts.iter().all(Layout::aligned8) && addresses.iter().all(|p| p % 16 == 0);
    if dtype != DType::F32 && matches!(s.head_dim, 64 | 80 | 128) && aligned {
        Ok(AttnKernel::Mma)
    } else if s.head_dim <= 128 {
        Ok(AttnKernel::Simt)
    } else {
        Err(CudaError::Shape(format!("attention: head dim {} is over the kernels' 128", s.head_dim)))
    }
}

/// Fused attention: `O = softmax(scale · Q·Kᵀ + mask) · V` per (batch, head), into `o`.
pub fn attention(
    gpu: &Gpu,
    args: &AttnArgs<'_>,
    o: GpuViewMut<'_>,
    kernel: Option<AttnKernel>,
) -> Result<(), CudaError> {
    let s = args.shape;
    if s.heads == 0 || s.kv_heads == 0 || !s.heads.is_multiple_of(s.kv_heads) {
        return Err(CudaError::Shape(format!("attention: {} heads cannot share {} kv heads", s.heads, s.kv_heads)));
    }
    if s.kv_len < s.q_len && s.causal {
        return Err(CudaError::Shape(format!("attention: causal with {} queries but {} keys", s.q_len, s.kv_len)));
    }
    if s.batch == 0 || s.q_len == 0 {
        return Ok(());
    }
    if s.kv_len == 0 || s.head_dim == 0 {
        return Err(CudaError::Shape("attention: no keys or an empty head".into()));
    }
    let dtype = args.check(&o)?;
    let chosen = pick_kernel(gpu, args, &o)?;
    let kernel = kernel.unwrap_or(chosen);
    if kernel == AttnKernel::Mma && chosen != AttnKernel::Mma {
        return Err(CudaError::Shape("attention: the tensor-core kernel does not take these arguments".into()));
    }
    let scale = args.scale.unwrap_or(1.0 / (s.head_dim as f32).sqrt());
    let [lq, lk, lv, lo] = args.layouts;
    let st = |l: Layout| [l.batch as i64, l.row as i64, l.head as i64];
    let mut strides = [0i64; 12];
    for (i, l) in [lq, lk, lv, lo].into_iter().enumerate() {
        strides[3 * i..3 * i + 3].copy_from_slice(&st(l));
    }
    let params = AttnParams {
        q: args.q.ptr(gpu),
        k: args.k.ptr(gpu),
        v: args.v.ptr(gpu),
        o: o.ptr(gpu),
        key_mask: args.key_mask.map_or(0, |m| m.ptr(gpu)),
        strides,
        q_len: s.q_len as i32,
        kv_len: s.kv_len as i32,
        heads: s.heads as i32,
        kv_heads: s.kv_heads as i32,
        head_dim: s.head_dim as i32,
        causal: i32::from(s.causal),
        scale_log2: scale * std::f32::consts::LOG2_E,
    };
    let (name, rows, smem) = match kernel {
        AttnKernel::Mma => {
            let smem = (64 + 2 * 64) * (s.head_dim + 8) * dtype.size();
            (format!("attn_fwd_mma_{}_d{}", dtype.kernel_suffix(), s.head_dim), 64, smem)
        }
        AttnKernel::Simt => (format!("attn_fwd_simt_{}", dtype.kernel_suffix()), 16, 0),
    };
    if smem > 48 * 1024 {
        gpu.function(FILE, &name)?
            .set_attribute(CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem as i32)?;
    }
    let cfg = LaunchConfig {
        grid_dim: (s.q_len.div_ceil(rows) as u32, s.heads as u32, s.batch as u32),
        block_dim: (128, 1, 1),
        shared_mem_bytes: smem as u32,
    };
    launch!(gpu, FILE, name, cfg, &params)
}

/// Scratch of the unfused path: the `[batch·heads, q_len, kv_len]` score matrix.
#[derive(Debug)]
pub struct UnfusedScratch {
    scores: GpuBuf,
}

impl UnfusedScratch {
    /// Allocates the score matrix for `shape`.
    pub fn new(gpu: &Gpu, dtype: DType, shape: &AttnShape) -> Result<Self, CudaError> {
        Ok(UnfusedScratch {
            scores: GpuBuf::alloc(gpu, dtype, shape.batch * shape.heads * shape.q_len * shape.kv_len)?,
        })
    }
}

/// The unfused path on head-major contiguous `[batch, heads, seq, dim]` operands (multi-head
/// only): `S = Q·Kᵀ` (cuBLAS, batched), `P = softmax(scale·S)` in place, `O = P·V` (cuBLAS).
pub fn attention_unfused(
    gpu: &Gpu,
    (q, k, v): (GpuView<'_>, GpuView<'_>, GpuView<'_>),
    o: GpuViewMut<'_>,
    shape: &AttnShape,
    scratch: &mut UnfusedScratch,
) -> Result<(), CudaError> {
    let s = shape;
    if s.kv_heads != s.heads {
        return Err(CudaError::Shape("unfused attention: grouped-query attention is not supported".into()));
    }
    let (bh, d) = (s.batch * s.heads, s.head_dim);
    let scores = &mut scratch.scores;
    gemm_batched(
        gpu,
        (s.q_len, s.kv_len, d),
        Operand::n(q, d),
        s.q_len * d,
        Operand::t(k, d),
        s.kv_len * d,
        scores.view_mut(),
        s.kv_len,
        s.q_len * s.kv_len,
        bh,
        1.0,
        0.0,
    )?;
    let scale = 1.0 / (d as f32).sqrt();
    super::elementwise::softmax(gpu, scores.view_mut(), bh * s.q_len, s.kv_len, scale, s.causal, s.q_len)?;
    gemm_batched(
        gpu,
        (s.q_len, d, s.kv_len),
        Operand::n(scores.view(), s.kv_len),
        s.q_len * s.kv_len,
        Operand::n(v, d),
        s.kv_len * d,
        o,
        d,
        s.q_len * d,
        bh,
        1.0,
        0.0,
    )
}

/// The elements of `v` from `at` on.
fn from(v: GpuView<'_>, at: usize) -> Result<GpuView<'_>, CudaError> {
    v.slice(at, v.len().saturating_sub(at))
}

/// The unfused path on any layouts (a decoder's interleaved projections and KV cache): per batch
/// element, `S = Q·Kᵀ` over the heads (cuBLAS, strided batched; grouped-query heads share their
/// key/value head by a zero stride), `P = softmax(scale·S)` with the causal mask, `O = P·V`.
/// The cuBLAS-only baseline the fused kernel is timed against inside a whole decoder
/// (`mvb bench decoder --attention unfused`); it takes no padding mask.
pub fn attention_unfused_strided(gpu: &Gpu, args: &AttnArgs<'_>, mut o: GpuViewMut<'_>) -> Result<(), CudaError> {
    let s = args.shape;
    if args.key_mask.is_some() {
        return Err(CudaError::Shape("unfused attention: a padding mask is not supported".into()));
    }
    if s.heads == 0 || s.kv_heads == 0 || !s.heads.is_multiple_of(s.kv_heads) {
        return Err(CudaError::Shape(format!("attention: {} heads cannot share {} kv heads", s.heads, s.kv_heads)));
    }
    if s.batch == 0 || s.q_len == 0 {
        return Ok(());
    }
    if s.kv_len < s.q_len && s.causal || s.kv_len == 0 || s.head_dim == 0 {
        return Err(CudaError::Shape(format!("attention: {} queries over {} keys", s.q_len, s.kv_len)));
    }
    let dt = args.check(&o)?;
    let [lq, lk, lv, lo] = args.layouts;
    let (d, area) = (s.head_dim, s.q_len * s.kv_len);
    let group = s.heads / s.kv_heads;
    // Multi-head: one product over all heads; grouped: one per key/value head over its group.
    let (calls, count, kv_stride) =
        if group == 1 { (1, s.heads, (lk.head, lv.head)) } else { (s.kv_heads, group, (0, 0)) };
    let mut scores = GpuBuf::alloc(gpu, dt, s.heads * area)?;
    let scale = args.scale.unwrap_or(1.0 / (d as f32).sqrt());
    for b in 0..s.batch {
        for c in 0..calls {
            let (h0, g) = (c * count, c * count / group);
            let q = from(args.q, b * lq.batch + h0 * lq.head)?;
            let k = from(args.k, b * lk.batch + g * lk.head)?;
            let out = scores.slice_mut(h0 * area, count * area)?;
            let (a, bk) = (Operand::n(q, lq.row), Operand::t(k, lk.row));
            gemm_batched(
                gpu,
                (s.q_len, s.kv_len, d),
                a,
                lq.head,
                bk,
                kv_stride.0,
                out,
                s.kv_len,
                area,
                count,
                1.0,
                0.0,
            )?;
        }
        super::elementwise::softmax(gpu, scores.view_mut(), s.heads * s.q_len, s.kv_len, scale, s.causal, s.q_len)?;
        for c in 0..calls {
            let (h0, g) = (c * count, c * count / group);
            let p = scores.slice(h0 * area, count * area)?;
            let v = from(args.v, b * lv.batch + g * lv.head)?;
            let at = b * lo.batch + h0 * lo.head;
            let out = o.reborrow();
            let len = out.as_view().len().saturating_sub(at);
            let out = out.slice(at, len)?;
            let (a, bv) = (Operand::n(p, s.kv_len), Operand::n(v, lv.row));
            gemm_batched(gpu, (s.q_len, d, s.kv_len), a, area, bv, kv_stride.1, out, lo.row, lo.head, count, 1.0, 0.0)?;
        }
    }
    Ok(())
}
