//! The decode-time loops in AVX2 + FMA, with the arithmetic of the portable ones (fused
//! multiply-adds, the same lanes and order), so results do not depend on the CPU. f16 keys and
//! values are widened as they are loaded (F16C, `vcvtph2ps`), exactly.

use super::KvElem;
use std::arch::x86_64::*;

/// Head sizes [`scores`] and [`weighted_sum`] keep in registers.
pub(super) const MAX_DIM: usize = 128;

/// Whether the CPU has AVX2, FMA and F16C.
pub(super) fn available() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
    })
}

/// Eight elements at `p` (a `*const T`) widened to f32.
macro_rules! load8 {
    ($t:ty, $p:expr) => {
        if <$t as KvElem>::HALF { _mm256_cvtph_ps(_mm_loadu_si128($p.cast())) } else { _mm256_loadu_ps($p.cast()) }
    };
}

/// Sixteen elements at `p` (a `*const T`) widened to f32.
macro_rules! load16 {
    ($t:ty, $p:expr) => {
        if <$t as KvElem>::HALF { _mm512_cvtph_ps(_mm256_loadu_si256($p.cast())) } else { _mm512_loadu_ps($p.cast()) }
    };
}

/// `s[j] = q · k[j·k_row..][..q.len()]`, each as [`super::dot`] computes it: `q` held in
/// registers, four keys at a time (independent chains of fused multiply-adds).
///
/// # Safety
/// AVX2, FMA and F16C; `q.len()` a multiple of 8 and at most [`MAX_DIM`]; `k` holds
/// `s.len()` rows.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn scores<T: KvElem>(q: &[f32], k: &[T], k_row: usize, s: &mut [f32]) {
    // The raw loads below need every row inside `k` (the caller's operand check); an
    // operand that breaks it takes the portable loop, which indexes with checks.
    let last = s.len().checked_sub(1).map_or(0, |r| r * k_row + q.len());
    if last > k.len() || k_row < q.len() {
        for (j, out) in s.iter_mut().enumerate() {
            *out = super::dot(q, &k[j * k_row..j * k_row + q.len()]);
        }
        return;
    }
    // SAFETY: forwarded; the chunk count is q.len() / 8.
    unsafe {
        match q.len() / 8 {
            8 => scores_c::<8, T>(q, k, k_row, s),
            16 => scores_c::<16, T>(q, k, k_row, s),
            c => scores_c::<0, T>(&q[..c * 8], k, k_row, s),
        }
    }
}

/// [`scores`] with `C` chunks of eight known at compile time (unrolled, accumulators in
/// registers), or any count up to `MAX_DIM / 8` when `C` is 0.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn scores_c<const C: usize, T: KvElem>(q: &[f32], k: &[T], k_row: usize, s: &mut [f32]) {
    let chunks = if C == 0 { q.len() / 8 } else { C };
    let mut qv = [_mm256_setzero_ps(); MAX_DIM / 8];
    for (c, v) in qv.iter_mut().enumerate().take(chunks) {
        // SAFETY: c·8 + 8 <= q.len().
        *v = unsafe { _mm256_loadu_ps(q.as_ptr().add(c * 8)) };
    }
    let kp = k.as_ptr();
    let mut j = 0;
    while j < s.len() {
        let n = (s.len() - j).min(4);
        // Rows j..j + n; a short tail repeats its last row (computed, not stored).
        let rows: [usize; 4] = [j, j + 1.min(n - 1), j + 2.min(n - 1), j + 3.min(n - 1)];
        let mut acc = [_mm256_setzero_ps(); 4];
        for (c, v) in qv.iter().enumerate().take(chunks) {
            for (a, &r) in acc.iter_mut().zip(&rows) {
                // SAFETY: r < s.len() and `k` holds s.len() rows of k_row >= dim values, so
                // r·k_row + c·8 + 8 <= r·k_row + dim is inside `k`.
                *a = unsafe { _mm256_fmadd_ps(*v, load8!(T, kp.add(r * k_row + c * 8)), *a) };
            }
        }
        let sums = sum_lanes4(acc);
        if n == 4 {
            // SAFETY: j + 4 <= s.len().
            unsafe { _mm_storeu_ps(s.as_mut_ptr().add(j), sums) };
        } else {
            let mut l = [0f32; 4];
            // SAFETY: `l` holds 4 values.
            unsafe { _mm_storeu_ps(l.as_mut_ptr(), sums) };
            s[j..j + n].copy_from_slice(&l[..n]);
        }
        j += n;
    }
}

/// [`super::sum_lanes`] of four registers at once: `((l0+l4) + (l1+l5)) + ((l2+l6) +
/// (l3+l7))` per register, the same additions in the same order, by halves and two rounds
/// of pairwise horizontal adds.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn sum_lanes4(a: [__m256; 4]) -> __m128 {
    // Per register: [l0+l4, l1+l5, l2+l6, l3+l7].
    let h = a.map(|v| _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v)));
    // [(l0+l4)+(l1+l5), (l2+l6)+(l3+l7)] of registers 0, 1, then 2, 3; then the final sums.
    _mm_hadd_ps(_mm_hadd_ps(h[0], h[1]), _mm_hadd_ps(h[2], h[3]))
}

/// `o = Σ_j p[j] · v[j·v_row..][..o.len()]` over keys with `p[j] != 0`, in key order, by
/// slabs of up to 64 columns whose accumulators stay in registers.
///
/// # Safety
/// AVX2, FMA and F16C; `o.len()` a multiple of 8 and at most [`MAX_DIM`]; `v` holds
/// `p.len()` rows.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn weighted_sum<T: KvElem>(p: &[f32], v: &[T], v_row: usize, o: &mut [f32]) {
    if o.len().is_multiple_of(16) && avx512() {
        // SAFETY: AVX-512 F is present (checked); forwarded otherwise.
        unsafe {
            match o.len() / 16 {
                4 => weighted_sum_512::<4, T>(p, v, v_row, o),
                8 => weighted_sum_512::<8, T>(p, v, v_row, o),
                _ => weighted_sum_512::<0, T>(p, v, v_row, o),
            }
        }
        return;
    }
    for (slab, o) in o.chunks_mut(64).enumerate() {
        let v = &v[slab * 64..];
        // SAFETY: forwarded; each slab is a multiple of 8 columns, at most 64.
        unsafe {
            match o.len() / 8 {
                8 => weighted_slab::<8, T>(p, v, v_row, o),
                _ => weighted_slab::<0, T>(p, v, v_row, o),
            }
        }
    }
}

/// Whether the CPU has AVX-512 F.
fn avx512() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx512f"))
}

/// [`weighted_sum`] sixteen columns per register (each column's sum is the same chain of
/// fused multiply-adds in key order, whatever the register width), `o.len()` a multiple
/// of 16 up to [`MAX_DIM`]: `C` chunks of sixteen known at compile time (unrolled), or
/// `o.len() / 16` when `C` is 0.
///
/// # Safety
/// AVX-512 F and the conditions of [`weighted_sum`].
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
#[inline]
unsafe fn weighted_sum_512<const C: usize, T: KvElem>(p: &[f32], v: &[T], v_row: usize, o: &mut [f32]) {
    let (cols, chunks) = (o.len(), if C == 0 { o.len() / 16 } else { C });
    let mut acc = [_mm512_setzero_ps(); MAX_DIM / 16];
    for (j, &w) in p.iter().enumerate() {
        if w == 0.0 {
            continue;
        }
        let (wv, row) = (_mm512_set1_ps(w), &v[j * v_row..j * v_row + cols]);
        for (c, a) in acc.iter_mut().enumerate().take(chunks) {
            // SAFETY: c·16 + 16 <= cols = row.len().
            *a = unsafe { _mm512_fmadd_ps(wv, load16!(T, row.as_ptr().add(c * 16)), *a) };
        }
    }
    for (c, a) in acc.iter().enumerate().take(chunks) {
        // SAFETY: c·16 + 16 <= o.len().
        unsafe { _mm512_storeu_ps(o.as_mut_ptr().add(c * 16), *a) };
    }
}

/// One slab of [`weighted_sum`]: `C` chunks of eight known at compile time, or `o.len() / 8`
/// when `C` is 0.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn weighted_slab<const C: usize, T: KvElem>(p: &[f32], v: &[T], v_row: usize, o: &mut [f32]) {
    let (cols, chunks) = (o.len(), if C == 0 { o.len() / 8 } else { C });
    let mut acc = [_mm256_setzero_ps(); 8];
    for (j, &w) in p.iter().enumerate() {
        if w == 0.0 {
            continue;
        }
        let (wv, row) = (_mm256_set1_ps(w), &v[j * v_row..j * v_row + cols]);
        for (c, a) in acc.iter_mut().enumerate().take(chunks) {
            // SAFETY: c·8 + 8 <= cols = row.len().
            *a = unsafe { _mm256_fmadd_ps(wv, load8!(T, row.as_ptr().add(c * 8)), *a) };
        }
    }
    for (c, a) in acc.iter().enumerate().take(chunks) {
        // SAFETY: c·8 + 8 <= o.len().
        unsafe { _mm256_storeu_ps(o.as_mut_ptr().add(c * 8), *a) };
    }
}
