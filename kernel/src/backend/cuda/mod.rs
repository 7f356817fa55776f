//! CUDA backend. The driver library is probed with `libloading` before anything else touches
//! CUDA, so the binary runs unchanged on machines without a GPU.

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
