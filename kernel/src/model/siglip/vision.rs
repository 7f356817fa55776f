//! SigLIP's image tower (`SiglipVisionTransformer`): patch embedding with bias, learned
//! positions (no class token), the encoder, `post_layernorm`, and the multi-head attention
//! pooling head (`SiglipMultiheadAttentionPoolingHead`: a learned probe attends over the
//! tokens, then a residual MLP).

use crate::backend::{Array, Device, Heads, Linear, Mask};
use crate::model::config::TowerConfig;
use crate::model::nn::{Encoder, EncoderShape, Inference, LayerNorm, Mlp, Pass, Site, linear};
use crate::model::patch::PatchEmbedding;
use crate::model::{ModelError, Weights};
use crate::tensor::Tensor;

/// The attention-pooling head. The probe's query does not depend on the image, so it is
/// projected once at load time (in f32).
#[derive(Debug)]
pub(crate) struct PoolingHead {
    pub(crate) query: Vec<f32>,
    pub(crate) kv: Linear,
    pub(crate) out: Linear,
    pub(crate) norm: LayerNorm,
    pub(crate) mlp: Mlp,
    pub(crate) heads: usize,
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
    fn forward(&self, dev: &Device, x: &Array, pass: &mut dyn Pass) -> Result<Array, ModelError> {
        let (batch, width) = (x.shape()[0], x.shape()[2]);
        let q = self.queries(dev, batch)?;
        let kv = pass.linear(dev, x, &self.kv, Site::PoolKv)?;
        let a = dev.attention(self.view(&q, 0), self.view(&kv, 0), self.view(&kv, 1), Mask::NONE)?;
        let mut pooled = pass.linear(dev, &a, &self.out, Site::PoolOut)?;
        let h = pass.norm(dev, &pooled, &self.norm, Site::PoolNorm)?;
        self.mlp.forward_add_with(dev, &h, &mut pooled, [Site::PoolFc1, Site::PoolFc2], pass)?;
        Ok(pooled.reshape([batch, width])?)
    }

    /// The probe's query for `batch` images, `[batch, 1, width]`.
    pub(crate) fn queries(&self, dev: &Device, batch: usize) -> Result<Array, ModelError> {
        Ok(dev.upload(Tensor::new([batch, 1, self.query.len()], self.query.repeat(batch)))?)
    }

    /// Part `part` of `x` (`[batch, len, parts·width]`: the queries, or the keys (0) and
    /// values (1) of the `kv` projection) as heads.
    pub(crate) fn view<'a>(&self, x: &'a Array, part: usize) -> Heads<'a> {
        let width = self.query.len();
        let len = x.shape().get(1).copied().unwrap_or(0);
        Heads { array: x, col: part * width, heads: self.heads, head_dim: width / self.heads, len }
    }
}

/// The SigLIP image tower.
#[derive(Debug)]
pub struct SiglipVision {
    patch: PatchEmbedding,
    pub(crate) positions: crate::backend::Vector,
    pub(crate) encoder: Encoder,
    pub(crate) post: LayerNorm,
    pub(crate) head: PoolingHead,
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
        self.hidden_states_with(dev, pixels, batch, &mut Inference)
    }

    fn hidden_states_with(
        &self,
        dev: &Device,
        pixels: &[f32],
        batch: usize,
        pass: &mut dyn Pass,
    ) -> Result<Array, ModelError> {
        let patches = self.patch.forward(dev, pixels, batch)?;
        let adapted = pass.positions(dev, &self.positions)?;
        let mut x = dev.vit_tokens(&patches, None, adapted.as_ref().unwrap_or(&self.positions))?;
        self.encoder.forward_with(dev, &mut x, Mask::NONE, self.encoder.depth(), pass)?;
        pass.norm(dev, &x, &self.post, Site::Post)
    }

    /// The pooled output, `[batch, width]`.
    pub fn forward(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        self.forward_with(dev, pixels, batch, &mut Inference)
    }

    /// [`SiglipVision::forward`] through `pass` (training hooks).
    pub(crate) fn forward_with(
        &self,
        dev: &Device,
        pixels: &[f32],
        batch: usize,
        pass: &mut dyn Pass,
    ) -> Result<Array, ModelError> {
        let x = self.hidden_states_with(dev, pixels, batch, pass)?;
        self.head.forward(dev, &x, pass)
    }
}
