//! Dense matrix products through cuBLAS (`cublasGemmEx`, `cublasGemmStridedBatchedEx`), row-major
//! on the Rust side. Accumulation is always f32 (`CUBLAS_COMPUTE_32F`): f32 inputs get true f32
//! products (no TF32), bf16 and f16 inputs the tensor cores with f32 accumulators. Operands
//! are views; the element type is A's, and every operand's extent (rows, leading dimension,
//! batch stride) is checked against its view before cuBLAS is called.

use cudarc::cublas::sys::{cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cudaDataType_t};

use super::buffer::{GpuView, GpuViewMut, int as to_int, span};
use super::{CudaError, DType, Gpu};

/// One row-major input operand: its elements, leading dimension (row stride in elements), and
/// whether the product uses its transpose.
#[derive(Debug, Clone, Copy)]
pub struct Operand<'a> {
    /// The elements.
    pub view: GpuView<'a>,
    /// Elements between consecutive rows as stored.
    pub ld: usize,
    /// Use the transpose of the stored matrix.
    pub trans: bool,
}

impl<'a> Operand<'a> {
    /// A stored matrix used as is.
    pub fn n(view: GpuView<'a>, ld: usize) -> Self {
        Operand { view, ld, trans: false }
    }
    /// A stored matrix used transposed (a `[out, in]` weight in `x · Wᵀ`).
    pub fn t(view: GpuView<'a>, ld: usize) -> Self {
        Operand { view, ld, trans: true }
    }

    /// Checks that `batch` matrices `rows × cols` (as used: transposed if `trans`), `stride`
    /// apart, lie in the view.
    fn check(
        &self,
        what: &str,
        dtype: DType,
        (rows, cols): (usize, usize),
        stride: usize,
        batch: usize,
    ) -> Result<(), CudaError> {
        let (r, c) = if self.trans { (cols, rows) } else { (rows, cols) };
        self.view.fits(what, dtype, span(c, &[(r, self.ld), (batch, stride)]))
    }
}

fn data_type(dtype: DType) -> cudaDataType_t {
    match dtype {
        DType::F32 => cudaDataType_t::CUDA_R_32F,
        DType::Bf16 => cudaDataType_t::CUDA_R_16BF,
        DType::F16 => cudaDataType_t::CUDA_R_16F,
    }
}

fn op(trans: bool) -> cublasOperation_t {
    if trans { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N }
}

fn int(v: usize, what: &str) -> Result<i32, CudaError> {
    to_int(v, &format!("gemm: {what}"))
}

/// `C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C`, all row-major with leading dimension
/// `ldc` for C. Row-major C is column-major Cᵀ = op(B)ᵀ · op(A)ᵀ, which is what cuBLAS is asked.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    gpu: &Gpu,
    (m, n, k): (usize, usize, usize),
    a: Operand<'_>,
    b: Operand<'_>,
    c: GpuViewMut<'_>,
    ldc: usize,
    alpha: f32,
    beta: f32,
) -> Result<(), CudaError> {
    gemm_batched(gpu, (m, n, k), a, 0, b, 0, c, ldc, 0, 1, alpha, beta)
}

/// [`gemm`] over `batch` matrices at fixed element strides.
#[allow(clippy::too_many_arguments)]
pub fn gemm_batched(
    gpu: &Gpu,
    (m, n, k): (usize, usize, usize),
    a: Operand<'_>,
    stride_a: usize,
    b: Operand<'_>,
    stride_b: usize,
    c: GpuViewMut<'_>,
    ldc: usize,
    stride_c: usize,
    batch: usize,
    alpha: f32,
    beta: f32,
) -> Result<(), CudaError> {
    let dtype = a.view.dtype();
    a.check("gemm A", dtype, (m, k), stride_a, batch)?;
    b.check("gemm B", dtype, (k, n), stride_b, batch)?;
    c.fits("gemm C", dtype, span(n, &[(m, ldc), (batch, stride_c)]))?;
    if m == 0 || n == 0 || batch == 0 {
        return Ok(());
    }
    let (a_ptr, b_ptr, c_ptr) = (a.view.ptr(gpu), b.view.ptr(gpu), c.ptr(gpu));
    let t = data_type(dtype);
    let (m32, n32, k32) = (int(m, "m")?, int(n, "n")?, int(k, "k")?);
    let (lda, ldb, ldc32) = (int(a.ld, "lda")?, int(b.ld, "ldb")?, int(ldc, "ldc")?);
    let handle = *gpu.blas().handle();
    let compute = cublasComputeType_t::CUBLAS_COMPUTE_32F;
    let algo = cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT;
    let (alpha_p, beta_p) = ((&alpha as *const f32).cast(), (&beta as *const f32).cast());
    // SAFETY: the three views are live and hold the matrices with the given shapes, leading
    // dimensions, strides and batch (checked above); alpha and beta are read by cuBLAS before
    // the call returns (host pointer mode).
    unsafe {
        if batch == 1 {
            cudarc::cublas::result::gemm_ex(
                handle,
                op(b.trans),
                op(a.trans),
                n32,
                m32,
                k32,
                alpha_p,
                b_ptr as *const _,
                t,
                ldb,
                a_ptr as *const _,
                t,
                lda,
                beta_p,
                c_ptr as *mut _,
                t,
                ldc32,
                compute,
                algo,
            )?;
        } else {
            cudarc::cublas::result::gemm_strided_batched_ex(
                handle,
                op(b.trans),
                op(a.trans),
                n32,
                m32,
                k32,
                alpha_p,
                b_ptr as *const _,
                t,
                ldb,
                stride_b as i64,
                a_ptr as *const _,
                t,
                lda,
                stride_a as i64,
                beta_p,
                c_ptr as *mut _,
                t,
                ldc32,
                stride_c as i64,
                int(batch, "batch")?,
                compute,
                algo,
            )?;
        }
    }
    Ok(())
}

/// `y[rows×out] = x[rows×in] · Wᵀ (+ beta·y)` for a PyTorch `[out, in]` weight.
#[allow(clippy::too_many_arguments)]
pub fn linear(
    gpu: &Gpu,
    x: GpuView<'_>,
    w: GpuView<'_>,
    y: GpuViewMut<'_>,
    rows: usize,
    inp: usize,
    out: usize,
    beta: f32,
) -> Result<(), CudaError> {
    gemm(gpu, (rows, out, inp), Operand::n(x, inp), Operand::t(w, inp), y, out, 1.0, beta)
}
