//! SigLIP's image tower (`SiglipVisionTransformer`): patch embedding with bias, learned
//! positions (no class token), the encoder, `post_layernorm`, and the multi-head attention
//! pooling head (`SiglipMultiheadAttentionPoolingHead`: a learned probe attends over the
//! tokens, then a residual MLP).

use crate::backend::{Array, Device, Heads, Linear, Mask};
use crate::model::config::TowerConfig;
use crate::model::nn::{Encoder, EncoderShape, LayerNorm, Mlp, linear};
use crate::model::patch::PatchEmbedding;
use crate::model::{ModelError, Weights};
use crate::tensor::Tensor;

/// The attention-pooling head. The probe's query does not depend on the image, so it is
/// projected once at load time (in f32).
#[derive(Debug)]
struct PoolingHead {
    query: Vec<f32>,
    kv: Linear,
    out: Linear,
    norm: LayerNorm,
    mlp: Mlp,
    heads: usize,
}

impl PoolingHead {
    fn load(w: &Weights, dev: &Device, h: &str, width: usize, cfg: &TowerConfig) -> Result<Self, ModelError> {
        let in_proj = w.tensor(&format!("{h}.attention.in_proj_weight"), &[3 * width, width])?;
        let in_bias = w.vector(&format!("{h}.attention.in_proj_bias"), 3 * width)?;
        let probe = w.tensor(&format!("{h}.probe"), &[1, 1, width])?.reshape([1, width]);
        let part = |i: usize, n: usize| {
            Tensor::new([n * width, width], in_proj.data()[i * width * width..(i + n) * width * width].to_vec())
        };
        let q = crate::backend::cpu::linear(&probe, &part(0, 1), Some(&in_bias[..width]));
        Ok(PoolingHead {
            query: q.into_data(),
            kv: Linear::new(dev, part(1, 2), Some(in_bias[width..].to_vec()))?,
            out: linear(w, dev, &format!("{h}.attention.out_proj"), width, width, true)?,
            norm: LayerNorm::load(w, dev, &format!("{h}.layernorm"), width, cfg.eps)?,
            mlp: Mlp::load(w, dev, &format!("{h}.mlp"), width, cfg.act)?,
            heads: cfg.heads,
        })
    }

    /// `[batch, width]` pooled features of `x` (`[batch, seq, width]`).
    fn forward(&self, dev: &Device, x: &Array) -> Result<Array, ModelError> {
        let (batch, seq, width) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let q = dev.upload(Tensor::new([batch, 1, width], self.query.repeat(batch)))?;
        let kv = dev.linear(x, &self.kv)?;
        let d = width / self.heads;
        let view = |array, col, len| Heads { array, col, heads: self.heads, head_dim: d, len };
        let a = dev.attention(view(&q, 0, 1), view(&kv, 0, seq), view(&kv, width, seq), Mask::NONE)?;
        let mut pooled = dev.linear(&a, &self.out)?;
        let h = self.norm.forward(dev, &pooled)?;
        self.mlp.forward_add(dev, &h, &mut pooled)?;
        Ok(pooled.reshape([batch, width])?)
    }
}

/// The SigLIP image tower.
#[derive(Debug)]
pub struct SiglipVision {
    patch: PatchEmbedding,
    positions: crate::backend::Vector,
    encoder: Encoder,
    post: LayerNorm,
    head: PoolingHead,
    width: usize,
}

impl SiglipVision {
    /// Loads `vision_model.*`.
    pub fn load(w: &Weights, dev: &Device, cfg: &TowerConfig) -> Result<Self, ModelError> {
        let p = "vision_model";
        let patch_name = format!("{p}.embeddings.patch_embedding.weight");
        let width = w.shape(&patch_name).map(|s| s[0]).ok_or_else(|| w.missing(&patch_name))?;
        let sizes = (cfg.patch_size, cfg.image_size);
        let patch = PatchEmbedding::load(w, dev, &format!("{p}.embeddings.patch_embedding"), width, sizes, true)?;
        let tokens = patch.grid() * patch.grid();
        let shape = EncoderShape { dim: width, layers: cfg.layers, heads: cfg.heads, act: cfg.act, eps: cfg.eps };
        let positions = w.tensor(&format!("{p}.embeddings.position_embedding.weight"), &[tokens, width])?;
        Ok(SiglipVision {
            positions: crate::backend::Vector::activation(dev, positions.into_data())?,
            encoder: Encoder::load(w, dev, &format!("{p}.encoder"), shape)?,
            post: LayerNorm::load(w, dev, &format!("{p}.post_layernorm"), width, cfg.eps)?,
            head: PoolingHead::load(w, dev, &format!("{p}.head"), width, cfg)?,
            patch,
            width,
        })
    }

    /// Hidden width (also the feature width).
    pub fn width(&self) -> usize {
        self.width
    }

    /// The square input side.
    pub fn image_size(&self) -> usize {
        self.patch.image_size()
    }

    /// The last hidden state after `post_layernorm`, `[batch, grid², width]`.
    pub fn hidden_states(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        let patches = self.patch.forward(dev, pixels, batch)?;
        let mut x = dev.vit_tokens(&patches, None, &self.positions)?;
        self.encoder.forward(dev, &mut x, Mask::NONE)?;
        self.post.forward(dev, &x)
    }

    /// The pooled output, `[batch, width]`.
    pub fn forward(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        let x = self.hidden_states(dev, pixels, batch)?;
        self.head.forward(dev, &x)
    }
}
