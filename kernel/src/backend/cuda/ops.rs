//! The compute layer's operations on the GPU (`backend::ops` dispatches here after checking
//! shapes): activations stay in device memory in the device's dtype, norm parameters in f32,
//! products through cuBLAS, attention through the fused kernel of `attention.cu`.

use super::attention::{AttnArgs, AttnShape, Layout, attention as attn};
use super::elementwise as ew;
use super::gemm::{Operand, gemm, linear as gemm_linear};
use super::{CudaError, DType, Gpu, GpuBuf};
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
        Data::Host(_) => Err(CudaError::Shape("a host array given to the GPU".into())),
    }
}

fn matrix(m: &Matrix) -> Result<&GpuBuf, CudaError> {
    match &m.data {
        MatrixData::Gpu(b) if b.len() >= m.rows * m.cols => Ok(b),
        _ => Err(CudaError::Shape("a weight that is not on the GPU".into())),
    }
}

fn vector(v: &Vector) -> Result<&GpuBuf, CudaError> {
    v.gpu.as_ref().ok_or_else(|| CudaError::Shape("a parameter vector that is not on the GPU".into()))
}

fn indices(gpu: &Gpu, values: impl Iterator<Item = usize>) -> Result<GpuBuf, CudaError> {
    let v: Vec<i32> = values
        .map(|r| i32::try_from(r).map_err(|_| CudaError::Shape(format!("index {r} exceeds the kernels' 32 bits"))))
        .collect::<Result<_, _>>()?;
    GpuBuf::from_i32(gpu, &v)
}

/// `y (= or +=) x·Wᵀ + b (+ LoRA)`; `beta` 1 accumulates into `y`.
fn product(gpu: &Gpu, dt: DType, x: &Array, l: &Linear, y: &GpuBuf, beta: f32) -> Result<(), CudaError> {
    let (rows, inp, out) = (x.rows(), l.inputs(), l.outputs());
    let (xp, yp) = (buf(x, dt)?.ptr(gpu), y.ptr(gpu));
    gemm_linear(gpu, dt, xp, matrix(&l.weight)?.ptr(gpu), yp, rows, inp, out, beta)?;
    if let Some(b) = &l.bias {
        ew::add(gpu, dt, yp, vector(b)?.ptr(gpu), rows * out, out)?;
    }
    if let Some(lora) = &l.lora {
        let r = lora.rank();
        let t = GpuBuf::alloc(gpu, dt, rows * r)?;
        gemm_linear(gpu, dt, xp, matrix(&lora.a)?.ptr(gpu), t.ptr(gpu), rows, inp, r, 0.0)?;
        let b = matrix(&lora.b)?.ptr(gpu);
        gemm(gpu, dt, (rows, out, r), Operand::n(t.ptr(gpu), r), Operand::t(b, r), yp, out, lora.scale, 1.0)?;
    }
    Ok(())
}

pub(crate) fn linear(gpu: &Gpu, dt: DType, x: &Array, l: &Linear) -> Result<GpuBuf, CudaError> {
    let y = GpuBuf::alloc(gpu, dt, x.rows() * l.outputs())?;
    product(gpu, dt, x, l, &y, 0.0)?;
    Ok(y)
}

pub(crate) fn linear_add(gpu: &Gpu, dt: DType, x: &Array, l: &Linear, y: &mut Array) -> Result<(), CudaError> {
    let yb = buf(y, dt)?;
    product(gpu, dt, x, l, yb, 1.0)
}

pub(crate) fn layer_norm(
    gpu: &Gpu,
    dt: DType,
    x: &Array,
    gamma: &Vector,
    beta: &Vector,
    eps: f32,
) -> Result<GpuBuf, CudaError> {
    let y = GpuBuf::alloc(gpu, dt, x.len())?;
    let (g, b) = (vector(gamma)?.ptr(gpu), vector(beta)?.ptr(gpu));
    ew::layer_norm(gpu, dt, buf(x, dt)?.ptr(gpu), y.ptr(gpu), g, b, x.rows(), x.cols(), eps)?;
    Ok(y)
}

pub(crate) fn rms_norm(gpu: &Gpu, dt: DType, x: &Array, gamma: &Vector, eps: f32) -> Result<GpuBuf, CudaError> {
    let y = GpuBuf::alloc(gpu, dt, x.len())?;
    ew::rms_norm(gpu, dt, buf(x, dt)?.ptr(gpu), y.ptr(gpu), vector(gamma)?.ptr(gpu), x.rows(), x.cols(), eps)?;
    Ok(y)
}

pub(crate) fn activate(gpu: &Gpu, dt: DType, x: &mut Array, act: Activation) -> Result<(), CudaError> {
    ew::bias_act(gpu, dt, buf(x, dt)?.ptr(gpu), 0, x.rows(), x.cols(), Some(act))
}

pub(crate) fn silu_mul(gpu: &Gpu, dt: DType, gate: &mut Array, up: &Array) -> Result<(), CudaError> {
    ew::silu_mul(gpu, dt, buf(gate, dt)?.ptr(gpu), buf(up, dt)?.ptr(gpu), gate.len())
}

pub(crate) fn add(gpu: &Gpu, dt: DType, x: &mut Array, y: &Array) -> Result<(), CudaError> {
    ew::add(gpu, dt, buf(x, dt)?.ptr(gpu), buf(y, dt)?.ptr(gpu), x.len(), x.len())
}

pub(crate) fn add_periodic(gpu: &Gpu, dt: DType, x: &mut Array, y: &Vector) -> Result<(), CudaError> {
    let yb = vector(y)?;
    if yb.dtype() != dt {
        return Err(CudaError::Shape(format!("adding a {} vector to {dt} activations", yb.dtype())));
    }
    ew::add(gpu, dt, buf(x, dt)?.ptr(gpu), yb.ptr(gpu), x.len(), y.len())
}

/// Rows `rows` (each `cols` wide) of `x` into a new buffer of `x`'s dtype.
pub(crate) fn gather(gpu: &Gpu, x: &GpuBuf, cols: usize, rows: &[usize]) -> Result<GpuBuf, CudaError> {
    if rows.iter().any(|&r| (r + 1) * cols > x.len()) {
        return Err(CudaError::Shape("gather: a row outside the buffer".into()));
    }
    let idx = indices(gpu, rows.iter().copied())?;
    let out = GpuBuf::alloc(gpu, x.dtype(), rows.len() * cols)?;
    ew::gather_rows(gpu, x.dtype(), x.ptr(gpu), out.ptr(gpu), idx.ptr(gpu), rows.len(), cols)?;
    Ok(out)
}

pub(crate) fn scatter(gpu: &Gpu, dt: DType, x: &mut Array, rows: &[usize], src: &Array) -> Result<(), CudaError> {
    let idx = indices(gpu, rows.iter().copied())?;
    let (xp, sp) = (buf(x, dt)?.ptr(gpu), buf(src, dt)?.ptr(gpu));
    ew::scatter_rows(gpu, dt, xp, sp, idx.ptr(gpu), rows.len(), x.cols())
}

pub(crate) fn rope(gpu: &Gpu, dt: DType, x: &mut Array, positions: &[u32], inv_freq: &[f32]) -> Result<(), CudaError> {
    let pos = indices(gpu, positions.iter().map(|&p| p as usize))?;
    let freq = GpuBuf::from_host(gpu, DType::F32, inv_freq)?;
    let (rows, cols) = (x.rows(), x.cols());
    ew::rope(gpu, dt, buf(x, dt)?.ptr(gpu), pos.ptr(gpu), freq.ptr(gpu), rows, cols, inv_freq.len())
}

fn layout(h: &Heads<'_>) -> Layout {
    Layout { batch: h.batch_stride(), row: h.row_stride(), head: h.head_dim }
}

pub(crate) fn attention(
    gpu: &Gpu,
    dt: DType,
    q: Heads<'_>,
    k: Heads<'_>,
    v: Heads<'_>,
    mask: Mask<'_>,
) -> Result<GpuBuf, CudaError> {
    let (batch, d) = (q.batch(), q.head_dim);
    let width = q.heads * d;
    let o = GpuBuf::alloc(gpu, dt, batch * q.len * width)?;
    let keys = match mask.keys {
        Some(m) => Some(indices(gpu, m.iter().map(|&v| v as usize))?),
        None => None,
    };
    let at = |h: &Heads<'_>| -> Result<u64, CudaError> { Ok(buf(h.array, dt)?.ptr_at(gpu, h.col)) };
    let args = AttnArgs {
        q: at(&q)?,
        k: at(&k)?,
        v: at(&v)?,
        o: o.ptr(gpu),
        layouts: [layout(&q), layout(&k), layout(&v), Layout::interleaved(q.len, width, d)],
        key_mask: keys.as_ref().map_or(0, |m| m.ptr(gpu)),
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
    attn(gpu, dt, &args, None)?;
    Ok(o)
}

pub(crate) fn write_positions(
    gpu: &Gpu,
    dt: DType,
    cache: &mut Array,
    start: usize,
    new: &Array,
) -> Result<(), CudaError> {
    let dims = (cache.shape[0], cache.shape[1], cache.shape[2]);
    let (c, n) = (buf(cache, dt)?.ptr(gpu), buf(new, dt)?.ptr(gpu));
    ew::write_positions(gpu, dt, c, n, dims, start, new.shape[1])
}

pub(crate) fn im2col(
    gpu: &Gpu,
    dt: DType,
    pixels: &[f32],
    batch: usize,
    image: usize,
    patch: usize,
) -> Result<GpuBuf, CudaError> {
    let g = image / patch;
    let px = GpuBuf::from_host(gpu, DType::F32, pixels)?;
    let cols = GpuBuf::alloc(gpu, dt, batch * g * g * 3 * patch * patch)?;
    ew::im2col(gpu, dt, px.ptr(gpu), cols.ptr(gpu), batch, image, patch)?;
    Ok(cols)
}

pub(crate) fn vit_tokens(
    gpu: &Gpu,
    dt: DType,
    patches: &Array,
    first: Option<&Vector>,
    positions: &Vector,
) -> Result<GpuBuf, CudaError> {
    let (b, n, w) = (patches.shape[0], patches.shape[1], patches.shape[2]);
    let seq = n + usize::from(first.is_some());
    let x = GpuBuf::alloc(gpu, dt, b * seq * w)?;
    let class = match first {
        Some(f) => vector(f)?.ptr(gpu),
        None => 0,
    };
    let (pp, pos) = (buf(patches, dt)?.ptr(gpu), vector(positions)?.ptr(gpu));
    ew::vit_tokens(gpu, dt, x.ptr(gpu), pp, class, pos, b, n, w)?;
    Ok(x)
}
