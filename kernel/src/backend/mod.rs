//! Compute backends. The CPU backend is the reference; the CUDA backend (later) implements the
//! same operations with hand-written kernels. For now this module only tells whether a CUDA
//! driver is present, without linking to it.

pub mod cpu;
pub mod cuda;

/// Where computation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// The host CPU (always available).
    #[default]
    Cpu,
    /// An NVIDIA GPU through the CUDA driver.
    Cuda,
}
