//! The operations every model calls, for every device: each checks its operands' shapes, then
//! runs on the CPU (`cpu/`, the reference) or the GPU (`cuda/ops.rs`). Activations are
//! [`Array`]s on the device; parameters are [`Matrix`], [`Vector`] and [`Linear`].

use super::array::Data;
use super::cpu::{self, Activation};
use super::cuda;
use super::error::ensure;
use super::params::MatrixData;
use super::{Array, ComputeError, Device, Heads, Kind, Linear, Mask, Matrix, Vector};
use crate::tensor::Tensor;
use half::slice::HalfFloatSliceExt;

/// The host slice of a CPU array.
fn host<'a>(x: &'a Array, what: &str) -> Result<&'a [f32], ComputeError> {
    x.host().ok_or_else(|| x.data.not_f32_host(what))
}

fn host_mut<'a>(x: &'a mut Array, what: &str) -> Result<&'a mut Vec<f32>, ComputeError> {
    match &mut x.data {
        Data::Host(v) => Ok(v),
        other => Err(other.not_f32_host(what)),
    }
}

/// `shape` with its last dimension replaced by `cols`.
fn with_cols(shape: &[usize], cols: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    match s.last_mut() {
        Some(last) => *last = cols,
        None => s.push(cols),
    }
    s
}

impl Device {
    /// A host tensor on this device.
    pub fn upload(&self, t: Tensor) -> Result<Array, ComputeError> {
        let shape = t.shape().to_vec();
        let data = match &self.kind {
            Kind::Cpu => Data::Host(t.into_data()),
            Kind::Cuda(g) => Data::Gpu(cuda::GpuBuf::from_host(g, self.precision.into(), t.data())?),
        };
        Ok(Array { shape, data })
    }

    /// `x · Wᵀ + b (+ LoRA)` over the last dimension of `x`.
    pub fn linear(&self, x: &Array, l: &Linear) -> Result<Array, ComputeError> {
        ensure!(x.cols() == l.inputs(), "linear: input has {} columns, the layer takes {}", x.cols(), l.inputs());
        let shape = with_cols(&x.shape, l.outputs());
        match &self.kind {
            Kind::Cpu => {
                let xt = Tensor::new([x.rows(), x.cols()], host(x, "linear")?.to_vec());
                let mut y = cpu_product(&xt, &l.weight, l.bias.as_ref().map(|b| &b.host[..]))?;
                if let Some(lora) = &l.lora {
                    cpu_lora(&xt, lora, &mut y)?;
                }
                Ok(Array { shape, data: Data::Host(y.into_data()) })
            }
            Kind::Cuda(g) => Ok(Array { shape, data: Data::Gpu(cuda::ops::linear(g, self.precision.into(), x, l)?) }),
        }
    }

    /// `x · Wᵀ + b (+ LoRA)` of several layers reading the same input (q, k and v; gate and
    /// up): on the CPU, quantised weights share one quantisation of `x` and one parallel region.
    pub fn linears(&self, x: &Array, ls: &[&Linear]) -> Result<Vec<Array>, ComputeError> {
        let (Kind::Cpu, Some(ws)) = (&self.kind, quantised_plain(ls)) else {
            return ls.iter().map(|l| self.linear(x, l)).collect();
        };
        ensure!(ls.iter().all(|l| l.inputs() == x.cols()), "linear: input has {} columns", x.cols());
        let quant_err = |e| ComputeError::Shape(format!("quantised linear: {e}"));
        let acts = cpu::quant::QActs::quantize(host(x, "linear")?, x.rows(), x.cols()).map_err(quant_err)?;
        let outs = cpu::quant::linear::linear_many(&acts, &ws).map_err(quant_err)?;
        Ok(outs
            .into_iter()
            .zip(ls)
            .map(|(mut y, l)| {
                add_bias(&mut y, l.bias.as_ref().map(|b| &b.host[..]));
                Array { shape: with_cols(&x.shape, l.outputs()), data: Data::Host(y) }
            })
            .collect())
    }

    /// `y += x · Wᵀ + b (+ LoRA)`: a projection added into the residual stream.
    pub fn linear_add(&self, x: &Array, l: &Linear, y: &mut Array) -> Result<(), ComputeError> {
        ensure!(x.cols() == l.inputs(), "linear: input has {} columns, the layer takes {}", x.cols(), l.inputs());
        ensure!(
            y.rows() == x.rows() && y.cols() == l.outputs(),
            "linear_add: {:?} cannot take {} rows of {}",
            y.shape,
            x.rows(),
            l.outputs()
        );
        match &self.kind {
            Kind::Cpu => {
                let p = self.linear(x, l)?;
                cpu::add_assign_slice(host_mut(y, "linear_add")?, host(&p, "linear_add")?);
                Ok(())
            }
            Kind::Cuda(g) => Ok(cuda::ops::linear_add(g, self.precision.into(), x, l, y)?),
        }
    }

    /// Layer normalisation over the last dimension.
    pub fn layer_norm(&self, x: &Array, gamma: &Vector, beta: &Vector, eps: f32) -> Result<Array, ComputeError> {
        ensure!(gamma.len() == x.cols() && beta.len() == x.cols(), "layer_norm: parameters do not match {:?}", x.shape);
        match &self.kind {
            Kind::Cpu => {
                let t = Tensor::new([x.rows(), x.cols()], host(x, "layer_norm")?.to_vec());
                let y = cpu::layer_norm(&t, &gamma.host, &beta.host, eps);
                Ok(Array { shape: x.shape.clone(), data: Data::Host(y.into_data()) })
            }
            Kind::Cuda(g) => {
                let y = cuda::ops::layer_norm(g, self.precision.into(), x, gamma, beta, eps)?;
                Ok(Array { shape: x.shape.clone(), data: Data::Gpu(y) })
            }
        }
    }

    /// RMS normalisation over the last dimension (`LlamaRMSNorm`).
    pub fn rms_norm(&self, x: &Array, gamma: &Vector, eps: f32) -> Result<Array, ComputeError> {
        ensure!(gamma.len() == x.cols(), "rms_norm: {} parameters for {:?}", gamma.len(), x.shape);
        match &self.kind {
            Kind::Cpu => {
                let mut y = host(x, "rms_norm")?.to_vec();
                cpu::rms_norm(&mut y, x.cols(), &gamma.host, eps);
                Ok(Array { shape: x.shape.clone(), data: Data::Host(y) })
            }
            Kind::Cuda(g) => {
                let y = cuda::ops::rms_norm(g, self.precision.into(), x, gamma, eps)?;
                Ok(Array { shape: x.shape.clone(), data: Data::Gpu(y) })
            }
        }
    }

    /// `act(x)`, in place.
    pub fn activate(&self, x: &mut Array, act: Activation) -> Result<(), ComputeError> {
        match &self.kind {
            Kind::Cpu => {
                let shape = x.shape.clone();
                let v = std::mem::take(host_mut(x, "activate")?);
                let mut t = Tensor::new(shape, v);
                cpu::activate(&mut t, act);
                x.data = Data::Host(t.into_data());
                Ok(())
            }
            Kind::Cuda(g) => Ok(cuda::ops::activate(g, self.precision.into(), x, act)?),
        }
    }

    /// `silu(gate) · up` (SwiGLU), into `gate`.
    pub fn silu_mul(&self, gate: &mut Array, up: &Array) -> Result<(), ComputeError> {
        ensure!(gate.shape == up.shape, "silu_mul: {:?} and {:?} differ", gate.shape, up.shape);
        match &self.kind {
            Kind::Cpu => {
                let u = host(up, "silu_mul")?;
                cpu::silu_mul(host_mut(gate, "silu_mul")?, u);
                Ok(())
            }
            Kind::Cuda(g) => Ok(cuda::ops::silu_mul(g, self.precision.into(), gate, up)?),
        }
    }

    /// `x += y` for arrays of one shape.
    pub fn add(&self, x: &mut Array, y: &Array) -> Result<(), ComputeError> {
        ensure!(x.shape == y.shape, "add: {:?} and {:?} differ", x.shape, y.shape);
        match &self.kind {
            Kind::Cpu => {
                let yv = host(y, "add")?;
                cpu::add_assign_slice(host_mut(x, "add")?, yv);
                Ok(())
            }
            Kind::Cuda(g) => Ok(cuda::ops::add(g, self.precision.into(), x, y)?),
        }
    }

    /// `x[i] += y[i mod len(y)]` (learned position embeddings added to every batch element).
    pub fn add_periodic(&self, x: &mut Array, y: &Vector) -> Result<(), ComputeError> {
        ensure!(!y.is_empty() && x.len().is_multiple_of(y.len()), "add: {} values repeat over {:?}", y.len(), x.shape);
        match &self.kind {
            Kind::Cpu => {
                for chunk in host_mut(x, "add")?.chunks_mut(y.len()) {
                    cpu::add_assign_slice(chunk, &y.host);
                }
                Ok(())
            }
            Kind::Cuda(g) => Ok(cuda::ops::add_periodic(g, self.precision.into(), x, y)?),
        }
    }

    /// Rows `ids` of `table` (`[ids.len(), cols]`): an embedding lookup.
    pub fn embedding(&self, table: &Matrix, ids: &[u32]) -> Result<Array, ComputeError> {
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= table.rows) {
            return Err(ComputeError::Shape(format!("token id {bad} is outside the vocabulary of {}", table.rows)));
        }
        let shape = vec![ids.len(), table.cols];
        match (&self.kind, &table.data) {
            (Kind::Cpu, MatrixData::F32(t)) => {
                let data = ids.iter().flat_map(|&i| t.row(i as usize).iter().copied()).collect();
                Ok(Array { shape, data: Data::Host(data) })
            }
            (Kind::Cuda(g), MatrixData::Gpu(b)) => {
                let rows: Vec<usize> = ids.iter().map(|&i| i as usize).collect();
                Ok(Array { shape, data: Data::Gpu(cuda::ops::gather(g, b, table.cols, &rows)?) })
            }
            _ => Err(ComputeError::Unsupported("embedding: the table is not a lookup table on this device".into())),
        }
    }

    /// Rows `rows` of `x` viewed as `[rows, cols]`, as `[rows.len(), cols]`.
    pub fn gather_rows(&self, x: &Array, rows: &[usize]) -> Result<Array, ComputeError> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= x.rows()) {
            return Err(ComputeError::Shape(format!("gather: row {bad} of {}", x.rows())));
        }
        let (cols, shape) = (x.cols(), vec![rows.len(), x.cols()]);
        match (&self.kind, &x.data) {
            (Kind::Cpu, Data::Host(v)) => {
                let data = rows.iter().flat_map(|&r| v[r * cols..(r + 1) * cols].iter().copied()).collect();
                Ok(Array { shape, data: Data::Host(data) })
            }
            (Kind::Cuda(g), Data::Gpu(b)) => Ok(Array { shape, data: Data::Gpu(cuda::ops::gather(g, b, cols, rows)?) }),
            _ => Err(ComputeError::Unsupported("gather: the array is on another device".into())),
        }
    }

    /// Row `rows[i]` of `x` (viewed as `[rows, cols]`) set to row `i` of `src` (splicing image
    /// features into a text sequence).
    pub fn scatter_rows(&self, x: &mut Array, rows: &[usize], src: &Array) -> Result<(), ComputeError> {
        let cols = x.cols();
        ensure!(src.cols() == cols && src.rows() == rows.len(), "scatter: {:?} into {:?}", src.shape, x.shape);
        if let Some(&bad) = rows.iter().find(|&&r| r >= x.rows()) {
            return Err(ComputeError::Shape(format!("scatter: row {bad} of {}", x.rows())));
        }
        match &self.kind {
            Kind::Cpu => {
                let s = host(src, "scatter")?;
                let xv = host_mut(x, "scatter")?;
                for (i, &r) in rows.iter().enumerate() {
                    xv[r * cols..(r + 1) * cols].copy_from_slice(&s[i * cols..(i + 1) * cols]);
                }
                Ok(())
            }
            Kind::Cuda(g) => Ok(cuda::ops::scatter(g, self.precision.into(), x, rows, src)?),
        }
    }

    /// Rotary position embedding (transformers' `rotate_half` form) on `x` (`[.., heads·dim]`,
    /// one position per row), with `inv_freq` of `dim / 2` frequencies.
    pub fn rope(&self, x: &mut Array, positions: &[u32], inv_freq: &[f32]) -> Result<(), ComputeError> {
        let half = inv_freq.len();
        ensure!(half > 0 && x.cols().is_multiple_of(2 * half), "rope: {} frequencies for {} columns", half, x.cols());
        ensure!(positions.len() == x.rows(), "rope: {} positions for {} rows", positions.len(), x.rows());
        match &self.kind {
            Kind::Cpu => {
                let cols = x.cols();
                cpu::rope(host_mut(x, "rope")?, cols, positions, inv_freq);
                Ok(())
            }
            Kind::Cuda(g) => Ok(cuda::ops::rope(g, self.precision.into(), x, positions, inv_freq)?),
        }
    }

    /// `softmax(q·kᵀ/√d + mask)·v` per batch element and head, with grouped-query heads
    /// (`q.heads` a multiple of `k.heads`); `[batch, q.len, q.heads·head_dim]`.
    pub fn attention(&self, q: Heads<'_>, k: Heads<'_>, v: Heads<'_>, mask: Mask<'_>) -> Result<Array, ComputeError> {
        for (view, what) in [(&q, "queries"), (&k, "keys"), (&v, "values")] {
            view.check(what)?;
        }
        let batch = q.batch();
        ensure!(k.batch() == batch && v.batch() == batch, "attention: batch sizes differ");
        ensure!(k.len == v.len && k.heads == v.heads, "attention: keys and values differ");
        ensure!(q.head_dim == k.head_dim && k.head_dim == v.head_dim, "attention: head sizes differ");
        ensure!(
            k.heads > 0 && q.heads.is_multiple_of(k.heads),
            "attention: {} heads over {} kv heads",
            q.heads,
            k.heads
        );
        ensure!(!mask.causal || k.len >= q.len, "attention: causal with {} queries but {} keys", q.len, k.len);
        if let Some(keys) = mask.keys {
            ensure!(keys.len() == batch * k.len, "attention: key mask of {} for {batch}x{}", keys.len(), k.len);
        }
        let shape = vec![batch, q.len, q.heads * q.head_dim];
        match &self.kind {
            Kind::Cpu => {
                fn op<'a>(h: &Heads<'a>, what: &str) -> Result<cpu::Operand<'a>, ComputeError> {
                    Ok(h.cpu_operand(host(h.array, what)?))
                }
                fn half<'a>(h: &Heads<'a>) -> Option<cpu::Operand<'a, half::f16>> {
                    let Data::HostF16(data) = &h.array.data else { return None };
                    Some(h.cpu_operand(data))
                }
                let (qo, d) = (op(&q, "attention")?, q.head_dim);
                let out = match (half(&k), half(&v)) {
                    (Some(ko), Some(vo)) => cpu::attention(qo, ko, vo, batch, d, mask),
                    _ => cpu::attention(qo, op(&k, "attention keys")?, op(&v, "attention values")?, batch, d, mask),
                };
                Ok(Array { shape, data: Data::Host(out) })
            }
            Kind::Cuda(g) => {
                Ok(Array { shape, data: Data::Gpu(cuda::ops::attention(g, self.precision.into(), q, k, v, mask)?) })
            }
        }
    }

    /// Positions `start..start + n` of every batch element of `cache` set to `new` (`[batch,
    /// n, w]`): appending to a KV cache, `[batch, capacity, w]` or head-major (the CPU's,
    /// [`Device::kv_cache`]).
    pub fn write_positions(&self, cache: &mut Array, start: usize, new: &Array) -> Result<(), ComputeError> {
        if cache.shape.len() == 4 {
            return self.write_head_major(cache, start, new);
        }
        ensure!(cache.shape.len() == 3 && new.shape.len() == 3, "kv write: caches are [batch, capacity, width]");
        let (b, cap, w) = (cache.shape[0], cache.shape[1], cache.shape[2]);
        let n = new.shape[1];
        ensure!(new.shape[0] == b && new.shape[2] == w, "kv write: {:?} into {:?}", new.shape, cache.shape);
        ensure!(start + n <= cap, "kv write: positions {start}..{} exceed the capacity {cap}", start + n);
        match &self.kind {
            Kind::Cpu => {
                // Each batch element's n positions are one run in both.
                let runs = (0..b).map(|bi| (bi * n * w, (bi * cap + start) * w));
                copy_runs(&mut cache.data, host(new, "kv write")?, n * w, runs)
            }
            Kind::Cuda(g) => Ok(cuda::ops::write_positions(g, self.precision.into(), cache, start, new)?),
        }
    }

    /// [`Device::write_positions`] into a head-major cache `[batch, heads, capacity, head_dim]`:
    /// each head of each new position to its own run of positions.
    fn write_head_major(&self, cache: &mut Array, start: usize, new: &Array) -> Result<(), ComputeError> {
        let &[b, heads, cap, d] = &cache.shape[..] else { unreachable!("called for four dimensions") };
        ensure!(new.shape.len() == 3, "kv write: new keys and values are [batch, n, width], got {:?}", new.shape);
        let n = new.shape[1];
        ensure!(new.shape[0] == b && new.shape[2] == heads * d, "kv write: {:?} into {:?}", new.shape, cache.shape);
        ensure!(start + n <= cap, "kv write: positions {start}..{} exceed the capacity {cap}", start + n);
        ensure!(matches!(self.kind, Kind::Cpu), "kv write: a head-major cache {:?} is the CPU's", cache.shape);
        // Each head of each new position is one run.
        let runs = (0..b).flat_map(|bi| {
            (0..n).flat_map(move |t| {
                (0..heads).map(move |h| (((bi * n + t) * heads + h) * d, ((bi * heads + h) * cap + start + t) * d))
            })
        });
        copy_runs(&mut cache.data, host(new, "kv write")?, d, runs)
    }

    /// An empty KV cache for `batch` sequences of up to `capacity` positions of `heads` heads of
    /// `head_dim`. On the CPU head-major, `[batch, heads, capacity, head_dim]`, so that attention
    /// streams each head's keys and values from one run of memory, and in f16 when `half` (half
    /// the bytes to stream at every step; llama.cpp's default cache type), else f32. On the GPU
    /// `[batch, capacity, heads·head_dim]` in the activations' type. Only `write_positions` and
    /// `attention` take an f16 cache.
    pub fn kv_cache(
        &self,
        batch: usize,
        capacity: usize,
        (heads, head_dim): (usize, usize),
        half: bool,
    ) -> Result<Array, ComputeError> {
        match &self.kind {
            Kind::Cpu => {
                let shape = vec![batch, heads, capacity, head_dim];
                let n = shape.iter().product();
                let data = if half { Data::HostF16(vec![half::f16::ZERO; n]) } else { Data::Host(vec![0.0; n]) };
                Ok(Array { shape, data })
            }
            Kind::Cuda(_) => self.zeros([batch, capacity, heads * head_dim]),
        }
    }

    /// A `[shape]` array of zeros.
    pub fn zeros(&self, shape: impl Into<Vec<usize>>) -> Result<Array, ComputeError> {
        let shape = shape.into();
        let n = shape.iter().product();
        let data = match &self.kind {
            Kind::Cpu => Data::Host(vec![0.0; n]),
            Kind::Cuda(g) => Data::Gpu(cuda::GpuBuf::zeros(g, self.precision.into(), n)?),
        };
        Ok(Array { shape, data })
    }

    /// ViT patches of f32 pixels `[batch, 3, image, image]`: `[batch, grid², 3·patch²]`.
    pub fn patches(&self, pixels: &[f32], batch: usize, image: usize, patch: usize) -> Result<Array, ComputeError> {
        ensure!(patch > 0 && image.is_multiple_of(patch), "patches: image {image} is not a multiple of {patch}");
        ensure!(
            pixels.len() == batch * 3 * image * image,
            "{} pixel values are not {batch} images of 3x{image}x{image}",
            pixels.len()
        );
        let g = image / patch;
        let shape = vec![batch, g * g, 3 * patch * patch];
        match &self.kind {
            Kind::Cpu => Ok(Array { shape, data: Data::Host(cpu::im2col(pixels, batch, image, patch)) }),
            Kind::Cuda(gpu) => Ok(Array {
                shape,
                data: Data::Gpu(cuda::ops::im2col(gpu, self.precision.into(), pixels, batch, image, patch)?),
            }),
        }
    }

    /// ViT tokens: `[first;] patches` per batch element plus `positions` (`[batch, n (+1), w]`).
    pub fn vit_tokens(
        &self,
        patches: &Array,
        first: Option<&Vector>,
        positions: &Vector,
    ) -> Result<Array, ComputeError> {
        ensure!(patches.shape.len() == 3, "vit tokens: patches must be [batch, n, width]");
        let (b, n, w) = (patches.shape[0], patches.shape[1], patches.shape[2]);
        let seq = n + usize::from(first.is_some());
        ensure!(positions.len() == seq * w, "vit tokens: {} position values for {seq}x{w}", positions.len());
        ensure!(first.is_none_or(|f| f.len() == w), "vit tokens: the class token is not {w} wide");
        let shape = vec![b, seq, w];
        match &self.kind {
            Kind::Cpu => {
                let p = host(patches, "vit tokens")?;
                let mut x = Vec::with_capacity(b * seq * w);
                for bi in 0..b {
                    if let Some(f) = first {
                        x.extend_from_slice(&f.host);
                    }
                    x.extend_from_slice(&p[bi * n * w..(bi + 1) * n * w]);
                    cpu::add_assign_slice(&mut x[bi * seq * w..], &positions.host);
                }
                Ok(Array { shape, data: Data::Host(x) })
            }
            Kind::Cuda(g) => Ok(Array {
                shape,
                data: Data::Gpu(cuda::ops::vit_tokens(g, self.precision.into(), patches, first, positions)?),
            }),
        }
    }
}

/// `x · Wᵀ + b` on the CPU for a host matrix.
fn cpu_product(x: &Tensor, w: &Matrix, bias: Option<&[f32]>) -> Result<Tensor, ComputeError> {
    match &w.data {
        MatrixData::F32(t) => Ok(cpu::linear(x, t, bias)),
        MatrixData::Bf16(p) => Ok(cpu::linear_bf16(x, p, bias)),
        MatrixData::Quant(q) => {
            let (m, n) = (x.rows(), q.rows());
            let mut out = cpu::quant::linear_vec(x.data(), m, q)
                .map_err(|e| ComputeError::Shape(format!("quantised linear: {e}")))?;
            add_bias(&mut out, bias);
            let mut shape = x.shape().to_vec();
            if let Some(last) = shape.last_mut() {
                *last = n;
            }
            Ok(Tensor::new(shape, out))
        }
        MatrixData::Gpu(_) => Err(ComputeError::Unsupported("linear: a GPU weight on the CPU".into())),
    }
}

/// `bias` added to every row of `out` (rows of `bias.len()`).
fn add_bias(out: &mut [f32], bias: Option<&[f32]>) {
    if let Some(b) = bias.filter(|b| !b.is_empty()) {
        out.chunks_mut(b.len()).for_each(|row| cpu::add_assign_slice(row, b));
    }
}

/// The quantised weights of `ls` when every layer has one and none has a LoRA delta.
fn quantised_plain<'a>(ls: &[&'a Linear]) -> Option<Vec<&'a cpu::quant::QMatrix>> {
    ls.iter()
        .map(|l| match (&l.weight.data, &l.lora) {
            (MatrixData::Quant(q), None) if !q.ty().is_float() => Some(q),
            _ => None,
        })
        .collect()
}

/// `y += scale · (x · Aᵀ) · Bᵀ` on the CPU.
fn cpu_lora(x: &Tensor, lora: &super::LoraDelta, y: &mut Tensor) -> Result<(), ComputeError> {
    let mut t = cpu_product(x, &lora.a, None)?;
    t.data_mut().iter_mut().for_each(|v| *v *= lora.scale);
    let d = cpu_product(&t, &lora.b, None)?;
    cpu::add_assign_slice(y.data_mut(), d.data());
    Ok(())
}

/// Copies `src[s..s + len]` to `dst[t..t + len]` for each `(s, t)` of `runs` (a KV write),
/// rounding to f16 into a half-precision cache.
fn copy_runs(
    dst: &mut Data,
    src: &[f32],
    len: usize,
    runs: impl Iterator<Item = (usize, usize)>,
) -> Result<(), ComputeError> {
    match dst {
        Data::Host(dst) => runs.for_each(|(s, t)| dst[t..t + len].copy_from_slice(&src[s..s + len])),
        Data::HostF16(dst) => runs.for_each(|(s, t)| dst[t..t + len].convert_from_f32_slice(&src[s..s + len])),
        other => return Err(other.not_f32_host("kv write")),
    }
    Ok(())
}
