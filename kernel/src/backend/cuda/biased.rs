//! Launch wrapper of `cuda/biased_attention.cu`: attention with an additive f32 score bias per
//! (group, head, query, key), as Swin's window attention needs (the CPU reference is
//! `backend/biased.rs`). The extents the kernel reaches are checked against the views first.

use super::buffer::{GpuView, int, span};
use super::elementwise::launch;
use super::{CudaError, DType, Gpu, GpuBuf, guarded};
use crate::backend::array::Data;
use crate::backend::{Heads, Vector};
use cudarc::driver::{LaunchConfig, PushKernelArg};

const FILE: &str = "biased_attention.cu";

/// The elements of `h`'s array from its first column on, in `dt`.
fn from_col<'a>(h: &Heads<'a>, dt: DType) -> Result<GpuView<'a>, CudaError> {
    match &h.array.data {
        Data::Gpu(b) if b.dtype() == dt => b.slice(h.col, h.array.len().saturating_sub(h.col)),
        _ => Err(CudaError::Shape(format!("biased attention: operand {:?} is not a {dt} GPU array", h.array.shape))),
    }
}

/// `[batch, q.len, heads·dim]`: `softmax(q·kᵀ/√dim + bias[b mod groups, h])·v` (one kv head per
/// query head, `dim <= 128`; shapes checked by the caller, extents here).
pub(crate) fn attention(
    gpu: &Gpu,
    dt: DType,
    (q, k, v): (Heads<'_>, Heads<'_>, Heads<'_>),
    bias: &Vector,
    groups: usize,
) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let (batch, heads, dim) = (q.batch(), q.heads, q.head_dim);
        if dim > 128 || k.row_stride() != v.row_stride() || k.batch_stride() != v.batch_stride() {
            return Err(CudaError::Shape(format!(
                "biased attention: head size {dim} > 128 or keys and values laid out apart"
            )));
        }
        let (qv, kv, vv) = (from_col(&q, dt)?, from_col(&k, dt)?, from_col(&v, dt)?);
        let reach = |h: &Heads<'_>| span(dim, &[(batch, h.batch_stride()), (h.len, h.row_stride()), (heads, dim)]);
        qv.fits("biased attention q", dt, reach(&q))?;
        kv.fits("biased attention k", dt, reach(&k))?;
        vv.fits("biased attention v", dt, reach(&v))?;
        let b =
            bias.gpu.as_ref().ok_or_else(|| CudaError::Shape("biased attention: the bias is not on the GPU".into()))?;
        b.view().fits("biased attention bias", DType::F32, Some(groups * heads * q.len * k.len))?;
        let out = GpuBuf::alloc(gpu, dt, batch * q.len * heads * dim)?;
        let rows = batch * heads * q.len;
        let cfg = LaunchConfig {
            grid_dim: (rows.div_ceil(4).max(1) as u32, 1, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        let ints =
            [int(batch, "batch")?, int(heads, "heads")?, int(q.len, "queries")?, int(k.len, "keys")?, int(dim, "dim")?];
        let strides = [q.batch_stride() as i64, q.row_stride() as i64, k.batch_stride() as i64, k.row_stride() as i64];
        let (groups, scale) = (int(groups, "groups")?, 1.0 / (dim as f32).sqrt());
        let (qp, kp, vp, bp, op) = (qv.ptr(gpu), kv.ptr(gpu), vv.ptr(gpu), b.ptr(gpu), out.ptr(gpu));
        let name = format!("attn_bias_{}", dt.kernel_suffix());
        launch!(
            gpu,
            FILE,
            name,
            cfg,
            &qp,
            &kp,
            &vp,
            &bp,
            &op,
            &ints[0],
            &ints[1],
            &ints[2],
            &ints[3],
            &ints[4],
            &strides[0],
            &strides[1],
            &strides[2],
            &strides[3],
            &groups,
            &scale
        )?;
        Ok(out)
    })
}
