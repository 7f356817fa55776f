//! x86-64 SIMD kernels for the k-quants (Q4_K, Q6_K) and f32 dots:
//! AVX2+FMA+F16C, and the same code with 256-bit VNNI (`vpdpbusd`, from AVX-512 VNNI+VL or
//! AVX-VNNI) for the u8 x i8 block dots. Selected at run time. The 32-element block types have
//! their own kernels over an interleaved layout (`x86_packed.rs`).
//!
//! They implement exactly the arithmetic defined in `scalar.rs` (integer block dots, the f32 lane
//! scheme and the fixed final sum), so they agree with the scalar path to the bit. Techniques
//! (nibble unpacking, `maddubs` with a sign trick for signed weights) follow the well-known
//! approach of ggml's x86 `ggml_vec_dot_*` kernels; the code is our own.

use super::acts::{QActs, has_avx2};
use super::dequant::q4k_scale_min;
use super::{GgmlType, QK};
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// Which x86 integer-dot flavour to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum X86Level {
    Avx2,
    /// 256-bit `vpdpbusd` from AVX-512 VNNI (+VL, +BW).
    Avx512Vnni,
    /// 256-bit `vpdpbusd` from AVX-VNNI.
    AvxVnni,
}

/// The best level this CPU supports, or `None` without AVX2.
pub fn best_level() -> Option<X86Level> {
    static L: OnceLock<Option<X86Level>> = OnceLock::new();
    *L.get_or_init(|| {
        if !has_avx2() {
            return None;
        }
        let avx512 = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni");
        if avx512 {
            Some(X86Level::Avx512Vnni)
        } else if is_x86_feature_detected!("avxvnni") {
            Some(X86Level::AvxVnni)
        } else {
            Some(X86Level::Avx2)
        }
    })
}

/// True when this CPU supports `level`.
pub fn supports(level: X86Level) -> bool {
    match (level, best_level()) {
        (_, None) => false,
        (X86Level::Avx2, Some(_)) => true,
        (l, Some(best)) => l == best,
    }
}

/// `scalar::dot_rows` at `level` (same arguments, same results).
///
/// # Safety
/// The CPU must support `level` ([`supports`]). Row and activation shapes are checked here
/// (a mismatch falls back to the scalar code).
#[allow(clippy::too_many_arguments)]
pub unsafe fn dot_rows(
    level: X86Level,
    ty: GgmlType,
    w: &[u8],
    rb: usize,
    acts: &QActs,
    r0: usize,
    n: usize,
    out: &mut [f32],
) {
    // SAFETY: the caller checked the CPU features of `level`.
    unsafe {
        match level {
            X86Level::Avx2 => dot_rows_avx2(ty, w, rb, acts, r0, n, out),
            X86Level::Avx512Vnni => dot_rows_avx512vnni(ty, w, rb, acts, r0, n, out),
            X86Level::AvxVnni => dot_rows_avxvnni(ty, w, rb, acts, r0, n, out),
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_rows_avx2(ty: GgmlType, w: &[u8], rb: usize, acts: &QActs, r0: usize, n: usize, out: &mut [f32]) {
    unsafe { dot_rows_impl::<0>(ty, w, rb, acts, r0, n, out) }
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn dot_rows_avx512vnni(ty: GgmlType, w: &[u8], rb: usize, acts: &QActs, r0: usize, n: usize, out: &mut [f32]) {
    unsafe { dot_rows_impl::<1>(ty, w, rb, acts, r0, n, out) }
}

#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
unsafe fn dot_rows_avxvnni(ty: GgmlType, w: &[u8], rb: usize, acts: &QActs, r0: usize, n: usize, out: &mut [f32]) {
    unsafe { dot_rows_impl::<2>(ty, w, rb, acts, r0, n, out) }
}

/// Maximum activation rows handled per weight-row pass (accumulators live on the stack).
pub const TILE: usize = 16;

#[inline(always)]
unsafe fn dot_rows_impl<const V: u8>(
    ty: GgmlType,
    w: &[u8],
    rb: usize,
    acts: &QActs,
    r0: usize,
    n: usize,
    out: &mut [f32],
) {
    // The raw loads below stay inside `w` and the activation buffers only if these hold.
    let row_ok = ty.row_bytes(acts.cols).is_ok_and(|b| b == rb && rb > 0) && w.len().is_multiple_of(rb.max(1));
    let kquant = matches!(ty, GgmlType::Q4_K | GgmlType::Q6_K);
    if !kquant || !row_ok || n == 0 || n > TILE || r0 + n > acts.m || out.len() != w.len() / rb * n {
        return super::scalar::dot_rows(ty, w, rb, acts, r0, n, out);
    }
    for (row, o) in w.chunks_exact(rb).zip(out.chunks_exact_mut(n)) {
        // A one-row tile gets its own instance so that only one accumulator is cleared and summed.
        unsafe {
            if n == 1 { row_impl::<V, 1>(ty, row, acts, r0, o) } else { row_impl::<V, TILE>(ty, row, acts, r0, o) }
        }
    }
}

#[inline(always)]
unsafe fn row_impl<const V: u8, const N: usize>(ty: GgmlType, w: &[u8], acts: &QActs, r0: usize, out: &mut [f32]) {
    let n = out.len().min(N);
    unsafe {
        let mut acc = [_mm256_setzero_ps(); N];
        match ty {
            GgmlType::Q4_K => {
                for (sb, b) in w.chunks_exact(ty.block_bytes()).enumerate() {
                    superblock_q4k::<V>(b, acts, r0, sb, &mut acc[..n]);
                }
            }
            GgmlType::Q6_K => {
                for (sb, b) in w.chunks_exact(ty.block_bytes()).enumerate() {
                    superblock_q6k(b, acts, r0, sb, &mut acc[..n]);
                }
            }
            _ => {}
        }
        for (o, a) in out.iter_mut().zip(&acc) {
            *o = reduce8(*a);
        }
    }
}

/// Sum of u8 x i8 products in groups of four, as eight i32 lanes.
#[inline(always)]
unsafe fn dot_u8i8<const V: u8>(a: __m256i, b: __m256i) -> __m256i {
    unsafe {
        match V {
            1 => _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b),
            2 => _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), a, b),
            _ => _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)),
        }
    }
}

/// Horizontal sums of eight vectors: lane k of the result is the sum of the lanes of `v[k]`.
#[inline(always)]
unsafe fn hsum8(v: &[__m256i; 8]) -> __m256i {
    unsafe {
        let h01 = _mm256_hadd_epi32(v[0], v[1]);
        let h23 = _mm256_hadd_epi32(v[2], v[3]);
        let h45 = _mm256_hadd_epi32(v[4], v[5]);
        let h67 = _mm256_hadd_epi32(v[6], v[7]);
        let a = _mm256_hadd_epi32(h01, h23);
        let b = _mm256_hadd_epi32(h45, h67);
        _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31))
    }
}

/// The fixed-order sum of the eight lanes (see `scalar::reduce8`).
#[inline(always)]
pub(crate) unsafe fn reduce8(a: __m256) -> f32 {
    unsafe {
        let s4 = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)))
    }
}

/// One Q4_K super-block (eight sub-blocks = activation blocks 8sb..8sb+8) against the tile.
#[inline(always)]
unsafe fn superblock_q4k<const V: u8>(b: &[u8], acts: &QActs, r0: usize, sb: usize, acc: &mut [__m256]) {
    let (mut sc, mut mn) = ([0i32; 8], [0f32; 8]);
    for j in 0..8 {
        let (s, m) = q4k_scale_min(&b[4..16], j);
        sc[j] = s as i32;
        mn[j] = m as f32;
    }
    unsafe {
        let d = _mm256_set1_ps(super::dequant::f16_at(b, 0));
        let dmin = _mm256_set1_ps(super::dequant::f16_at(b, 2));
        let negm = _mm256_xor_ps(_mm256_mul_ps(dmin, _mm256_loadu_ps(mn.as_ptr())), _mm256_set1_ps(-0.0));
        let scv = _mm256_loadu_si256(sc.as_ptr().cast());
        let mut wq = [_mm256_setzero_si256(); 8];
        for c in 0..4 {
            let x = _mm256_loadu_si256(b.as_ptr().add(16 + 32 * c).cast());
            wq[2 * c] = _mm256_and_si256(x, _mm256_set1_epi8(0x0F));
            wq[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), _mm256_set1_epi8(0x0F));
        }
        for (t, a) in acc.iter_mut().enumerate() {
            let k0 = acts.idx(r0 + t, sb * 8);
            let yp = acts.qs.as_ptr().add(k0 * QK);
            let mut v = [_mm256_setzero_si256(); 8];
            for k in 0..8 {
                v[k] = dot_u8i8::<V>(wq[k], _mm256_loadu_si256(yp.add(k * QK).cast()));
            }
            let isum = _mm256_mullo_epi32(hsum8(&v), scv);
            let dd = _mm256_mul_ps(d, _mm256_loadu_ps(acts.d.as_ptr().add(k0)));
            *a = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(isum), *a);
            *a = _mm256_fmadd_ps(negm, _mm256_loadu_ps(acts.s.as_ptr().add(k0)), *a);
        }
    }
}

/// One Q6_K super-block against the tile (maddubs form: `(q*y - 32*y)` in i16, then the scales).
#[inline(always)]
unsafe fn superblock_q6k(b: &[u8], acts: &QActs, r0: usize, sb: usize, acc: &mut [__m256]) {
    unsafe {
        let mut wq = [_mm256_setzero_si256(); 8];
        let mut wsc = [_mm256_setzero_si256(); 8];
        let m4 = _mm256_set1_epi8(0x0F);
        let m2 = _mm256_set1_epi8(0x03);
        for (j, (q, s)) in wq.iter_mut().zip(wsc.iter_mut()).enumerate() {
            let (half, k) = (j / 4, j % 4);
            let ql = _mm256_loadu_si256(b.as_ptr().add(half * 64 + (k % 2) * 32).cast());
            let qh = _mm256_loadu_si256(b.as_ptr().add(128 + half * 32).cast());
            let lo = if k / 2 == 0 { ql } else { _mm256_srli_epi16(ql, 4) };
            let hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k as i32)), m2);
            *q = _mm256_or_si256(_mm256_and_si256(lo, m4), _mm256_slli_epi16(hi, 4));
            let (s0, s1) = (b[192 + 2 * j] as i8 as i16, b[193 + 2 * j] as i8 as i16);
            *s = _mm256_set_m128i(_mm_set1_epi16(s1), _mm_set1_epi16(s0));
        }
        let d = _mm256_set1_ps(super::dequant::f16_at(b, 208));
        let c32 = _mm256_set1_epi8(32);
        for (t, a) in acc.iter_mut().enumerate() {
            let k0 = acts.idx(r0 + t, sb * 8);
            let yp = acts.qs.as_ptr().add(k0 * QK);
            let mut v = [_mm256_setzero_si256(); 8];
            for k in 0..8 {
                let y = _mm256_loadu_si256(yp.add(k * QK).cast());
                let p = _mm256_sub_epi16(_mm256_maddubs_epi16(wq[k], y), _mm256_maddubs_epi16(c32, y));
                v[k] = _mm256_madd_epi16(p, wsc[k]);
            }
            let dd = _mm256_mul_ps(d, _mm256_loadu_ps(acts.d.as_ptr().add(k0)));
            *a = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(hsum8(&v)), *a);
        }
    }
}

/// `dot(w, x)` for f32 rows in the 8-lane order of `scalar::dot_f32`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C ([`has_avx2`](super::acts::has_avx2)).
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_f32_avx2(w: &[f32], x: &[f32]) -> f32 {
    let n = w.len().min(x.len());
    unsafe {
        let mut acc = _mm256_setzero_ps();
        let full = n / 8 * 8;
        for i in (0..full).step_by(8) {
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(w.as_ptr().add(i)), _mm256_loadu_ps(x.as_ptr().add(i)), acc);
        }
        if full < n {
            let (mut a, mut b) = ([0f32; 8], [0f32; 8]);
            a[..n - full].copy_from_slice(&w[full..n]);
            b[..n - full].copy_from_slice(&x[full..n]);
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr()), _mm256_loadu_ps(b.as_ptr()), acc);
        }
        reduce8(acc)
    }
}
