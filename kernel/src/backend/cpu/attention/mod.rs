//! Scaled dot-product attention on the CPU, per (batch, head), in blocks of query rows: a
//! block's scores are computed, masked, soft-maxed and multiplied into V before the next block,
//! so at most one `block × keys` score matrix per thread exists at a time. Keys and values are
//! f32, or f16 when they come from a half-precision KV cache (llama.cpp's default cache type,
//! `ggml_type_f16` in `llama_context_params`): the decode loops widen them on load, the blocked
//! path widens one head at a time.

use rayon::prelude::*;

use super::{matmul, softmax_rows};
use crate::tensor::Tensor;

/// Query rows per block.
const BLOCK: usize = 64;

/// What keys and values may be stored as: f32, or f16 (a half-precision KV cache). Queries,
/// scores and results are f32 whatever the keys are; an f16 value widens exactly.
pub trait KvElem: Copy + Send + Sync + 'static {
    /// Whether the type is f16 (the SIMD loops widen it with F16C as they load it).
    const HALF: bool;
    /// The value as f32.
    fn to_f32(self) -> f32;
    /// The slice itself when the type is f32.
    fn as_f32(s: &[Self]) -> Option<&[f32]>;
}

impl KvElem for f32 {
    const HALF: bool = false;
    fn to_f32(self) -> f32 {
        self
    }
    fn as_f32(s: &[f32]) -> Option<&[f32]> {
        Some(s)
    }
}

impl KvElem for half::f16 {
    const HALF: bool = true;
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }
    fn as_f32(_: &[half::f16]) -> Option<&[f32]> {
        None
    }
}

/// One operand of [`attention`]: `heads` heads of `dim` elements over `len` positions of
/// `batch` elements; element `x` of head `h` at position `i` of batch element `b` is at
/// `data[offset + b·batch_stride + i·row_stride + h·head_stride + x]` (`head_stride` is `dim`
/// where heads lie side by side in a row, `capacity·dim` in a head-major KV cache).
#[derive(Debug, Clone, Copy)]
pub struct Operand<'a, T = f32> {
    /// The elements.
    pub data: &'a [T],
    /// The first element of head 0 at position 0 of batch element 0.
    pub offset: usize,
    /// Elements between positions.
    pub row_stride: usize,
    /// Elements between heads.
    pub head_stride: usize,
    /// Elements between batch elements.
    pub batch_stride: usize,
    /// Heads.
    pub heads: usize,
    /// Positions.
    pub len: usize,
}

impl<T> Operand<'_, T> {
    /// The index of element 0 of head `h` at position 0 of batch element `b`.
    pub(crate) fn head_start(&self, b: usize, h: usize) -> usize {
        self.offset + b * self.batch_stride + h * self.head_stride
    }
}

impl<T: KvElem> Operand<'_, T> {
    /// The first `rows` positions of the head starting at `off`, as f32 rows of `dim` and their
    /// stride: the operand's own elements when they are f32, else widened into `scratch`.
    fn head_f32<'s>(&'s self, off: usize, rows: usize, dim: usize, scratch: &'s mut Vec<f32>) -> (&'s [f32], usize) {
        if let Some(data) = T::as_f32(self.data) {
            return (&data[off..], self.row_stride);
        }
        scratch.clear();
        for r in 0..rows {
            let row = &self.data[off + r * self.row_stride..][..dim];
            scratch.extend(row.iter().map(|v| v.to_f32()));
        }
        (scratch, dim)
    }
}

/// Which keys each query may attend to.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttentionMask<'a> {
    /// Query `i` sees only keys `j <= i + kv_len - q_len` (decoder-style, CLIP's text tower).
    pub causal: bool,
    /// Per batch element, `1` for real keys and `0` for padding (`[batch × kv_len]`), as in
    /// transformers' `attention_mask`.
    pub keys: Option<&'a [u32]>,
}

impl AttentionMask<'_> {
    /// No masking (vision encoders).
    pub const NONE: AttentionMask<'static> = AttentionMask { causal: false, keys: None };
}

/// Multi-head attention with grouped-query heads: query head `h` reads key/value head
/// `h / (q.heads / k.heads)`. Scores are scaled by `1/sqrt(dim)`. Returns `[batch, q.len,
/// q.heads·dim]`. The caller checks that every operand lies inside its slice (`backend::ops`).
pub fn attention<T: KvElem>(
    q: Operand<'_>,
    k: Operand<'_, T>,
    v: Operand<'_, T>,
    batch: usize,
    dim: usize,
    mask: AttentionMask<'_>,
) -> Vec<f32> {
    let (heads, q_len) = (q.heads, q.len);
    let width = heads * dim;
    let mut result = vec![0.0f32; batch * q_len * width];
    if q_len == 1 {
        // One query (a decoding step): the query heads of key/value head bk are the bk-th run of
        // `group·dim` results, computed together (each key and value loaded once for all of
        // them) and written in place.
        let group = heads / k.heads.max(1);
        result
            .par_chunks_mut((group * dim).max(1))
            .enumerate()
            .for_each(|(bk, out)| step(&q, &k, &v, dim, mask, bk, out));
        return result;
    }
    let per_head: Vec<Vec<f32>> = (0..batch * heads)
        .into_par_iter()
        .map(|bh| {
            let mut out = vec![0.0f32; q_len * dim];
            head(&q, &k, &v, dim, mask, bh, &mut out);
            out
        })
        .collect();
    for (bh, out) in per_head.iter().enumerate() {
        let (b, h) = (bh / heads, bh % heads);
        for i in 0..q_len {
            let dst = b * q_len * width + i * width + h * dim;
            result[dst..dst + dim].copy_from_slice(&out[i * dim..(i + 1) * dim]);
        }
    }
    result
}

/// One (batch element, key/value head) of a decoding step (one query), `bk = b·k.heads + kh`:
/// the query heads reading it, `kh·group..(kh + 1)·group`, as the rows of one block; their
/// results into `out` (`group·dim`, head after head).
fn step<T: KvElem>(
    q: &Operand<'_>,
    k: &Operand<'_, T>,
    v: &Operand<'_, T>,
    dim: usize,
    mask: AttentionMask<'_>,
    bk: usize,
    out: &mut [f32],
) {
    let (kv_len, kv_heads) = (k.len, k.heads.max(1));
    let group = q.heads / kv_heads;
    let (b, kh) = (bk / kv_heads, bk % kv_heads);
    let (q_off, k_off, v_off) = (q.head_start(b, kh * group), k.head_start(b, kh), v.head_start(b, kh));
    let key_mask = mask.keys.map(|m| &m[b * kv_len..(b + 1) * kv_len]);
    let scale = 1.0 / (dim as f32).sqrt();
    let mut s = vec![0.0f32; group * kv_len];
    let qs = &q.data[q_off..];
    few_rows_scores(group, kv_len, dim, qs, q.head_stride, &k.data[k_off..], k.row_stride, &mut s);
    // One query at the end of the sequence: causal or not, every key is in its past.
    for row in s.chunks_mut(kv_len.max(1)) {
        mask_scale(row, kv_len, key_mask, scale);
    }
    softmax_rows(&mut s, kv_len.max(1));
    few_rows_values(group, kv_len, dim, &s, &v.data[v_off..], v.row_stride, out);
}

/// One (batch element, query head) of [`attention`], `bh = b·heads + h`: its `q.len × dim`
/// results into `out`.
fn head<T: KvElem>(
    q: &Operand<'_>,
    k: &Operand<'_, T>,
    v: &Operand<'_, T>,
    dim: usize,
    mask: AttentionMask<'_>,
    bh: usize,
    out: &mut [f32],
) {
    let (heads, q_len, kv_len) = (q.heads, q.len, k.len);
    let group = heads / k.heads.max(1);
    let scale = 1.0 / (dim as f32).sqrt();
    let shift = kv_len.saturating_sub(q_len);
    let (b, h) = (bh / heads, bh % heads);
    let kh = h / group.max(1);
    let (q_off, k_off, v_off) = (q.head_start(b, h), k.head_start(b, kh), v.head_start(b, kh));
    let key_mask = mask.keys.map(|m| &m[b * kv_len..(b + 1) * kv_len]);
    let mut scores = vec![0.0f32; BLOCK.min(q_len) * kv_len];
    let (mut k32, mut v32) = (Vec::new(), Vec::new());
    for start in (0..q_len).step_by(BLOCK) {
        let rows = BLOCK.min(q_len - start);
        let s = &mut scores[..rows * kv_len];
        // scores = Q_blk · Kᵀ: Q rows strided, K read transposed.
        let qs = &q.data[q_off + start * q.row_stride..];
        if rows <= FEW {
            few_rows_scores(rows, kv_len, dim, qs, q.row_stride, &k.data[k_off..], k.row_stride, s);
        } else {
            let (ks, k_row) = k.head_f32(k_off, kv_len, dim, &mut k32);
            matmul(rows, kv_len, dim, qs, q.row_stride, 1, ks, 1, k_row, s, false, false);
        }
        for (r, row) in s.chunks_mut(kv_len).enumerate() {
            // Keys past `seen` are in the future of query `start + r`.
            let seen = if mask.causal { (start + r + shift + 1).min(kv_len) } else { kv_len };
            mask_scale(row, seen, key_mask, scale);
        }
        softmax_rows(s, kv_len);
        // out_blk = P · V.
        if rows <= FEW {
            few_rows_values(rows, kv_len, dim, s, &v.data[v_off..], v.row_stride, &mut out[start * dim..]);
        } else {
            let (vs, v_row) = v.head_f32(v_off, kv_len, dim, &mut v32);
            matmul(rows, dim, kv_len, s, kv_len, 1, vs, v_row, 1, &mut out[start * dim..], false, false);
        }
    }
}

/// Scales the scores of keys `..seen` of one query, sets those of padding keys and of keys past
/// `seen` (its future) to −∞.
fn mask_scale(row: &mut [f32], seen: usize, key_mask: Option<&[u32]>, scale: f32) {
    let (visible, future) = row.split_at_mut(seen);
    match key_mask {
        Some(m) => visible.iter_mut().zip(m).for_each(|(val, &keep)| {
            *val = if keep == 0 { f32::NEG_INFINITY } else { *val * scale };
        }),
        None => visible.iter_mut().for_each(|val| *val *= scale),
    }
    future.fill(f32::NEG_INFINITY);
}

/// Query rows up to which plain loops beat a general matrix product (a decoding step has one).
const FEW: usize = 4;

/// `s[r, j] = q_r · k_j` for a few query rows, eight independent lanes per dot product (AVX2
/// where the CPU has it: one register of lanes, the same sums, the rows sharing each key load).
#[allow(clippy::too_many_arguments)]
fn few_rows_scores<T: KvElem>(
    rows: usize,
    kv_len: usize,
    dim: usize,
    q: &[f32],
    q_row: usize,
    k: &[T],
    k_row: usize,
    s: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if rows > 0 && dim.is_multiple_of(8) && dim <= x86::MAX_DIM && x86::available() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked); `k` holds `kv_len` rows of `k_row`
        // with `dim` values each (the caller's operand check; the kernel checks it again).
        unsafe { x86::scores(q, q_row, rows, dim, k, k_row, &mut s[..rows * kv_len]) };
        return;
    }
    for r in 0..rows {
        let qr = &q[r * q_row..r * q_row + dim];
        for (j, out) in s[r * kv_len..(r + 1) * kv_len].iter_mut().enumerate() {
            *out = dot(qr, &k[j * k_row..j * k_row + dim]);
        }
    }
}

/// `out[r] = Σ_j p[r, j] · v_j` for a few query rows, in key order by fused multiply-adds (keys of
/// weight 0 skipped; AVX-512 where the CPU has it, the rows sharing each value load).
fn few_rows_values<T: KvElem>(
    rows: usize,
    kv_len: usize,
    dim: usize,
    p: &[f32],
    v: &[T],
    v_row: usize,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if rows > 0 && dim.is_multiple_of(8) && dim <= x86::MAX_DIM && x86::available() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked); `v` holds `kv_len` rows of `v_row`
        // with `dim` values each (the caller's operand check), `out` holds `rows·dim`.
        unsafe { x86::weighted_sum(&p[..rows * kv_len], rows, v, v_row, dim, &mut out[..rows * dim]) };
        return;
    }
    for r in 0..rows {
        let o = &mut out[r * dim..(r + 1) * dim];
        o.fill(0.0);
        for (j, &w) in p[r * kv_len..(r + 1) * kv_len].iter().enumerate() {
            if w != 0.0 {
                let row = &v[j * v_row..j * v_row + dim];
                o.iter_mut().zip(row).for_each(|(a, b)| *a = w.mul_add(b.to_f32(), *a));
            }
        }
    }
}

/// A dot product in eight lanes of fused multiply-adds (then summed in a fixed order).
#[inline]
fn dot<T: KvElem>(a: &[f32], b: &[T]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y.to_f32()).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            lanes[i] = x[i].mul_add(y[i].to_f32(), lanes[i]);
        }
    }
    sum_lanes(&lanes) + tail
}

/// The fixed-order sum of eight lanes shared by [`dot`] and its AVX2 twin.
#[inline(always)]
fn sum_lanes(l: &[f32; 8]) -> f32 {
    ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]))
}

#[cfg(target_arch = "x86_64")]
mod x86;

/// A contiguous `[batch, seq, heads·dim]` tensor as an [`Operand`].
pub fn contiguous(t: &Tensor, heads: usize) -> Operand<'_> {
    let (seq, width) = (t.shape()[1], t.shape()[2]);
    let head_stride = width / heads.max(1);
    Operand { data: t.data(), offset: 0, row_stride: width, head_stride, batch_stride: seq * width, heads, len: seq }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention written out naively, materialising the full score matrix.
    fn naive(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool, keys: Option<&[u32]>) -> Vec<f32> {
        let (b, s, w) = (q.shape()[0], q.shape()[1], q.shape()[2]);
        let t = k.shape()[1];
        let d = w / heads;
        let mut out = vec![0.0; b * s * w];
        for bi in 0..b {
            for h in 0..heads {
                for i in 0..s {
                    let mut sc: Vec<f32> = (0..t)
                        .map(|j| {
                            let hidden = (causal && j > i) || keys.is_some_and(|m| m[bi * t + j] == 0);
                            if hidden {
                                return f32::NEG_INFINITY;
                            }
                            (0..d)
                                .map(|x| {
                                    q.data()[bi * s * w + i * w + h * d + x] * k.data()[bi * t * w + j * w + h * d + x]
                                })
                                .sum::<f32>()
                                / (d as f32).sqrt()
                        })
                        .collect();
                    softmax_rows(&mut sc, t);
                    for x in 0..d {
                        out[bi * s * w + i * w + h * d + x] =
                            (0..t).map(|j| sc[j] * v.data()[bi * t * w + j * w + h * d + x]).sum();
                    }
                }
            }
        }
        out
    }

    fn tensor(shape: [usize; 3], seed: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(shape, (0..n).map(|i| ((i as f32 + seed) * 0.731).sin()).collect())
    }

    #[test]
    fn blocked_attention_matches_naive() {
        // 150 query rows: three blocks, the last one partial.
        let (q, k, v) = (tensor([2, 150, 32], 0.0), tensor([2, 150, 32], 1.0), tensor([2, 150, 32], 2.0));
        let mut keys = vec![1u32; 300];
        keys[140..150].iter_mut().for_each(|m| *m = 0);
        for (causal, mask) in [(false, None), (true, None), (true, Some(&keys[..])), (false, Some(&keys[..]))] {
            let (cq, ck, cv) = (contiguous(&q, 4), contiguous(&k, 4), contiguous(&v, 4));
            let got = attention(cq, ck, cv, 2, 8, AttentionMask { causal, keys: mask });
            let want = naive(&q, &k, &v, 4, causal, mask);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "causal={causal} mask={}: {a} vs {b}", mask.is_some());
            }
        }
    }

    /// The decode loops on keys stored as `T` against the portable ones on the same values.
    fn decode_loops_match_portable<T: KvElem>(from: fn(f32) -> T) {
        // Head sizes for every SIMD path (AVX2 only at 40; AVX-512 unrolled at 64 and 128, not
        // at 48) and key counts with every tail of the four-key groups.
        for (dim, kv) in [(40, 37), (48, 38), (64, 37), (64, 39), (128, 40)] {
            let q = tensor([1, 3, dim], 0.25);
            let k: Vec<T> = tensor([1, kv, dim], 0.75).data().iter().map(|&x| from(x)).collect();
            let mut fast = vec![0f32; 3 * kv];
            few_rows_scores(3, kv, dim, q.data(), dim, &k, dim, &mut fast);
            for r in 0..3 {
                for j in 0..kv {
                    let want = dot(&q.data()[r * dim..][..dim], &k[j * dim..][..dim]);
                    assert_eq!(fast[r * kv + j].to_bits(), want.to_bits(), "scores, dim {dim}, key {j}");
                }
            }
            let mut p = fast.clone();
            p[5] = 0.0;
            let mut got = vec![0f32; 3 * dim];
            few_rows_values(3, kv, dim, &p, &k, dim, &mut got);
            for r in 0..3 {
                let mut want = vec![0f32; dim];
                for j in 0..kv {
                    let w = p[r * kv + j];
                    if w != 0.0 {
                        want.iter_mut().zip(&k[j * dim..][..dim]).for_each(|(a, b)| *a = w.mul_add(b.to_f32(), *a));
                    }
                }
                for (g, w) in got[r * dim..][..dim].iter().zip(want) {
                    assert_eq!(g.to_bits(), w.to_bits(), "values, dim {dim}");
                }
            }
        }
    }

    #[test]
    fn decode_loops_match_the_portable_ones_to_the_bit() {
        decode_loops_match_portable::<f32>(|x| x);
        decode_loops_match_portable::<half::f16>(half::f16::from_f32);
    }

    /// `o`'s layout over other elements.
    fn stored<'a, T>(o: Operand<'_>, data: &'a [T]) -> Operand<'a, T> {
        let Operand { offset, row_stride, head_stride, batch_stride, heads, len, .. } = o;
        Operand { data, offset, row_stride, head_stride, batch_stride, heads, len }
    }

    #[test]
    fn half_keys_and_values_give_attention_over_their_widened_values() {
        // Both paths (the decode loops for one query, the blocked products for 70), masked.
        for q_len in [1, 70] {
            let (q, k, v) = (tensor([2, q_len, 32], 0.0), tensor([2, 70, 32], 1.0), tensor([2, 70, 32], 2.0));
            let half = |t: &Tensor| t.data().iter().map(|&x| half::f16::from_f32(x)).collect::<Vec<_>>();
            let widen =
                |h: &[half::f16], t: &Tensor| Tensor::new(t.shape().to_vec(), h.iter().map(|x| x.to_f32()).collect());
            let (kh, vh) = (half(&k), half(&v));
            let (kw, vw) = (widen(&kh, &k), widen(&vh, &v));
            let mut keys = vec![1u32; 140];
            keys[3] = 0;
            let mask = AttentionMask { causal: true, keys: Some(&keys) };
            let got = attention(
                contiguous(&q, 4),
                stored(contiguous(&k, 4), &kh),
                stored(contiguous(&v, 4), &vh),
                2,
                8,
                mask,
            );
            let want = attention(contiguous(&q, 4), contiguous(&kw, 4), contiguous(&vw, 4), 2, 8, mask);
            for (a, b) in got.iter().zip(&want) {
                assert_eq!(a.to_bits(), b.to_bits(), "{q_len} queries");
            }
        }
    }

    #[test]
    fn grouped_query_heads_of_a_decoding_step_equal_each_head_alone() {
        // A decoding step scores the query heads of one key/value head together (blocks of up to
        // three rows sharing each key load); every head's result must be the bits it gets alone,
        // i.e. with its key/value head repeated for it (one query head per key/value head).
        for (heads, kv_heads, dim) in [(12, 4, 64), (12, 3, 64), (14, 2, 64), (8, 2, 128), (6, 2, 48), (6, 3, 40)] {
            let (batch, len, group) = (2, 37, heads / kv_heads);
            let q = tensor([batch, 1, heads * dim], 0.3);
            let (k, v) = (tensor([batch, len, kv_heads * dim], 1.1), tensor([batch, len, kv_heads * dim], 2.7));
            // Key/value head kh repeated for each of its query heads.
            let repeat = |t: &Tensor| {
                let mut out = Vec::with_capacity(batch * len * heads * dim);
                for row in t.data().chunks(kv_heads * dim) {
                    for h in 0..heads {
                        out.extend_from_slice(&row[(h / group) * dim..][..dim]);
                    }
                }
                Tensor::new([batch, len, heads * dim], out)
            };
            let (kr, vr) = (repeat(&k), repeat(&v));
            let mut keys = vec![1u32; batch * len];
            keys[len + 2] = 0;
            for mask in [AttentionMask { causal: true, keys: Some(&keys) }, AttentionMask::NONE] {
                let grouped = attention(
                    contiguous(&q, heads),
                    contiguous(&k, kv_heads),
                    contiguous(&v, kv_heads),
                    batch,
                    dim,
                    mask,
                );
                let alone =
                    attention(contiguous(&q, heads), contiguous(&kr, heads), contiguous(&vr, heads), batch, dim, mask);
                for (i, (a, b)) in grouped.iter().zip(&alone).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{heads} heads over {kv_heads}, dim {dim}, element {i}");
                }
            }
        }
    }

    #[test]
    fn cross_attention_with_one_query() {
        let (q, k, v) = (tensor([3, 1, 16], 0.5), tensor([3, 9, 16], 1.5), tensor([3, 9, 16], 2.5));
        let got = attention(contiguous(&q, 2), contiguous(&k, 2), contiguous(&v, 2), 3, 8, AttentionMask::NONE);
        let want = naive(&q, &k, &v, 2, false, None);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}
