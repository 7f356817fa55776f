//! x86-64 SIMD products over the 8-row interleaved layout (`packed.rs`) for Q8_0, Q4_0 and Q4_1:
//! lane `l` of every 256-bit register belongs to weight row `l`, four quants of an activation block
//! are broadcast to every lane, and a block's integer dots end as eight i32 lanes with no horizontal
//! sum. AVX2 (`maddubs`), or 256-bit `vpdpbusd` where VNNI is present. The arithmetic is the one
//! `scalar.rs` defines for these types (sequential over blocks), so results agree to the bit.

use super::acts::QActs;
use super::packed::{Packed, ROWS, T_Q4_0, T_Q4_1, T_Q8_0};
use super::x86::X86Level;
use super::{GgmlType, QK};
use std::arch::x86_64::*;

/// Activation rows per pass over a group's tiles: two keep every accumulator and the unpacked
/// weights in registers (four spilled and measured slower on AVX2).
pub const TILE_ROWS: usize = 2;

/// `out[t][l] = dot(weight row 8g + l, activation row r0 + t)` for `t < n`. Returns false, doing
/// nothing, when the shapes do not fit (`g` past the groups, `n` not in 1..=[`TILE_ROWS`], rows past `acts.m`,
/// or a row length other than the matrix's).
///
/// # Safety
/// The CPU must support `level` ([`super::x86::supports`]).
pub unsafe fn group_dots(
    level: X86Level,
    p: &Packed,
    g: usize,
    acts: &QActs,
    r0: usize,
    n: usize,
    out: &mut [[f32; ROWS]; TILE_ROWS],
) -> bool {
    let fits = g < p.groups() && (1..=TILE_ROWS).contains(&n) && r0 + n <= acts.m && p.nb() == acts.nb;
    if !fits || p.group(g).len() != p.nb() * p.tile() {
        return false;
    }
    // SAFETY: the caller checked the CPU features of `level`; the shapes were checked above.
    unsafe {
        match level {
            X86Level::Avx2 => dots_avx2(p, g, acts, r0, n, out),
            X86Level::Avx512Vnni => dots_avx512vnni(p, g, acts, r0, n, out),
            X86Level::AvxVnni => dots_avxvnni(p, g, acts, r0, n, out),
        }
    }
    true
}

type Out = [[f32; ROWS]; TILE_ROWS];

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dots_avx2(p: &Packed, g: usize, acts: &QActs, r0: usize, n: usize, out: &mut Out) {
    unsafe { dispatch::<0>(p, g, acts, r0, n, out) }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn dots_avx512vnni(p: &Packed, g: usize, acts: &QActs, r0: usize, n: usize, out: &mut Out) {
    unsafe { dispatch::<1>(p, g, acts, r0, n, out) }
}

#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
unsafe fn dots_avxvnni(p: &Packed, g: usize, acts: &QActs, r0: usize, n: usize, out: &mut Out) {
    unsafe { dispatch::<2>(p, g, acts, r0, n, out) }
}

#[inline(always)]
unsafe fn dispatch<const V: u8>(p: &Packed, g: usize, acts: &QActs, r0: usize, n: usize, out: &mut Out) {
    match p.ty() {
        GgmlType::Q8_0 => unsafe { by_rows::<V, T_Q8_0>(p, g, acts, r0, n, out) },
        GgmlType::Q4_0 => unsafe { by_rows::<V, T_Q4_0>(p, g, acts, r0, n, out) },
        _ => unsafe { by_rows::<V, T_Q4_1>(p, g, acts, r0, n, out) },
    }
}

#[inline(always)]
unsafe fn by_rows<const V: u8, const T: u8>(p: &Packed, g: usize, acts: &QActs, r0: usize, n: usize, out: &mut Out) {
    let tiles = p.group(g).as_ptr();
    unsafe {
        match n {
            1 => group::<V, T, 1>(tiles, p.tile(), p.nb(), acts, r0, out),
            _ => group::<V, T, TILE_ROWS>(tiles, p.tile(), p.nb(), acts, r0, out),
        }
    }
}

/// `acc + Σ u8 x i8` over groups of four bytes, per i32 lane (no saturation: the pair sums of
/// `maddubs` stay below 2^15 for these operands).
#[inline(always)]
unsafe fn dpadd<const V: u8>(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
    unsafe {
        match V {
            1 => _mm256_dpbusd_epi32(acc, a, b),
            2 => _mm256_dpbusd_avx_epi32(acc, a, b),
            _ => _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1))),
        }
    }
}

/// Four activation quants at `p` in every lane.
#[inline(always)]
unsafe fn bcast(p: *const i8) -> __m256i {
    unsafe { _mm256_set1_epi32(std::ptr::read_unaligned(p.cast::<i32>())) }
}

/// All blocks of one group of eight weight rows against activation rows `r0..r0 + N`.
#[inline(always)]
unsafe fn group<const V: u8, const T: u8, const N: usize>(
    tiles: *const u8,
    tile: usize,
    nb: usize,
    acts: &QActs,
    r0: usize,
    out: &mut Out,
) {
    unsafe {
        let ks: [usize; N] = std::array::from_fn(|t| acts.idx(r0 + t, 0));
        let ys: [*const i8; N] = std::array::from_fn(|t| acts.qs.as_ptr().add(ks[t] * QK));
        let (d, s, qsum) = (acts.d.as_ptr(), acts.s.as_ptr(), acts.ys.as_ptr());
        let m4 = _mm256_set1_epi8(0x0F);
        let mut acc = [_mm256_setzero_ps(); N];
        for j in 0..nb {
            let p = tiles.add(j * tile);
            let mut isum = [_mm256_setzero_si256(); N];
            if T == T_Q8_0 {
                for step in 0..8 {
                    let w = _mm256_loadu_si256(p.add(16 + 32 * step).cast());
                    let aw = _mm256_sign_epi8(w, w); // |w| as u8
                    for t in 0..N {
                        let y = _mm256_sign_epi8(bcast(ys[t].add(j * QK + 4 * step)), w);
                        isum[t] = dpadd::<V>(isum[t], aw, y);
                    }
                }
            } else {
                let q = p.add(if T == T_Q4_1 { 32 } else { 16 });
                // AVX2: the eight maddubs results of a block summed in i16 (at most 16 products
                // of 15 x 127 per element: 30480 < 2^15), then one widening add.
                let mut s16 = [_mm256_setzero_si256(); N];
                for c in 0..4 {
                    let x = _mm256_loadu_si256(q.add(32 * c).cast());
                    let lo = _mm256_and_si256(x, m4);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
                    for t in 0..N {
                        let y = ys[t].add(j * QK + 8 * c);
                        if V == 0 {
                            let a = _mm256_maddubs_epi16(lo, bcast(y));
                            let b = _mm256_maddubs_epi16(hi, bcast(y.add(4)));
                            s16[t] = _mm256_add_epi16(s16[t], _mm256_add_epi16(a, b));
                        } else {
                            isum[t] = dpadd::<V>(dpadd::<V>(isum[t], lo, bcast(y)), hi, bcast(y.add(4)));
                        }
                    }
                }
                for t in 0..N {
                    if V == 0 {
                        isum[t] = _mm256_madd_epi16(s16[t], _mm256_set1_epi16(1));
                    }
                    if T == T_Q4_0 {
                        isum[t] = _mm256_sub_epi32(isum[t], _mm256_set1_epi32(8 * *qsum.add(ks[t] + j)));
                    }
                }
            }
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(p.cast()));
            let mw = if T == T_Q4_1 { _mm256_cvtph_ps(_mm_loadu_si128(p.add(16).cast())) } else { dw };
            for t in 0..N {
                let dd = _mm256_mul_ps(dw, _mm256_set1_ps(*d.add(ks[t] + j)));
                acc[t] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(isum[t]), acc[t]);
                if T == T_Q4_1 {
                    acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(*s.add(ks[t] + j)), acc[t]);
                }
            }
        }
        for t in 0..N {
            _mm256_storeu_ps(out[t].as_mut_ptr(), acc[t]);
        }
    }
}
