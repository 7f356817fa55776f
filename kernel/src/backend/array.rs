//! [`Array`]: activations on a device (f32 on the CPU; the device's precision on the GPU),
//! row-major and contiguous, and [`Heads`], a view of some columns of an array as attention
//! heads (the Q, K or V part of a projection's output, or a KV cache). Masks are the CPU
//! backend's [`super::Mask`] (`cpu::AttentionMask`), shared by every device.

use super::cuda::GpuBuf;
use super::error::ensure;
use super::{ComputeError, Device, Kind};
use crate::tensor::Tensor;

/// A dense row-major array on a device.
#[derive(Debug)]
pub struct Array {
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Data,
}

/// Where an array's elements are.
#[derive(Debug)]
pub(crate) enum Data {
    /// Host memory, f32.
    Host(Vec<f32>),
    /// Host memory, f16: a half-precision KV cache ([`Device::kv_cache`]), which only
    /// `write_positions`, `attention` and reading back accept.
    HostF16(Vec<half::f16>),
    /// Device memory, in the buffer's dtype.
    Gpu(GpuBuf),
}

impl Data {
    /// The error for these elements given to a CPU operation on f32 host memory.
    pub(crate) fn not_f32_host(&self, what: &str) -> ComputeError {
        let is = match self {
            Data::HostF16(_) => "an f16 KV cache, which only attention reads,",
            _ => "a GPU array",
        };
        ComputeError::Unsupported(format!("{what}: {is} given to the CPU"))
    }
}

impl Array {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size of the last dimension.
    pub fn cols(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    /// The product of all dimensions but the last.
    pub fn rows(&self) -> usize {
        self.len().checked_div(self.cols()).unwrap_or(0)
    }

    /// The same elements under another shape.
    pub fn reshape(mut self, shape: impl Into<Vec<usize>>) -> Result<Array, ComputeError> {
        let shape = shape.into();
        ensure!(shape.iter().product::<usize>() == self.len(), "cannot reshape {:?} to {shape:?}", self.shape);
        self.shape = shape;
        Ok(self)
    }

    /// The host elements, when the array is on the CPU.
    pub(crate) fn host(&self) -> Option<&[f32]> {
        match &self.data {
            Data::Host(v) => Some(v),
            Data::HostF16(_) | Data::Gpu(_) => None,
        }
    }

    /// The elements as a host tensor (a copy back from the GPU, waiting for it).
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor, ComputeError> {
        let data = match (&self.data, &device.kind) {
            (Data::Host(v), _) => v.clone(),
            (Data::HostF16(v), _) => v.iter().map(|x| x.to_f32()).collect(),
            (Data::Gpu(b), Kind::Cuda(g)) => b.to_host(g)?,
            (Data::Gpu(_), Kind::Cpu) => return Err(ComputeError::Unsupported("a GPU array read on the CPU".into())),
        };
        Ok(Tensor::new(self.shape.clone(), data))
    }

    /// Consumes a host array into a tensor without copying (copies back from the GPU).
    pub fn into_tensor(self, device: &Device) -> Result<Tensor, ComputeError> {
        match self.data {
            Data::Host(v) => Ok(Tensor::new(self.shape, v)),
            Data::HostF16(_) | Data::Gpu(_) => self.to_tensor(device),
        }
    }
}

/// Columns `col..col + heads·head_dim` of an array `[batch, capacity, row]`, read as `heads`
/// heads of `head_dim` over the first `len` positions of each batch element; or all of a
/// head-major KV cache `[batch, heads, capacity, head_dim]` (the CPU's, [`Device::kv_cache`],
/// where each head's positions lie together), `col` 0.
#[derive(Debug, Clone, Copy)]
pub struct Heads<'a> {
    /// The array (`[batch, capacity, row]` or `[batch, heads, capacity, head_dim]`).
    pub array: &'a Array,
    /// The first column.
    pub col: usize,
    /// Heads.
    pub heads: usize,
    /// Elements per head.
    pub head_dim: usize,
    /// Positions used (at most the array's second dimension).
    pub len: usize,
}

impl<'a> Heads<'a> {
    /// All of `array` (`[batch, seq, heads·head_dim]`) as `heads` heads.
    pub fn all(array: &'a Array, heads: usize) -> Result<Self, ComputeError> {
        ensure!(array.shape.len() == 3, "attention input must be [batch, seq, width], got {:?}", array.shape);
        ensure!(heads > 0 && array.cols().is_multiple_of(heads), "{} columns are not {heads} heads", array.cols());
        Ok(Heads { array, col: 0, heads, head_dim: array.cols() / heads, len: array.shape[1] })
    }

    /// Batch elements.
    pub fn batch(&self) -> usize {
        self.array.shape.first().copied().unwrap_or(0)
    }

    /// Whether the array is a head-major KV cache `[batch, heads, capacity, head_dim]`.
    fn head_major(&self) -> bool {
        self.array.shape.len() == 4
    }

    /// Elements between positions.
    pub fn row_stride(&self) -> usize {
        self.array.cols()
    }

    /// Elements between heads.
    pub fn head_stride(&self) -> usize {
        if self.head_major() { self.array.shape[2] * self.array.shape[3] } else { self.head_dim }
    }

    /// Elements between batch elements.
    pub fn batch_stride(&self) -> usize {
        match &self.array.shape[..] {
            [_, rest @ ..] if !rest.is_empty() => rest.iter().product(),
            _ => 0,
        }
    }

    /// The view as the CPU kernels' operand over `data`, the host elements of its array (f32,
    /// or f16 for a half-precision KV cache).
    pub(crate) fn cpu_operand<T>(&self, data: &'a [T]) -> super::cpu::Operand<'a, T> {
        let (offset, row_stride, batch_stride) = (self.col, self.row_stride(), self.batch_stride());
        let (heads, head_stride, len) = (self.heads, self.head_stride(), self.len);
        super::cpu::Operand { data, offset, row_stride, head_stride, batch_stride, heads, len }
    }

    /// Checks that the view lies inside its array.
    pub(crate) fn check(&self, what: &str) -> Result<(), ComputeError> {
        let s = &self.array.shape;
        if self.head_major() {
            ensure!(
                self.col == 0 && self.heads == s[1] && self.head_dim == s[3] && self.len <= s[2],
                "{what}: {} heads of {} from column {} over {} positions are not the cache {s:?}",
                self.heads,
                self.head_dim,
                self.col,
                self.len
            );
            return Ok(());
        }
        ensure!(s.len() == 3, "{what}: attention input must be [batch, seq, width]");
        ensure!(
            self.col + self.heads * self.head_dim <= self.array.cols() && self.len <= self.array.shape[1],
            "{what}: {} heads of {} from column {} over {} positions do not fit {:?}",
            self.heads,
            self.head_dim,
            self.col,
            self.len,
            self.array.shape
        );
        Ok(())
    }
}
