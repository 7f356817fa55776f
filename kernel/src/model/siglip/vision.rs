//! SigLIP's image tower (`SiglipVisionTransformer`): patch embedding with bias, learned
//! positions (no class token), the encoder, `post_layernorm`, and the multi-head attention
//! pooling head (`SiglipMultiheadAttentionPoolingHead`: a learned probe attends over the
//! tokens, then a residual MLP).

use crate::backend::cpu::{self, AttentionMask};
use crate::model::config::TowerConfig;
use crate::model::nn::{Encoder, LayerNorm, Linear, Mlp};
use crate::model::patch::PatchEmbedding;
use crate::model::{ModelError, Weights};
use crate::tensor::Tensor;

/// The attention-pooling head.
#[derive(Debug)]
pub(crate) struct PoolingHead {
    pub(crate) probe: Vec<f32>,
    pub(crate) q: Linear,
    pub(crate) k: Linear,
    pub(crate) v: Linear,
    pub(crate) out: Linear,
    pub(crate) norm: LayerNorm,
    pub(crate) mlp: Mlp,
    pub(crate) heads: usize,
}

/// The SigLIP image tower.
#[derive(Debug)]
pub struct SiglipVision {
    pub(crate) patch: PatchEmbedding,
    pub(crate) positions: Tensor,
    pub(crate) encoder: Encoder,
    pub(crate) post: LayerNorm,
    pub(crate) head: PoolingHead,
    pub(crate) width: usize,
}

impl SiglipVision {
    /// Loads `vision_model.*`.
    pub fn load(w: &Weights, cfg: &TowerConfig) -> Result<Self, ModelError> {
        let p = "vision_model";
        let patch_name = format!("{p}.embeddings.patch_embedding.weight");
        let width = w.shape(&patch_name).map(|s| s[0]).ok_or_else(|| w.missing(&patch_name))?;
        let patch = PatchEmbedding::load(
            w,
            &format!("{p}.embeddings.patch_embedding"),
            width,
            cfg.patch_size,
            cfg.image_size,
            true,
        )?;
        let tokens = patch.grid() * patch.grid();
        let h = format!("{p}.head");
        let in_proj = w.tensor(&format!("{h}.attention.in_proj_weight"), &[3 * width, width])?;
        let in_bias = w.vector(&format!("{h}.attention.in_proj_bias"), 3 * width)?;
        let split = |i: usize| {
            Linear::new(
                Tensor::new([width, width], in_proj.data()[i * width * width..(i + 1) * width * width].to_vec()),
                Some(in_bias[i * width..(i + 1) * width].to_vec()),
                w.precision(),
            )
        };
        let head = PoolingHead {
            probe: w.tensor(&format!("{h}.probe"), &[1, 1, width])?.into_data(),
            q: split(0),
            k: split(1),
            v: split(2),
            out: Linear::load(w, &format!("{h}.attention.out_proj"), width, width, true)?,
            norm: LayerNorm::load(w, &format!("{h}.layernorm"), width, cfg.eps)?,
            mlp: Mlp::load(w, &format!("{h}.mlp"), width, cfg.act)?,
            heads: cfg.heads,
        };
        Ok(SiglipVision {
            positions: w.tensor(&format!("{p}.embeddings.position_embedding.weight"), &[tokens, width])?,
            encoder: Encoder::load(w, &format!("{p}.encoder"), width, cfg.heads, cfg.act, cfg.eps)?,
            post: LayerNorm::load(w, &format!("{p}.post_layernorm"), width, cfg.eps)?,
            patch,
            head,
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
    pub fn hidden_states(&self, pixels: &[f32], batch: usize) -> Tensor {
        let mut x = self.patch.forward(pixels, batch);
        let per = self.positions.data().len();
        for chunk in x.data_mut().chunks_mut(per) {
            chunk.iter_mut().zip(self.positions.data()).for_each(|(v, p)| *v += p);
        }
        let x = self.encoder.forward(x, AttentionMask::NONE);
        self.post.forward(&x)
    }

    /// The pooled output, `[batch, width]`.
    pub fn forward(&self, pixels: &[f32], batch: usize) -> Tensor {
        let x = self.hidden_states(pixels, batch);
        let head = &self.head;
        let probe = Tensor::new([batch, 1, self.width], head.probe.repeat(batch));
        let q = head.q.forward(&probe);
        let (k, v) = (head.k.forward(&x), head.v.forward(&x));
        let mut pooled = head.out.forward(&cpu::attention(&q, &k, &v, head.heads, AttentionMask::NONE));
        let m = head.mlp.forward(&head.norm.forward(&pooled));
        cpu::add_assign(&mut pooled, m.data());
        pooled.reshape([batch, self.width])
    }
}
