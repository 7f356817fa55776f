//! CUDA backend: hand-written kernels (`cuda/*.cu`, compiled at run time by NVRTC) launched
//! through `cudarc`, dense GEMMs through cuBLAS. Every CUDA library is probed with `libloading`
//! before cudarc touches it (cudarc's dynamic loading panics on a missing library), so the binary
//! runs unchanged on machines without a GPU and [`Gpu::get`] returns a typed [`CudaError`].
//!
//! Layers: the compute layer (`backend::ops`, shapes checked) calls `ops` (the operations on
//! the GPU: typed views of arrays and parameters, panics caught as errors), which calls the
//! launch wrappers [`gemm`] (cuBLAS), [`attention`] (FlashAttention-2 forward and the unfused
//! baseline), [`lora`] (SGMV shrink/expand and the unfused baseline) and [`elementwise`]; the
//! training operations (`backend/grad.rs`) call `backward`, which calls [`gemm`] and [`grad`]
//! (the backward kernels and the unfused attention backward). The
//! wrappers are safe: device memory is a typed [`GpuBuf`] or a [`GpuView`]/[`GpuViewMut`] of
//! one (or [`GpuInts`]), never a raw address, and each wrapper checks that what its kernel reaches
//! lies inside the views before launching. Also: [`compile`] (NVRTC), [`buffer`] (the types),
//! [`reference`] (CPU references of the kernels), [`bench`] (kernel timings).

pub mod attention;
pub(crate) mod backward;
pub mod bench;
pub(crate) mod biased;
pub mod buffer;
pub mod compile;
pub mod elementwise;
mod error;
pub mod gemm;
pub mod grad;
pub mod lora;
pub(crate) mod ops;
pub mod reference;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};

pub use buffer::{DType, GpuBuf, GpuInts, GpuView, GpuViewMut, span};
pub use error::CudaError;

/// The driver library names tried, in order.
const DRIVER_LIBRARIES: &[&str] = &["libcuda.so.1", "libcuda.so", "nvcuda.dll"];

/// Whether a CUDA driver library can be loaded on this machine. Says nothing about whether a
/// device is present; the backend checks that when it starts.
pub fn driver_available() -> Option<&'static str> {
    DRIVER_LIBRARIES.iter().copied().find(|name| {
        // SAFETY: loading the CUDA driver runs its initialisers, which are designed to be
        // loaded into any process; the library is dropped (unloaded) again at once.
        unsafe { libloading::Library::new(*name) }.is_ok()
    })
}

/// Loads the first loadable name of `candidates` (and drops it again), or says what was tried.
pub(crate) fn probe_library(library: &'static str, candidates: &[String], hint: &'static str) -> Result<(), CudaError> {
    // SAFETY: as in `driver_available`: CUDA libraries may be loaded into any process.
    if candidates.iter().any(|name| unsafe { libloading::Library::new(name) }.is_ok()) {
        return Ok(());
    }
    let mut tried: Vec<&str> = Vec::new();
    for name in candidates {
        if !tried.contains(&name.as_str()) {
            tried.push(name);
        }
    }
    Err(CudaError::LibraryMissing { library, tried: tried.join(", "), hint })
}

/// Checks every library the backend loads: the driver, NVRTC and cuBLAS.
pub fn probe() -> Result<(), CudaError> {
    if driver_available().is_none() {
        return Err(CudaError::LibraryMissing {
            library: "CUDA driver",
            tried: DRIVER_LIBRARIES.join(", "),
            hint: "no NVIDIA driver is installed",
        });
    }
    compile::nvrtc_available()?;
    let hint = "install the CUDA toolkit or `pip install nvidia-cublas-cu12` and put its lib folder on LD_LIBRARY_PATH";
    probe_library("cuBLAS", &cudarc::get_lib_name_candidates("cublas"), hint)?;
    probe_library("cuBLASLt", &cudarc::get_lib_name_candidates("cublasLt"), hint)
}

/// Runs `f`, turning a panic inside a CUDA library binding (a symbol missing from an old
/// driver, say) into an error.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, CudaError>) -> Result<T, CudaError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a CUDA binding panicked".to_owned());
        Err(CudaError::Panicked(message))
    })
}

/// One GPU: its context and stream, a cuBLAS handle, and the kernels compiled for it.
#[derive(Debug)]
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: cudarc::cublas::CudaBlas,
    name: String,
    capability: (i32, i32),
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
    attention: Mutex<AttentionProfile>,
}

thread_local! {
    static UNFUSED_ATTENTION: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The time attention took inside the models, when asked (`mvb bench decoder`).
#[derive(Debug, Default)]
struct AttentionProfile {
    /// Start and end events around each attention call since [`Gpu::time_attention`].
    events: Option<Vec<(cudarc::driver::CudaEvent, cudarc::driver::CudaEvent)>>,
}

impl Gpu {
    /// The process-wide GPU 0, started on first use: probes the libraries, creates the context
    /// and the cuBLAS handle. The outcome (or the error) is kept for the process.
    pub fn get() -> Result<Arc<Gpu>, CudaError> {
        static GPU: OnceLock<Result<Arc<Gpu>, CudaError>> = OnceLock::new();
        GPU.get_or_init(|| guarded(|| Gpu::start(0).map(Arc::new))).clone()
    }

    fn start(ordinal: usize) -> Result<Gpu, CudaError> {
        probe()?;
        let count = CudaContext::device_count().map_err(|e| CudaError::NoDevice(e.to_string()))?;
        if count <= ordinal as i32 {
            return Err(CudaError::NoDevice(format!("the driver reports {count} devices")));
        }
        let ctx = CudaContext::new(ordinal)?;
        let name = ctx.name()?;
        let capability = ctx.compute_capability()?;
        if capability.0 < 8 {
            return Err(CudaError::Unsupported { name, major: capability.0, minor: capability.1 });
        }
        // One stream for everything: cudarc's cross-stream event tracking is not needed.
        // SAFETY: no buffer of this context is ever used on another stream.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let blas = cudarc::cublas::CudaBlas::new(stream.clone())?;
        Ok(Gpu {
            ctx,
            stream,
            blas,
            name,
            capability,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            attention: Mutex::new(AttentionProfile::default()),
        })
    }

    /// The device's name (`NVIDIA H100 80GB HBM3`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Compute capability `(major, minor)`.
    pub fn capability(&self) -> (i32, i32) {
        self.capability
    }

    /// The stream every operation is queued on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The context.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    pub(crate) fn blas(&self) -> &cudarc::cublas::CudaBlas {
        &self.blas
    }

    /// Waits for every queued operation.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        guarded(|| Ok(self.stream.synchronize()?))
    }

    /// Runs the models' attention on the calling thread through the unfused cuBLAS baseline
    /// (`true`) or the fused kernel (the default). Per thread, so that a benchmark or a test
    /// switching it never changes what another thread computes.
    pub fn set_unfused_attention(&self, unfused: bool) {
        UNFUSED_ATTENTION.set(unfused);
    }

    pub(crate) fn unfused_attention(&self) -> bool {
        UNFUSED_ATTENTION.get()
    }

    /// Starts (or, with `false`, stops) recording the GPU time of every attention call.
    pub fn time_attention(&self, on: bool) {
        self.attention.lock().unwrap_or_else(|e| e.into_inner()).events = on.then(Vec::new);
    }

    /// Runs `f` (one attention call), between two recorded events when timing is on.
    pub(crate) fn timed_attention<T>(&self, f: impl FnOnce() -> Result<T, CudaError>) -> Result<T, CudaError> {
        if self.attention.lock().unwrap_or_else(|e| e.into_inner()).events.is_none() {
            return f();
        }
        let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let (start, end) = (self.ctx.new_event(flags)?, self.ctx.new_event(flags)?);
        start.record(&self.stream)?;
        let out = f()?;
        end.record(&self.stream)?;
        if let Some(events) = &mut self.attention.lock().unwrap_or_else(|e| e.into_inner()).events {
            events.push((start, end));
        }
        Ok(out)
    }

    /// Milliseconds of GPU time the attention calls took since timing started (waits for
    /// them), and clears the record.
    pub fn attention_ms(&self) -> Result<f64, CudaError> {
        let events = self.attention.lock().unwrap_or_else(|e| e.into_inner()).events.as_mut().map(std::mem::take);
        self.synchronize()?;
        let mut total = 0.0;
        for (start, end) in events.unwrap_or_default() {
            total += f64::from(start.elapsed_ms(&end)?);
        }
        Ok(total)
    }

    /// The kernel `name` of source `file` (compiled and loaded on first use).
    pub fn function(&self, file: &'static str, name: &str) -> Result<CudaFunction, CudaError> {
        let key = format!("{file}:{name}");
        if let Some(f) = self.functions.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(f.clone());
        }
        let module = self.module(file)?;
        let f = module.load_function(name)?;
        self.functions.lock().unwrap_or_else(|e| e.into_inner()).insert(key, f.clone());
        Ok(f)
    }

    fn module(&self, file: &'static str) -> Result<Arc<CudaModule>, CudaError> {
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = modules.get(file) {
            return Ok(m.clone());
        }
        let source = compile::SOURCES
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, s)| *s)
            .ok_or_else(|| CudaError::Shape(format!("no kernel source {file}")))?;
        let (major, minor) = self.capability;
        let compiled = compile::compile_for_device(file, source, major, minor)?;
        let image = if compiled.is_ptx {
            cudarc::nvrtc::Ptx::from_src(String::from_utf8_lossy(&compiled.image).trim_end_matches('\0').to_owned())
        } else {
            cudarc::nvrtc::Ptx::from_binary(compiled.image)
        };
        let module = self.ctx.load_module(image)?;
        modules.insert(file, module.clone());
        Ok(module)
    }
}

/// Grid size for a grid-stride loop over `n` elements with 256 threads per block.
pub(crate) fn grid_for(n: usize) -> u32 {
    n.div_ceil(256).clamp(1, 65_535 * 8) as u32
}
