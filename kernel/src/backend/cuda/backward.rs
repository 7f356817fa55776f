//! The training operations on the GPU (`backend/grad.rs` dispatches here after checking
//! shapes): general products and `dx = dy·W` through cuBLAS, the backward kernels of
//! `cuda/grad.cu` and the unfused attention backward ([`super::grad`]). Arrays stay in device
//! memory in the device's dtype (norm parameters f32); each operation takes typed views of its
//! arrays and runs under [`guarded`], as the forward operations (`ops.rs`).

use super::attention::AttnShape;
use super::gemm::{Operand, gemm};
use super::grad::{self as kernels, AttnGradArgs, AttnGrads};
use super::ops::{heads_view, layout, matrix, vector, view, view_mut};
use super::{CudaError, DType, Gpu, GpuBuf, guarded};
use crate::backend::cpu::Activation;
use crate::backend::{Array, Heads, Linear, Vector};

/// `x` as a row-major product operand, transposed where `trans`.
fn operand(x: &Array, trans: bool, dt: DType) -> Result<Operand<'_>, CudaError> {
    Ok(Operand { view: view(x, dt)?, ld: x.cols(), trans })
}

/// `alpha · op(a) · op(b)` (`[m, n]`) of `a` and `b` viewed as row-major matrices `[rows, cols]`,
/// transposed where `ta` / `tb`; `(m, k, n)` checked by the caller against the shapes.
pub(crate) fn matmul(
    gpu: &Gpu,
    dt: DType,
    (a, ta): (&Array, bool),
    (b, tb): (&Array, bool),
    (m, k, n): (usize, usize, usize),
    alpha: f32,
) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        // An empty inner dimension leaves zeros (cuBLAS is not asked).
        let mut c = if k == 0 { GpuBuf::zeros(gpu, dt, m * n)? } else { GpuBuf::alloc(gpu, dt, m * n)? };
        if k == 0 {
            return Ok(c);
        }
        let (oa, ob) = (operand(a, ta, dt)?, operand(b, tb, dt)?);
        gemm(gpu, (m, n, k), oa, ob, c.view_mut(), n, alpha, 0.0)?;
        Ok(c)
    })
}

/// `dx = dy · W` of the frozen weight of `l` (`dy` `[rows, out]`, `dx` `[rows, in]`).
pub(crate) fn linear_backward(gpu: &Gpu, dt: DType, dy: &Array, l: &Linear) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let (rows, out, inp) = (dy.rows(), l.outputs(), l.inputs());
        let mut dx = if out == 0 { GpuBuf::zeros(gpu, dt, rows * inp)? } else { GpuBuf::alloc(gpu, dt, rows * inp)? };
        if out > 0 {
            let (a, w) = (Operand::n(view(dy, dt)?, out), Operand::n(matrix(&l.weight)?, inp));
            gemm(gpu, (rows, inp, out), a, w, dx.view_mut(), inp, 1.0, 0.0)?;
        }
        Ok(dx)
    })
}

pub(crate) fn layer_norm_backward(
    gpu: &Gpu,
    dt: DType,
    x: &Array,
    gamma: &Vector,
    eps: f32,
    dy: &Array,
) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let mut dx = GpuBuf::alloc(gpu, dt, x.len())?;
        let (rows, cols) = (x.rows(), x.cols());
        kernels::layer_norm_backward(gpu, view(x, dt)?, view(dy, dt)?, dx.view_mut(), vector(gamma)?, rows, cols, eps)?;
        Ok(dx)
    })
}

pub(crate) fn activate_backward(
    gpu: &Gpu,
    dt: DType,
    x: &Array,
    dy: &Array,
    act: Activation,
) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let mut dx = GpuBuf::alloc(gpu, dt, x.len())?;
        kernels::activate_backward(gpu, view(x, dt)?, view(dy, dt)?, dx.view_mut(), x.len(), act)?;
        Ok(dx)
    })
}

/// `(dQ, dK, dV)` of unmasked multi-head attention (shapes checked by the caller), each
/// contiguous `[batch, len, heads·head_dim]`.
pub(crate) fn attention_backward(
    gpu: &Gpu,
    dt: DType,
    [q, k, v]: [Heads<'_>; 3],
    dout: &Array,
) -> Result<[GpuBuf; 3], CudaError> {
    guarded(|| {
        let (batch, d) = (q.batch(), q.head_dim);
        let width = q.heads * d;
        let shape = AttnShape {
            batch,
            heads: q.heads,
            kv_heads: k.heads,
            q_len: q.len,
            kv_len: k.len,
            head_dim: d,
            causal: false,
        };
        let args = AttnGradArgs {
            q: heads_view(&q, dt)?,
            k: heads_view(&k, dt)?,
            v: heads_view(&v, dt)?,
            layouts: [layout(&q), layout(&k), layout(&v)],
            dout: view(dout, dt)?,
            shape,
        };
        let mut dq = GpuBuf::alloc(gpu, dt, batch * q.len * width)?;
        let mut dk = GpuBuf::alloc(gpu, dt, batch * k.len * width)?;
        let mut dv = GpuBuf::alloc(gpu, dt, batch * k.len * width)?;
        let out = AttnGrads { dq: dq.view_mut(), dk: dk.view_mut(), dv: dv.view_mut() };
        kernels::attention_backward(gpu, &args, out)?;
        Ok([dq, dk, dv])
    })
}

/// The columns of `parts` side by side (`rows` rows each, `cols` columns in all).
pub(crate) fn concat_cols(
    gpu: &Gpu,
    dt: DType,
    parts: &[&Array],
    rows: usize,
    cols: usize,
) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let mut out = GpuBuf::alloc(gpu, dt, rows * cols)?;
        let mut col = 0;
        for p in parts {
            kernels::copy_cols(gpu, out.view_mut(), view(p, dt)?, rows, cols, col, p.cols(), false)?;
            col += p.cols();
        }
        if col != cols {
            return Err(CudaError::Shape(format!("concat: {col} columns written of {cols}")));
        }
        Ok(out)
    })
}

/// `y[.., col..col + src.cols] += src`.
pub(crate) fn add_cols(gpu: &Gpu, dt: DType, y: &mut Array, col: usize, src: &Array) -> Result<(), CudaError> {
    let (rows, cols, n) = (y.rows(), y.cols(), src.cols());
    guarded(|| kernels::copy_cols(gpu, view_mut(y, dt)?, view(src, dt)?, rows, cols, col, n, true))
}

/// `x *= y`, element-wise.
pub(crate) fn mul(gpu: &Gpu, dt: DType, x: &mut Array, y: &Array) -> Result<(), CudaError> {
    let n = x.len();
    guarded(|| kernels::mul(gpu, view_mut(x, dt)?, view(y, dt)?, n))
}

/// The sum over the first dimension of `x` (`[batch, per]` viewed flat): `per` elements.
pub(crate) fn sum_batches(gpu: &Gpu, dt: DType, x: &Array, batch: usize, per: usize) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let mut out = GpuBuf::alloc(gpu, dt, per)?;
        kernels::sum_batches(gpu, view(x, dt)?, out.view_mut(), batch, per)?;
        Ok(out)
    })
}
