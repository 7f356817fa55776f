//! Dropout masks for the LoRA branches (`nn.Dropout(p)` in training mode: each element kept
//! with probability `1 − p` and scaled by `1 / (1 − p)`), from a documented stream: numpy's
//! `default_rng(seed).random()` (PCG64, `(next_u64 >> 11) · 2⁻⁵³`), one draw per element, an
//! element dropped when its draw is below `p`. One stream serves a whole training run; it is
//! consumed mask by mask in forward order (per step, per layer, Q, K, V, out, fc1, fc2; then
//! SigLIP's pooling MLP), each mask row-major over the layer's `[rows, inputs]` input. In
//! CLIP's last layer `out_proj` and the MLP run on the class tokens alone (nothing else reaches
//! the features), so their masks are `[batch, inputs]`. torch's own Bernoulli stream cannot be
//! reproduced outside torch, so the masks differ from PyTorch's; the tests below check the
//! draws against numpy's.

use rayon::prelude::*;

use crate::random::Pcg64;

/// Draws per rayon task when a mask is built in parallel (each task jumps its own copy of
/// the stream ahead to its first draw, so the mask is the sequential one).
const CHUNK: usize = 1 << 16;

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
        let mut out = vec![0f32; len];
        let start = self.rng.clone();
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| {
            let mut d = Dropout { rng: start.clone() };
            d.rng.advance((c * CHUNK) as u128);
            chunk.iter_mut().for_each(|v| *v = if d.random() < f64::from(p) { 0.0 } else { keep });
        });
        self.rng.advance(len as u128);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_masks_are_the_sequential_stream() {
        let (mut a, mut b) = (Dropout::new(7), Dropout::new(7));
        let len = 3 * CHUNK + 123;
        let got = a.mask(len, 0.05);
        for (i, &g) in got.iter().enumerate() {
            let want = if b.random() < f64::from(0.05f32) { 0.0 } else { 1.0 / (1.0 - 0.05f32) };
            assert_eq!(g, want, "element {i}");
        }
        assert_eq!(a.random(), b.random());
    }

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
