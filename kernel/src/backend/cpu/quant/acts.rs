//! Activation rows quantised to symmetric 8-bit blocks of 32 (our own format, in the spirit of
//! ggml's block_q8_0/q8_1: an f32 scale `d = max|x| / 127`, quants `round_ties_even(x / d)`, and the
//! block's integer quant sum `ys` with `s = d * ys` for the formats that carry a minimum).
//!
//! Each row is padded to a whole number of 8-block groups (zeros), so that SIMD kernels may load
//! eight blocks' scales at once; padding blocks have `d = s = 0` and zero quants.
//!
//! On x86-64 with AVX2 a block is quantised by SIMD code with the scalar definition's results
//! (`quantize_block_avx2`, tested against `quantize_block_scalar`).

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
    if has_avx2() {
        return |x, q| {
            // SAFETY: AVX2 and FMA are present (checked at run time above).
            unsafe { quantize_block_avx2(x, q) }
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

/// True when AVX2, FMA and F16C are available.
#[cfg(target_arch = "x86_64")]
pub fn has_avx2() -> bool {
    static F: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *F.get_or_init(|| {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
    })
}

/// AVX2 version of [`quantize_block_scalar`] (same result for finite inputs).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`has_avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_block_avx2(x: &[f32; QK], q: &mut [i8; QK]) -> (f32, i32) {
    use std::arch::x86_64::*;
    unsafe {
        let p = x.as_ptr();
        let v = [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)), _mm256_loadu_ps(p.add(16)), _mm256_loadu_ps(p.add(24))];
        let sign = _mm256_set1_ps(-0.0);
        let mut mx = _mm256_andnot_ps(sign, v[0]);
        for vi in &v[1..] {
            mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, *vi));
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), mx);
        let amax = lanes.iter().fold(0.0f32, |a, &b| a.max(b));
        let d = amax / 127.0;
        let id = _mm256_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
        let (lo, hi) = (_mm256_set1_ps(-127.0), _mm256_set1_ps(127.0));
        let c: [__m256i; 4] = std::array::from_fn(|i| {
            let r = _mm256_round_ps(_mm256_mul_ps(v[i], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi))
        });
        let s = _mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3]));
        let mut sl = [0i32; 8];
        _mm256_storeu_si256(sl.as_mut_ptr().cast(), s);
        let p16 = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
        let bytes = _mm256_permutevar8x32_epi32(p16, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(q.as_mut_ptr().cast(), bytes);
        (d, sl.iter().sum())
    }
}
