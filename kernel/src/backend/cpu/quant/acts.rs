//! Activation rows quantised to symmetric 8-bit blocks of 32 (our own format, in the spirit of
//! ggml's block_q8_0/q8_1: an f32 scale `d = max|x| / 127`, quants `round_ties_even(x / d)`, and the
//! block's integer quant sum `ys` with `s = d * ys` for the formats that carry a minimum).
//!
//! Each row is padded to a whole number of 8-block groups (zeros), so that SIMD kernels may load
//! eight blocks' scales at once; padding blocks have `d = s = 0` and zero quants.

use super::{QK, QuantError};

/// `m` activation rows of `cols` values, quantised.
#[derive(Clone, Debug, Default)]
pub struct QActs {
    pub(crate) m: usize,
    pub(crate) cols: usize,
    /// Blocks per row (`cols / 32`) and padded blocks per row (multiple of 8).
    pub(crate) nb: usize,
    pub(crate) nb_pad: usize,
    pub(crate) qs: Vec<i8>,
    pub(crate) d: Vec<f32>,
    pub(crate) s: Vec<f32>,
    pub(crate) ys: Vec<i32>,
}

impl QActs {
    /// Quantises `x` (`m` rows of `cols`, row-major). `cols` must be a multiple of 32.
    pub fn quantize(x: &[f32], m: usize, cols: usize) -> Result<Self, QuantError> {
        let mut q = Self::default();
        q.requantize(x, m, cols)?;
        Ok(q)
    }

    /// Quantises into `self`, reusing its buffers.
    pub fn requantize(&mut self, x: &[f32], m: usize, cols: usize) -> Result<(), QuantError> {
        if !cols.is_multiple_of(QK) {
            return Err(QuantError::Shape {
                what: "activation row length (multiple of 32)",
                expected: cols,
                got: cols,
            });
        }
        let n = m.checked_mul(cols).ok_or(QuantError::Shape { what: "activations", expected: usize::MAX, got: 0 })?;
        if x.len() != n {
            return Err(QuantError::Shape { what: "activations", expected: n, got: x.len() });
        }
        let nb = cols / QK;
        let nb_pad = nb.div_ceil(8) * 8;
        self.m = m;
        self.cols = cols;
        self.nb = nb;
        self.nb_pad = nb_pad;
        self.qs.clear();
        self.qs.resize(m * nb_pad * QK, 0);
        for v in [&mut self.d, &mut self.s] {
            v.clear();
            v.resize(m * nb_pad, 0.0);
        }
        self.ys.clear();
        self.ys.resize(m * nb_pad, 0);
        let quant = block_quantizer();
        for r in 0..m {
            for j in 0..nb {
                let k = r * nb_pad + j;
                let src = &x[r * cols + j * QK..r * cols + (j + 1) * QK];
                let dst: &mut [i8; QK] = (&mut self.qs[k * QK..(k + 1) * QK]).try_into().expect("32-byte block");
                let (d, ys) = quant(src.try_into().expect("32-value block"), dst);
                self.d[k] = d;
                self.ys[k] = ys;
                self.s[k] = d * ys as f32;
            }
        }
        Ok(())
    }

    /// Rows.
    pub fn m(&self) -> usize {
        self.m
    }
    /// Values per row.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Quants of block `j` of row `r` (padding blocks are zeros).
    #[inline(always)]
    pub(crate) fn block(&self, r: usize, j: usize) -> &[i8] {
        let k = r * self.nb_pad + j;
        &self.qs[k * QK..(k + 1) * QK]
    }
    /// Index of block `j` of row `r` in `d`, `s` and `ys`.
    #[inline(always)]
    pub(crate) fn idx(&self, r: usize, j: usize) -> usize {
        r * self.nb_pad + j
    }
}

type BlockQuantizer = fn(&[f32; QK], &mut [i8; QK]) -> (f32, i32);

fn block_quantizer() -> BlockQuantizer {
    #[cfg(target_arch = "x86_64")]
    if super::x86::has_avx2() {
        return |x, q| {
            // SAFETY: AVX2 and FMA are present (checked at run time above).
            unsafe { super::x86::quantize_block_avx2(x, q) }
        };
    }
    quantize_block_scalar
}

/// The defining scalar quantisation of one block: returns `(d, sum of quants)`.
pub fn quantize_block_scalar(x: &[f32; QK], q: &mut [i8; QK]) -> (f32, i32) {
    let mut lanes = [0.0f32; 8];
    for (i, v) in x.iter().enumerate() {
        lanes[i % 8] = lanes[i % 8].max(v.abs());
    }
    let amax = lanes.iter().fold(0.0f32, |a, &b| a.max(b));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut ys = 0i32;
    for (qi, v) in q.iter_mut().zip(x) {
        *qi = (v * id).round_ties_even().clamp(-127.0, 127.0) as i8;
        ys += *qi as i32;
    }
    (d, ys)
}
