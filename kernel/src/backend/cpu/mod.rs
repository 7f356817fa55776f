//! The CPU backend: the reference implementation of every operation the models need. Matrix
//! products go through the `gemm` crate (multi-threaded with rayon); attention is computed per
//! (batch, head) in blocks of query rows, so at most one block of scores exists at a time.

mod attention;
mod bf16;
mod elementwise;
pub mod grad;
pub mod probe;
pub mod quant;

pub use attention::{AttentionMask, Operand, attention, contiguous};
pub use bf16::{PackedBf16, bf16_native, linear_bf16};
pub use elementwise::{
    Activation, activate, add_assign, add_assign_slice, layer_norm, rms_norm, rope, silu_mul, softmax_rows,
};

use crate::tensor::Tensor;

/// `x · wᵀ (+ bias)` for `x` of shape `[.., k]` and `w` of shape `[n, k]` (PyTorch's `Linear`
/// layout). The result has `x`'s leading dimensions and `n` columns.
pub fn linear(x: &Tensor, w: &Tensor, bias: Option<&[f32]>) -> Tensor {
    let (m, k) = (x.rows(), x.cols());
    let n = w.shape()[0];
    assert_eq!(w.cols(), k, "linear: x has {k} columns, weight {:?}", w.shape());
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("x has at least one dimension") = n;
    let mut out = Tensor::zeros(shape);
    if let Some(b) = bias {
        for row in out.data_mut().chunks_mut(n) {
            row.copy_from_slice(b);
        }
    }
    matmul(m, n, k, x.data(), k, 1, w.data(), 1, k, out.data_mut(), bias.is_some(), true);
    out
}

/// ViT patches (im2col of a `p×p`, stride-`p` convolution): f32 pixels `[batch, 3, s, s]` to
/// rows `[batch·g², 3·p²]` ordered (channel, row, column) as PyTorch's `Conv2d` weight.
pub fn im2col(pixels: &[f32], batch: usize, s: usize, p: usize) -> Vec<f32> {
    let (g, k) = (s / p, 3 * p * p);
    let mut cols = vec![0f32; batch * g * g * k];
    for b in 0..batch {
        let img = &pixels[b * 3 * s * s..(b + 1) * 3 * s * s];
        for gy in 0..g {
            for gx in 0..g {
                let dst = &mut cols[((b * g + gy) * g + gx) * k..][..k];
                for c in 0..3 {
                    for ky in 0..p {
                        let src = &img[(c * s + gy * p + ky) * s + gx * p..][..p];
                        dst[(c * p + ky) * p..][..p].copy_from_slice(src);
                    }
                }
            }
        }
    }
    cols
}

/// Work (`m·n·k`) below which a product runs on the calling thread.
const PARALLEL_WORK: usize = 1 << 18;

/// `dst[m×n] (+)= a[m×k] · b[k×n]` with explicit strides for `a` (row `ars`, column `acs`) and
/// `b` (row `brs`, column `bcs`); `dst` is row-major contiguous. `parallel` lets the product
/// use the rayon pool: the larger of `m` and `n` is cut into one block per thread and each block
/// is a single-threaded gemm call (on two cores this runs at 1.6x the rate of gemm's own
/// parallel split at 400-row products: `mvb bench peak` states the peak it is measured against).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    ars: usize,
    acs: usize,
    b: &[f32],
    brs: usize,
    bcs: usize,
    dst: &mut [f32],
    accumulate: bool,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() >= m * n, "matmul: destination too small");
    if k > 0 {
        assert!(a.len() > (m - 1) * ars + (k - 1) * acs, "matmul: lhs too small");
        assert!(b.len() > (k - 1) * brs + (n - 1) * bcs, "matmul: rhs too small");
    }
    let threads = rayon::current_num_threads();
    if !parallel || threads < 2 || m * n * k < PARALLEL_WORK {
        // SAFETY: the asserts above hold for the whole product.
        unsafe { gemm_block(m, n, k, a.as_ptr(), ars, acs, b.as_ptr(), brs, bcs, dst.as_mut_ptr(), n, accumulate) };
        return;
    }
    // Blocks of whole micro-tiles (16 rows or 8 columns), one per thread.
    let (along_rows, len, tile) = if m >= n { (true, m, 16) } else { (false, n, 8) };
    let per = len.div_ceil(threads).div_ceil(tile) * tile;
    let (a_at, b_at, d_at) = (a.as_ptr() as usize, b.as_ptr() as usize, dst.as_mut_ptr() as usize);
    rayon::scope(|s| {
        for start in (0..len).step_by(per) {
            let count = per.min(len - start);
            s.spawn(move |_| {
                let (a, b, d) = (a_at as *const f32, b_at as *const f32, d_at as *mut f32);
                // SAFETY: each block reads a sub-matrix of `a` or `b` inside the slices checked
                // above and writes its own rows (or columns) of `dst`, disjoint from every
                // other block's; the scope outlives no borrow.
                unsafe {
                    if along_rows {
                        gemm_block(
                            count,
                            n,
                            k,
                            a.add(start * ars),
                            ars,
                            acs,
                            b,
                            brs,
                            bcs,
                            d.add(start * n),
                            n,
                            accumulate,
                        );
                    } else {
                        gemm_block(m, count, k, a, ars, acs, b.add(start * bcs), brs, bcs, d.add(start), n, accumulate);
                    }
                }
            });
        }
    });
}

/// One single-threaded gemm call: `d[m×n]` (row stride `drs`) `(+)= a · b`.
///
/// # Safety
/// Every element `a[i·ars + t·acs]`, `b[t·brs + j·bcs]` and `d[i·drs + j]` for `i < m`, `j < n`,
/// `t < k` must be valid, and `d` must not alias `a` or `b`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_block(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    ars: usize,
    acs: usize,
    b: *const f32,
    brs: usize,
    bcs: usize,
    d: *mut f32,
    drs: usize,
    accumulate: bool,
) {
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            d,
            1,
            drs as isize,
            accumulate,
            a,
            acs as isize,
            ars as isize,
            b,
            bcs as isize,
            brs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_matches_a_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect();
        let b = [0.5, -1.0, 2.0];
        let y = linear(&Tensor::new([m, k], x.clone()), &Tensor::new([n, k], w.clone()), Some(&b));
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|t| x[i * k + t] * w[j * k + t]).sum::<f32>() + b[j];
                assert!((y.data()[i * n + j] - want).abs() < 1e-5);
            }
        }
    }
}
