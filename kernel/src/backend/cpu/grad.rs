//! Backward passes on the CPU (f32, hand-written) of the operations the ViT image towers train
//! through: layer normalisation, the encoders' activations, and scaled dot-product attention
//! without a mask. Each is the derivative of the forward in this backend, written out as
//! PyTorch's autograd computes it (`layer_norm_backward`, `gelu_backward`,
//! `_scaled_dot_product_attention_math` differentiated); `tests/it/lora_train.rs` checks them
//! against torch through whole towers.

use rayon::prelude::*;

use super::{Activation, Operand, matmul, softmax_rows};

/// Rows per rayon task in row-wise operations.
const ROW_CHUNK: usize = 16;

/// `dx` of `y = (x − mean) / sqrt(var + eps) · γ + β` over rows of `cols`, given `dy` (γ and β
/// frozen): `dx = rstd · (g − mean(g) − x̂ · mean(g · x̂))` with `g = dy · γ`; statistics in
/// f64 as the forward computes them.
pub fn layer_norm_backward(x: &[f32], dy: &[f32], gamma: &[f32], eps: f32) -> Vec<f32> {
    let cols = gamma.len();
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(cols * ROW_CHUNK).enumerate().for_each(|(chunk, out)| {
        for (r, dst) in out.chunks_mut(cols).enumerate() {
            let at = (chunk * ROW_CHUNK + r) * cols;
            let (xr, gr) = (&x[at..at + cols], &dy[at..at + cols]);
            let n = cols as f64;
            let mean = xr.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = xr.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
            let rstd = 1.0 / (var + f64::from(eps)).sqrt();
            let (mut mg, mut mgx) = (0f64, 0f64);
            for ((&xv, &d), &g) in xr.iter().zip(gr).zip(gamma) {
                let gv = f64::from(d) * f64::from(g);
                mg += gv;
                mgx += gv * (f64::from(xv) - mean) * rstd;
            }
            let (mg, mgx) = (mg / n, mgx / n);
            for (((o, &xv), &d), &g) in dst.iter_mut().zip(xr).zip(gr).zip(gamma) {
                let xhat = (f64::from(xv) - mean) * rstd;
                *o = (rstd * (f64::from(d) * f64::from(g) - mg - xhat * mgx)) as f32;
            }
        }
    });
    dx
}

/// The derivative of `act` at `x`, in f64.
fn derivative(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Gelu => {
            let cdf = 0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2));
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            cdf + x * pdf
        }
        Activation::GeluTanh => {
            const C: f64 = 0.797_884_560_802_865_4; // sqrt(2/pi)
            let t = (C * (x + 0.044_715 * x * x * x)).tanh();
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * 0.044_715 * x * x)
        }
        Activation::QuickGelu => {
            let s = 1.0 / (1.0 + (-1.702 * x).exp());
            s + 1.702 * x * s * (1.0 - s)
        }
        Activation::Silu => {
            let s = 1.0 / (1.0 + (-x).exp());
            s + x * s * (1.0 - s)
        }
    }
}

/// `dx = dy · act'(x)`, element-wise: in f32 with the forward's vectorised `exp` for the
/// logistic-based activations (`elementwise::activate_grad`), in f64 for exact GELU.
pub fn activate_backward(x: &[f32], dy: &[f32], act: Activation) -> Vec<f32> {
    if let Some(dx) = super::elementwise::activate_grad(x, dy, act) {
        return dx;
    }
    x.par_iter().zip(dy).map(|(&x, &d)| (f64::from(d) * derivative(act, f64::from(x))) as f32).collect()
}

/// Gradients of unmasked multi-head attention `O = softmax(Q·Kᵀ/√d)·V` (one key/value head per
/// query head) given `dO` (contiguous `[batch, q.len, heads·dim]`): `(dQ, dK, dV)`, contiguous
/// `[batch, len, heads·dim]` each. Per (batch, head) the scores are recomputed with the
/// forward's softmax, then `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(dP ⊙ P))`,
/// `dQ = dS·K/√d`, `dK = dSᵀ·Q/√d`.
pub fn attention_backward(
    q: Operand<'_>,
    k: Operand<'_>,
    v: Operand<'_>,
    dout: &[f32],
    batch: usize,
    dim: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (heads, lq, lk) = (q.heads, q.len, k.len);
    let width = heads * dim;
    let scale = 1.0 / (dim as f32).sqrt();
    let per_head: Vec<[Vec<f32>; 3]> = (0..batch * heads)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / heads, bh % heads);
            let (qd, kd, vd) =
                (&q.data[q.head_start(b, h)..], &k.data[k.head_start(b, h)..], &v.data[v.head_start(b, h)..]);
            let dod = &dout[b * lq * width + h * dim..];
            let mut p = vec![0f32; lq * lk];
            matmul(lq, lk, dim, qd, q.row_stride, 1, kd, 1, k.row_stride, &mut p, false, false);
            p.iter_mut().for_each(|s| *s *= scale);
            softmax_rows(&mut p, lk);
            let mut dv = vec![0f32; lk * dim];
            matmul(lk, dim, lq, &p, 1, lk, dod, width, 1, &mut dv, false, false);
            let mut ds = vec![0f32; lq * lk];
            matmul(lq, lk, dim, dod, width, 1, vd, 1, v.row_stride, &mut ds, false, false);
            for (dsr, pr) in ds.chunks_mut(lk).zip(p.chunks(lk)) {
                let dot: f64 = dsr.iter().zip(pr).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
                dsr.iter_mut().zip(pr).for_each(|(d, &pv)| *d = pv * (*d - dot as f32) * scale);
            }
            let mut dq = vec![0f32; lq * dim];
            matmul(lq, dim, lk, &ds, lk, 1, kd, k.row_stride, 1, &mut dq, false, false);
            let mut dk = vec![0f32; lk * dim];
            matmul(lk, dim, lq, &ds, 1, lk, qd, q.row_stride, 1, &mut dk, false, false);
            [dq, dk, dv]
        })
        .collect();
    let mut out = [vec![0f32; batch * lq * width], vec![0f32; batch * lk * width], vec![0f32; batch * lk * width]];
    for (bh, grads) in per_head.iter().enumerate() {
        let (b, h) = (bh / heads, bh % heads);
        for (dst, (g, len)) in out.iter_mut().zip(grads.iter().zip([lq, lk, lk])) {
            for i in 0..len {
                let at = (b * len + i) * width + h * dim;
                dst[at..at + dim].copy_from_slice(&g[i * dim..(i + 1) * dim]);
            }
        }
    }
    let [dq, dk, dv] = out;
    (dq, dk, dv)
}

/// `alpha · op(a) · op(b)` for row-major `a` (`[m, k]`, or `[k, m]` when `ta`) and `b`
/// (`[k, n]`, or `[n, k]` when `tb`): `[m, n]`.
#[allow(clippy::too_many_arguments)]
pub fn product(a: &[f32], ta: bool, b: &[f32], tb: bool, m: usize, k: usize, n: usize, alpha: f32) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    let (ars, acs) = if ta { (1, m) } else { (k, 1) };
    let (brs, bcs) = if tb { (1, k) } else { (n, 1) };
    matmul(m, n, k, a, ars, acs, b, brs, bcs, &mut out, false, true);
    if alpha != 1.0 {
        out.iter_mut().for_each(|v| *v *= alpha);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of `f` at `x` along each coordinate, in f64.
    fn numeric(x: &[f32], f: impl Fn(&[f32]) -> f64) -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let h = 1e-3f32;
                let (mut a, mut b) = (x.to_vec(), x.to_vec());
                a[i] += h;
                b[i] -= h;
                (f(&a) - f(&b)) / (2.0 * f64::from(h))
            })
            .collect()
    }

    #[test]
    fn activation_derivatives_match_differences() {
        for act in [Activation::Gelu, Activation::GeluTanh, Activation::QuickGelu, Activation::Silu] {
            for x in [-3.0f64, -0.7, 0.0, 0.4, 2.5] {
                let f = |x: f64| match act {
                    Activation::Gelu => 0.5 * x * (1.0 + libm::erf(x / 2f64.sqrt())),
                    Activation::GeluTanh => {
                        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
                    }
                    Activation::QuickGelu => x / (1.0 + (-1.702 * x).exp()),
                    Activation::Silu => x / (1.0 + (-x).exp()),
                };
                let want = (f(x + 1e-6) - f(x - 1e-6)) / 2e-6;
                assert!((derivative(act, x) - want).abs() < 1e-7, "{act:?}'({x})");
            }
        }
    }

    #[test]
    fn vectorised_derivatives_match_the_f64_ones() {
        let x: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.013).sin() * 6.0).collect();
        let dy: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.7).cos()).collect();
        for act in [Activation::GeluTanh, Activation::QuickGelu, Activation::Silu] {
            let got = activate_backward(&x, &dy, act);
            for ((&g, &x), &d) in got.iter().zip(&x).zip(&dy) {
                let want = f64::from(d) * derivative(act, f64::from(x));
                assert!((f64::from(g) - want).abs() <= 2e-6 * (1.0 + want.abs()), "{act:?}'({x}): {g} vs {want}");
            }
        }
    }

    #[test]
    fn layer_norm_backward_matches_differences() {
        let x: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin() * 2.0).collect();
        let gamma: Vec<f32> = (0..6).map(|i| 0.5 + i as f32 * 0.1).collect();
        let dy: Vec<f32> = (0..12).map(|i| (i as f32 * 1.3).cos()).collect();
        let loss = |x: &[f32]| {
            let t = crate::tensor::Tensor::new([2, 6], x.to_vec());
            let y = super::super::layer_norm(&t, &gamma, &[0.0; 6], 1e-5);
            y.data().iter().zip(&dy).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum()
        };
        let got = layer_norm_backward(&x, &dy, &gamma, 1e-5);
        for (g, w) in got.iter().zip(numeric(&x, loss)) {
            assert!((f64::from(*g) - w).abs() < 2e-3, "{g} vs {w}");
        }
    }
}
