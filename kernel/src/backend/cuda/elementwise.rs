//! Launch wrappers of `cuda/elementwise.cu`: layer norm, bias + activation, residual adds, axpy,
//! row softmax, casts, fills, ViT patch extraction (im2col), token assembly and row gathers.
//! Pointers are device addresses ([`super::GpuBuf::ptr`]); sizes are in elements.

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::{CudaError, DType, Gpu, grid_for};
use crate::backend::cpu::Activation;

const FILE: &str = "elementwise.cu";

/// Launches `$name` of `$file` with the given configuration and argument references.
macro_rules! launch {
    ($gpu:expr, $file:expr, $name:expr, $cfg:expr, $($arg:expr),* $(,)?) => {{
        let f = $gpu.function($file, &$name)?;
        let mut builder = $gpu.stream().launch_builder(&f);
        $( builder.arg($arg); )*
        // SAFETY: every kernel of cuda/ takes exactly the arguments its wrapper passes, in order
        // and of the same C types; the wrappers check sizes before launching.
        unsafe { builder.launch($cfg) }.map(|_| ()).map_err(CudaError::from)
    }};
}
pub(crate) use launch;

fn linear_cfg(n: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (grid_for(n), 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

fn rows_cfg(rows: usize) -> LaunchConfig {
    // One warp per row, four rows per block.
    LaunchConfig { grid_dim: (rows.div_ceil(4).max(1) as u32, 1, 1), block_dim: (128, 1, 1), shared_mem_bytes: 0 }
}

fn name(kernel: &str, dtype: DType) -> String {
    format!("{kernel}_{}", dtype.kernel_suffix())
}

/// The activation code the kernels take.
pub fn act_code(act: Option<Activation>) -> i32 {
    match act {
        None => 0,
        Some(Activation::Gelu) => 1,
        Some(Activation::GeluTanh) => 2,
        Some(Activation::QuickGelu) => 3,
        Some(Activation::Silu) => 4,
    }
}

/// Every 32-bit word of `words` set to `value`.
pub fn fill_u32(gpu: &Gpu, ptr: u64, value: u32, words: usize) -> Result<(), CudaError> {
    let n = words as i64;
    launch!(gpu, FILE, "fill_u32", linear_cfg(words), &ptr, &value, &n)
}

/// `y = layer_norm(x)` over rows of `cols` (f32 `gamma` and `beta`); `y` may be `x`.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm(
    gpu: &Gpu,
    dtype: DType,
    x: u64,
    y: u64,
    gamma: u64,
    beta: u64,
    rows: usize,
    cols: usize,
    eps: f32,
) -> Result<(), CudaError> {
    let (r, c) = (rows as i32, cols as i32);
    launch!(gpu, FILE, name("layernorm", dtype), rows_cfg(rows), &x, &y, &gamma, &beta, &r, &c, &eps)
}

/// `x = act(x + bias)` in place over rows of `cols`; `bias` 0 means none.
pub fn bias_act(
    gpu: &Gpu,
    dtype: DType,
    x: u64,
    bias: u64,
    rows: usize,
    cols: usize,
    act: Option<Activation>,
) -> Result<(), CudaError> {
    let (r, c, a) = (rows as i64, cols as i32, act_code(act));
    launch!(gpu, FILE, name("bias_act", dtype), linear_cfg(rows * cols), &x, &bias, &r, &c, &a)
}

/// `x[i] += y[i % period]` for `i < n`.
pub fn add(gpu: &Gpu, dtype: DType, x: u64, y: u64, n: usize, period: usize) -> Result<(), CudaError> {
    let (n64, p) = (n as i64, period.max(1) as i64);
    launch!(gpu, FILE, name("add", dtype), linear_cfg(n), &x, &y, &n64, &p)
}

/// `y += alpha · x` for `n` elements.
pub fn axpy(gpu: &Gpu, dtype: DType, y: u64, x: u64, alpha: f32, n: usize) -> Result<(), CudaError> {
    let n64 = n as i64;
    launch!(gpu, FILE, name("axpy", dtype), linear_cfg(n), &y, &x, &alpha, &n64)
}

/// In-place softmax of `rows` rows of `cols` scores times `scale`; with `causal`, row `r` is
/// query `r % q_len` of a `[.., q_len, cols]` score tensor and sees keys `<= r % q_len + cols - q_len`.
#[allow(clippy::too_many_arguments)]
pub fn softmax(
    gpu: &Gpu,
    dtype: DType,
    x: u64,
    rows: usize,
    cols: usize,
    scale: f32,
    causal: bool,
    q_len: usize,
) -> Result<(), CudaError> {
    let (r, c, causal, q) = (rows as i64, cols as i32, i32::from(causal), q_len.max(1) as i32);
    launch!(gpu, FILE, name("softmax", dtype), rows_cfg(rows), &x, &r, &c, &scale, &causal, &q)
}

/// Converts `n` f32 values at `x` to `dtype` at `y` (a copy for f32).
pub fn cast_from_f32(gpu: &Gpu, dtype: DType, x: u64, y: u64, n: usize) -> Result<(), CudaError> {
    let n64 = n as i64;
    if dtype == DType::F32 {
        return add_copy(gpu, x, y, n);
    }
    launch!(gpu, FILE, format!("cast_float_{}", dtype.kernel_suffix()), linear_cfg(n), &x, &y, &n64)
}

/// Converts `n` values of `dtype` at `x` to f32 at `y`.
pub fn cast_to_f32(gpu: &Gpu, dtype: DType, x: u64, y: u64, n: usize) -> Result<(), CudaError> {
    let n64 = n as i64;
    if dtype == DType::F32 {
        return add_copy(gpu, x, y, n);
    }
    launch!(gpu, FILE, format!("cast_{}_float", dtype.kernel_suffix()), linear_cfg(n), &x, &y, &n64)
}

fn add_copy(gpu: &Gpu, x: u64, y: u64, n: usize) -> Result<(), CudaError> {
    // SAFETY: both ranges are `n` f32 values of live allocations (the callers' buffers).
    unsafe { cudarc::driver::result::memcpy_dtod_async(y, x, n * 4, gpu.stream().cu_stream()) }?;
    Ok(())
}

/// ViT patches: f32 pixels `[batch, 3, image, image]` to rows `[batch·g², 3·patch²]` of `dtype`.
pub fn im2col(
    gpu: &Gpu,
    dtype: DType,
    pixels: u64,
    out: u64,
    batch: usize,
    image: usize,
    patch: usize,
) -> Result<(), CudaError> {
    let g = image / patch;
    let n = batch * g * g * 3 * patch * patch;
    let (b, s, p) = (batch as i32, image as i32, patch as i32);
    launch!(gpu, FILE, name("im2col", dtype), linear_cfg(n), &pixels, &out, &b, &s, &p)
}

/// `out[b] = ([class] ++ patches[b]) + positions`, `[batch, tokens, width]`; `class` 0 means none.
#[allow(clippy::too_many_arguments)]
pub fn vit_tokens(
    gpu: &Gpu,
    dtype: DType,
    out: u64,
    patches: u64,
    class: u64,
    positions: u64,
    batch: usize,
    n_patches: usize,
    width: usize,
) -> Result<(), CudaError> {
    let tokens = n_patches + usize::from(class != 0);
    let (b, np, w) = (batch as i32, n_patches as i32, width as i32);
    launch!(
        gpu,
        FILE,
        name("vit_tokens", dtype),
        linear_cfg(batch * tokens * width),
        &out,
        &patches,
        &class,
        &positions,
        &b,
        &np,
        &w
    )
}

/// `out[i] = x[rows[i]]` for `n` rows of `cols` (`rows` are device i32).
#[allow(clippy::too_many_arguments)]
pub fn gather_rows(
    gpu: &Gpu,
    dtype: DType,
    x: u64,
    out: u64,
    rows: u64,
    n: usize,
    cols: usize,
) -> Result<(), CudaError> {
    let (n32, c) = (n as i32, cols as i32);
    launch!(gpu, FILE, name("gather_rows", dtype), linear_cfg(n * cols), &x, &out, &rows, &n32, &c)
}

/// `x[rows[i]] = src[i]` for `n` rows of `cols` (`rows` are device i32).
#[allow(clippy::too_many_arguments)]
pub fn scatter_rows(
    gpu: &Gpu,
    dtype: DType,
    x: u64,
    src: u64,
    rows: u64,
    n: usize,
    cols: usize,
) -> Result<(), CudaError> {
    let (n32, c) = (n as i32, cols as i32);
    launch!(gpu, FILE, name("scatter_rows", dtype), linear_cfg(n * cols), &x, &src, &rows, &n32, &c)
}

/// `y = rms_norm(x)` over rows of `cols` (f32 `gamma`); `y` may be `x`.
#[allow(clippy::too_many_arguments)]
pub fn rms_norm(
    gpu: &Gpu,
    dtype: DType,
    x: u64,
    y: u64,
    gamma: u64,
    rows: usize,
    cols: usize,
    eps: f32,
) -> Result<(), CudaError> {
    let (r, c) = (rows as i32, cols as i32);
    launch!(gpu, FILE, name("rmsnorm", dtype), rows_cfg(rows), &x, &y, &gamma, &r, &c, &eps)
}

/// `gate = silu(gate) · up` for `n` elements.
pub fn silu_mul(gpu: &Gpu, dtype: DType, gate: u64, up: u64, n: usize) -> Result<(), CudaError> {
    let n64 = n as i64;
    launch!(gpu, FILE, name("silu_mul", dtype), linear_cfg(n), &gate, &up, &n64)
}

/// Positions `start..start + n` of a `[batch, cap, w]` cache set to `[batch, n, w]` rows.
#[allow(clippy::too_many_arguments)]
pub fn write_positions(
    gpu: &Gpu,
    dtype: DType,
    cache: u64,
    src: u64,
    (batch, cap, width): (usize, usize, usize),
    start: usize,
    n: usize,
) -> Result<(), CudaError> {
    let (b, c, s, n32, w) = (batch as i32, cap as i32, start as i32, n as i32, width as i32);
    let cfg = linear_cfg(batch * n * width);
    launch!(gpu, FILE, name("write_positions", dtype), cfg, &cache, &src, &b, &c, &s, &n32, &w)
}

/// Rotary embedding in place over `rows` rows of `cols` (`positions` device i32 per row,
/// `inv_freq` device f32 of `half` values); `cuda/rope.cu`.
#[allow(clippy::too_many_arguments)]
pub fn rope(
    gpu: &Gpu,
    dtype: DType,
    x: u64,
    positions: u64,
    inv_freq: u64,
    rows: usize,
    cols: usize,
    half: usize,
) -> Result<(), CudaError> {
    let (r, c, h) = (rows as i64, cols as i32, half as i32);
    let cfg = linear_cfg(rows * cols / 2);
    launch!(gpu, "rope.cu", name("rope", dtype), cfg, &x, &positions, &inv_freq, &r, &c, &h)
}
