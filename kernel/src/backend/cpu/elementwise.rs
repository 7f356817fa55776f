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
}

impl Activation {
    /// Parses a transformers `hidden_act` name.
    pub fn from_hf(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Activation::Gelu),
            "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Some(Activation::GeluTanh),
            "quick_gelu" => Some(Activation::QuickGelu),
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
        }
    }
}

/// Applies `act` to every element, in place.
pub fn activate(x: &mut Tensor, act: Activation) {
    x.data_mut().par_chunks_mut(4096).for_each(|chunk| chunk.iter_mut().for_each(|v| *v = act.apply(*v)));
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
    out.data_mut().par_chunks_mut(cols * ROW_CHUNK).for_each(|rows| {
        for row in rows.chunks_mut(cols) {
            let n = cols as f64;
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
            let inv = 1.0 / (var + f64::from(eps)).sqrt();
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = ((f64::from(*v) - mean) * inv) as f32 * g + b;
            }
        }
    });
    out
}

/// Softmax over each row of `x` (`rows × cols`), in place, numerically stable.
pub fn softmax_rows(x: &mut [f32], cols: usize) {
    for row in x.chunks_mut(cols) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            row.iter_mut().for_each(|v| *v = 0.0);
            continue;
        }
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
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
    }
}
