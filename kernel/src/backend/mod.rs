//! Compute backends. The CPU backend is the reference; the CUDA backend (`cuda/`) runs the same
//! operations with hand-written kernels and cuBLAS, and is checked against the CPU within stated
//! tolerances (f32 1e-4, bf16 1e-2 relative).
//!
//! Choosing a device: [`DeviceRequest`] is what a user asks for (`cpu`, `cuda`, `auto`);
//! [`DeviceRequest::resolve`] turns it into the [`Device`] that runs. Where CUDA is asked for but
//! cannot start (no driver, no NVRTC or cuBLAS, no device, a device older than sm_80), the run
//! goes on on the CPU after one line on stderr saying why; nothing panics.

pub mod cpu;
pub mod cuda;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where computation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// The host CPU (always available).
    #[default]
    Cpu,
    /// An NVIDIA GPU through the CUDA driver.
    Cuda,
}

/// The device a user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceRequest {
    /// The CPU (the default).
    #[default]
    Cpu,
    /// The GPU; the CPU (with a notice) where none can start.
    Cuda,
    /// The GPU where one can start, else the CPU (with a notice).
    Auto,
}

impl FromStr for DeviceRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceRequest::Cpu),
            "cuda" | "gpu" => Ok(DeviceRequest::Cuda),
            "auto" => Ok(DeviceRequest::Auto),
            other => Err(format!("unknown device `{other}` (expected cpu, cuda or auto)")),
        }
    }
}

impl fmt::Display for DeviceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceRequest::Cpu => "cpu",
            DeviceRequest::Cuda => "cuda",
            DeviceRequest::Auto => "auto",
        })
    }
}

impl DeviceRequest {
    /// The device that runs: [`Device::Cuda`] when asked for and the GPU starts, else
    /// [`Device::Cpu`], with one line on stderr when a GPU was asked for and cannot start.
    pub fn resolve(self) -> Device {
        match self {
            DeviceRequest::Cpu => Device::Cpu,
            DeviceRequest::Cuda | DeviceRequest::Auto => match cuda::Gpu::get() {
                Ok(_) => Device::Cuda,
                Err(e) => {
                    eprintln!("mvb: CUDA unavailable ({e}); running on the CPU");
                    Device::Cpu
                }
            },
        }
    }
}
