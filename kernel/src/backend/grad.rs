//! The operations training needs beyond inference, for every device: backward passes of the
//! layers a ViT image tower trains through (frozen linear layers, layer norm, activations,
//! attention), general matrix products for LoRA's `A` and `B`, and the column and batch
//! bookkeeping between them. The CPU computes them in f32 (`cpu/grad.rs`); the GPU in its
//! precision with f32 accumulation (`cuda/backward.rs`: cuBLAS products, the kernels of
//! `cuda/grad.cu`, an unfused attention backward), so that the training code (`train/`) runs
//! unchanged on either device.

use super::array::Data;
use super::cpu::{self, Activation};
use super::error::ensure;
use super::params::MatrixData;
use super::{Array, ComputeError, Device, Heads, Kind, Linear, Vector, cuda};

/// The host slice of a CPU array, or why it has none.
fn host<'a>(x: &'a Array, what: &str) -> Result<&'a [f32], ComputeError> {
    x.host().ok_or_else(|| ComputeError::Unsupported(format!("{what}: a GPU array given to the CPU")))
}

/// A host array of `shape`.
fn host_array(shape: Vec<usize>, data: Vec<f32>) -> Array {
    Array { shape, data: Data::Host(data) }
}

/// A GPU array of `shape`.
fn gpu_array(shape: Vec<usize>, buf: cuda::GpuBuf) -> Array {
    Array { shape, data: Data::Gpu(buf) }
}

impl Device {
    /// A copy of `x` (an activation kept for the backward pass).
    pub fn copy(&self, x: &Array) -> Result<Array, ComputeError> {
        match &self.kind {
            Kind::Cpu => Ok(host_array(x.shape.clone(), host(x, "copy")?.to_vec())),
            Kind::Cuda(_) => {
                let rows: Vec<usize> = (0..x.rows()).collect();
                self.gather_rows(x, &rows)?.reshape(x.shape.clone())
            }
        }
    }

    /// `alpha · op(a) · op(b)` of `a` and `b` viewed as matrices `[rows, cols]`, `op` a
    /// transpose where `ta` / `tb`: `[m, n]`.
    pub fn matmul(&self, a: &Array, ta: bool, b: &Array, tb: bool, alpha: f32) -> Result<Array, ComputeError> {
        let (m, k) = if ta { (a.cols(), a.rows()) } else { (a.rows(), a.cols()) };
        let (kb, n) = if tb { (b.cols(), b.rows()) } else { (b.rows(), b.cols()) };
        ensure!(
            k == kb,
            "matmul: {:?}{} times {:?}{}",
            a.shape,
            if ta { "ᵀ" } else { "" },
            b.shape,
            if tb { "ᵀ" } else { "" }
        );
        match &self.kind {
            Kind::Cpu => {
                let out = cpu::grad::product(host(a, "matmul")?, ta, host(b, "matmul")?, tb, m, k, n, alpha);
                Ok(host_array(vec![m, n], out))
            }
            Kind::Cuda(g) => {
                let c = cuda::backward::matmul(g, self.precision.into(), (a, ta), (b, tb), (m, k, n), alpha)?;
                Ok(gpu_array(vec![m, n], c))
            }
        }
    }

    /// `dx = dy · W` of a frozen linear layer's weight (its LoRA delta, if any, is the caller's).
    pub fn linear_backward(&self, dy: &Array, l: &Linear) -> Result<Array, ComputeError> {
        ensure!(dy.cols() == l.outputs(), "linear backward: {:?} for {} outputs", dy.shape, l.outputs());
        let mut shape = dy.shape.clone();
        if let Some(last) = shape.last_mut() {
            *last = l.inputs();
        }
        match (&self.kind, &l.weight.data) {
            (Kind::Cpu, MatrixData::F32(w)) => {
                let (m, k, n) = (dy.rows(), l.outputs(), l.inputs());
                Ok(host_array(
                    shape,
                    cpu::grad::product(host(dy, "linear backward")?, false, w.data(), false, m, k, n, 1.0),
                ))
            }
            (Kind::Cpu, _) => Err(ComputeError::Unsupported(
                "linear backward: training needs f32 weights on the CPU (precision f32)".into(),
            )),
            (Kind::Cuda(g), _) => {
                Ok(gpu_array(shape, cuda::backward::linear_backward(g, self.precision.into(), dy, l)?))
            }
        }
    }

    /// `dx` of layer normalisation over the last dimension at input `x`, given `dy`.
    pub fn layer_norm_backward(&self, x: &Array, gamma: &Vector, eps: f32, dy: &Array) -> Result<Array, ComputeError> {
        ensure!(
            x.shape == dy.shape && gamma.len() == x.cols(),
            "layer norm backward: {:?} and {:?}",
            x.shape,
            dy.shape
        );
        match &self.kind {
            Kind::Cpu => {
                let dx =
                    cpu::grad::layer_norm_backward(host(x, "layer norm")?, host(dy, "layer norm")?, &gamma.host, eps);
                Ok(host_array(x.shape.clone(), dx))
            }
            Kind::Cuda(g) => {
                let dx = cuda::backward::layer_norm_backward(g, self.precision.into(), x, gamma, eps, dy)?;
                Ok(gpu_array(x.shape.clone(), dx))
            }
        }
    }

    /// `dx = dy · act'(x)` at the pre-activation `x`.
    pub fn activate_backward(&self, x: &Array, dy: &Array, act: Activation) -> Result<Array, ComputeError> {
        ensure!(x.shape == dy.shape, "activation backward: {:?} and {:?}", x.shape, dy.shape);
        match &self.kind {
            Kind::Cpu => Ok(host_array(
                x.shape.clone(),
                cpu::grad::activate_backward(host(x, "activation")?, host(dy, "activation")?, act),
            )),
            Kind::Cuda(g) => {
                let dx = cuda::backward::activate_backward(g, self.precision.into(), x, dy, act)?;
                Ok(gpu_array(x.shape.clone(), dx))
            }
        }
    }

    /// `(dQ, dK, dV)` of unmasked attention (as [`Device::attention`] with `Mask::NONE`, one
    /// key/value head per query head) given `dout` (`[batch, q.len, heads·head_dim]`); each
    /// contiguous `[batch, len, heads·head_dim]`.
    pub fn attention_backward(
        &self,
        q: Heads<'_>,
        k: Heads<'_>,
        v: Heads<'_>,
        dout: &Array,
    ) -> Result<(Array, Array, Array), ComputeError> {
        for (view, what) in [(&q, "queries"), (&k, "keys"), (&v, "values")] {
            view.check(what)?;
        }
        let (batch, width) = (q.batch(), q.heads * q.head_dim);
        ensure!(q.heads == k.heads && k.heads == v.heads, "attention backward: grouped heads are not supported");
        ensure!(
            q.head_dim == k.head_dim && k.head_dim == v.head_dim && k.len == v.len,
            "attention backward: views differ"
        );
        ensure!(dout.shape == [batch, q.len, width], "attention backward: dout {:?}", dout.shape);
        match &self.kind {
            Kind::Cpu => {
                fn op<'a>(h: &Heads<'a>) -> Result<cpu::Operand<'a>, ComputeError> {
                    Ok(h.cpu_operand(host(h.array, "attention backward")?))
                }
                let dout = host(dout, "attention backward")?;
                let (dq, dk, dv) = cpu::grad::attention_backward(op(&q)?, op(&k)?, op(&v)?, dout, batch, q.head_dim);
                let kv_shape = vec![batch, k.len, width];
                Ok((
                    host_array(vec![batch, q.len, width], dq),
                    host_array(kv_shape.clone(), dk),
                    host_array(kv_shape, dv),
                ))
            }
            Kind::Cuda(g) => {
                let [dq, dk, dv] = cuda::backward::attention_backward(g, self.precision.into(), [q, k, v], dout)?;
                let kv_shape = vec![batch, k.len, width];
                Ok((gpu_array(vec![batch, q.len, width], dq), gpu_array(kv_shape.clone(), dk), gpu_array(kv_shape, dv)))
            }
        }
    }

    /// The columns of `parts` side by side (each `[.., cols_i]` with the same rows):
    /// `[.., Σ cols_i]`.
    pub fn concat_cols(&self, parts: &[&Array]) -> Result<Array, ComputeError> {
        let first = parts.first().ok_or_else(|| ComputeError::Shape("concat: no parts".into()))?;
        let rows = first.rows();
        ensure!(parts.iter().all(|p| p.rows() == rows), "concat: row counts differ");
        let cols: usize = parts.iter().map(|p| p.cols()).sum();
        let mut shape = first.shape.clone();
        if let Some(last) = shape.last_mut() {
            *last = cols;
        }
        match &self.kind {
            Kind::Cpu => {
                let slices = parts.iter().map(|p| host(p, "concat")).collect::<Result<Vec<_>, _>>()?;
                let mut out = Vec::with_capacity(rows * cols);
                for r in 0..rows {
                    for (s, p) in slices.iter().zip(parts) {
                        out.extend_from_slice(&s[r * p.cols()..(r + 1) * p.cols()]);
                    }
                }
                Ok(host_array(shape, out))
            }
            Kind::Cuda(g) => {
                Ok(gpu_array(shape, cuda::backward::concat_cols(g, self.precision.into(), parts, rows, cols)?))
            }
        }
    }

    /// `y[.., col..col + src.cols] += src` (a LoRA output added into a stacked projection's part).
    pub fn add_cols(&self, y: &mut Array, col: usize, src: &Array) -> Result<(), ComputeError> {
        let (cols, n) = (y.cols(), src.cols());
        ensure!(
            src.rows() == y.rows() && col + n <= cols,
            "add_cols: {:?} at column {col} of {:?}",
            src.shape,
            y.shape
        );
        match (&self.kind, &mut y.data) {
            (Kind::Cpu, Data::Host(yv)) => {
                let s = host(src, "add_cols")?;
                for (row, srow) in yv.chunks_mut(cols).zip(s.chunks(n)) {
                    cpu::add_assign_slice(&mut row[col..col + n], srow);
                }
                Ok(())
            }
            (Kind::Cuda(g), _) => Ok(cuda::backward::add_cols(g, self.precision.into(), y, col, src)?),
            (Kind::Cpu, other) => Err(other.not_f32_host("add_cols")),
        }
    }

    /// `x *= y`, element-wise (a dropout mask).
    pub fn mul(&self, x: &mut Array, y: &Array) -> Result<(), ComputeError> {
        ensure!(x.len() == y.len(), "mul: {:?} and {:?}", x.shape, y.shape);
        match (&self.kind, &mut x.data) {
            (Kind::Cpu, Data::Host(xv)) => {
                xv.iter_mut().zip(host(y, "mul")?).for_each(|(a, b)| *a *= b);
                Ok(())
            }
            (Kind::Cuda(g), _) => Ok(cuda::backward::mul(g, self.precision.into(), x, y)?),
            (Kind::Cpu, other) => Err(other.not_f32_host("mul")),
        }
    }

    /// The sum over the batch of `x` (`[batch, seq, width]`): `[seq, width]` (the gradient of a
    /// position table added to every batch element).
    pub fn sum_batches(&self, x: &Array) -> Result<Array, ComputeError> {
        ensure!(x.shape.len() == 3, "sum_batches: {:?} is not [batch, seq, width]", x.shape);
        let per = x.shape[1] * x.shape[2];
        match &self.kind {
            Kind::Cpu => {
                let mut out = vec![0f32; per];
                host(x, "sum_batches")?.chunks(per).for_each(|b| cpu::add_assign_slice(&mut out, b));
                Ok(host_array(vec![x.shape[1], x.shape[2]], out))
            }
            Kind::Cuda(g) => {
                let out = cuda::backward::sum_batches(g, self.precision.into(), x, x.shape[0], per)?;
                Ok(gpu_array(vec![x.shape[1], x.shape[2]], out))
            }
        }
    }
}
