//! Errors of the CUDA backend: one typed value per way a GPU can be missing or fail, so that
//! callers fall back to the CPU (or report one line) instead of panicking.

/// Why the CUDA backend cannot run or a launch failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CudaError {
    /// A CUDA library cannot be loaded on this machine.
    #[error("{library} not found (tried {tried}); {hint}")]
    LibraryMissing {
        /// Which library (`CUDA driver`, `NVRTC`, `cuBLAS`).
        library: &'static str,
        /// The file names tried.
        tried: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// The driver is present but has no usable device.
    #[error("no CUDA device: {0}")]
    NoDevice(String),
    /// The device is older than the kernels need.
    #[error("CUDA device {name} has compute capability {major}.{minor}; mvb's kernels need 8.0 (Ampere) or newer")]
    Unsupported {
        /// The device name.
        name: String,
        /// Compute capability, major.
        major: i32,
        /// Compute capability, minor.
        minor: i32,
    },
    /// NVRTC rejected a kernel source.
    #[error("NVRTC could not compile {file} for {arch}: {log}")]
    Compile {
        /// The `.cu` file.
        file: String,
        /// The target (`sm_90`).
        arch: String,
        /// NVRTC's log, or the error.
        log: String,
    },
    /// A driver call failed.
    #[error("CUDA driver: {0}")]
    Driver(String),
    /// A cuBLAS call failed.
    #[error("cuBLAS: {0}")]
    Blas(String),
    /// Arguments a kernel cannot take (shapes, alignment, sizes).
    #[error("{0}")]
    Shape(String),
    /// A CUDA library panicked (a missing symbol in an old driver, say); caught and reported.
    #[error("CUDA runtime failure: {0}")]
    Panicked(String),
}

impl CudaError {
    /// Whether this says that no GPU can run here at all (no driver, no device, a library
    /// missing, a device too old), the only failures after which mvb runs on the CPU instead.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CudaError::LibraryMissing { .. } | CudaError::NoDevice(_) | CudaError::Unsupported { .. })
    }
}

impl From<cudarc::driver::DriverError> for CudaError {
    fn from(e: cudarc::driver::DriverError) -> Self {
        CudaError::Driver(e.to_string())
    }
}

impl From<cudarc::cublas::result::CublasError> for CudaError {
    fn from(e: cudarc::cublas::result::CublasError) -> Self {
        CudaError::Blas(format!("{e:?}"))
    }
}
