//! Dequantisation of ggml blocks to f32: the reference path.
//!
//! Follows the block definitions of ggml (`ggml-common.h`) and evaluates each element with the same
//! f32 operations, in the same order, as the python `gguf` package's numpy code (`gguf/quants.py`,
//! 0.19.0), so both agree to the bit: Q8_0 `q*d`, Q4_0 `d*(q-8)`, Q4_1 `d*q + m`,
//! Q4_K `(d*sc)*q - dmin*m`, Q6_K `(d*sc)*(q-32)`.

use super::{GgmlType, QK, QK_K};
use half::f16;

/// Reads a little-endian f16 at `off` as f32.
#[inline(always)]
pub(crate) fn f16_at(b: &[u8], off: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[off], b[off + 1]])).to_f32()
}

/// Dequantises one row. `bytes` must hold exactly `out.len()` elements of `ty`
/// (the callers check this through `QMatrix::new`); missing bytes leave the tail of `out` untouched.
pub fn dequantize_row(ty: GgmlType, bytes: &[u8], out: &mut [f32]) {
    let bs = ty.block_bytes();
    let blocks = bytes.chunks_exact(bs).zip(out.chunks_exact_mut(ty.block_len()));
    match ty {
        GgmlType::F32 => blocks.for_each(|(b, o)| o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        GgmlType::F16 => blocks.for_each(|(b, o)| o[0] = f16_at(b, 0)),
        GgmlType::BF16 => {
            blocks.for_each(|(b, o)| o[0] = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
        }
        GgmlType::Q8_0 => blocks.for_each(|(b, o)| q8_0(b, o)),
        GgmlType::Q4_0 => blocks.for_each(|(b, o)| q4_0(b, o)),
        GgmlType::Q4_1 => blocks.for_each(|(b, o)| q4_1(b, o)),
        GgmlType::Q4_K => blocks.for_each(|(b, o)| q4_k(b, o)),
        GgmlType::Q6_K => blocks.for_each(|(b, o)| q6_k(b, o)),
    }
}

fn q8_0(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    for i in 0..QK {
        o[i] = (b[2 + i] as i8) as f32 * d;
    }
}

fn q4_0(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    for i in 0..QK / 2 {
        let q = b[2 + i];
        o[i] = d * ((q & 0xF) as i32 - 8) as f32;
        o[i + QK / 2] = d * ((q >> 4) as i32 - 8) as f32;
    }
}

fn q4_1(b: &[u8], o: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for i in 0..QK / 2 {
        let q = b[4 + i];
        o[i] = d * (q & 0xF) as f32 + m;
        o[i + QK / 2] = d * (q >> 4) as f32 + m;
    }
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K super-block from its 12 packed bytes.
#[inline(always)]
pub(crate) fn q4k_scale_min(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

fn q4_k(b: &[u8], o: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for j in 0..8 {
        let (sc, m) = q4k_scale_min(scales, j);
        let (dl, ml) = (d * sc as f32, dmin * m as f32);
        let q = &qs[(j / 2) * 32..(j / 2) * 32 + 32];
        let shift = 4 * (j % 2);
        for l in 0..32 {
            o[j * 32 + l] = dl * ((q[l] >> shift) & 0xF) as f32 - ml;
        }
    }
}

/// The unsigned 6-bit quant (0..64) of element `e` (0..256) of a Q6_K super-block.
#[inline(always)]
pub(crate) fn q6k_quant(ql: &[u8], qh: &[u8], e: usize) -> u8 {
    let (half, r) = (e / 128, e % 128);
    let (k, l) = (r / 32, r % 32);
    let lo = ql[half * 64 + (k % 2) * 32 + l] >> (4 * (k / 2));
    let hi = (qh[half * 32 + l] >> (2 * k)) & 3;
    (lo & 0xF) | (hi << 4)
}

fn q6_k(b: &[u8], o: &mut [f32]) {
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16_at(b, 208);
    for (e, v) in o.iter_mut().enumerate().take(QK_K) {
        let dl = d * (sc[e / 16] as i8) as f32;
        *v = dl * (q6k_quant(ql, qh, e) as i32 - 32) as f32;
    }
}
