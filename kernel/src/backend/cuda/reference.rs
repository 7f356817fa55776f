//! CPU references of the CUDA kernels, written for clarity (f64 accumulation, no tiling): the
//! parity tests compare every kernel with these on fresh random inputs. Layouts and masking
//! follow the kernels' documentation in `cuda/*.cu`.

use super::attention::{AttnShape, Layout};

/// Attention on host data laid out as the kernel's operands; returns O in `o_layout`, `o_len`
/// elements (positions no query writes stay 0).
#[allow(clippy::too_many_arguments)]
pub fn attention(
    (q, k, v): (&[f32], &[f32], &[f32]),
    layouts: [Layout; 4],
    shape: &AttnShape,
    key_mask: Option<&[i32]>,
    scale: f32,
    o_len: usize,
) -> Vec<f32> {
    let s = shape;
    let [lq, lk, lv, lo] = layouts;
    let group = s.heads / s.kv_heads;
    let offset = s.kv_len as i64 - s.q_len as i64;
    let mut out = vec![0f32; o_len];
    let mut scores = vec![0f64; s.kv_len];
    for b in 0..s.batch {
        for h in 0..s.heads {
            let kvh = h / group;
            for i in 0..s.q_len {
                let qi = b * lq.batch + i * lq.row + h * lq.head;
                for (j, sc) in scores.iter_mut().enumerate() {
                    let hidden = (s.causal && j as i64 > i as i64 + offset)
                        || key_mask.is_some_and(|m| m[b * s.kv_len + j] == 0);
                    *sc = if hidden {
                        f64::NEG_INFINITY
                    } else {
                        let kj = b * lk.batch + j * lk.row + kvh * lk.head;
                        (0..s.head_dim).map(|d| f64::from(q[qi + d]) * f64::from(k[kj + d])).sum::<f64>()
                            * f64::from(scale)
                    };
                }
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let oi = b * lo.batch + i * lo.row + h * lo.head;
                if max == f64::NEG_INFINITY {
                    out[oi..oi + s.head_dim].iter_mut().for_each(|x| *x = 0.0);
                    continue;
                }
                let weights: Vec<f64> = scores.iter().map(|&x| (x - max).exp()).collect();
                let sum: f64 = weights.iter().sum();
                for d in 0..s.head_dim {
                    let acc: f64 = weights
                        .iter()
                        .enumerate()
                        .map(|(j, w)| w * f64::from(v[b * lv.batch + j * lv.row + kvh * lv.head + d]))
                        .sum();
                    out[oi + d] = (acc / sum) as f32;
                }
            }
        }
    }
    out
}

/// `c[m, :n] (+)= alpha · x[m, :k] · w[a]ᵀ` per segment (`starts`, `adapters`; adapter < 0 leaves
/// the rows alone), all contiguous: x `[rows, k]`, w `[adapters, n, k]`, c `[rows, n]`.
#[allow(clippy::too_many_arguments)]
pub fn sgmv(
    x: &[f32],
    w: &[f32],
    c: &mut [f32],
    (n, k): (usize, usize),
    alpha: f32,
    accumulate: bool,
    starts: &[usize],
    adapters: &[i32],
) {
    for (seg, &adapter) in adapters.iter().enumerate() {
        if adapter < 0 {
            continue;
        }
        let wa = &w[adapter as usize * n * k..][..n * k];
        for m in starts[seg]..starts[seg + 1] {
            for j in 0..n {
                let dot: f64 = (0..k).map(|t| f64::from(x[m * k + t]) * f64::from(wa[j * k + t])).sum();
                let v = f64::from(alpha) * dot;
                c[m * n + j] = if accumulate { (f64::from(c[m * n + j]) + v) as f32 } else { v as f32 };
            }
        }
    }
}

/// `y = x·Wᵀ + scale·(x·Aₛᵀ)·Bₛᵀ`: x `[rows, d_in]`, w `[d_out, d_in]`, a `[adapters, r, d_in]`,
/// b `[adapters, d_out, r]`; rows of a segment without adapter get the base product only.
#[allow(clippy::too_many_arguments)]
pub fn lora(
    x: &[f32],
    w: &[f32],
    a: &[f32],
    b: &[f32],
    (d_in, d_out, r): (usize, usize, usize),
    scale: f32,
    starts: &[usize],
    adapters: &[i32],
) -> Vec<f32> {
    let rows = *starts.last().unwrap_or(&0);
    let mut y = vec![0f32; rows * d_out];
    sgmv(x, w, &mut y, (d_out, d_in), 1.0, false, &[0, rows], &[0]);
    let mut t = vec![0f32; rows * r];
    sgmv(x, a, &mut t, (r, d_in), scale, false, starts, adapters);
    sgmv(&t, b, &mut y, (d_out, r), 1.0, true, starts, adapters);
    y
}

/// The relative error of `got` against `want`: the largest absolute difference over the largest
/// magnitude of `want` (so elements near zero are judged at the tensor's scale). Any NaN or
/// infinity in `got`, or a length mismatch, gives infinity: a poisoned output never passes.
pub fn rel_error(got: &[f32], want: &[f32]) -> f32 {
    if got.len() != want.len() || got.iter().any(|v| !v.is_finite()) {
        return f32::INFINITY;
    }
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    let diff = got.iter().zip(want).fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    diff / scale
}
