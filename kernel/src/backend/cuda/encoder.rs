//! CLIP and SigLIP towers on the GPU: weights uploaded once (bf16, f16 or f32), activations kept
//! on the device from the pixels (im2col + GEMM patch embedding) to the pooled, projected
//! features. Each pre-norm layer is: layer norm, one fused QKV GEMM (+bias), the fused attention
//! kernel reading Q, K and V in place from the packed QKV rows, the output GEMM accumulated
//! into the residual stream (cuBLAS beta = 1) + bias, layer norm, fc1 GEMM + bias + activation,
//! fc2 GEMM into the residual + bias. Same operations, in the same order, as the CPU towers
//! (`model/clip`, `model/siglip`, `model/nn.rs`), which are the reference.

use super::attention::{AttnArgs, AttnShape, Layout, attention};
use super::elementwise::{bias_act, gather_rows, im2col, layer_norm, vit_tokens};
use super::gemm::linear;
use super::{CudaError, DType, Gpu, GpuBuf};
use crate::backend::cpu::Activation;
use crate::model::clip::Clip;
use crate::model::nn::{Encoder, LayerNorm, Linear};
use crate::model::siglip::Siglip;
use crate::model::tokenizer::TokenBatch;
use crate::tensor::Tensor;

/// A linear layer on the device: `[out, in]` weight, optional bias.
#[derive(Debug)]
struct GpuLinear {
    w: GpuBuf,
    b: Option<GpuBuf>,
    inp: usize,
    out: usize,
}

impl GpuLinear {
    /// Several layers of the same input stacked along their outputs (the fused QKV projection).
    fn stacked(gpu: &Gpu, dtype: DType, parts: &[&Linear]) -> Result<Self, CudaError> {
        let inp = parts[0].weight.cols();
        let mut w = Vec::new();
        let mut b = Vec::new();
        let mut out = 0;
        for p in parts {
            if p.weight.cols() != inp {
                return Err(CudaError::Shape("stacked linear layers take different input widths".into()));
            }
            w.extend_from_slice(p.weight.data());
            let n = p.weight.shape()[0];
            b.extend(p.bias.clone().unwrap_or_else(|| vec![0.0; n]));
            out += n;
        }
        let has_bias = parts.iter().any(|p| p.bias.is_some());
        Ok(GpuLinear {
            w: GpuBuf::from_host(gpu, dtype, &w)?,
            b: if has_bias { Some(GpuBuf::from_host(gpu, dtype, &b)?) } else { None },
            inp,
            out,
        })
    }

    fn new(gpu: &Gpu, dtype: DType, l: &Linear) -> Result<Self, CudaError> {
        Self::stacked(gpu, dtype, &[l])
    }

    /// `y = act(x·Wᵀ + b + beta·y)` for `rows` rows.
    fn forward(
        &self,
        gpu: &Gpu,
        dtype: DType,
        (x, y): (u64, u64),
        rows: usize,
        beta: f32,
        act: Option<Activation>,
    ) -> Result<(), CudaError> {
        linear(gpu, dtype, x, self.w.ptr(gpu), y, rows, self.inp, self.out, beta)?;
        if self.b.is_some() || act.is_some() {
            let bias = self.b.as_ref().map_or(0, |b| b.ptr(gpu));
            bias_act(gpu, dtype, y, bias, rows, self.out, act)?;
        }
        Ok(())
    }
}

/// Layer norm parameters (kept in f32).
#[derive(Debug)]
struct GpuNorm {
    gamma: GpuBuf,
    beta: GpuBuf,
    eps: f32,
}

impl GpuNorm {
    fn new(gpu: &Gpu, n: &LayerNorm) -> Result<Self, CudaError> {
        Ok(GpuNorm {
            gamma: GpuBuf::from_host(gpu, DType::F32, &n.gamma)?,
            beta: GpuBuf::from_host(gpu, DType::F32, &n.beta)?,
            eps: n.eps,
        })
    }

    fn forward(&self, gpu: &Gpu, dtype: DType, (x, y): (u64, u64), rows: usize) -> Result<(), CudaError> {
        layer_norm(gpu, dtype, x, y, self.gamma.ptr(gpu), self.beta.ptr(gpu), rows, self.gamma.len(), self.eps)
    }
}

#[derive(Debug)]
struct GpuLayer {
    ln1: GpuNorm,
    qkv: GpuLinear,
    out: GpuLinear,
    ln2: GpuNorm,
    fc1: GpuLinear,
    fc2: GpuLinear,
    act: Activation,
}

/// A stack of pre-norm transformer layers on the device.
#[derive(Debug)]
pub struct GpuEncoder {
    layers: Vec<GpuLayer>,
    width: usize,
    heads: usize,
    hidden: usize,
}

/// Masking of an encoder pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncoderMask {
    /// Causal (CLIP's text tower).
    pub causal: bool,
    /// `[batch, seq]` i32 key mask on the device (0 = none).
    pub keys: u64,
}

impl GpuEncoder {
    fn new(gpu: &Gpu, dtype: DType, enc: &Encoder) -> Result<Self, CudaError> {
        let first = enc.layers.first().ok_or_else(|| CudaError::Shape("an encoder without layers".into()))?;
        let width = first.attn.q.weight.cols();
        let heads = first.attn.heads;
        let hidden = first.mlp.fc1.weight.shape()[0];
        let layers = enc
            .layers
            .iter()
            .map(|l| {
                Ok(GpuLayer {
                    ln1: GpuNorm::new(gpu, &l.ln1)?,
                    qkv: GpuLinear::stacked(gpu, dtype, &[&l.attn.q, &l.attn.k, &l.attn.v])?,
                    out: GpuLinear::new(gpu, dtype, &l.attn.out)?,
                    ln2: GpuNorm::new(gpu, &l.ln2)?,
                    fc1: GpuLinear::new(gpu, dtype, &l.mlp.fc1)?,
                    fc2: GpuLinear::new(gpu, dtype, &l.mlp.fc2)?,
                    act: l.mlp.act,
                })
            })
            .collect::<Result<Vec<_>, CudaError>>()?;
        Ok(GpuEncoder { layers, width, heads, hidden })
    }

    /// Runs every layer over `x` (`[batch, seq, width]`, updated in place).
    pub fn forward(
        &self,
        gpu: &Gpu,
        dtype: DType,
        x: &GpuBuf,
        (batch, seq): (usize, usize),
        mask: EncoderMask,
    ) -> Result<(), CudaError> {
        let (rows, w) = (batch * seq, self.width);
        let h = GpuBuf::alloc(gpu, dtype, rows * w)?;
        let qkv = GpuBuf::alloc(gpu, dtype, rows * 3 * w)?;
        let att = GpuBuf::alloc(gpu, dtype, rows * w)?;
        let mlp = GpuBuf::alloc(gpu, dtype, rows * self.hidden)?;
        let (xp, hp, qkvp, attp, mlpp) = (x.ptr(gpu), h.ptr(gpu), qkv.ptr(gpu), att.ptr(gpu), mlp.ptr(gpu));
        let d = w / self.heads;
        let sz = dtype.size() as u64;
        for l in &self.layers {
            l.ln1.forward(gpu, dtype, (xp, hp), rows)?;
            l.qkv.forward(gpu, dtype, (hp, qkvp), rows, 0.0, None)?;
            let packed = Layout::interleaved(seq, 3 * w, d);
            let args = AttnArgs {
                q: qkvp,
                k: qkvp + w as u64 * sz,
                v: qkvp + 2 * w as u64 * sz,
                o: attp,
                layouts: [packed, packed, packed, Layout::interleaved(seq, w, d)],
                key_mask: mask.keys,
                shape: AttnShape {
                    batch,
                    heads: self.heads,
                    kv_heads: self.heads,
                    q_len: seq,
                    kv_len: seq,
                    head_dim: d,
                    causal: mask.causal,
                },
                scale: None,
            };
            attention(gpu, dtype, &args, None)?;
            l.out.forward(gpu, dtype, (attp, xp), rows, 1.0, None)?;
            l.ln2.forward(gpu, dtype, (xp, hp), rows)?;
            l.fc1.forward(gpu, dtype, (hp, mlpp), rows, 0.0, Some(l.act))?;
            l.fc2.forward(gpu, dtype, (mlpp, xp), rows, 1.0, None)?;
        }
        Ok(())
    }
}

/// SigLIP's attention-pooling head: the probe's query is precomputed (it does not depend on
/// the image); K and V come from one stacked GEMM.
#[derive(Debug)]
struct GpuProbeHead {
    query: GpuBuf,
    kv: GpuLinear,
    out: GpuLinear,
    norm: GpuNorm,
    fc1: GpuLinear,
    fc2: GpuLinear,
    act: Activation,
    heads: usize,
}

#[derive(Debug)]
enum Pooling {
    /// CLIP: the class token after `post_layernorm`, then the visual projection.
    Class { projection: GpuLinear },
    /// SigLIP: `post_layernorm` on every token, then the attention-pooling head.
    Probe(Box<GpuProbeHead>),
}

/// An image tower on the device.
#[derive(Debug)]
struct GpuVision {
    patch: usize,
    image: usize,
    width: usize,
    patch_proj: GpuLinear,
    class: Option<GpuBuf>,
    positions: GpuBuf,
    pre: Option<GpuNorm>,
    encoder: GpuEncoder,
    post: GpuNorm,
    pooling: Pooling,
}

#[derive(Debug)]
enum TextPooling {
    /// CLIP: causal and padding-masked encoder, the end-of-text state, final norm, projection.
    Clip { projection: GpuLinear },
    /// SigLIP: unmasked encoder, the last state, final norm, head.
    Siglip { head: GpuLinear },
}

/// A text tower on the device (token embeddings are looked up on the host).
#[derive(Debug)]
struct GpuText {
    encoder: GpuEncoder,
    norm: GpuNorm,
    pooling: TextPooling,
}

/// A contrastive model's towers on the GPU.
#[derive(Debug)]
pub struct GpuModel {
    dtype: DType,
    vision: GpuVision,
    text: GpuText,
}

impl GpuModel {
    /// Uploads a CLIP model.
    pub fn from_clip(gpu: &Gpu, dtype: DType, m: &Clip) -> Result<Self, CudaError> {
        let v = &m.vision;
        let vision = GpuVision {
            patch: v.patch.patch,
            image: v.patch.image,
            width: v.width,
            patch_proj: GpuLinear::new(gpu, dtype, &v.patch.proj)?,
            class: Some(GpuBuf::from_host(gpu, dtype, &v.class)?),
            positions: GpuBuf::from_host(gpu, dtype, v.positions.data())?,
            pre: Some(GpuNorm::new(gpu, &v.pre)?),
            encoder: GpuEncoder::new(gpu, dtype, &v.encoder)?,
            post: GpuNorm::new(gpu, &v.post)?,
            pooling: Pooling::Class { projection: GpuLinear::new(gpu, dtype, &m.visual_projection)? },
        };
        let text = GpuText {
            encoder: GpuEncoder::new(gpu, dtype, &m.text.encoder)?,
            norm: GpuNorm::new(gpu, &m.text.norm)?,
            pooling: TextPooling::Clip { projection: GpuLinear::new(gpu, dtype, &m.text_projection)? },
        };
        Ok(GpuModel { dtype, vision, text })
    }

    /// Uploads a SigLIP model.
    pub fn from_siglip(gpu: &Gpu, dtype: DType, m: &Siglip) -> Result<Self, CudaError> {
        let v = &m.vision;
        let h = &v.head;
        let probe = Tensor::new([1, v.width], h.probe.clone());
        let head = GpuProbeHead {
            query: GpuBuf::from_host(gpu, dtype, h.q.forward(&probe).data())?,
            kv: GpuLinear::stacked(gpu, dtype, &[&h.k, &h.v])?,
            out: GpuLinear::new(gpu, dtype, &h.out)?,
            norm: GpuNorm::new(gpu, &h.norm)?,
            fc1: GpuLinear::new(gpu, dtype, &h.mlp.fc1)?,
            fc2: GpuLinear::new(gpu, dtype, &h.mlp.fc2)?,
            act: h.mlp.act,
            heads: h.heads,
        };
        let vision = GpuVision {
            patch: v.patch.patch,
            image: v.patch.image,
            width: v.width,
            patch_proj: GpuLinear::new(gpu, dtype, &v.patch.proj)?,
            class: None,
            positions: GpuBuf::from_host(gpu, dtype, v.positions.data())?,
            pre: None,
            encoder: GpuEncoder::new(gpu, dtype, &v.encoder)?,
            post: GpuNorm::new(gpu, &v.post)?,
            pooling: Pooling::Probe(Box::new(head)),
        };
        let text = GpuText {
            encoder: GpuEncoder::new(gpu, dtype, &m.text.encoder)?,
            norm: GpuNorm::new(gpu, &m.text.norm)?,
            pooling: TextPooling::Siglip { head: GpuLinear::new(gpu, dtype, &m.text.head)? },
        };
        Ok(GpuModel { dtype, vision, text })
    }

    /// The storage type of weights and activations.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Image features from preprocessed pixels `[batch, 3, S, S]`, as the CPU tower gives them.
    pub fn image_features(&self, gpu: &Gpu, pixels: &[f32], batch: usize) -> Result<Tensor, CudaError> {
        let out = self.image_features_device(gpu, pixels, batch)?;
        let cols = out.len() / batch.max(1);
        Ok(Tensor::new([batch, cols], out.to_host(gpu)?))
    }

    /// [`Self::image_features`] left on the device (for timing without the copy back).
    pub fn image_features_device(&self, gpu: &Gpu, pixels: &[f32], batch: usize) -> Result<GpuBuf, CudaError> {
        let v = &self.vision;
        let dt = self.dtype;
        let (s, p, w) = (v.image, v.patch, v.width);
        if pixels.len() != batch * 3 * s * s {
            return Err(CudaError::Shape(format!("{} pixel values are not {batch} images of 3x{s}x{s}", pixels.len())));
        }
        let g = s / p;
        let n = g * g;
        let px = GpuBuf::from_host(gpu, DType::F32, pixels)?;
        let cols = GpuBuf::alloc(gpu, dt, batch * n * 3 * p * p)?;
        im2col(gpu, dt, px.ptr(gpu), cols.ptr(gpu), batch, s, p)?;
        let patches = GpuBuf::alloc(gpu, dt, batch * n * w)?;
        v.patch_proj.forward(gpu, dt, (cols.ptr(gpu), patches.ptr(gpu)), batch * n, 0.0, None)?;
        drop(cols);
        let seq = n + usize::from(v.class.is_some());
        let x = GpuBuf::alloc(gpu, dt, batch * seq * w)?;
        let class = v.class.as_ref().map_or(0, |c| c.ptr(gpu));
        vit_tokens(gpu, dt, x.ptr(gpu), patches.ptr(gpu), class, v.positions.ptr(gpu), batch, n, w)?;
        drop(patches);
        if let Some(pre) = &v.pre {
            pre.forward(gpu, dt, (x.ptr(gpu), x.ptr(gpu)), batch * seq)?;
        }
        v.encoder.forward(gpu, dt, &x, (batch, seq), EncoderMask::default())?;
        match &v.pooling {
            Pooling::Class { projection } => {
                let rows: Vec<i32> = (0..batch).map(|b| (b * seq) as i32).collect();
                let pooled = gather(gpu, dt, &x, &rows, w)?;
                v.post.forward(gpu, dt, (pooled.ptr(gpu), pooled.ptr(gpu)), batch)?;
                let out = GpuBuf::alloc(gpu, dt, batch * projection.out)?;
                projection.forward(gpu, dt, (pooled.ptr(gpu), out.ptr(gpu)), batch, 0.0, None)?;
                Ok(out)
            }
            Pooling::Probe(h) => {
                v.post.forward(gpu, dt, (x.ptr(gpu), x.ptr(gpu)), batch * seq)?;
                let kv = GpuBuf::alloc(gpu, dt, batch * seq * 2 * w)?;
                h.kv.forward(gpu, dt, (x.ptr(gpu), kv.ptr(gpu)), batch * seq, 0.0, None)?;
                let d = w / h.heads;
                let att = GpuBuf::alloc(gpu, dt, batch * w)?;
                let kvp = kv.ptr(gpu);
                let packed = Layout::interleaved(seq, 2 * w, d);
                let args = AttnArgs {
                    q: h.query.ptr(gpu),
                    k: kvp,
                    v: kvp + (w * dt.size()) as u64,
                    o: att.ptr(gpu),
                    layouts: [Layout { batch: 0, row: 0, head: d }, packed, packed, Layout::interleaved(1, w, d)],
                    key_mask: 0,
                    shape: AttnShape {
                        batch,
                        heads: h.heads,
                        kv_heads: h.heads,
                        q_len: 1,
                        kv_len: seq,
                        head_dim: d,
                        causal: false,
                    },
                    scale: None,
                };
                attention(gpu, dt, &args, None)?;
                let pooled = GpuBuf::alloc(gpu, dt, batch * w)?;
                h.out.forward(gpu, dt, (att.ptr(gpu), pooled.ptr(gpu)), batch, 0.0, None)?;
                let normed = GpuBuf::alloc(gpu, dt, batch * w)?;
                h.norm.forward(gpu, dt, (pooled.ptr(gpu), normed.ptr(gpu)), batch)?;
                let hidden = GpuBuf::alloc(gpu, dt, batch * h.fc1.out)?;
                h.fc1.forward(gpu, dt, (normed.ptr(gpu), hidden.ptr(gpu)), batch, 0.0, Some(h.act))?;
                h.fc2.forward(gpu, dt, (hidden.ptr(gpu), pooled.ptr(gpu)), batch, 1.0, None)?;
                Ok(pooled)
            }
        }
    }

    /// Text features of a token batch whose embeddings `embedded` (`[batch, len, width]`) were
    /// looked up on the host; `pooled_at[b]` is the position pooled for text `b`.
    pub fn text_features(
        &self,
        gpu: &Gpu,
        embedded: &Tensor,
        tokens: &TokenBatch,
        pooled_at: &[usize],
    ) -> Result<Tensor, CudaError> {
        let t = &self.text;
        let dt = self.dtype;
        let (batch, seq, w) = (tokens.batch, tokens.len, t.encoder.width);
        if embedded.data().len() != batch * seq * w || pooled_at.len() != batch {
            return Err(CudaError::Shape("text features: embeddings do not match the token batch".into()));
        }
        let x = GpuBuf::from_host(gpu, dt, embedded.data())?;
        let (mask, _keys) = match &t.pooling {
            TextPooling::Clip { .. } => {
                let keys: Vec<i32> = tokens.mask.iter().map(|&m| m as i32).collect();
                let keys = GpuBuf::from_i32(gpu, &keys)?;
                (EncoderMask { causal: true, keys: keys.ptr(gpu) }, Some(keys))
            }
            TextPooling::Siglip { .. } => (EncoderMask::default(), None),
        };
        t.encoder.forward(gpu, dt, &x, (batch, seq), mask)?;
        let rows: Vec<i32> = pooled_at.iter().enumerate().map(|(b, &p)| (b * seq + p) as i32).collect();
        let pooled = gather(gpu, dt, &x, &rows, w)?;
        t.norm.forward(gpu, dt, (pooled.ptr(gpu), pooled.ptr(gpu)), batch)?;
        let proj = match &t.pooling {
            TextPooling::Clip { projection } => projection,
            TextPooling::Siglip { head } => head,
        };
        let out = GpuBuf::alloc(gpu, dt, batch * proj.out)?;
        proj.forward(gpu, dt, (pooled.ptr(gpu), out.ptr(gpu)), batch, 0.0, None)?;
        Ok(Tensor::new([batch, proj.out], out.to_host(gpu)?))
    }
}

/// Rows `rows` of `x` (`cols` wide) into a new buffer.
fn gather(gpu: &Gpu, dtype: DType, x: &GpuBuf, rows: &[i32], cols: usize) -> Result<GpuBuf, CudaError> {
    let idx = GpuBuf::from_i32(gpu, rows)?;
    let out = GpuBuf::alloc(gpu, dtype, rows.len() * cols)?;
    gather_rows(gpu, dtype, x.ptr(gpu), out.ptr(gpu), idx.ptr(gpu), rows.len(), cols)?;
    Ok(out)
}
