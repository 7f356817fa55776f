//! Scaled dot-product attention on the CPU, per (batch, head), in blocks of query rows: a
//! block's scores are computed, masked, soft-maxed and multiplied into V before the next block,
//! so at most one `block × keys` score matrix per thread exists at a time.

use rayon::prelude::*;

use super::{matmul, softmax_rows};
use crate::tensor::Tensor;

/// Query rows per block.
const BLOCK: usize = 64;

/// Which keys each query may attend to.
#[derive(Debug, Clone, Copy)]
pub struct AttentionMask<'a> {
    /// Query `i` sees only keys `j <= i` (decoder-style, CLIP's text tower).
    pub causal: bool,
    /// Per batch element, `1` for real keys and `0` for padding (`[batch × keys]`), as in
    /// transformers' `attention_mask`.
    pub keys: Option<&'a [u32]>,
}

impl AttentionMask<'_> {
    /// No masking (vision encoders).
    pub const NONE: AttentionMask<'static> = AttentionMask { causal: false, keys: None };
}

/// Multi-head attention. `q`, `k`, `v` are `[batch, seq, heads·dim]` as produced by the
/// projections (query sequence may differ from key sequence); the result is `[batch, q_seq,
/// heads·dim]`. Scores are scaled by `1/sqrt(dim)`.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, mask: AttentionMask<'_>) -> Tensor {
    let (batch, q_len, width) = (q.shape()[0], q.shape()[1], q.shape()[2]);
    let kv_len = k.shape()[1];
    assert!(width % heads == 0, "attention: width {width} is not divisible by {heads} heads");
    assert_eq!(k.shape(), v.shape(), "attention: k and v differ");
    assert_eq!((k.shape()[0], k.shape()[2]), (batch, width), "attention: q and k differ");
    if let Some(keys) = mask.keys {
        assert_eq!(keys.len(), batch * kv_len, "attention: key mask has the wrong size");
    }
    let dim = width / heads;
    let scale = 1.0 / (dim as f32).sqrt();
    let (qd, kd, vd) = (q.data(), k.data(), v.data());

    // One output buffer per (batch, head), then scattered into the interleaved layout.
    let per_head: Vec<Vec<f32>> = (0..batch * heads)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / heads, bh % heads);
            let q_off = b * q_len * width + h * dim;
            let kv_off = b * kv_len * width + h * dim;
            let key_mask = mask.keys.map(|m| &m[b * kv_len..(b + 1) * kv_len]);
            let mut out = vec![0.0f32; q_len * dim];
            let mut scores = vec![0.0f32; BLOCK.min(q_len) * kv_len];
            for start in (0..q_len).step_by(BLOCK) {
                let rows = BLOCK.min(q_len - start);
                let s = &mut scores[..rows * kv_len];
                // scores = Q_blk · Kᵀ: Q rows strided by `width`, K read transposed.
                matmul(
                    rows,
                    kv_len,
                    dim,
                    &qd[q_off + start * width..],
                    width,
                    1,
                    &kd[kv_off..],
                    1,
                    width,
                    s,
                    false,
                    false,
                );
                for (r, row) in s.chunks_mut(kv_len).enumerate() {
                    let i = start + r;
                    for (j, val) in row.iter_mut().enumerate() {
                        let hidden = (mask.causal && j > i) || key_mask.is_some_and(|m| m[j] == 0);
                        *val = if hidden { f32::NEG_INFINITY } else { *val * scale };
                    }
                }
                softmax_rows(s, kv_len);
                // out_blk = P · V.
                matmul(rows, dim, kv_len, s, kv_len, 1, &vd[kv_off..], width, 1, &mut out[start * dim..], false, false);
            }
            out
        })
        .collect();
    let mut result = Tensor::zeros([batch, q_len, width]);
    let rd = result.data_mut();
    for (bh, out) in per_head.iter().enumerate() {
        let (b, h) = (bh / heads, bh % heads);
        for i in 0..q_len {
            let dst = b * q_len * width + i * width + h * dim;
            rd[dst..dst + dim].copy_from_slice(&out[i * dim..(i + 1) * dim]);
        }
    }
    result
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
            let got = attention(&q, &k, &v, 4, AttentionMask { causal, keys: mask });
            let want = naive(&q, &k, &v, 4, causal, mask);
            for (a, b) in got.data().iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "causal={causal} mask={}: {a} vs {b}", mask.is_some());
            }
        }
    }

    #[test]
    fn cross_attention_with_one_query() {
        let (q, k, v) = (tensor([3, 1, 16], 0.5), tensor([3, 9, 16], 1.5), tensor([3, 9, 16], 2.5));
        let got = attention(&q, &k, &v, 2, AttentionMask::NONE);
        let want = naive(&q, &k, &v, 2, false, None);
        for (a, b) in got.data().iter().zip(&want) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}
