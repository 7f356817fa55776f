//! The defining (portable, scalar) arithmetic of the quantised dot products; the SIMD kernels in
//! `x86.rs` compute exactly the same f32 operations in the same order, so results agree to the bit.
//!
//! Scheme (our own, after ggml's `ggml_vec_dot_*` idea of integer block dots): for activation block `j`
//! (32 values, scale `dx`, quant sum `ys`, `s = dx*ys`) and the matching weight block, the integer
//! dot `isum` is exact. The f32 part:
//! - Q8_0, Q4_0 (`q-8`): `acc = fma(dw*dx, isum, acc)`
//! - Q4_1:               `acc = fma(dw*dx, isum, acc); acc = fma(mw, s, acc)`
//!
//!   with one accumulator per output, blocks in order (the layout of `packed.rs` keeps one output
//!   per SIMD lane);
//! - Q4_K (sub-block j): `acc = fma(d*dx, sc*isum, acc); acc = fma(-(dmin*mn), s, acc)`
//! - Q6_K (sub-blocks 2j, 2j+1): `acc = fma(d*dx, sc0*isum0 + sc1*isum1, acc)`
//!
//!   into lane `j % 8` of eight accumulators (a super-block's eight sub-blocks side by side), summed
//!   as `((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7))`.
//!
//! All integer sums stay below 2^24, so their conversion to f32 is exact. Float weights
//! (F32/F16/BF16) use f32 activations: lane `i % 8` accumulates `fma(w_i, x_i, acc)` over the row
//! (tail lanes padded with `fma(0, 0, acc)`), with the same final sum.

use super::acts::QActs;
use super::dequant::{f16_at, q4k_scale_min, q6k_quant};
use super::packed::nibble;
use super::{GgmlType, QK, QK_K};

/// Sums eight lanes in the fixed order shared with the SIMD kernels.
#[inline(always)]
pub fn reduce8(a: &[f32; 8]) -> f32 {
    let s4 = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (s4[0] + s4[2]) + (s4[1] + s4[3])
}

/// For the weight rows in `w` (whole rows of `row_bytes`) and activation rows `r0..r0 + n`:
/// `out[i * n + t] = dot(weight row i, activation row r0 + t)`, for the quantised types.
pub fn dot_rows(ty: GgmlType, w: &[u8], row_bytes: usize, acts: &QActs, r0: usize, n: usize, out: &mut [f32]) {
    for (row, o) in w.chunks_exact(row_bytes.max(1)).zip(out.chunks_exact_mut(n.max(1))) {
        for (t, o) in o.iter_mut().enumerate() {
            let r = r0 + t;
            if matches!(ty, GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1) {
                *o = dot_32(ty, row, acts, r);
                continue;
            }
            let mut acc = [0.0f32; 8];
            match ty {
                GgmlType::Q4_K => dot_q4k(row, acts, r, &mut acc),
                GgmlType::Q6_K => dot_q6k(row, acts, r, &mut acc),
                _ => {}
            }
            *o = reduce8(&acc);
        }
    }
}

fn dot_32(ty: GgmlType, w: &[u8], acts: &QActs, r: usize) -> f32 {
    let bs = ty.block_bytes();
    let mut acc = 0f32;
    for (j, b) in w.chunks_exact(bs).enumerate().take(acts.nb) {
        let (k, y) = (acts.idx(r, j), acts.block(r, j));
        let dd = f16_at(b, 0) * acts.d[k];
        let isum: i32 = match ty {
            GgmlType::Q8_0 => (0..QK).map(|i| (b[2 + i] as i8) as i32 * y[i] as i32).sum(),
            GgmlType::Q4_0 => (0..QK).map(|i| (nibble(&b[2..], i) as i32 - 8) * y[i] as i32).sum(),
            _ => (0..QK).map(|i| nibble(&b[4..], i) as i32 * y[i] as i32).sum(),
        };
        acc = dd.mul_add(isum as f32, acc);
        if ty == GgmlType::Q4_1 {
            acc = f16_at(b, 2).mul_add(acts.s[k], acc);
        }
    }
    acc
}

fn dot_q4k(w: &[u8], acts: &QActs, r: usize, acc: &mut [f32; 8]) {
    for (sb, b) in w.chunks_exact(GgmlType::Q4_K.block_bytes()).enumerate() {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        for (lane, a) in acc.iter_mut().enumerate() {
            let j = sb * 8 + lane;
            let (k, y) = (acts.idx(r, j), acts.block(r, j));
            let (sc, mn) = q4k_scale_min(&b[4..16], lane);
            let q = &b[16 + (lane / 2) * 32..16 + (lane / 2) * 32 + 32];
            let shift = 4 * (lane % 2);
            let isum: i32 = (0..QK).map(|i| ((q[i] >> shift) & 0xF) as i32 * y[i] as i32).sum();
            *a = (d * acts.d[k]).mul_add((sc as i32 * isum) as f32, *a);
            *a = (-(dmin * mn as f32)).mul_add(acts.s[k], *a);
        }
    }
}

fn dot_q6k(w: &[u8], acts: &QActs, r: usize, acc: &mut [f32; 8]) {
    for (sb, b) in w.chunks_exact(GgmlType::Q6_K.block_bytes()).enumerate() {
        let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
        let d = f16_at(b, 208);
        for (lane, a) in acc.iter_mut().enumerate() {
            let j = sb * 8 + lane;
            let (k, y) = (acts.idx(r, j), acts.block(r, j));
            let half = |h: usize| -> i32 {
                (0..16).map(|i| (q6k_quant(ql, qh, lane * 32 + h * 16 + i) as i32 - 32) * y[h * 16 + i] as i32).sum()
            };
            let isum = (sc[2 * lane] as i8) as i32 * half(0) + (sc[2 * lane + 1] as i8) as i32 * half(1);
            *a = (d * acts.d[k]).mul_add(isum as f32, *a);
        }
    }
    debug_assert!(w.len() / GgmlType::Q6_K.block_bytes() * QK_K == acts.cols);
}

/// Converts a float-typed weight row to f32 (exact).
pub fn float_row(ty: GgmlType, w: &[u8], out: &mut [f32]) {
    super::dequant::dequantize_row(ty, w, out);
}

/// `dot(w, x)` for f32 rows with the 8-lane order (tail lanes padded with `fma(0, 0, acc)`).
pub fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let n = w.len().min(x.len());
    for i in 0..n.div_ceil(8) * 8 {
        let (a, b) = if i < n { (w[i], x[i]) } else { (0.0, 0.0) };
        acc[i % 8] = a.mul_add(b, acc[i % 8]);
    }
    reduce8(&acc)
}
