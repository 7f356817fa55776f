//! Errors of the compute layer: shapes that do not fit an operation, non-finite values, and
//! failures of the CUDA backend (a failure inside mvb's own GPU code is an error, not a
//! fall-back to the CPU).

use super::cuda::CudaError;

/// Why an operation could not compute.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ComputeError {
    /// Operands whose shapes do not fit the operation (a model or caller bug, or a malformed
    /// checkpoint that slipped past loading).
    #[error("{0}")]
    Shape(String),
    /// Operands on different devices, or in a form the device cannot take.
    #[error("{0}")]
    Unsupported(String),
    /// The GPU failed.
    #[error("CUDA: {0}")]
    Cuda(#[from] CudaError),
}

/// `Err(ComputeError::Shape)` with a formatted message unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::backend::ComputeError::Shape(format!($($fmt)+)));
        }
    };
}
pub(crate) use ensure;
