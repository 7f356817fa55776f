//! Device memory, typed: [`GpuBuf`] (a flat allocation of f32, bf16 or f16 elements, converted
//! from and to the host's f32, rounding to nearest even as PyTorch's `.to(torch.bfloat16)`),
//! [`GpuView`] and [`GpuViewMut`] (a checked range of one, what the launch wrappers take), and
//! [`GpuInts`] (32-bit integers: indices, positions, masks, segment tables). No safe function
//! hands out a raw device address: the wrappers compute the extent a kernel reaches from its
//! sizes and strides ([`span`]) and check it against the view's length before launching.

use cudarc::driver::{CudaSlice, DevicePtr};

use super::{CudaError, Gpu, guarded};

/// Element type on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE single precision.
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half precision.
    F16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::Bf16 | DType::F16 => 2,
        }
    }

    /// The suffix of the kernel names instantiated for this type (`float`, `bf16`, `f16`).
    pub fn kernel_suffix(self) -> &'static str {
        match self {
            DType::F32 => "float",
            DType::Bf16 => "bf16",
            DType::F16 => "f16",
        }
    }

    /// Parses `f32`, `bf16` or `f16`.
    pub fn parse(s: &str) -> Option<DType> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Some(DType::F32),
            "bf16" | "bfloat16" => Some(DType::Bf16),
            "f16" | "fp16" | "float16" => Some(DType::F16),
            _ => None,
        }
    }

    /// The relative error a result in this type is held to against the f32 CPU reference.
    pub fn tolerance(self) -> f32 {
        match self {
            DType::F32 => 1e-4,
            DType::Bf16 | DType::F16 => 1e-2,
        }
    }

    /// `values` encoded as this type's little-endian bytes.
    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        match self {
            DType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            DType::Bf16 => values.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
            DType::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
        }
    }

    /// Bytes of this type decoded to f32.
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            DType::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            DType::Bf16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            DType::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        }
    }

    /// `values` rounded to this type and back (what the device sees of them).
    pub fn round(self, values: &[f32]) -> Vec<f32> {
        self.decode(&self.encode(values))
    }
}

impl From<crate::backend::Precision> for DType {
    fn from(p: crate::backend::Precision) -> DType {
        match p {
            crate::backend::Precision::F32 => DType::F32,
            crate::backend::Precision::Bf16 => DType::Bf16,
            crate::backend::Precision::F16 => DType::F16,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::Bf16 => "bf16",
            DType::F16 => "f16",
        })
    }
}

/// Allocation size for `bytes`: whole 32-bit words (so that `elementwise::poison`, a 32-bit
/// fill, reaches every element), at least one.
fn padded(bytes: usize) -> usize {
    bytes.div_ceil(4).max(1) * 4
}

/// `values` as 32-bit little-endian words, padded as [`padded`].
fn words<T: Copy>(values: &[T], to_le: impl Fn(T) -> [u8; 4]) -> Vec<u8> {
    let mut bytes: Vec<u8> = values.iter().flat_map(|&v| to_le(v)).collect();
    bytes.resize(padded(bytes.len()), 0);
    bytes
}

/// One past the largest element offset reached by `inner` contiguous elements repeated over
/// `dims` (`(count, stride)` pairs, in elements): what a kernel touches of an operand with these
/// sizes and strides. 0 when anything is empty; `None` when it overflows `usize`.
pub fn span(inner: usize, dims: &[(usize, usize)]) -> Option<usize> {
    if inner == 0 || dims.iter().any(|&(count, _)| count == 0) {
        return Some(0);
    }
    dims.iter().try_fold(inner, |acc, &(count, stride)| (count - 1).checked_mul(stride)?.checked_add(acc))
}

/// `v` as the kernels' 32-bit `int`, or why not.
pub(crate) fn int(v: usize, what: &str) -> Result<i32, CudaError> {
    i32::try_from(v).map_err(|_| CudaError::Shape(format!("{what} = {v} exceeds the kernels' 32-bit sizes")))
}

/// `len` elements of `dtype` in device memory.
#[derive(Debug)]
pub struct GpuBuf {
    raw: CudaSlice<u8>,
    len: usize,
    dtype: DType,
}

impl GpuBuf {
    /// An uninitialised buffer (callers write every element before reading).
    pub fn alloc(gpu: &Gpu, dtype: DType, len: usize) -> Result<GpuBuf, CudaError> {
        let bytes = len.checked_mul(dtype.size()).ok_or_else(|| CudaError::Shape(format!("{len} elements")))?;
        // SAFETY: the memory is uninitialised device memory, never read as Rust values; every
        // user writes before it reads, and the GPU tests fill outputs with NaN first
        // (`elementwise::poison`).
        let raw = guarded(|| Ok(unsafe { gpu.stream().alloc::<u8>(padded(bytes)) }?))?;
        Ok(GpuBuf { raw, len, dtype })
    }

    /// A buffer of zeros.
    pub fn zeros(gpu: &Gpu, dtype: DType, len: usize) -> Result<GpuBuf, CudaError> {
        let bytes = len.checked_mul(dtype.size()).ok_or_else(|| CudaError::Shape(format!("{len} elements")))?;
        let raw = guarded(|| Ok(gpu.stream().alloc_zeros::<u8>(padded(bytes))?))?;
        Ok(GpuBuf { raw, len, dtype })
    }

    /// Host values, converted to `dtype`.
    pub fn from_host(gpu: &Gpu, dtype: DType, values: &[f32]) -> Result<GpuBuf, CudaError> {
        if dtype == DType::F32 && cfg!(target_endian = "little") && !values.is_empty() {
            // Pixels and other f32 data go up as they are, without a converted copy.
            // SAFETY: any f32 is 4 initialised bytes, and on a little-endian host its in-memory
            // bytes are its little-endian encoding; the view lives only for this copy.
            let bytes = unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), values.len() * 4) };
            let raw = guarded(|| Ok(gpu.stream().clone_htod(bytes)?))?;
            return Ok(GpuBuf { raw, len: values.len(), dtype });
        }
        let mut bytes = dtype.encode(values);
        bytes.resize(padded(bytes.len()), 0);
        let raw = guarded(|| Ok(gpu.stream().clone_htod(&bytes)?))?;
        Ok(GpuBuf { raw, len: values.len(), dtype })
    }

    /// The elements, converted to f32 (waits for the stream).
    pub fn to_host(&self, gpu: &Gpu) -> Result<Vec<f32>, CudaError> {
        let bytes = guarded(|| Ok(gpu.stream().clone_dtoh(&self.raw)?))?;
        Ok(self.dtype.decode(&bytes[..self.len * self.dtype.size()]))
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// 32-bit words allocated (every element, and the padding after the last).
    pub(crate) fn words(&self) -> usize {
        self.raw.len() / 4
    }

    /// The whole buffer, to read.
    pub fn view(&self) -> GpuView<'_> {
        GpuView { buf: self, offset: 0, len: self.len }
    }

    /// The whole buffer, to write.
    pub fn view_mut(&mut self) -> GpuViewMut<'_> {
        let len = self.len;
        GpuViewMut { buf: self, offset: 0, len }
    }

    /// Elements `offset..offset + len`, to read.
    pub fn slice(&self, offset: usize, len: usize) -> Result<GpuView<'_>, CudaError> {
        self.view().slice(offset, len)
    }

    /// Elements `offset..offset + len`, to write.
    pub fn slice_mut(&mut self, offset: usize, len: usize) -> Result<GpuViewMut<'_>, CudaError> {
        self.view_mut().slice(offset, len)
    }

    /// The device address of element 0; kernels given it must stay inside `len` elements.
    pub(crate) fn ptr(&self, gpu: &Gpu) -> u64 {
        let (ptr, _sync) = self.raw.device_ptr(gpu.stream());
        ptr
    }
}

/// `offset..offset + len` checked against `have` elements.
fn sub_range(offset: usize, len: usize, have: usize) -> Result<(), CudaError> {
    match offset.checked_add(len) {
        Some(end) if end <= have => Ok(()),
        _ => Err(CudaError::Shape(format!("elements {offset}..{offset}+{len} of a view of {have}"))),
    }
}

/// Elements `offset..offset + len` of a [`GpuBuf`], to read.
#[derive(Debug, Clone, Copy)]
pub struct GpuView<'a> {
    buf: &'a GpuBuf,
    offset: usize,
    len: usize,
}

impl<'a> GpuView<'a> {
    /// Elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.buf.dtype
    }

    /// Elements `offset..offset + len` of this view.
    pub fn slice(self, offset: usize, len: usize) -> Result<GpuView<'a>, CudaError> {
        sub_range(offset, len, self.len)?;
        Ok(GpuView { buf: self.buf, offset: self.offset + offset, len })
    }

    /// Checks that this view holds at least `need` elements of `dtype` (see [`span`]).
    pub(crate) fn fits(&self, what: &str, dtype: DType, need: Option<usize>) -> Result<(), CudaError> {
        if self.dtype() != dtype {
            return Err(CudaError::Shape(format!("{what}: a {} buffer where {dtype} is needed", self.dtype())));
        }
        match need {
            Some(n) if n <= self.len => Ok(()),
            Some(n) => {
                Err(CudaError::Shape(format!("{what}: the kernel reaches {n} elements, the view holds {}", self.len)))
            }
            None => Err(CudaError::Shape(format!("{what}: the sizes overflow"))),
        }
    }

    /// The device address of the view's first element.
    pub(crate) fn ptr(&self, gpu: &Gpu) -> u64 {
        self.buf.ptr(gpu) + (self.offset * self.buf.dtype.size()) as u64
    }
}

/// Elements `offset..offset + len` of a [`GpuBuf`], to write (and read).
#[derive(Debug)]
pub struct GpuViewMut<'a> {
    buf: &'a mut GpuBuf,
    offset: usize,
    len: usize,
}

impl<'a> GpuViewMut<'a> {
    /// The same elements, to read (and to ask their length).
    pub fn as_view(&self) -> GpuView<'_> {
        GpuView { buf: &*self.buf, offset: self.offset, len: self.len }
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.buf.dtype
    }

    /// Elements `offset..offset + len` of this view.
    pub fn slice(self, offset: usize, len: usize) -> Result<GpuViewMut<'a>, CudaError> {
        sub_range(offset, len, self.len)?;
        Ok(GpuViewMut { buf: self.buf, offset: self.offset + offset, len })
    }

    /// The same elements, borrowed again (to pass to one call and keep using this view).
    pub fn reborrow(&mut self) -> GpuViewMut<'_> {
        GpuViewMut { buf: &mut *self.buf, offset: self.offset, len: self.len }
    }

    /// Checks that this view holds at least `need` elements of `dtype` (see [`span`]).
    pub(crate) fn fits(&self, what: &str, dtype: DType, need: Option<usize>) -> Result<(), CudaError> {
        self.as_view().fits(what, dtype, need)
    }

    /// The device address of the view's first element.
    pub(crate) fn ptr(&self, gpu: &Gpu) -> u64 {
        self.as_view().ptr(gpu)
    }
}

/// 32-bit signed integers in device memory (row indices, positions, key masks, segment tables),
/// immutable once uploaded; the range of the values is kept, so that a wrapper can check
/// indices against the buffer they index before launching.
#[derive(Debug)]
pub struct GpuInts {
    raw: CudaSlice<u8>,
    len: usize,
    range: Option<(i32, i32)>,
}

impl GpuInts {
    /// `values` uploaded.
    pub fn from_host(gpu: &Gpu, values: &[i32]) -> Result<GpuInts, CudaError> {
        let bytes = words(values, i32::to_le_bytes);
        let raw = guarded(|| Ok(gpu.stream().clone_htod(&bytes)?))?;
        let range = values.iter().fold(None, |r: Option<(i32, i32)>, &v| match r {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        });
        Ok(GpuInts { raw, len: values.len(), range })
    }

    /// Host indices uploaded as `int`s (each must fit 32 bits).
    pub fn from_indices(gpu: &Gpu, values: impl Iterator<Item = usize>) -> Result<GpuInts, CudaError> {
        let v: Vec<i32> = values.map(|r| int(r, "an index")).collect::<Result<_, _>>()?;
        GpuInts::from_host(gpu, &v)
    }

    /// Values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The smallest and the largest value (`None` when empty).
    pub fn range(&self) -> Option<(i32, i32)> {
        self.range
    }

    /// Checks that every value is a row of a `[rows, cols]` view of `have` elements.
    pub(crate) fn check_rows(&self, what: &str, cols: usize, have: usize) -> Result<(), CudaError> {
        match self.range {
            Some((lo, _)) if lo < 0 => Err(CudaError::Shape(format!("{what}: row {lo}"))),
            Some((_, hi)) if span(cols, &[(hi as usize + 1, cols)]).is_none_or(|n| n > have) => {
                Err(CudaError::Shape(format!("{what}: row {hi} of {cols} columns is outside {have} elements")))
            }
            _ => Ok(()),
        }
    }

    /// The device address of value 0.
    pub(crate) fn ptr(&self, gpu: &Gpu) -> u64 {
        let (ptr, _sync) = self.raw.device_ptr(gpu.stream());
        ptr
    }
}
