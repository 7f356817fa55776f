//! Element-wise and row-wise operations: activations, layer normalisation, softmax, adds.
//! Definitions follow PyTorch (`torch.nn.functional.gelu`, `layer_norm`, `softmax`) and
//! transformers' `ACT2FN` (`quick_gelu`, `gelu_pytorch_tanh`).

use rayon::prelude::*;

use crate::tensor::Tensor;

/// Rows per rayon task in row-wise operations.
const ROW_CHUNK: usize = 16;

/// The activation functions the encoders use (transformers' names in parentheses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x · Φ(x)` with the exact normal CDF (`gelu`).
    Gelu,
    /// The tanh approximation of GELU (`gelu_pytorch_tanh`, `gelu_new`).
    GeluTanh,
    /// `x · σ(1.702 x)`, CLIP's approximation (`quick_gelu`).
    QuickGelu,
    /// `x · σ(x)` (`silu`), the gate of Llama's SwiGLU.
    Silu,
}

impl Activation {
    /// Parses a transformers `hidden_act` name.
    pub fn from_hf(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Activation::Gelu),
            "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Some(Activation::GeluTanh),
            "quick_gelu" => Some(Activation::QuickGelu),
            "silu" | "swish" => Some(Activation::Silu),
            _ => None,
        }
    }

    fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Gelu => 0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2)),
            Activation::GeluTanh => {
                const C: f32 = 0.797_884_6; // sqrt(2/pi)
                0.5 * x * (1.0 + (C * (x + 0.044_715 * x * x * x)).tanh())
            }
            Activation::QuickGelu => x / (1.0 + (-1.702 * x).exp()),
            Activation::Silu => x / (1.0 + (-x).exp()),
        }
    }
}

/// Applies `act` to every element, in place.
pub fn activate(x: &mut Tensor, act: Activation) {
    x.data_mut().par_chunks_mut(4096).for_each(|chunk| match act {
        Activation::Gelu => chunk.iter_mut().for_each(|v| *v = act.apply(*v)),
        Activation::QuickGelu | Activation::GeluTanh | Activation::Silu => simd::activate(chunk, act),
    });
}

/// `exp(x)` from arithmetic and bit operations only, so that loops over it vectorise:
/// `2^n · p(r)` with `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, and `p` the degree-7 Taylor
/// polynomial (relative error below 2e-7 over the f32 range; Cody & Waite range reduction).
#[inline(always)]
fn exp_approx(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * pow2(n)
}

/// `2^n` for an integral `n` in `-126..=127`, from the bits of `n + 127 + 2^23`, whose mantissa
/// is `n + 127`: the value of `f32::from_bits(((n as i32 + 127) as u32) << 23)` without the
/// saturating float-to-int cast, which does not vectorise (one lane at a time, with NaN and
/// range checks). NaN gives some power of two, not undefined behaviour.
#[inline(always)]
fn pow2(n: f32) -> f32 {
    let biased = (n + (127.0 + 8_388_608.0)).to_bits() & 0x7F_FFFF;
    f32::from_bits(biased << 23)
}

#[inline(always)]
fn activate_vectorisable(x: &mut [f32], act: Activation) {
    match act {
        Activation::QuickGelu => x.iter_mut().for_each(|v| *v /= 1.0 + exp_approx(-1.702 * *v)),
        Activation::Silu => x.iter_mut().for_each(|v| *v /= 1.0 + exp_approx(-*v)),
        Activation::GeluTanh => x.iter_mut().for_each(|v| {
            // tanh(u) = 1 − 2 / (exp(2u) + 1)
            const C: f32 = 0.797_884_6; // sqrt(2/pi)
            let u = C * (*v + 0.044_715 * *v * *v * *v);
            *v = 0.5 * *v * (2.0 - 2.0 / (exp_approx(2.0 * u) + 1.0));
        }),
        Activation::Gelu => x.iter_mut().for_each(|v| *v = act.apply(*v)),
    }
}

/// `dx[i] = dy[i] · act'(x[i])` in f32 with [`exp_approx`] (vectorises), for the activations
/// built on the logistic function; `None` for exact GELU, whose derivative needs `erf`.
#[inline(always)]
fn activate_grad_vectorisable(x: &[f32], dy: &[f32], dx: &mut [f32], act: Activation) -> Option<()> {
    let grad = |(d, (&x, &g)): (&mut f32, (&f32, &f32)), k: f32| {
        // d/dx [x·σ(kx)] = σ + k·x·σ·(1 − σ)
        let s = 1.0 / (1.0 + exp_approx(-k * x));
        *d = g * (s + k * x * s * (1.0 - s));
    };
    match act {
        Activation::QuickGelu => dx.iter_mut().zip(x.iter().zip(dy)).for_each(|e| grad(e, 1.702)),
        Activation::Silu => dx.iter_mut().zip(x.iter().zip(dy)).for_each(|e| grad(e, 1.0)),
        Activation::GeluTanh => dx.iter_mut().zip(x.iter().zip(dy)).for_each(|(d, (&x, &g))| {
            const C: f32 = 0.797_884_6; // sqrt(2/pi)
            let t = 1.0 - 2.0 / (exp_approx(2.0 * C * (x + 0.044_715 * x * x * x)) + 1.0);
            *d = g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * 0.044_715 * x * x));
        }),
        Activation::Gelu => return None,
    }
    Some(())
}

/// `dy · act'(x)` element-wise in f32 (vectorised) for the logistic-based activations; `None`
/// for exact GELU (the caller's f64 path).
pub fn activate_grad(x: &[f32], dy: &[f32], act: Activation) -> Option<Vec<f32>> {
    if act == Activation::Gelu {
        return None;
    }
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(4096).zip(x.par_chunks(4096).zip(dy.par_chunks(4096))).for_each(|(d, (x, g))| {
        simd::activate_grad(x, g, d, act);
    });
    Some(dx)
}

/// The vectorisable loops, compiled for AVX-512 or AVX2 where the CPU has it. One wrapper per loop on
/// purpose: a generic `with_avx512(closure)` wrapper does not get the closure inlined into the
/// feature-enabled function, and the bf16 ViT-B/32 encoder ran 1.75× slower with it (measured
/// by hand with `mvb bench encoder`, 2026-11-28).
mod simd {
    use super::{Activation, activate_grad_vectorisable, activate_vectorisable, normalise_row, softmax_row};

    pub(super) fn activate_grad(x: &[f32], dy: &[f32], dx: &mut [f32], act: Activation) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { activate_grad_avx2(x, dy, dx, act) };
        }
        activate_grad_vectorisable(x, dy, dx, act);
    }

    /// AVX2 (with SSE4.1's `roundps` for [`super::exp_approx`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn activate_grad_avx2(x: &[f32], dy: &[f32], dx: &mut [f32], act: Activation) {
        activate_grad_vectorisable(x, dy, dx, act);
    }

    pub(super) fn softmax(row: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512 F.
            return unsafe { softmax_avx512(row) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { softmax_avx2(row) };
        }
        softmax_row(row);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn softmax_avx512(row: &mut [f32]) {
        softmax_row(row);
    }

    /// AVX2 (with SSE4.1's `roundps`): without it `round_ties_even` is a libm call per element
    /// and the loop does not vectorise.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn softmax_avx2(row: &mut [f32]) {
        softmax_row(row);
    }

    pub(super) fn normalise(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512 F.
            return unsafe { normalise_avx512(row, gamma, beta, eps) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { normalise_avx2(row, gamma, beta, eps) };
        }
        normalise_row(row, gamma, beta, eps);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn normalise_avx512(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        normalise_row(row, gamma, beta, eps);
    }

    /// AVX2 (with SSE4.1's `roundps`): without it `round_ties_even` is a libm call per element
    /// and the loop does not vectorise.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn normalise_avx2(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        normalise_row(row, gamma, beta, eps);
    }

    pub(super) fn activate(x: &mut [f32], act: Activation) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512 F.
            return unsafe { activate_avx512(x, act) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { activate_avx2(x, act) };
        }
        activate_vectorisable(x, act);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn activate_avx512(x: &mut [f32], act: Activation) {
        activate_vectorisable(x, act);
    }

    /// AVX2 (with SSE4.1's `roundps`): without it `round_ties_even` is a libm call per element
    /// and the loop does not vectorise.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn activate_avx2(x: &mut [f32], act: Activation) {
        activate_vectorisable(x, act);
    }
}

/// `x[i] += y[i]` over the shorter of the two.
pub fn add_assign_slice(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

/// `x += y`, element-wise; `y` may be a single row broadcast over `x`'s rows.
pub fn add_assign(x: &mut Tensor, y: &[f32]) {
    let cols = x.cols();
    if y.len() == x.data().len() {
        x.data_mut().iter_mut().zip(y).for_each(|(a, b)| *a += b);
    } else {
        assert_eq!(y.len(), cols, "add_assign: cannot broadcast {} values over rows of {cols}", y.len());
        x.data_mut().chunks_mut(cols).for_each(|row| row.iter_mut().zip(y).for_each(|(a, b)| *a += b));
    }
}

/// Layer normalisation over the last dimension: `(x − mean) / sqrt(var + eps) · γ + β`
/// (biased variance, as PyTorch).
pub fn layer_norm(x: &Tensor, gamma: &[f32], beta: &[f32], eps: f32) -> Tensor {
    let cols = x.cols();
    assert!(gamma.len() == cols && beta.len() == cols, "layer_norm: parameters do not match {cols} columns");
    let mut out = x.clone();
    out.data_mut()
        .par_chunks_mut(cols * ROW_CHUNK)
        .for_each(|rows| rows.chunks_mut(cols).for_each(|row| simd::normalise(row, gamma, beta, eps)));
    out
}

/// RMS normalisation over the last dimension (transformers' `LlamaRMSNorm`):
/// `x / sqrt(mean(x²) + eps) · γ`, the statistic in f64.
pub fn rms_norm(x: &mut [f32], cols: usize, gamma: &[f32], eps: f32) {
    x.par_chunks_mut(cols * ROW_CHUNK).for_each(|rows| {
        for row in rows.chunks_mut(cols) {
            let inv = 1.0 / (sum_f64(row, |v| v * v) / cols as f64 + f64::from(eps)).sqrt();
            row.iter_mut().zip(gamma).for_each(|(v, g)| *v = g * (f64::from(*v) * inv) as f32);
        }
    });
}

/// `gate = silu(gate) · up`, element-wise (the SwiGLU of Llama's MLP).
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    gate.par_chunks_mut(4096).zip(up.par_chunks(4096)).for_each(|(g, u)| {
        simd::activate(g, Activation::Silu);
        g.iter_mut().zip(u).for_each(|(a, b)| *a *= b);
    });
}

/// Rotary position embedding in transformers' `rotate_half` form, in place: for each row `r`
/// (position `positions[r]`) and each head of `2·half` elements, pairs `(i, i + half)` are
/// rotated by `positions[r] · inv_freq[i]`, angles computed in f32 as transformers does.
pub fn rope(x: &mut [f32], cols: usize, positions: &[u32], inv_freq: &[f32]) {
    let half = inv_freq.len();
    x.par_chunks_mut(cols).zip(positions.par_iter()).for_each(|(row, &pos)| {
        let (sin, cos): (Vec<f32>, Vec<f32>) = inv_freq.iter().map(|&f| (pos as f32 * f).sin_cos()).unzip();
        for head in row.chunks_mut(2 * half) {
            let (a, b) = head.split_at_mut(half);
            for i in 0..half {
                let (x1, x2) = (a[i], b[i]);
                a[i] = x1 * cos[i] - x2 * sin[i];
                b[i] = x2 * cos[i] + x1 * sin[i];
            }
        }
    });
}

/// A sum in f64 over eight independent lanes (so that it vectorises without reassociating).
#[inline(always)]
fn sum_f64(values: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0f64; 8];
    let chunks = values.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&v| f(f64::from(v))).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(f64::from(v));
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// One row of [`layer_norm`], statistics in f64.
#[inline(always)]
fn normalise_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f64;
    let mean = sum_f64(row, |v| v) / n;
    let var = sum_f64(row, |v| (v - mean) * (v - mean)) / n;
    let inv = 1.0 / (var + f64::from(eps)).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = ((f64::from(*v) - mean) * inv) as f32 * g + b;
    }
}

/// Softmax over each row of `x` (`rows × cols`), in place, numerically stable.
pub fn softmax_rows(x: &mut [f32], cols: usize) {
    x.chunks_mut(cols).for_each(simd::softmax);
}

/// One row of [`softmax_rows`]; a row of `-inf` becomes zeros.
#[inline(always)]
fn softmax_row(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        row.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    // `exp_approx` clamps its argument, so masked entries (`-inf`) need an explicit zero.
    row.iter_mut().for_each(|v| *v = if *v == f32::NEG_INFINITY { 0.0 } else { exp_approx(*v - max) });
    let sum = sum_f64(row, |v| v) as f32;
    row.iter_mut().for_each(|v| *v /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_match_their_definitions() {
        // Values from torch: F.gelu(1.0), gelu tanh(1.0), quick_gelu(1.0).
        assert!((Activation::Gelu.apply(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((Activation::GeluTanh.apply(1.0) - 0.841_192).abs() < 1e-6);
        assert!((Activation::QuickGelu.apply(1.0) - 0.845_796_4).abs() < 1e-6);
    }

    #[test]
    fn vectorised_activations_match_the_scalar_definitions() {
        let xs: Vec<f32> = (-4000..4000).map(|i| i as f32 * 0.01).chain([-100.0, -90.0, 90.0, 100.0]).collect();
        for act in [Activation::QuickGelu, Activation::GeluTanh] {
            let mut t = Tensor::new([xs.len()], xs.clone());
            activate(&mut t, act);
            for (&x, &y) in xs.iter().zip(t.data()) {
                let want = act.apply(x);
                assert!((y - want).abs() <= 1e-6 + 1e-6 * want.abs(), "{act:?}({x}) = {y}, want {want}");
            }
        }
        for x in [-87.0f32, -20.0, -1.0, -1e-3, 0.0, 1e-3, 0.5, 1.0, 10.0, 80.0] {
            let rel = (exp_approx(x) - x.exp()).abs() / x.exp();
            assert!(rel < 3e-7, "exp({x}): relative error {rel}");
        }
    }

    #[test]
    fn pow2_from_bits_equals_the_integer_cast() {
        for n in -126..=127 {
            let want = f32::from_bits(((n + 127) as u32) << 23);
            assert_eq!(pow2(n as f32).to_bits(), want.to_bits(), "2^{n}");
        }
        assert!(exp_approx(f32::NAN).is_nan());
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let x = Tensor::new([2, 4], vec![1.0, 2.0, 3.0, 4.0, -1.0, -1.0, 1.0, 1.0]);
        let y = layer_norm(&x, &[1.0; 4], &[0.0; 4], 1e-5);
        for r in 0..2 {
            let row = y.row(r);
            let mean: f32 = row.iter().sum::<f32>() / 4.0;
            let var: f32 = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-3);
        }
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut x = vec![1.0, 2.0, 3.0, f32::NEG_INFINITY];
        softmax_rows(&mut x, 4);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6 && x[3] == 0.0);
        let mut masked = vec![f32::NEG_INFINITY; 3];
        softmax_rows(&mut masked, 3);
        assert_eq!(masked, [0.0; 3]);
    }

    #[test]
    fn softmax_matches_the_definition() {
        let cols = 37;
        let x: Vec<f32> = (0..5 * cols).map(|i| ((i * 7919) % 113) as f32 * 0.37 - 20.0).collect();
        let mut y = x.clone();
        softmax_rows(&mut y, cols);
        for (xr, yr) in x.chunks(cols).zip(y.chunks(cols)) {
            let max = xr.iter().copied().fold(f64::NEG_INFINITY, |a, b| a.max(f64::from(b)));
            let sum: f64 = xr.iter().map(|&v| (f64::from(v) - max).exp()).sum();
            for (&a, &b) in xr.iter().zip(yr) {
                let want = (f64::from(a) - max).exp() / sum;
                assert!((f64::from(b) - want).abs() <= 1e-6 * want + 1e-9, "{b} vs {want}");
            }
        }
    }
}
