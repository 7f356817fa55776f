//! Dropout masks for the LoRA branches (`nn.Dropout(p)` in training mode: each element kept
//! with probability `1 − p` and scaled by `1 / (1 − p)`), from a documented stream: numpy's
//! `default_rng(seed).random()` (PCG64, `(next_u64 >> 11) · 2⁻⁵³`), one draw per element, an
//! element dropped when its draw is below `p`. One stream serves a whole training run; it is
//! consumed mask by mask in forward order (per step, per layer, Q, K, V, out, fc1, fc2; then
//! SigLIP's pooling MLP), each mask row-major over the layer's `[rows, inputs]` input. torch's
//! own Bernoulli stream cannot be reproduced outside torch, so the masks differ from PyTorch's;
//! `tools/make_lora_reference.py` rebuilds these masks in numpy to check them.

use crate::eval::pcg64::Pcg64;

/// The mask stream.
#[derive(Debug)]
pub struct Dropout {
    rng: Pcg64,
}

impl Dropout {
    /// The stream of `seed`.
    pub fn new(seed: u32) -> Self {
        Dropout { rng: Pcg64::default_rng(seed) }
    }

    /// The next draw on `[0, 1)`, numpy's `Generator.random()`.
    pub fn random(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A mask of `len` factors: 0 (dropped, draw < `p`) or `1 / (1 − p)`.
    pub fn mask(&mut self, len: usize, p: f32) -> Vec<f32> {
        let keep = 1.0 / (1.0 - p);
        (0..len).map(|_| if self.random() < f64::from(p) { 0.0 } else { keep }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_match_numpy() {
        // np.random.default_rng(42).random(3)
        let mut d = Dropout::new(42);
        let want = [0.773_956_048_555_963_3, 0.438_878_439_752_052_3, 0.858_597_919_911_382_5];
        for w in want {
            assert!((d.random() - w).abs() < 1e-15);
        }
    }
}
