//! Attention with an additive score bias, for every device: `softmax(q·kᵀ/√d + bias)·v` where
//! batch element `b` and head `h` add `bias[b mod groups, h]` (`[q.len, k.len]`). Swin's window
//! attention (transformers' `SwinAttention`) is this, with the relative position bias plus the
//! shifted-window mask as the bias and one batch element per window. The CPU computes it here
//! (the reference); the GPU in `cuda/biased_attention.cu`.

use rayon::prelude::*;

use super::array::Data;
use super::error::ensure;
use super::{Array, ComputeError, Device, Heads, Kind, Vector, cuda};

/// The host elements of a CPU array.
fn host(a: &Array) -> Result<&[f32], ComputeError> {
    a.host().ok_or_else(|| ComputeError::Unsupported("biased attention: a GPU array given to the CPU".into()))
}

/// The CPU reference: one (batch element, head) per task, each query row's scores, bias added,
/// a max-shifted softmax and the weighted sum of values, in f32.
fn cpu_attention(
    q: &Heads<'_>,
    k: &Heads<'_>,
    v: &Heads<'_>,
    bias: &[f32],
    groups: usize,
) -> Result<Vec<f32>, ComputeError> {
    let (qd, kd, vd) = (host(q.array)?, host(k.array)?, host(v.array)?);
    let (heads, dim, ql, kl) = (q.heads, q.head_dim, q.len, k.len);
    let scale = 1.0 / (dim as f32).sqrt();
    let at = |h: &Heads<'_>, b: usize, pos: usize, head: usize| {
        h.col + b * h.batch_stride() + pos * h.row_stride() + head * h.head_stride()
    };
    let per_head: Vec<Vec<f32>> = (0..q.batch() * heads)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / heads, bh % heads);
            let mut out = vec![0f32; ql * dim];
            let mut s = vec![0f32; kl];
            for i in 0..ql {
                let qi = &qd[at(q, b, i, h)..][..dim];
                let bi = &bias[(((b % groups) * heads + h) * ql + i) * kl..][..kl];
                for (j, sj) in s.iter_mut().enumerate() {
                    let kj = &kd[at(k, b, j, h)..][..dim];
                    *sj = qi.iter().zip(kj).map(|(a, c)| a * c).sum::<f32>() * scale + bi[j];
                }
                let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                s.iter_mut().for_each(|x| *x = (*x - max).exp());
                let inv = 1.0 / s.iter().sum::<f32>();
                let o = &mut out[i * dim..(i + 1) * dim];
                for (j, &p) in s.iter().enumerate() {
                    let vj = &vd[at(v, b, j, h)..][..dim];
                    o.iter_mut().zip(vj).for_each(|(x, &y)| *x += p * inv * y);
                }
            }
            out
        })
        .collect();
    let mut out = vec![0f32; q.batch() * ql * heads * dim];
    for (bh, o) in per_head.iter().enumerate() {
        let (b, h) = (bh / heads, bh % heads);
        for i in 0..ql {
            out[((b * ql + i) * heads + h) * dim..][..dim].copy_from_slice(&o[i * dim..(i + 1) * dim]);
        }
    }
    Ok(out)
}

impl Device {
    /// `softmax(q·kᵀ/√d + bias[b mod groups, h])·v` per batch element `b` and head `h`, with
    /// `bias` (f32 on every device, [`Vector::f32`]) `[groups, heads, q.len, k.len]` and one
    /// key/value head per query head (`d <= 128` on the GPU); `[batch, q.len, heads·d]`.
    pub fn attention_biased(
        &self,
        (q, k, v): (Heads<'_>, Heads<'_>, Heads<'_>),
        bias: &Vector,
        groups: usize,
    ) -> Result<Array, ComputeError> {
        for (view, what) in [(&q, "queries"), (&k, "keys"), (&v, "values")] {
            view.check(what)?;
        }
        let batch = q.batch();
        ensure!(k.batch() == batch && v.batch() == batch, "biased attention: batch sizes differ");
        ensure!(q.heads == k.heads && k.heads == v.heads && k.len == v.len, "biased attention: views differ");
        ensure!(q.head_dim == k.head_dim && k.head_dim == v.head_dim, "biased attention: head sizes differ");
        ensure!(
            groups > 0 && batch.is_multiple_of(groups) && bias.len() == groups * q.heads * q.len * k.len,
            "biased attention: a bias of {} for {groups} groups of {} heads x {} x {} over {batch} batch elements",
            bias.len(),
            q.heads,
            q.len,
            k.len
        );
        let shape = vec![batch, q.len, q.heads * q.head_dim];
        match &self.kind {
            Kind::Cpu => Ok(Array { shape, data: Data::Host(cpu_attention(&q, &k, &v, &bias.host, groups)?) }),
            Kind::Cuda(g) => {
                let out = cuda::biased::attention(g, self.precision.into(), (q, k, v), bias, groups)?;
                Ok(Array { shape, data: Data::Gpu(out) })
            }
        }
    }
}
