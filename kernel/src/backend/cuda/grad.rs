//! Launch wrappers of `cuda/grad.cu` (layer-norm, activation and softmax backward, column
//! copies and adds, element-wise products, sums over a batch) and the unfused attention backward
//! built from them and cuBLAS. The derivatives are the CPU reference's (`cpu/grad.rs`, checked
//! against torch autograd). Operands are typed views; each wrapper checks that the elements its
//! kernel or product reaches lie inside them, and that their types agree, before launching. The
//! element type is the first operand's.

use cudarc::driver::PushKernelArg;

use super::attention::{AttnShape, Layout};
use super::buffer::{GpuView, GpuViewMut, int, span};
use super::elementwise::{act_code, area, launch, linear_cfg, name, rows_cfg, softmax};
use super::gemm::{Operand, gemm_batched};
use super::{CudaError, DType, Gpu, GpuBuf};
use crate::backend::cpu::Activation;

const FILE: &str = "grad.cu";

/// `dx` of layer normalisation over `rows` rows of `cols` at input `x` given `dy` (f32 `gamma`
/// of `cols`; `beta` has no part in it).
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward(
    gpu: &Gpu,
    x: GpuView<'_>,
    dy: GpuView<'_>,
    dx: GpuViewMut<'_>,
    gamma: GpuView<'_>,
    rows: usize,
    cols: usize,
    eps: f32,
) -> Result<(), CudaError> {
    let dt = x.dtype();
    x.fits("layer_norm_backward x", dt, area(rows, cols))?;
    dy.fits("layer_norm_backward dy", dt, area(rows, cols))?;
    dx.fits("layer_norm_backward dx", dt, area(rows, cols))?;
    gamma.fits("layer_norm_backward gamma", DType::F32, Some(cols))?;
    let (r, c) = (int(rows, "rows")?, int(cols, "cols")?);
    let (xp, dyp, dxp, gp) = (x.ptr(gpu), dy.ptr(gpu), dx.ptr(gpu), gamma.ptr(gpu));
    launch!(gpu, FILE, name("layernorm_backward", dt), rows_cfg(rows), &xp, &dyp, &dxp, &gp, &r, &c, &eps)
}

/// `dx = dy · act'(x)` for `n` elements.
pub fn activate_backward(
    gpu: &Gpu,
    x: GpuView<'_>,
    dy: GpuView<'_>,
    dx: GpuViewMut<'_>,
    n: usize,
    act: Activation,
) -> Result<(), CudaError> {
    let dt = x.dtype();
    x.fits("activate_backward x", dt, Some(n))?;
    dy.fits("activate_backward dy", dt, Some(n))?;
    dx.fits("activate_backward dx", dt, Some(n))?;
    let (n64, a) = (n as i64, act_code(Some(act)));
    let (xp, dyp, dxp) = (x.ptr(gpu), dy.ptr(gpu), dx.ptr(gpu));
    launch!(gpu, FILE, name("act_backward", dt), linear_cfg(n), &xp, &dyp, &dxp, &n64, &a)
}

/// In place over `rows` rows of `cols`: `ds = scale · p ⊙ (ds − rowsum(ds ⊙ p))`, the gradient
/// of the scores `S` of `P = softmax(scale · S)` from the gradient `ds` of `P`.
pub fn softmax_backward(
    gpu: &Gpu,
    p: GpuView<'_>,
    ds: GpuViewMut<'_>,
    rows: usize,
    cols: usize,
    scale: f32,
) -> Result<(), CudaError> {
    let dt = p.dtype();
    p.fits("softmax_backward p", dt, area(rows, cols))?;
    ds.fits("softmax_backward ds", dt, area(rows, cols))?;
    let (r, c) = (rows as i64, int(cols, "cols")?);
    let (pp, dp) = (p.ptr(gpu), ds.ptr(gpu));
    launch!(gpu, FILE, name("softmax_backward", dt), rows_cfg(rows), &pp, &dp, &r, &c, &scale)
}

/// Columns `col..col + n` of `y` (`rows` rows of `cols`) set to (`accumulate`: increased by)
/// `src` (`rows` rows of `n`).
#[allow(clippy::too_many_arguments)]
pub fn copy_cols(
    gpu: &Gpu,
    y: GpuViewMut<'_>,
    src: GpuView<'_>,
    rows: usize,
    cols: usize,
    col: usize,
    n: usize,
    accumulate: bool,
) -> Result<(), CudaError> {
    let dt = y.dtype();
    if col.checked_add(n).is_none_or(|end| end > cols) {
        return Err(CudaError::Shape(format!("copy_cols: columns {col}+{n} of rows of {cols}")));
    }
    y.fits("copy_cols y", dt, area(rows, cols))?;
    src.fits("copy_cols src", dt, area(rows, n))?;
    if rows == 0 || n == 0 {
        return Ok(());
    }
    let (r, n32, c, at, acc) = (rows as i64, int(n, "n")?, int(cols, "cols")?, int(col, "col")?, i32::from(accumulate));
    let (yp, sp) = (y.ptr(gpu), src.ptr(gpu));
    launch!(gpu, FILE, name("copy_cols", dt), linear_cfg(rows * n), &yp, &sp, &r, &n32, &c, &at, &acc)
}

/// `x *= y` for `n` elements.
pub fn mul(gpu: &Gpu, x: GpuViewMut<'_>, y: GpuView<'_>, n: usize) -> Result<(), CudaError> {
    let dt = x.dtype();
    x.fits("mul x", dt, Some(n))?;
    y.fits("mul y", dt, Some(n))?;
    let (n64, xp, yp) = (n as i64, x.ptr(gpu), y.ptr(gpu));
    launch!(gpu, FILE, name("mul", dt), linear_cfg(n), &xp, &yp, &n64)
}

/// `out[i] = Σ_b x[b·per + i]` for `i < per`.
pub fn sum_batches(gpu: &Gpu, x: GpuView<'_>, out: GpuViewMut<'_>, batch: usize, per: usize) -> Result<(), CudaError> {
    let dt = x.dtype();
    x.fits("sum_batches x", dt, area(batch, per))?;
    out.fits("sum_batches out", dt, Some(per))?;
    let (b, p) = (int(batch, "batch")?, per as i64);
    let (xp, op) = (x.ptr(gpu), out.ptr(gpu));
    launch!(gpu, FILE, name("sum_batches", dt), linear_cfg(per), &xp, &op, &b, &p)
}

/// The inputs of one attention backward: `q`, `k`, `v` in their layouts (as the forward's
/// [`super::attention::AttnArgs`]) and `dout`, the gradient of the output, contiguous
/// `[batch, q_len, heads·head_dim]`.
#[derive(Debug, Clone, Copy)]
pub struct AttnGradArgs<'a> {
    /// Queries.
    pub q: GpuView<'a>,
    /// Keys.
    pub k: GpuView<'a>,
    /// Values.
    pub v: GpuView<'a>,
    /// Layouts of q, k and v.
    pub layouts: [Layout; 3],
    /// The output's gradient.
    pub dout: GpuView<'a>,
    /// Sizes: `kv_heads == heads`, not causal.
    pub shape: AttnShape,
}

/// The gradients of attention, each contiguous `[batch, len, heads·head_dim]`.
#[derive(Debug)]
pub struct AttnGrads<'a> {
    /// `dQ` (`len = q_len`).
    pub dq: GpuViewMut<'a>,
    /// `dK` (`len = kv_len`).
    pub dk: GpuViewMut<'a>,
    /// `dV` (`len = kv_len`).
    pub dv: GpuViewMut<'a>,
}

/// The extent of `batch × len` positions of `heads` heads of `dim` in `l`.
fn extent(l: Layout, batch: usize, len: usize, heads: usize, dim: usize) -> Option<usize> {
    span(dim, &[(batch, l.batch), (len, l.row), (heads, l.head)])
}

/// Unfused backward of unmasked multi-head attention `O = softmax(Q·Kᵀ/√d)·V`. Contract: `q`,
/// `k`, `v` are the forward's inputs (nothing of the forward is kept); `dout` and the three
/// outputs are contiguous `[batch, len, heads·d]`; the outputs are overwritten (every element).
/// Per batch element, over its heads (cuBLAS strided batches): `P = softmax(Q·Kᵀ/√d)` recomputed
/// into a `[heads, q_len, kv_len]` scratch, `dV = Pᵀ·dO`, `dP = dO·Vᵀ` into a second scratch,
/// `dS = P ⊙ (dP − rowsum(dP ⊙ P))/√d` in place, `dQ = dS·K`, `dK = dSᵀ·Q`. Scratch and
/// accumulation follow the inputs' type (f32 accumulators in every product and row sum).
pub fn attention_backward(gpu: &Gpu, args: &AttnGradArgs<'_>, out: AttnGrads<'_>) -> Result<(), CudaError> {
    let s = args.shape;
    let (dt, d, width) = (args.q.dtype(), s.head_dim, s.heads * s.head_dim);
    if s.kv_heads != s.heads || s.causal {
        return Err(CudaError::Shape("attention backward: grouped or causal attention is not supported".into()));
    }
    if s.kv_len == 0 || d == 0 {
        return Err(CudaError::Shape("attention backward: no keys or an empty head".into()));
    }
    let [lq, lk, lv] = args.layouts;
    args.q.fits("attention backward q", dt, extent(lq, s.batch, s.q_len, s.heads, d))?;
    args.k.fits("attention backward k", dt, extent(lk, s.batch, s.kv_len, s.heads, d))?;
    args.v.fits("attention backward v", dt, extent(lv, s.batch, s.kv_len, s.heads, d))?;
    let (q_elems, kv_elems) = (span(width, &[(s.q_len, width)]), span(width, &[(s.kv_len, width)]));
    let per = |n: Option<usize>| n.and_then(|n| n.checked_mul(s.batch));
    args.dout.fits("attention backward dout", dt, per(q_elems))?;
    out.dq.fits("attention backward dq", dt, per(q_elems))?;
    out.dk.fits("attention backward dk", dt, per(kv_elems))?;
    out.dv.fits("attention backward dv", dt, per(kv_elems))?;
    for (v, what) in [(s.q_len, "q_len"), (s.kv_len, "kv_len"), (s.heads, "heads"), (s.batch, "batch")] {
        int(v, what)?;
    }
    if s.batch == 0 || s.q_len == 0 || s.heads == 0 {
        return Ok(());
    }
    let scores = s.heads * s.q_len * s.kv_len;
    let (mut p, mut ds) = (GpuBuf::alloc(gpu, dt, scores)?, GpuBuf::alloc(gpu, dt, scores)?);
    let AttnGrads { mut dq, mut dk, mut dv } = out;
    for b in 0..s.batch {
        let inputs = [batch_view(args.q, lq, b)?, batch_view(args.k, lk, b)?, batch_view(args.v, lv, b)?];
        let qo = b * s.q_len * width;
        let dout = args.dout.slice(qo, s.q_len * width)?;
        let ko = b * s.kv_len * width;
        let outs = [
            dq.reborrow().slice(qo, s.q_len * width)?,
            dk.reborrow().slice(ko, s.kv_len * width)?,
            dv.reborrow().slice(ko, s.kv_len * width)?,
        ];
        one_batch(gpu, &s, inputs, [lq, lk, lv], dout, outs, (&mut p, &mut ds))?;
    }
    Ok(())
}

/// The elements of `x` from batch element `b` of layout `l` on.
fn batch_view(x: GpuView<'_>, l: Layout, b: usize) -> Result<GpuView<'_>, CudaError> {
    let at = b.checked_mul(l.batch).ok_or_else(|| CudaError::Shape("attention backward: sizes overflow".into()))?;
    x.slice(at, x.len().saturating_sub(at))
}

/// [`attention_backward`] of one batch element (views start at it), with the two scratches.
#[allow(clippy::too_many_arguments)]
fn one_batch(
    gpu: &Gpu,
    s: &AttnShape,
    [q, k, v]: [GpuView<'_>; 3],
    [lq, lk, lv]: [Layout; 3],
    dout: GpuView<'_>,
    [dq, dk, dv]: [GpuViewMut<'_>; 3],
    (p, ds): (&mut GpuBuf, &mut GpuBuf),
) -> Result<(), CudaError> {
    let (h, d, m, n) = (s.heads, s.head_dim, s.q_len, s.kv_len);
    let (w, sq) = (h * d, m * n);
    let scale = 1.0 / (d as f32).sqrt();
    let (go, gt) = (Operand::n, Operand::t);
    // P = softmax(scale · Q·Kᵀ), [h, m, n].
    gemm_batched(gpu, (m, n, d), go(q, lq.row), lq.head, gt(k, lk.row), lk.head, p.view_mut(), n, sq, h, 1.0, 0.0)?;
    softmax(gpu, p.view_mut(), h * m, n, scale, false, m)?;
    // dV = Pᵀ·dO, [n, d] per head into [n, w].
    gemm_batched(gpu, (n, d, m), gt(p.view(), n), sq, go(dout, w), d, dv, w, d, h, 1.0, 0.0)?;
    // dP = dO·Vᵀ, then dS in place.
    gemm_batched(gpu, (m, n, d), go(dout, w), d, gt(v, lv.row), lv.head, ds.view_mut(), n, sq, h, 1.0, 0.0)?;
    softmax_backward(gpu, p.view(), ds.view_mut(), h * m, n, scale)?;
    // dQ = dS·K, dK = dSᵀ·Q.
    gemm_batched(gpu, (m, d, n), go(ds.view(), n), sq, go(k, lk.row), lk.head, dq, w, d, h, 1.0, 0.0)?;
    gemm_batched(gpu, (n, d, m), gt(ds.view(), n), sq, go(q, lq.row), lq.head, dk, w, d, h, 1.0, 0.0)
}
