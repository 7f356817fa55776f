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

/// Query rows scored together against each loaded key: the rows of a block share every key
/// load and widening (the query heads of one key/value head in a decoding step).
const ROW_BLOCK: usize = 3;

/// `s[r·n + j] = q_r · k[j·k_row..][..dim]` for `rows` query rows `q_r = q[r·q_row..][..dim]` and
/// `n = s.len() / rows` keys, each as [`super::dot`] computes it: four keys at a time
/// (independent chains of fused multiply-adds), a lone row held in registers, blocks of up to
/// [`ROW_BLOCK`] rows sharing each key's load.
///
/// # Safety
/// AVX2, FMA and F16C; `dim` a multiple of 8 and at most [`MAX_DIM`]; `rows > 0`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn scores<T: KvElem>(
    q: &[f32],
    q_row: usize,
    rows: usize,
    dim: usize,
    k: &[T],
    k_row: usize,
    s: &mut [f32],
) {
    let n = s.len() / rows.max(1);
    // The raw loads below need every row inside `q` and `k` (the caller's operand check); an
    // operand that breaks it takes the portable loop, which indexes with checks.
    let last_k = n.checked_sub(1).map_or(0, |r| r * k_row + dim);
    let last_q = rows.checked_sub(1).map_or(0, |r| r * q_row + dim);
    if last_k > k.len() || last_q > q.len() || k_row < dim || rows == 0 {
        for (r, sr) in s.chunks_mut(n.max(1)).enumerate().take(rows) {
            for (j, out) in sr.iter_mut().enumerate() {
                *out = super::dot(&q[r * q_row..r * q_row + dim], &k[j * k_row..j * k_row + dim]);
            }
        }
        return;
    }
    let most = if avx512vl() { ROW_BLOCK } else { 2 };
    let mut r = 0;
    while r < rows {
        let (block, qr, sr) = ((rows - r).min(most), &q[r * q_row..], &mut s[r * n..]);
        // SAFETY: forwarded; rows r..r + block lie inside `q` and `s` (checked above).
        unsafe {
            match (block, dim / 8) {
                (1, 8) => scores_c::<8, T>(&qr[..dim], k, k_row, &mut sr[..n]),
                (1, 16) => scores_c::<16, T>(&qr[..dim], k, k_row, &mut sr[..n]),
                (1, _) => scores_c::<0, T>(&qr[..dim], k, k_row, &mut sr[..n]),
                (2, c) => scores_two(qr, q_row, c, k, k_row, sr, n),
                (_, c) => scores_three(qr, q_row, c, k, k_row, sr, n),
            }
        }
        r += block;
    }
}

/// [`scores`] for one query row, `C` chunks of eight known at compile time (unrolled, the
/// query and the accumulators in registers), or any count up to `MAX_DIM / 8` when `C` is 0.
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
        let (rows, n) = four_keys(j, s.len());
        let mut acc = [_mm256_setzero_ps(); 4];
        for (c, v) in qv.iter().enumerate().take(chunks) {
            for (a, &r) in acc.iter_mut().zip(&rows) {
                // SAFETY: r < s.len() and `k` holds s.len() rows of k_row >= dim values, so
                // r·k_row + c·8 + 8 <= r·k_row + dim is inside `k`.
                *a = unsafe { _mm256_fmadd_ps(*v, load8!(T, kp.add(r * k_row + c * 8)), *a) };
            }
        }
        // SAFETY: j + n <= s.len().
        unsafe { store_sums(sum_lanes4(acc), s.as_mut_ptr().add(j), n) };
        j += n;
    }
}

/// [`scores`] for a block of `R` query rows (`q_row` apart, `chunks` chunks of eight each) over
/// `n` keys into `s` (row `r` at `r·n`): each key chunk loaded and widened once for the `R`
/// rows, whose chunks are read from memory (L1) as operands of the multiply-adds.
///
/// Inlined into [`scores_two`] and [`scores_three`], which give it its target features: held in
/// registers, `R` rows take `4R` accumulators, `R` query chunks and a key chunk, which for three
/// rows needs the 32 registers of AVX-512 VL (in AVX2's sixteen one accumulator would spill,
/// and its chain go through memory).
///
/// # Safety
/// The conditions of [`scores`] for these `R` rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn scores_rows<const R: usize, T: KvElem>(
    q: &[f32],
    q_row: usize,
    chunks: usize,
    k: &[T],
    k_row: usize,
    s: &mut [f32],
    n: usize,
) {
    let (qp, kp, sp) = (q.as_ptr(), k.as_ptr(), s.as_mut_ptr());
    let mut j = 0;
    while j < n {
        let (keys, m) = four_keys(j, n);
        // SAFETY: AVX (the callers' target features).
        let mut acc = [[unsafe { _mm256_setzero_ps() }; 4]; R];
        for c in 0..chunks {
            for (i, &key) in keys.iter().enumerate() {
                // SAFETY: key < n rows of k_row >= dim values inside `k`; row h < R of `q`
                // holds dim >= c·8 + 8 values (the caller's checks).
                unsafe {
                    let kv = load8!(T, kp.add(key * k_row + c * 8));
                    for (h, acc) in acc.iter_mut().enumerate() {
                        acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(qp.add(h * q_row + c * 8)), kv, acc[i]);
                    }
                }
            }
        }
        for (h, acc) in acc.into_iter().enumerate() {
            // SAFETY: row h of `s` holds n >= j + m values.
            unsafe { store_sums(sum_lanes4(acc), sp.add(h * n + j), m) };
        }
        j += m;
    }
}

/// [`scores_rows`] for two rows, in AVX2's sixteen registers.
///
/// # Safety
/// AVX2, FMA and F16C; the conditions of [`scores`] for these two rows.
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn scores_two<T: KvElem>(
    q: &[f32],
    q_row: usize,
    chunks: usize,
    k: &[T],
    k_row: usize,
    s: &mut [f32],
    n: usize,
) {
    // SAFETY: forwarded.
    unsafe { scores_rows::<2, T>(q, q_row, chunks, k, k_row, s, n) }
}

/// [`scores_rows`] for three rows, in AVX-512 VL's 32 registers.
///
/// # Safety
/// AVX-512 F and VL besides the conditions of [`scores_two`], for three rows.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl")]
#[allow(clippy::too_many_arguments)]
unsafe fn scores_three<T: KvElem>(
    q: &[f32],
    q_row: usize,
    chunks: usize,
    k: &[T],
    k_row: usize,
    s: &mut [f32],
    n: usize,
) {
    // SAFETY: forwarded.
    unsafe { scores_rows::<3, T>(q, q_row, chunks, k, k_row, s, n) }
}

/// Keys `j..j + n` of `len` (`n` up to four) as four row indices, a short tail repeating its
/// last key (computed, not stored), and `n`.
#[inline(always)]
fn four_keys(j: usize, len: usize) -> ([usize; 4], usize) {
    let n = (len - j).min(4);
    ([j, j + 1.min(n - 1), j + 2.min(n - 1), j + 3.min(n - 1)], n)
}

/// Stores the first `n` (up to four) of `sums` at `dst`.
///
/// # Safety
/// `dst` is valid for `n` writes.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn store_sums(sums: __m128, dst: *mut f32, n: usize) {
    if n == 4 {
        // SAFETY: four writes (the caller's condition).
        unsafe { _mm_storeu_ps(dst, sums) };
    } else {
        let mut l = [0f32; 4];
        // SAFETY: `l` holds 4 values; n writes at `dst` (the caller's condition).
        unsafe {
            _mm_storeu_ps(l.as_mut_ptr(), sums);
            std::ptr::copy_nonoverlapping(l.as_ptr(), dst, n);
        }
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

/// `o_r = Σ_j p_r[j] · v[j·v_row..][..dim]` for `rows` rows (`p_r = p[r·n..][..n]` with
/// `n = p.len() / rows`, `o_r = o[r·dim..][..dim]`), over keys with `p_r[j] != 0`, in key order.
/// With AVX-512, sixteen columns per register and blocks of up to [`ROW_BLOCK`] rows sharing
/// each value row's load; else, per row, slabs of up to 64 columns whose accumulators stay in
/// registers.
///
/// # Safety
/// AVX2, FMA and F16C; `dim` a multiple of 8 and at most [`MAX_DIM`]; `v` holds `n` rows;
/// `o` holds `rows·dim` values.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn weighted_sum<T: KvElem>(p: &[f32], rows: usize, v: &[T], v_row: usize, dim: usize, o: &mut [f32]) {
    let n = p.len() / rows.max(1);
    if dim.is_multiple_of(16) && avx512() {
        let mut r = 0;
        while r < rows {
            let block = (rows - r).min(ROW_BLOCK);
            let (pr, or) = (&p[r * n..][..block * n], &mut o[r * dim..][..block * dim]);
            // SAFETY: AVX-512 F is present (checked); forwarded otherwise.
            unsafe {
                match (block, dim / 16) {
                    (1, 4) => weighted_rows::<1, 4, T>(pr, v, v_row, or),
                    (1, 8) => weighted_rows::<1, 8, T>(pr, v, v_row, or),
                    (1, _) => weighted_rows::<1, 0, T>(pr, v, v_row, or),
                    (2, 4) => weighted_rows::<2, 4, T>(pr, v, v_row, or),
                    (2, _) => weighted_rows::<2, 0, T>(pr, v, v_row, or),
                    (_, 4) => weighted_rows::<3, 4, T>(pr, v, v_row, or),
                    (_, _) => weighted_rows::<3, 0, T>(pr, v, v_row, or),
                }
            }
            r += block;
        }
        return;
    }
    for (pr, or) in p.chunks(n.max(1)).zip(o.chunks_mut(dim)).take(rows) {
        for (slab, o) in or.chunks_mut(64).enumerate() {
            let v = &v[slab * 64..];
            // SAFETY: forwarded; each slab is a multiple of 8 columns, at most 64.
            unsafe {
                match o.len() / 8 {
                    8 => weighted_slab::<8, T>(pr, v, v_row, o),
                    _ => weighted_slab::<0, T>(pr, v, v_row, o),
                }
            }
        }
    }
}

/// Whether the CPU has AVX-512 F.
fn avx512() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx512f"))
}

/// Whether the CPU has AVX-512 F and VL (32 registers for 256-bit vectors).
fn avx512vl() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| avx512() && is_x86_feature_detected!("avx512vl"))
}

/// [`weighted_sum`] for a block of `R` rows, sixteen columns per register (each column's sum is
/// the same chain of fused multiply-adds in key order, whatever the register width and however
/// many rows share the load): `C` chunks of sixteen known at compile time (unrolled), or
/// `o.len() / (16·R)` when `C` is 0. A row's zero weights leave its accumulators untouched
/// (masked multiply-adds), as if the key were skipped.
///
/// # Safety
/// AVX-512 F and the conditions of [`weighted_sum`] for these `R` rows (`p`: `R` rows of
/// keys, `o`: `R` rows of `dim`).
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
#[inline]
unsafe fn weighted_rows<const R: usize, const C: usize, T: KvElem>(p: &[f32], v: &[T], v_row: usize, o: &mut [f32]) {
    let (n, dim) = (p.len() / R, o.len() / R);
    let chunks = if C == 0 { dim / 16 } else { C };
    // Chunk c of row h: acc[c][h].
    let mut acc = [[_mm512_setzero_ps(); R]; MAX_DIM / 16];
    for j in 0..n {
        let w: [f32; R] = std::array::from_fn(|h| p[h * n + j]);
        if w.iter().all(|&w| w == 0.0) {
            continue;
        }
        let keep = w.map(|w| if w == 0.0 { 0 } else { 0xFFFF_u16 });
        let row = &v[j * v_row..j * v_row + dim];
        for (c, acc) in acc.iter_mut().enumerate().take(chunks) {
            // SAFETY: c·16 + 16 <= dim = row.len().
            let x = unsafe { load16!(T, row.as_ptr().add(c * 16)) };
            for ((a, &w), &keep) in acc.iter_mut().zip(&w).zip(&keep) {
                *a = _mm512_mask3_fmadd_ps(_mm512_set1_ps(w), x, *a, keep);
            }
        }
    }
    for (c, acc) in acc.iter().enumerate().take(chunks) {
        for (h, a) in acc.iter().enumerate() {
            // SAFETY: h·dim + c·16 + 16 <= R·dim = o.len().
            unsafe { _mm512_storeu_ps(o.as_mut_ptr().add(h * dim + c * 16), *a) };
        }
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
