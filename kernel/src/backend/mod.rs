//! The device-generic compute layer (after candle-core's `Device`/`Tensor` split): a [`Device`]
//! (the CPU, or an NVIDIA GPU through `cuda/`) with a [`Precision`], activations in an
//! [`Array`] that lives on it, parameters ([`Matrix`], [`Vector`], [`Linear`]) uploaded to it
//! once, and one set of operations ([`ops`]) that every model calls. Models are written once
//! against this layer and run on either device; the CPU backend is the reference and CUDA is
//! checked against it within stated tolerances (f32 1e-4, bf16 1e-2 relative).
//!
//! Choosing a device: [`DeviceRequest`] is what a user asks for (`cpu`, `cuda`, `auto`);
//! [`DeviceRequest::resolve`] turns it into the [`Device`] that runs. Where CUDA is asked for but
//! cannot start (no driver, no NVRTC or cuBLAS, no device, a device older than sm_80), the run
//! goes on on the CPU after one notice; nothing panics. A failure inside mvb's own GPU code is
//! an error, never a silent fall-back.

mod array;
mod biased;
pub mod cpu;
pub mod cuda;
mod error;
mod grad;
pub mod ops;
mod params;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

pub use array::{Array, Heads};
pub use cpu::AttentionMask as Mask;
pub use error::ComputeError;
pub use params::{Linear, LoraDelta, Matrix, Vector};

/// The arithmetic precision of a model's computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 operands and accumulation: the reference, matching transformers in f32.
    #[default]
    F32,
    /// bf16 operands (rounded to nearest even), f32 accumulation. On the GPU, bf16 storage.
    Bf16,
    /// f16 storage and operands, f32 accumulation (GPU only).
    F16,
}

impl Precision {
    /// The name used on the command line, in configs and reports (`f32`, `bf16`, `f16`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// The relative error a result in this precision is held to against the f32 reference.
    pub fn tolerance(self) -> f32 {
        match self {
            Precision::F32 => 1e-4,
            Precision::Bf16 | Precision::F16 => 1e-2,
        }
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "f16" | "fp16" | "float16" => Ok(Precision::F16),
            other => Err(format!("unknown precision `{other}` (expected f32, bf16 or f16)")),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where computation runs, and in what precision.
#[derive(Debug, Clone)]
pub struct Device {
    kind: Kind,
    precision: Precision,
}

#[derive(Debug, Clone)]
enum Kind {
    Cpu,
    Cuda(Arc<cuda::Gpu>),
}

impl Device {
    /// The CPU in f32 (the reference).
    pub fn cpu() -> Device {
        Device { kind: Kind::Cpu, precision: Precision::F32 }
    }

    /// The CPU in `precision`; f16 is refused (the CPU has no f16 path).
    pub fn cpu_with(precision: Precision) -> Result<Device, ComputeError> {
        if precision == Precision::F16 {
            return Err(ComputeError::Unsupported("f16 computation is GPU-only; use f32 or bf16 on the CPU".into()));
        }
        Ok(Device { kind: Kind::Cpu, precision })
    }

    /// GPU 0 in `precision`, or why it cannot start.
    pub fn cuda(precision: Precision) -> Result<Device, cuda::CudaError> {
        Ok(Device { kind: Kind::Cuda(cuda::Gpu::get()?), precision })
    }

    /// Whether this is a GPU.
    pub fn is_cuda(&self) -> bool {
        matches!(self.kind, Kind::Cuda(_))
    }

    /// The GPU, when this is one.
    pub fn gpu(&self) -> Option<&Arc<cuda::Gpu>> {
        match &self.kind {
            Kind::Cuda(g) => Some(g),
            Kind::Cpu => None,
        }
    }

    /// The precision of matrix products (and of GPU storage).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// `cpu` (f32), `cpu-bf16`, `cuda-bf16`, ...: results depend on it (feature caches are
    /// keyed by it).
    pub fn tag(&self) -> String {
        match (&self.kind, self.precision) {
            (Kind::Cpu, Precision::F32) => "cpu".to_owned(),
            (Kind::Cpu, p) => format!("cpu-{p}"),
            (Kind::Cuda(_), p) => format!("cuda-{p}"),
        }
    }

    /// Runs `f`, a sequence of many short operations (a decoder step), where starting each is
    /// cheapest: on the CPU, on a worker of the rayon pool, so that every parallel operation
    /// inside is started from within the pool instead of waking the blocked caller thread at
    /// its end (a futex round trip per operation, hundreds per decoded token); on the GPU, on
    /// the calling thread (its CUDA context).
    pub fn run_steps<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.kind {
            Kind::Cpu if rayon::current_thread_index().is_none() => {
                let done = AtomicBool::new(false);
                let step = || {
                    // Set on the way out, also by unwinding, so the other worker stops.
                    let _done = Finished(&done);
                    f()
                };
                rayon::join(step, || keep_warm(&done)).0
            }
            _ => f(),
        }
    }

    /// Waits for every queued operation (a no-op on the CPU); benchmarks call it before
    /// stopping the clock.
    pub fn synchronize(&self) -> Result<(), ComputeError> {
        match &self.kind {
            Kind::Cpu => Ok(()),
            Kind::Cuda(g) => Ok(g.synchronize()?),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Cpu => write!(f, "the CPU in {}", self.precision),
            Kind::Cuda(g) => write!(f, "{} in {}", g.name(), self.precision),
        }
    }
}

/// Sets its flag when dropped.
struct Finished<'a>(&'a AtomicBool);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Keeps a rayon worker busy until `done`: it runs the step's parallel tasks as soon as they
/// are queued (`rayon::yield_now` takes one pending job of the pool) instead of sleeping between
/// them and being woken by a futex call for each of a step's hundreds of parallel operations.
///
/// It runs as the second half of a `rayon::join` whose first half is the step, so it is the
/// oldest job in that worker's deque: a thief takes it before any of the step's own tasks, and
/// the step's worker never runs it itself while it waits for a stolen task (which would spin
/// forever). With one thread in the pool the step's worker runs it after the step, when `done`
/// is already set.
fn keep_warm(done: &AtomicBool) {
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::hint::spin_loop();
        }
    }
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
    /// The device that runs, in `precision` (unset: f32 on the CPU, bf16 on the GPU). Where no
    /// GPU can start (no driver, no device, a library missing, a device too old) the CPU runs,
    /// after one notice; any other GPU failure is an error. On the CPU an f16 request computes
    /// in f32, with one notice.
    pub fn resolve(self, precision: Option<Precision>) -> Result<Device, ComputeError> {
        if self != DeviceRequest::Cpu {
            match Device::cuda(precision.unwrap_or(Precision::Bf16)) {
                Ok(device) => return Ok(device),
                Err(e) if e.is_unavailable() => tracing::warn!("CUDA unavailable ({e}); running on the CPU"),
                Err(e) => return Err(e.into()),
            }
        }
        let precision = precision.unwrap_or_default();
        Ok(Device::cpu_with(precision).unwrap_or_else(|_| {
            tracing::warn!("f16 is GPU-only; the CPU computes in f32");
            Device::cpu()
        }))
    }
}
