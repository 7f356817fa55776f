//! The compute layer's operations on the GPU (`backend::ops` dispatches here after checking
//! shapes): activations stay in device memory in the device's dtype, norm parameters in f32,
//! products through cuBLAS, attention through the fused kernel of `attention.cu`. Each
//! operation takes typed views of its arrays (the launch wrappers check their extents again) and
//! runs under [`guarded`], so that a panic inside mvb's GPU code is an error, never a crash or a
//! silent fall-back.

use super::attention::{AttnArgs, AttnShape, Layout, attention as attn, attention_unfused_strided as attn_unfused};
use super::buffer::{GpuInts, GpuView, GpuViewMut};
use super::elementwise as ew;
use super::gemm::{Operand, gemm, linear as gemm_linear};
use super::{CudaError, DType, Gpu, GpuBuf, guarded};
use crate::backend::array::Data;
use crate::backend::cpu::Activation;
use crate::backend::params::MatrixData;
use crate::backend::{Array, Heads, Linear, Mask, Matrix, Vector};

/// The device buffer of `x`, checked to hold `x`'s elements in `dtype`.
fn buf(x: &Array, dtype: DType) -> Result<&GpuBuf, CudaError> {
    match &x.data {
        Data::Gpu(b) if b.dtype() == dtype && b.len() >= x.len() => Ok(b),
        Data::Gpu(b) => {
            Err(CudaError::Shape(format!("a {} buffer of {} for {:?} in {dtype}", b.dtype(), b.len(), x.shape)))
        }
        Data::Host(_) | Data::HostF16(_) => Err(CudaError::Shape("a host array given to the GPU".into())),
    }
}

/// `x`'s elements, to read.
pub(super) fn view(x: &Array, dtype: DType) -> Result<GpuView<'_>, CudaError> {
    buf(x, dtype)?.slice(0, x.len())
}

/// `x`'s elements, to write.
pub(super) fn view_mut(x: &mut Array, dtype: DType) -> Result<GpuViewMut<'_>, CudaError> {
    buf(x, dtype)?;
    let n = x.len();
    match &mut x.data {
        Data::Gpu(b) => b.slice_mut(0, n),
        Data::Host(_) | Data::HostF16(_) => Err(CudaError::Shape("a host array given to the GPU".into())),
    }
}

pub(super) fn matrix(m: &Matrix) -> Result<GpuView<'_>, CudaError> {
    match &m.data {
        MatrixData::Gpu(b) => b.slice(0, m.rows * m.cols),
        _ => Err(CudaError::Shape("a weight that is not on the GPU".into())),
    }
}

pub(super) fn vector(v: &Vector) -> Result<GpuView<'_>, CudaError> {
    let b = v.gpu.as_ref().ok_or_else(|| CudaError::Shape("a parameter vector that is not on the GPU".into()))?;
    b.slice(0, v.len())
}

/// `y (= or +=) x·Wᵀ + b (+ LoRA)`; `beta` 1 accumulates into `y`.
fn product(gpu: &Gpu, dt: DType, x: &Array, l: &Linear, mut y: GpuViewMut<'_>, beta: f32) -> Result<(), CudaError> {
    let (rows, inp, out) = (x.rows(), l.inputs(), l.outputs());
    let xv = view(x, dt)?;
    gemm_linear(gpu, xv, matrix(&l.weight)?, y.reborrow(), rows, inp, out, beta)?;
    if let Some(b) = &l.bias {
        ew::add(gpu, y.reborrow(), vector(b)?, rows * out, out)?;
    }
    if let Some(lora) = &l.lora {
        let r = lora.rank();
        let mut t = GpuBuf::alloc(gpu, dt, rows * r)?;
        gemm_linear(gpu, xv, matrix(&lora.a)?, t.view_mut(), rows, inp, r, 0.0)?;
        let (tv, b) = (Operand::n(t.view(), r), Operand::t(matrix(&lora.b)?, r));
        gemm(gpu, (rows, out, r), tv, b, y, out, lora.scale, 1.0)?;
    }
    Ok(())
}

pub(crate) fn linear(gpu: &Gpu, dt: DType, x: &Array, l: &Linear) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let mut y = GpuBuf::alloc(gpu, dt, x.rows() * l.outputs())?;
        product(gpu, dt, x, l, y.view_mut(), 0.0)?;
        Ok(y)
    })
}

pub(crate) fn linear_add(gpu: &Gpu, dt: DType, x: &Array, l: &Linear, y: &mut Array) -> Result<(), CudaError> {
    guarded(|| product(gpu, dt, x, l, view_mut(y, dt)?, 1.0))
}

pub(crate) fn layer_norm(
    gpu: &Gpu,
    dt: DType,
    x: &Array,
    gamma: &Vector,
    beta: &Vector,
    eps: f32,
) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let mut y = GpuBuf::alloc(gpu, dt, x.len())?;
        let (g, b) = (vector(gamma)?, vector(beta)?);
        ew::layer_norm(gpu, view(x, dt)?, y.view_mut(), g, b, x.rows(), x.cols(), eps)?;
        Ok(y)
    })
}

pub(crate) fn rms_norm(gpu: &Gpu, dt: DType, x: &Array, gamma: &Vector, eps: f32) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let mut y = GpuBuf::alloc(gpu, dt, x.len())?;
        ew::rms_norm(gpu, view(x, dt)?, y.view_mut(), vector(gamma)?, x.rows(), x.cols(), eps)?;
        Ok(y)
    })
}

pub(crate) fn activate(gpu: &Gpu, dt: DType, x: &mut Array, act: Activation) -> Result<(), CudaError> {
    let (rows, cols) = (x.rows(), x.cols());
    guarded(|| ew::bias_act(gpu, view_mut(x, dt)?, None, rows, cols, Some(act)))
}

pub(crate) fn silu_mul(gpu: &Gpu, dt: DType, gate: &mut Array, up: &Array) -> Result<(), CudaError> {
    let n = gate.len();
    guarded(|| ew::silu_mul(gpu, view_mut(gate, dt)?, view(up, dt)?, n))
}

pub(crate) fn add(gpu: &Gpu, dt: DType, x: &mut Array, y: &Array) -> Result<(), CudaError> {
    let n = x.len();
    guarded(|| ew::add(gpu, view_mut(x, dt)?, view(y, dt)?, n, n))
}

pub(crate) fn add_periodic(gpu: &Gpu, dt: DType, x: &mut Array, y: &Vector) -> Result<(), CudaError> {
    let n = x.len();
    guarded(|| ew::add(gpu, view_mut(x, dt)?, vector(y)?, n, y.len()))
}

/// Rows `rows` (each `cols` wide) of `x` into a new buffer of `x`'s dtype.
pub(crate) fn gather(gpu: &Gpu, x: &GpuBuf, cols: usize, rows: &[usize]) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let idx = GpuInts::from_indices(gpu, rows.iter().copied())?;
        let mut out = GpuBuf::alloc(gpu, x.dtype(), rows.len() * cols)?;
        ew::gather_rows(gpu, x.view(), out.view_mut(), &idx, cols)?;
        Ok(out)
    })
}

pub(crate) fn scatter(gpu: &Gpu, dt: DType, x: &mut Array, rows: &[usize], src: &Array) -> Result<(), CudaError> {
    let cols = x.cols();
    guarded(|| {
        let idx = GpuInts::from_indices(gpu, rows.iter().copied())?;
        ew::scatter_rows(gpu, view_mut(x, dt)?, view(src, dt)?, &idx, cols)
    })
}

pub(crate) fn rope(gpu: &Gpu, dt: DType, x: &mut Array, positions: &[u32], inv_freq: &[f32]) -> Result<(), CudaError> {
    let (rows, cols) = (x.rows(), x.cols());
    guarded(|| {
        let pos = GpuInts::from_indices(gpu, positions.iter().map(|&p| p as usize))?;
        let freq = GpuBuf::from_host(gpu, DType::F32, inv_freq)?;
        ew::rope(gpu, view_mut(x, dt)?, &pos, freq.view(), rows, cols)
    })
}

pub(super) fn layout(h: &Heads<'_>) -> Layout {
    Layout { batch: h.batch_stride(), row: h.row_stride(), head: h.head_stride() }
}

/// The elements of `h`'s array from its first column on.
pub(super) fn heads_view<'a>(h: &Heads<'a>, dt: DType) -> Result<GpuView<'a>, CudaError> {
    view(h.array, dt)?.slice(h.col, h.array.len().saturating_sub(h.col))
}

pub(crate) fn attention(
    gpu: &Gpu,
    dt: DType,
    q: Heads<'_>,
    k: Heads<'_>,
    v: Heads<'_>,
    mask: Mask<'_>,
) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let (batch, d) = (q.batch(), q.head_dim);
        let width = q.heads * d;
        let mut o = GpuBuf::alloc(gpu, dt, batch * q.len * width)?;
        let unfused = gpu.unfused_attention();
        let keys = match mask.keys {
            // The unfused baseline takes no padding mask; one with every key visible is none.
            Some(m) if unfused && m.iter().all(|&v| v != 0) => None,
            Some(m) => Some(GpuInts::from_host(gpu, &m.iter().map(|&v| i32::from(v != 0)).collect::<Vec<_>>())?),
            None => None,
        };
        let args = AttnArgs {
            q: heads_view(&q, dt)?,
            k: heads_view(&k, dt)?,
            v: heads_view(&v, dt)?,
            layouts: [layout(&q), layout(&k), layout(&v), Layout::interleaved(q.len, width, d)],
            key_mask: keys.as_ref(),
            shape: AttnShape {
                batch,
                heads: q.heads,
                kv_heads: k.heads,
                q_len: q.len,
                kv_len: k.len,
                head_dim: d,
                causal: mask.causal,
            },
            scale: None,
        };
        gpu.timed_attention(|| {
            if unfused { attn_unfused(gpu, &args, o.view_mut()) } else { attn(gpu, &args, o.view_mut(), None) }
        })?;
        Ok(o)
    })
}

pub(crate) fn write_positions(
    gpu: &Gpu,
    dt: DType,
    cache: &mut Array,
    start: usize,
    new: &Array,
) -> Result<(), CudaError> {
    guarded(|| {
        let dims = (cache.shape[0], cache.shape[1], cache.shape[2]);
        let n = new.shape[1];
        ew::write_positions(gpu, view_mut(cache, dt)?, view(new, dt)?, dims, start, n)
    })
}

pub(crate) fn im2col(
    gpu: &Gpu,
    dt: DType,
    pixels: &[f32],
    batch: usize,
    image: usize,
    patch: usize,
) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let g = image / patch;
        let px = GpuBuf::from_host(gpu, DType::F32, pixels)?;
        let mut cols = GpuBuf::alloc(gpu, dt, batch * g * g * 3 * patch * patch)?;
        ew::im2col(gpu, px.view(), cols.view_mut(), batch, image, patch)?;
        Ok(cols)
    })
}

pub(crate) fn vit_tokens(
    gpu: &Gpu,
    dt: DType,
    patches: &Array,
    first: Option<&Vector>,
    positions: &Vector,
) -> Result<GpuBuf, CudaError> {
    guarded(|| {
        let (b, n, w) = (patches.shape[0], patches.shape[1], patches.shape[2]);
        let seq = n + usize::from(first.is_some());
        let mut x = GpuBuf::alloc(gpu, dt, b * seq * w)?;
        let class = first.map(vector).transpose()?;
        ew::vit_tokens(gpu, x.view_mut(), view(patches, dt)?, class, vector(positions)?, b, n, w)?;
        Ok(x)
    })
}
