//! AVX-512 VNNI products for batches: sixteen activation rows (tokens) in the lanes of one 512-bit
//! register, each weight row's four quants broadcast to every lane, over the interleaved 8-row
//! tiles of `packed.rs` (Q8_0, Q4_0, Q4_1). A block's activation registers are loaded once and
//! serve eight weight rows, and every `vpdpbusd` does 64 multiply-adds, against 32 in the 8-row
//! kernel of `x86_packed.rs` where rows share the lanes instead.
//!
//! The arithmetic is the one `scalar.rs` defines (exact integer block dots, then per block
//! `acc = fma(dw*dx, isum, acc)` and for Q4_1 `acc = fma(mw, s, acc)`, blocks in order), so the
//! results agree with every other kernel to the bit. `vpdpbusd` multiplies unsigned by signed
//! bytes: Q8_0's signed weights are offset by 128 and the offset's share, `128 * ys`, subtracted
//! again (exact in i32), as Q4_0's `8 * ys`.

use super::acts::QActs;
use super::packed::{Packed, ROWS, T_Q4_0, T_Q4_1, T_Q8_0};
use super::{GgmlType, QK};
use std::arch::x86_64::*;
use std::ops::Range;

/// Activation rows per pass (the lanes of a 512-bit register of i32).
pub const LANES: usize = 16;

/// Four-quant groups per 32-element block.
const QUADS: usize = QK / 4;

/// Activation rows regrouped for the lane kernel, in chunks of [`LANES`] rows (rows past `m` are
/// zeros, so their lanes compute zeros that nobody reads). Per chunk and block `j`: `q`, eight
/// 16-lane vectors of i32 (vector `c`, lane `t`: quants `4c..4c+4` of row `t`), and the rows'
/// scales `d`, `s = d * ys` and quant sums `ys`, sixteen lanes each.
#[derive(Debug)]
pub struct LaneActs {
    m: usize,
    nb: usize,
    q: Vec<i32>,
    d: Vec<f32>,
    s: Vec<f32>,
    ys: Vec<i32>,
}

impl LaneActs {
    /// Regroups `acts`: row `r`'s values go to lane `r mod 16` of chunk `r / 16` (a transpose
    /// of four-byte words, by plain indexed copies; rows past `m` stay zero).
    pub fn new(acts: &QActs) -> LaneActs {
        let (m, nb) = (acts.m, acts.nb);
        let n = m.div_ceil(LANES) * nb * LANES;
        let mut la = LaneActs { m, nb, q: vec![0; n * QUADS], d: vec![0.0; n], s: vec![0.0; n], ys: vec![0; n] };
        for r in 0..m {
            let (chunk, t) = (r / LANES, r % LANES);
            for j in 0..nb {
                let (base, k) = ((chunk * nb + j) * LANES, acts.idx(r, j));
                for (c, quad) in acts.block(r, j).chunks_exact(4).enumerate() {
                    la.q[base * QUADS + c * LANES + t] =
                        i32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]].map(|b| b as u8));
                }
                (la.d[base + t], la.s[base + t], la.ys[base + t]) = (acts.d[k], acts.s[k], acts.ys[k]);
            }
        }
        la
    }

    /// Chunks of [`LANES`] rows.
    pub fn chunks(&self) -> usize {
        self.m.div_ceil(LANES)
    }
}

/// A group's weights unpacked for the lane kernel: per block, the eight rows' quants as u8 (quad
/// `c` of row `l` at bytes `32c + 4l..`) and their scales `d`, `m` as f32; reused across groups.
#[derive(Debug, Default)]
pub struct Unpacked {
    q: Vec<u8>,
    d: Vec<f32>,
    m: Vec<f32>,
}

/// `out[k][l][t] = dot(weight row 8g + l, activation row 16·(chunks.start + k) + t)`, the group's
/// weights unpacked once into `w` for all the chunks. While the first chunk computes, group
/// `next`'s tiles (the caller's next group, if any) are prefetched, so that streaming the weights
/// from memory overlaps the arithmetic. Returns false, doing nothing, when the shapes do not fit
/// (`g` or a chunk out of range, another row length, `out` too short).
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL and VNNI, AVX2, FMA and F16C.
pub unsafe fn group_lanes(
    p: &Packed,
    g: usize,
    la: &LaneActs,
    chunks: Range<usize>,
    next: Option<usize>,
    w: &mut Unpacked,
    out: &mut [[[f32; LANES]; ROWS]],
) -> bool {
    let fits = g < p.groups() && chunks.end <= la.chunks() && p.nb() == la.nb && out.len() >= chunks.len();
    if !fits || p.group(g).len() != p.nb() * p.tile() {
        return false;
    }
    let prefetch = next.map(|n| p.group(n)).filter(|t| !t.is_empty()).map(|t| (t.as_ptr(), p.tile()));
    // SAFETY: the caller checked the CPU features; the shapes were checked above.
    unsafe {
        match p.ty() {
            GgmlType::Q8_0 => group::<{ T_Q8_0 }>(p, g, la, chunks, prefetch, w, out),
            GgmlType::Q4_0 => group::<{ T_Q4_0 }>(p, g, la, chunks, prefetch, w, out),
            _ => group::<{ T_Q4_1 }>(p, g, la, chunks, prefetch, w, out),
        }
    }
    true
}

/// [`group_lanes`] for one packed type: the group unpacked once, then every chunk, the next
/// group's tiles prefetched during the first.
#[allow(clippy::too_many_arguments)]
unsafe fn group<const T: u8>(
    p: &Packed,
    g: usize,
    la: &LaneActs,
    chunks: Range<usize>,
    mut prefetch: Option<(*const u8, usize)>,
    w: &mut Unpacked,
    out: &mut [[[f32; LANES]; ROWS]],
) {
    // SAFETY: forwarded from `group_lanes`.
    unsafe {
        unpack::<T>(p, g, w);
        for (chunk, out) in chunks.zip(out) {
            lanes::<T>(w, la, chunk, prefetch, out);
            prefetch = None;
        }
    }
}

/// Bytes of one block's unpacked quants (eight rows of 32).
const WBLOCK: usize = QUADS * 32;

/// Unpacks group `g` of `p` into `w`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack<const T: u8>(p: &Packed, g: usize, w: &mut Unpacked) {
    let (nb, tile) = (p.nb(), p.tile());
    w.q.resize(nb * WBLOCK, 0);
    w.d.resize(nb * ROWS, 0.0);
    w.m.resize(nb * ROWS, 0.0);
    let tiles = p.group(g).as_ptr();
    unsafe {
        let m4 = _mm256_set1_epi8(0x0F);
        for j in 0..nb {
            let t = tiles.add(j * tile);
            _mm256_storeu_ps(w.d.as_mut_ptr().add(j * ROWS), _mm256_cvtph_ps(_mm_loadu_si128(t.cast())));
            if T == T_Q4_1 {
                _mm256_storeu_ps(w.m.as_mut_ptr().add(j * ROWS), _mm256_cvtph_ps(_mm_loadu_si128(t.add(16).cast())));
            }
            let wp = w.q.as_mut_ptr().add(j * WBLOCK);
            if T == T_Q8_0 {
                let sign = _mm256_set1_epi8(i8::MIN);
                for c in 0..QUADS {
                    let x = _mm256_loadu_si256(t.add(16 + 32 * c).cast());
                    _mm256_storeu_si256(wp.add(32 * c).cast(), _mm256_xor_si256(x, sign));
                }
            } else {
                // Chunk c: low nibbles are quad 2c (elements 8c..8c+4), high nibbles quad 2c + 1.
                let q = t.add(if T == T_Q4_1 { 32 } else { 16 });
                for c in 0..QUADS / 2 {
                    let x = _mm256_loadu_si256(q.add(32 * c).cast());
                    _mm256_storeu_si256(wp.add(64 * c).cast(), _mm256_and_si256(x, m4));
                    _mm256_storeu_si256(wp.add(64 * c + 32).cast(), _mm256_and_si256(_mm256_srli_epi16(x, 4), m4));
                }
            }
        }
    }
}

/// One unpacked group of eight weight rows against one chunk of sixteen activation rows.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn lanes<const T: u8>(
    w: &Unpacked,
    la: &LaneActs,
    chunk: usize,
    prefetch: Option<(*const u8, usize)>,
    out: &mut [[f32; LANES]; ROWS],
) {
    let nb = la.nb;
    unsafe {
        let mut acc = [_mm512_setzero_ps(); ROWS];
        for j in 0..nb {
            if let Some((tiles, tile)) = prefetch {
                // Tile j of the next group: every 64-byte line it touches.
                let t = tiles.add(j * tile);
                for off in (0..tile).step_by(64).chain([tile - 1]) {
                    _mm_prefetch::<_MM_HINT_T0>(t.add(off).cast());
                }
            }
            let (wp, dw, mw) = (w.q.as_ptr().add(j * WBLOCK), w.d.as_ptr().add(j * ROWS), w.m.as_ptr().add(j * ROWS));
            let base = (chunk * nb + j) * LANES;
            let qa = la.q.as_ptr().add(base * QUADS);
            let a: [__m512i; QUADS] = std::array::from_fn(|c| _mm512_loadu_si512(qa.add(c * LANES).cast()));
            let dx = _mm512_loadu_ps(la.d.as_ptr().add(base));
            let sx = _mm512_loadu_ps(la.s.as_ptr().add(base));
            let offset = match T {
                T_Q8_0 => _mm512_slli_epi32(_mm512_loadu_si512(la.ys.as_ptr().add(base).cast()), 7),
                T_Q4_0 => _mm512_slli_epi32(_mm512_loadu_si512(la.ys.as_ptr().add(base).cast()), 3),
                _ => _mm512_setzero_si512(),
            };
            for (l, acc) in acc.iter_mut().enumerate() {
                // Two chains of `vpdpbusd` (even and odd quads), so each waits half as long.
                let mut isum = [_mm512_setzero_si512(); 2];
                for (c, a) in a.iter().enumerate() {
                    let wl = _mm512_set1_epi32(std::ptr::read_unaligned(wp.add(32 * c + 4 * l).cast::<i32>()));
                    isum[c % 2] = _mm512_dpbusd_epi32(isum[c % 2], wl, *a);
                }
                let mut isum = _mm512_add_epi32(isum[0], isum[1]);
                if T != T_Q4_1 {
                    isum = _mm512_sub_epi32(isum, offset);
                }
                let dd = _mm512_mul_ps(_mm512_set1_ps(*dw.add(l)), dx);
                *acc = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(isum), *acc);
                if T == T_Q4_1 {
                    *acc = _mm512_fmadd_ps(_mm512_set1_ps(*mw.add(l)), sx, *acc);
                }
            }
        }
        for (o, acc) in out.iter_mut().zip(acc) {
            _mm512_storeu_ps(o.as_mut_ptr(), acc);
        }
    }
}

/// Writes a whole block of [`group_lanes`] results transposed: `dst[t·stride + l] = res[l][t]`
/// for the sixteen activation rows `t` and eight weight rows `l` (each row's eight values one
/// 256-bit store, instead of 128 scalar ones), by in-register shuffles.
///
/// # Safety
/// AVX-512 F; `dst + t·stride .. + 8` valid for writes for every `t < 16`.
#[target_feature(enable = "avx2,avx512f")]
pub unsafe fn store_transposed(res: &[[f32; LANES]; ROWS], dst: *mut f32, stride: usize) {
    unsafe {
        let r: [__m512; ROWS] = std::array::from_fn(|l| _mm512_loadu_ps(res[l].as_ptr()));
        // Pairs of rows interleaved: a[2p] holds (row 2p, row 2p + 1) at lanes 4k and 4k + 1 of
        // each 128-bit block k, a[2p + 1] at lanes 4k + 2 and 4k + 3.
        let a: [__m512; ROWS] = std::array::from_fn(|i| {
            if i % 2 == 0 { _mm512_unpacklo_ps(r[i], r[i + 1]) } else { _mm512_unpackhi_ps(r[i - 1], r[i]) }
        });
        // Block k of b[h][i] holds rows 4h..4h + 4 of lane 4k + i.
        let b: [[__m512; 4]; 2] = std::array::from_fn(|h| {
            let (x, y) = (4 * h, 4 * h + 2);
            let pd = _mm512_castps_pd;
            let lo = |u, v| _mm512_castpd_ps(_mm512_unpacklo_pd(pd(u), pd(v)));
            let hi = |u, v| _mm512_castpd_ps(_mm512_unpackhi_pd(pd(u), pd(v)));
            [lo(a[x], a[y]), hi(a[x], a[y]), lo(a[x + 1], a[y + 1]), hi(a[x + 1], a[y + 1])]
        });
        for (i, (&b0, &b1)) in b[0].iter().zip(&b[1]).enumerate() {
            // Blocks [b0 0, b0 1, b1 0, b1 1], then [b0 0, b1 0, b0 1, b1 1]: lanes i and 4 + i
            // (from `low`), 8 + i and 12 + i (from `high`).
            let low = _mm512_shuffle_f32x4::<0b01_00_01_00>(b0, b1);
            let high = _mm512_shuffle_f32x4::<0b11_10_11_10>(b0, b1);
            for (pair, v) in [(0, low), (2, high)] {
                let v = _mm512_shuffle_f32x4::<0b11_01_10_00>(v, v);
                let t = 4 * pair + i;
                _mm256_storeu_ps(dst.add(t * stride), _mm512_castps512_ps256(v));
                _mm256_storeu_ps(
                    dst.add((t + 4) * stride),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))),
                );
            }
        }
    }
}
