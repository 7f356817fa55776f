//! CLIP's image tower (`CLIPVisionTransformer`): patch embedding without bias, a class token,
//! learned positions, a layer norm before the encoder (`pre_layrnorm`, sic), and the class
//! token's final state after `post_layernorm` as the pooled output.

use crate::backend::cpu::AttentionMask;
use crate::model::config::TowerConfig;
use crate::model::nn::{Encoder, LayerNorm};
use crate::model::patch::PatchEmbedding;
use crate::model::{ModelError, Weights};
use crate::tensor::Tensor;

/// The CLIP image tower.
#[derive(Debug)]
pub struct ClipVision {
    pub(crate) patch: PatchEmbedding,
    pub(crate) class: Vec<f32>,
    pub(crate) positions: Tensor,
    pub(crate) pre: LayerNorm,
    pub(crate) encoder: Encoder,
    pub(crate) post: LayerNorm,
    pub(crate) width: usize,
}

impl ClipVision {
    /// Loads `vision_model.*`.
    pub fn load(w: &Weights, cfg: &TowerConfig) -> Result<Self, ModelError> {
        let p = "vision_model";
        let width = w
            .shape(&format!("{p}.embeddings.class_embedding"))
            .and_then(|s| s.first().copied())
            .ok_or_else(|| w.missing(&format!("{p}.embeddings.class_embedding")))?;
        let patch = PatchEmbedding::load(
            w,
            &format!("{p}.embeddings.patch_embedding"),
            width,
            cfg.patch_size,
            cfg.image_size,
            false,
        )?;
        let tokens = patch.grid() * patch.grid() + 1;
        Ok(ClipVision {
            class: w.vector(&format!("{p}.embeddings.class_embedding"), width)?,
            positions: w.tensor(&format!("{p}.embeddings.position_embedding.weight"), &[tokens, width])?,
            pre: LayerNorm::load(w, &format!("{p}.pre_layrnorm"), width, cfg.eps)?,
            encoder: Encoder::load(w, &format!("{p}.encoder"), width, cfg.heads, cfg.act, cfg.eps)?,
            post: LayerNorm::load(w, &format!("{p}.post_layernorm"), width, cfg.eps)?,
            patch,
            width,
        })
    }

    /// Hidden width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The square input side.
    pub fn image_size(&self) -> usize {
        self.patch.image_size()
    }

    /// The encoder's last hidden state, `[batch, 1 + grid², width]`.
    pub fn hidden_states(&self, pixels: &[f32], batch: usize) -> Tensor {
        let patches = self.patch.forward(pixels, batch);
        let n = patches.shape()[1];
        let mut x = Tensor::zeros([batch, n + 1, self.width]);
        for b in 0..batch {
            let dst = &mut x.data_mut()[b * (n + 1) * self.width..(b + 1) * (n + 1) * self.width];
            dst[..self.width].copy_from_slice(&self.class);
            dst[self.width..].copy_from_slice(&patches.data()[b * n * self.width..(b + 1) * n * self.width]);
            dst.iter_mut().zip(self.positions.data()).for_each(|(v, p)| *v += p);
        }
        let x = self.pre.forward(&x);
        self.encoder.forward(x, AttentionMask::NONE)
    }

    /// The pooled output (class token after `post_layernorm`), `[batch, width]`.
    pub fn forward(&self, pixels: &[f32], batch: usize) -> Tensor {
        let h = self.hidden_states(pixels, batch);
        let tokens = h.shape()[1];
        let pooled: Vec<f32> = (0..batch).flat_map(|b| h.row(b * tokens).iter().copied()).collect();
        self.post.forward(&Tensor::new([batch, self.width], pooled))
    }
}
