//! Launch wrappers of `cuda/elementwise.cu` and `cuda/rope.cu`: layer and RMS norm, bias +
//! activation, residual adds, axpy, row softmax, casts, fills, ViT patch extraction (im2col),
//! token assembly, row gathers and scatters, SwiGLU, KV-cache writes and rotary embeddings.
//! Operands are typed views ([`GpuView`], [`GpuViewMut`], [`GpuInts`]); each wrapper checks
//! that the elements its kernel reaches (sizes in elements) lie inside them, and that their
//! types agree, before launching. The element type is the first operand's.

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::buffer::{GpuInts, GpuView, GpuViewMut, int, span};
use super::{CudaError, DType, Gpu, GpuBuf, grid_for};
use crate::backend::cpu::Activation;

const FILE: &str = "elementwise.cu";

/// Launches `$name` of `$file` with the given configuration and argument references.
macro_rules! launch {
    ($gpu:expr, $file:expr, $name:expr, $cfg:expr, $($arg:expr),* $(,)?) => {{
        let f = $gpu.function($file, &$name)?;
        let mut builder = $gpu.stream().launch_builder(&f);
        $( builder.arg($arg); )*
        // SAFETY: every kernel of cuda/ takes exactly the arguments its wrapper passes, in order
        // and of the same C types (checked against the `.cu` signatures), and every wrapper
        // checks, before this launch, that the elements the kernel reaches lie inside the views
        // the addresses come from.
        unsafe { builder.launch($cfg) }.map(|_| ()).map_err(CudaError::from)
    }};
}
pub(crate) use launch;

pub(crate) fn linear_cfg(n: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (grid_for(n), 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

pub(crate) fn rows_cfg(rows: usize) -> LaunchConfig {
    // One warp per row, four rows per block.
    LaunchConfig { grid_dim: (rows.div_ceil(4).max(1) as u32, 1, 1), block_dim: (128, 1, 1), shared_mem_bytes: 0 }
}

pub(crate) fn name(kernel: &str, dtype: DType) -> String {
    format!("{kernel}_{}", dtype.kernel_suffix())
}

/// The product of `dims`, `None` on overflow.
fn product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// `rows · cols`, `None` on overflow.
pub(crate) fn area(rows: usize, cols: usize) -> Option<usize> {
    product(&[rows, cols])
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

/// Every 32-bit word of `buf`'s allocation (its elements and the padding after them) set to
/// `value`.
pub fn fill_u32(gpu: &Gpu, buf: &mut GpuBuf, value: u32) -> Result<(), CudaError> {
    let words = buf.words();
    let (ptr, n) = (buf.ptr(gpu), words as i64);
    launch!(gpu, FILE, "fill_u32", linear_cfg(words), &ptr, &value, &n)
}

/// Sets every element of `buf` to NaN (all bits set), so that an element a kernel forgets to
/// write shows up in a comparison.
pub fn poison(gpu: &Gpu, buf: &mut GpuBuf) -> Result<(), CudaError> {
    fill_u32(gpu, buf, u32::MAX)
}

/// `y = layer_norm(x)` over `rows` rows of `cols` (f32 `gamma` and `beta` of `cols`).
#[allow(clippy::too_many_arguments)]
pub fn layer_norm(
    gpu: &Gpu,
    x: GpuView<'_>,
    y: GpuViewMut<'_>,
    gamma: GpuView<'_>,
    beta: GpuView<'_>,
    rows: usize,
    cols: usize,
    eps: f32,
) -> Result<(), CudaError> {
    let dt = x.dtype();
    x.fits("layer_norm x", dt, area(rows, cols))?;
    y.fits("layer_norm y", dt, area(rows, cols))?;
    gamma.fits("layer_norm gamma", DType::F32, Some(cols))?;
    beta.fits("layer_norm beta", DType::F32, Some(cols))?;
    let (r, c) = (int(rows, "rows")?, int(cols, "cols")?);
    let (xp, yp, gp, bp) = (x.ptr(gpu), y.ptr(gpu), gamma.ptr(gpu), beta.ptr(gpu));
    launch!(gpu, FILE, name("layernorm", dt), rows_cfg(rows), &xp, &yp, &gp, &bp, &r, &c, &eps)
}

/// `x = act(x + bias)` in place over `rows` rows of `cols` (`bias` of `cols`, or none).
pub fn bias_act(
    gpu: &Gpu,
    x: GpuViewMut<'_>,
    bias: Option<GpuView<'_>>,
    rows: usize,
    cols: usize,
    act: Option<Activation>,
) -> Result<(), CudaError> {
    let dt = x.dtype();
    x.fits("bias_act x", dt, area(rows, cols))?;
    if let Some(b) = &bias {
        b.fits("bias_act bias", dt, Some(cols))?;
    }
    let (r, c, a) = (rows as i64, int(cols, "cols")?, act_code(act));
    let (xp, bp) = (x.ptr(gpu), bias.map_or(0, |b| b.ptr(gpu)));
    launch!(gpu, FILE, name("bias_act", dt), linear_cfg(rows * cols), &xp, &bp, &r, &c, &a)
}

/// `x[i] += y[i % period]` for `i < n` (`period` 0 is taken as 1).
pub fn add(gpu: &Gpu, x: GpuViewMut<'_>, y: GpuView<'_>, n: usize, period: usize) -> Result<(), CudaError> {
    let (dt, period) = (x.dtype(), period.max(1));
    x.fits("add x", dt, Some(n))?;
    y.fits("add y", dt, Some(n.min(period)))?;
    let (n64, p) = (n as i64, period as i64);
    let (xp, yp) = (x.ptr(gpu), y.ptr(gpu));
    launch!(gpu, FILE, name("add", dt), linear_cfg(n), &xp, &yp, &n64, &p)
}

/// `y += alpha · x` for `n` elements.
pub fn axpy(gpu: &Gpu, y: GpuViewMut<'_>, x: GpuView<'_>, alpha: f32, n: usize) -> Result<(), CudaError> {
    let dt = y.dtype();
    y.fits("axpy y", dt, Some(n))?;
    x.fits("axpy x", dt, Some(n))?;
    let (n64, yp, xp) = (n as i64, y.ptr(gpu), x.ptr(gpu));
    launch!(gpu, FILE, name("axpy", dt), linear_cfg(n), &yp, &xp, &alpha, &n64)
}

/// In-place softmax of `rows` rows of `cols` scores times `scale`; with `causal`, row `r` is
/// query `r % q_len` of a `[.., q_len, cols]` score tensor and sees keys `<= r % q_len + cols - q_len`.
#[allow(clippy::too_many_arguments)]
pub fn softmax(
    gpu: &Gpu,
    x: GpuViewMut<'_>,
    rows: usize,
    cols: usize,
    scale: f32,
    causal: bool,
    q_len: usize,
) -> Result<(), CudaError> {
    let dt = x.dtype();
    x.fits("softmax", dt, area(rows, cols))?;
    let (r, c, causal, q) = (rows as i64, int(cols, "cols")?, i32::from(causal), int(q_len.max(1), "q_len")?);
    let xp = x.ptr(gpu);
    launch!(gpu, FILE, name("softmax", dt), rows_cfg(rows), &xp, &r, &c, &scale, &causal, &q)
}

/// Converts `n` f32 values of `x` to the type of `y` (a copy for f32).
pub fn cast_from_f32(gpu: &Gpu, x: GpuView<'_>, y: GpuViewMut<'_>, n: usize) -> Result<(), CudaError> {
    let dt = y.dtype();
    x.fits("cast x", DType::F32, Some(n))?;
    y.fits("cast y", dt, Some(n))?;
    let (n64, xp, yp) = (n as i64, x.ptr(gpu), y.ptr(gpu));
    if dt == DType::F32 {
        return copy_f32(gpu, xp, yp, n);
    }
    launch!(gpu, FILE, format!("cast_float_{}", dt.kernel_suffix()), linear_cfg(n), &xp, &yp, &n64)
}

/// Converts `n` values of `x` to f32 in `y`.
pub fn cast_to_f32(gpu: &Gpu, x: GpuView<'_>, y: GpuViewMut<'_>, n: usize) -> Result<(), CudaError> {
    let dt = x.dtype();
    x.fits("cast x", dt, Some(n))?;
    y.fits("cast y", DType::F32, Some(n))?;
    let (n64, xp, yp) = (n as i64, x.ptr(gpu), y.ptr(gpu));
    if dt == DType::F32 {
        return copy_f32(gpu, xp, yp, n);
    }
    launch!(gpu, FILE, format!("cast_{}_float", dt.kernel_suffix()), linear_cfg(n), &xp, &yp, &n64)
}

/// Copies `n` f32 values from device address `x` to `y` (both checked by the callers).
fn copy_f32(gpu: &Gpu, x: u64, y: u64, n: usize) -> Result<(), CudaError> {
    if n == 0 {
        return Ok(());
    }
    // SAFETY: the callers checked that both ranges are `n` f32 values of live views.
    unsafe { cudarc::driver::result::memcpy_dtod_async(y, x, n * 4, gpu.stream().cu_stream()) }?;
    Ok(())
}

/// ViT patches: f32 pixels `[batch, 3, image, image]` to rows `[batch·g², 3·patch²]` of the
/// output's type (`g = image / patch`).
pub fn im2col(
    gpu: &Gpu,
    pixels: GpuView<'_>,
    out: GpuViewMut<'_>,
    batch: usize,
    image: usize,
    patch: usize,
) -> Result<(), CudaError> {
    if patch == 0 {
        return Err(CudaError::Shape("im2col: a patch of 0 pixels".into()));
    }
    let dt = out.dtype();
    let g = image / patch;
    let n = product(&[batch, g, g, 3, patch, patch]);
    pixels.fits("im2col pixels", DType::F32, product(&[batch, 3, image, image]))?;
    out.fits("im2col out", dt, n)?;
    let (b, s, p) = (int(batch, "batch")?, int(image, "image")?, int(patch, "patch")?);
    let (pp, op) = (pixels.ptr(gpu), out.ptr(gpu));
    launch!(gpu, FILE, name("im2col", dt), linear_cfg(n.unwrap_or(0)), &pp, &op, &b, &s, &p)
}

/// `out[b] = ([class] ++ patches[b]) + positions`, `[batch, tokens, width]` from patches
/// `[batch, n_patches, width]`, an optional class token of `width` and positions
/// `[tokens, width]`.
#[allow(clippy::too_many_arguments)]
pub fn vit_tokens(
    gpu: &Gpu,
    out: GpuViewMut<'_>,
    patches: GpuView<'_>,
    class: Option<GpuView<'_>>,
    positions: GpuView<'_>,
    batch: usize,
    n_patches: usize,
    width: usize,
) -> Result<(), CudaError> {
    let dt = out.dtype();
    let tokens = n_patches + usize::from(class.is_some());
    out.fits("vit_tokens out", dt, span(width, &[(tokens, width), (batch, tokens * width)]))?;
    patches.fits("vit_tokens patches", dt, span(width, &[(n_patches, width), (batch, n_patches * width)]))?;
    if let Some(c) = &class {
        c.fits("vit_tokens class", dt, Some(width))?;
    }
    positions.fits("vit_tokens positions", dt, area(tokens, width))?;
    let (b, np, w) = (int(batch, "batch")?, int(n_patches, "patches")?, int(width, "width")?);
    let (op, pp, cp, pos) = (out.ptr(gpu), patches.ptr(gpu), class.map_or(0, |c| c.ptr(gpu)), positions.ptr(gpu));
    let cfg = linear_cfg(batch * tokens * width);
    launch!(gpu, FILE, name("vit_tokens", dt), cfg, &op, &pp, &cp, &pos, &b, &np, &w)
}

/// `out[i] = x[rows[i]]` for every index of `rows`, rows of `cols`.
pub fn gather_rows(
    gpu: &Gpu,
    x: GpuView<'_>,
    out: GpuViewMut<'_>,
    rows: &GpuInts,
    cols: usize,
) -> Result<(), CudaError> {
    let (dt, n) = (x.dtype(), rows.len());
    rows.check_rows("gather_rows", cols, x.len())?;
    x.fits("gather_rows x", dt, Some(0))?;
    out.fits("gather_rows out", dt, area(n, cols))?;
    let (n32, c) = (int(n, "rows")?, int(cols, "cols")?);
    let (xp, op, rp) = (x.ptr(gpu), out.ptr(gpu), rows.ptr(gpu));
    launch!(gpu, FILE, name("gather_rows", dt), linear_cfg(n * cols), &xp, &op, &rp, &n32, &c)
}

/// `x[rows[i]] = src[i]` for every index of `rows`, rows of `cols`.
pub fn scatter_rows(
    gpu: &Gpu,
    x: GpuViewMut<'_>,
    src: GpuView<'_>,
    rows: &GpuInts,
    cols: usize,
) -> Result<(), CudaError> {
    let (dt, n) = (x.dtype(), rows.len());
    rows.check_rows("scatter_rows", cols, x.as_view().len())?;
    src.fits("scatter_rows src", dt, area(n, cols))?;
    let (n32, c) = (int(n, "rows")?, int(cols, "cols")?);
    let (xp, sp, rp) = (x.ptr(gpu), src.ptr(gpu), rows.ptr(gpu));
    launch!(gpu, FILE, name("scatter_rows", dt), linear_cfg(n * cols), &xp, &sp, &rp, &n32, &c)
}

/// `y = rms_norm(x)` over `rows` rows of `cols` (f32 `gamma` of `cols`).
#[allow(clippy::too_many_arguments)]
pub fn rms_norm(
    gpu: &Gpu,
    x: GpuView<'_>,
    y: GpuViewMut<'_>,
    gamma: GpuView<'_>,
    rows: usize,
    cols: usize,
    eps: f32,
) -> Result<(), CudaError> {
    let dt = x.dtype();
    x.fits("rms_norm x", dt, area(rows, cols))?;
    y.fits("rms_norm y", dt, area(rows, cols))?;
    gamma.fits("rms_norm gamma", DType::F32, Some(cols))?;
    let (r, c) = (int(rows, "rows")?, int(cols, "cols")?);
    let (xp, yp, gp) = (x.ptr(gpu), y.ptr(gpu), gamma.ptr(gpu));
    launch!(gpu, FILE, name("rmsnorm", dt), rows_cfg(rows), &xp, &yp, &gp, &r, &c, &eps)
}

/// `gate = silu(gate) · up` for `n` elements.
pub fn silu_mul(gpu: &Gpu, gate: GpuViewMut<'_>, up: GpuView<'_>, n: usize) -> Result<(), CudaError> {
    let dt = gate.dtype();
    gate.fits("silu_mul gate", dt, Some(n))?;
    up.fits("silu_mul up", dt, Some(n))?;
    let (n64, gp, up) = (n as i64, gate.ptr(gpu), up.ptr(gpu));
    launch!(gpu, FILE, name("silu_mul", dt), linear_cfg(n), &gp, &up, &n64)
}

/// Positions `start..start + n` of a `[batch, cap, width]` cache set to `[batch, n, width]` rows.
pub fn write_positions(
    gpu: &Gpu,
    cache: GpuViewMut<'_>,
    src: GpuView<'_>,
    (batch, cap, width): (usize, usize, usize),
    start: usize,
    n: usize,
) -> Result<(), CudaError> {
    let dt = cache.dtype();
    if start.checked_add(n).is_none_or(|end| end > cap) {
        return Err(CudaError::Shape(format!("write_positions: {start}+{n} past a capacity of {cap}")));
    }
    cache.fits("write_positions cache", dt, span(width, &[(cap, width), (batch, cap * width)]))?;
    src.fits("write_positions src", dt, span(width, &[(n, width), (batch, n * width)]))?;
    let (b, c, s, n32, w) =
        (int(batch, "batch")?, int(cap, "cap")?, int(start, "start")?, int(n, "n")?, int(width, "w")?);
    let (cp, sp) = (cache.ptr(gpu), src.ptr(gpu));
    let cfg = linear_cfg(batch * n * width);
    launch!(gpu, FILE, name("write_positions", dt), cfg, &cp, &sp, &b, &c, &s, &n32, &w)
}

/// Rotary embedding in place over `rows` rows of `cols` = heads · 2 · `inv_freq.len()`
/// (`positions` one per row, f32 `inv_freq` of `half` values); `cuda/rope.cu`.
pub fn rope(
    gpu: &Gpu,
    x: GpuViewMut<'_>,
    positions: &GpuInts,
    inv_freq: GpuView<'_>,
    rows: usize,
    cols: usize,
) -> Result<(), CudaError> {
    let (dt, half) = (x.dtype(), inv_freq.len());
    if half == 0 || !cols.is_multiple_of(2 * half) {
        return Err(CudaError::Shape(format!("rope: {half} frequencies for rows of {cols}")));
    }
    if positions.len() < rows {
        return Err(CudaError::Shape(format!("rope: {} positions for {rows} rows", positions.len())));
    }
    x.fits("rope x", dt, area(rows, cols))?;
    inv_freq.fits("rope inv_freq", DType::F32, Some(half))?;
    let (r, c, h) = (rows as i64, int(cols, "cols")?, int(half, "half")?);
    let (xp, pp, fp) = (x.ptr(gpu), positions.ptr(gpu), inv_freq.ptr(gpu));
    let cfg = linear_cfg(rows * cols / 2);
    launch!(gpu, "rope.cu", name("rope", dt), cfg, &xp, &pp, &fp, &r, &c, &h)
}
