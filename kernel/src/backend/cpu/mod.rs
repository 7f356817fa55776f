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

/// `dst[m×n] (+)= a[m×k] · b[k×n]` with explicit strides for `a` (row `ars`, column `acs`) and
/// `b` (row `brs`, column `bcs`); `dst` is row-major contiguous. `parallel` lets gemm use the
/// rayon pool.
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
    let parallelism = if parallel && m * n * k >= 1 << 16 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above check that every element gemm reads from `a` and `b` and
    // writes to `dst` lies inside the slices, with the given strides; `dst` does not alias
    // `a` or `b` (it is a distinct `&mut`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            acs as isize,
            ars as isize,
            b.as_ptr(),
            bcs as isize,
            brs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
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
