//! Device buffers: a flat allocation of f32, bf16 or f16 elements, converted from and to the host's
//! f32 (round to nearest even, as PyTorch's `.to(torch.bfloat16)`).

use cudarc::driver::{CudaSlice, DevicePtr};

use super::{CudaError, Gpu};

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

/// Allocation size for `bytes`: whole 32-bit words (so that [`GpuBuf::poison`] reaches every
/// element), at least one.
fn padded(bytes: usize) -> usize {
    bytes.div_ceil(4).max(1) * 4
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
        // SAFETY: the memory is uninitialised device memory; every user writes before it reads,
        // and tests poison it with NaN first.
        let raw = unsafe { gpu.stream().alloc::<u8>(padded(len * dtype.size())) }?;
        Ok(GpuBuf { raw, len, dtype })
    }

    /// A buffer of zeros.
    pub fn zeros(gpu: &Gpu, dtype: DType, len: usize) -> Result<GpuBuf, CudaError> {
        let raw = gpu.stream().alloc_zeros::<u8>(padded(len * dtype.size()))?;
        Ok(GpuBuf { raw, len, dtype })
    }

    /// Host values, converted to `dtype`.
    pub fn from_host(gpu: &Gpu, dtype: DType, values: &[f32]) -> Result<GpuBuf, CudaError> {
        if dtype == DType::F32 && cfg!(target_endian = "little") && !values.is_empty() {
            // Pixels and other f32 data go up as they are, without a converted copy.
            // SAFETY: any f32 is 4 initialised bytes, and on a little-endian host its in-memory
            // bytes are its little-endian encoding; the view lives only for this copy.
            let bytes = unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), values.len() * 4) };
            let raw = gpu.stream().clone_htod(bytes)?;
            return Ok(GpuBuf { raw, len: values.len(), dtype });
        }
        let mut bytes = dtype.encode(values);
        bytes.resize(padded(bytes.len()), 0);
        let raw = gpu.stream().clone_htod(&bytes)?;
        Ok(GpuBuf { raw, len: values.len(), dtype })
    }

    /// 32-bit integers (row indices, masks, segment tables).
    pub fn from_i32(gpu: &Gpu, values: &[i32]) -> Result<GpuBuf, CudaError> {
        let mut bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.resize(padded(bytes.len()), 0);
        let raw = gpu.stream().clone_htod(&bytes)?;
        Ok(GpuBuf { raw, len: values.len(), dtype: DType::F32 })
    }

    /// The elements, converted to f32 (waits for the stream).
    pub fn to_host(&self, gpu: &Gpu) -> Result<Vec<f32>, CudaError> {
        let bytes = gpu.stream().clone_dtoh(&self.raw)?;
        Ok(self.dtype.decode(&bytes[..self.len * self.dtype.size()]))
    }

    /// Sets every element to NaN (all bits set), so that an element a kernel forgets to write
    /// shows up in a comparison.
    pub fn poison(&mut self, gpu: &Gpu) -> Result<(), CudaError> {
        let words = self.raw.len() / 4;
        super::elementwise::fill_u32(gpu, self.ptr(gpu), u32::MAX, words)
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

    /// The device address of element 0.
    pub fn ptr(&self, gpu: &Gpu) -> u64 {
        let (ptr, _sync) = self.raw.device_ptr(gpu.stream());
        ptr
    }

    /// The device address of element `offset`.
    pub fn ptr_at(&self, gpu: &Gpu, offset: usize) -> u64 {
        self.ptr(gpu) + (offset * self.dtype.size()) as u64
    }
}
