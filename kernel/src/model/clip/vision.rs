//! CLIP's image tower (`CLIPVisionTransformer`): patch embedding without bias, a class token,
//! learned positions, a layer norm before the encoder (`pre_layrnorm`, sic; absent in timm's
//! ViTs, which open_clip's BiomedCLIP uses), and the class token's final state after
//! `post_layernorm` as the pooled output.

use crate::backend::{Array, Device, Mask, Vector};
use crate::model::config::TowerConfig;
use crate::model::nn::{Encoder, EncoderShape, Inference, LayerNorm, Pass, Site};
use crate::model::patch::PatchEmbedding;
use crate::model::{ModelError, Weights};

/// The CLIP image tower.
#[derive(Debug)]
pub struct ClipVision {
    patch: PatchEmbedding,
    class: Vector,
    pub(crate) positions: Vector,
    pub(crate) pre: Option<LayerNorm>,
    pub(crate) encoder: Encoder,
    pub(crate) post: LayerNorm,
    width: usize,
}

impl ClipVision {
    /// Loads `vision_model.*` (for CLIP, or the vision tower of a LLaVA checkpoint under `prefix`).
    pub fn load(w: &Weights, dev: &Device, prefix: &str, cfg: &TowerConfig) -> Result<Self, ModelError> {
        let p = prefix;
        let class_name = format!("{p}.embeddings.class_embedding");
        let width = w.shape(&class_name).and_then(|s| s.first().copied()).ok_or_else(|| w.missing(&class_name))?;
        let patch = PatchEmbedding::load(
            w,
            dev,
            &format!("{p}.embeddings.patch_embedding"),
            width,
            (cfg.patch_size, cfg.image_size),
            false,
        )?;
        let tokens = patch.grid() * patch.grid() + 1;
        let shape = EncoderShape { dim: width, layers: cfg.layers, heads: cfg.heads, act: cfg.act, eps: cfg.eps };
        let positions = w.tensor(&format!("{p}.embeddings.position_embedding.weight"), &[tokens, width])?;
        Ok(ClipVision {
            class: Vector::activation(dev, w.vector(&class_name, width)?)?,
            positions: Vector::activation(dev, positions.into_data())?,
            pre: Some(LayerNorm::load(w, dev, &format!("{p}.pre_layrnorm"), width, cfg.eps)?),
            encoder: Encoder::load(w, dev, &format!("{p}.encoder"), shape)?,
            post: LayerNorm::load(w, dev, &format!("{p}.post_layernorm"), width, cfg.eps)?,
            patch,
            width,
        })
    }

    /// A tower from its parts (other checkpoint layouts: open_clip, timm): `class` and
    /// `positions` (`[1 + grid², width]`) are checked against the patch embedding and the encoder.
    pub(crate) fn from_parts(
        dev: &Device,
        patch: PatchEmbedding,
        (class, positions): (Vec<f32>, Vec<f32>),
        (pre, encoder, post): (Option<LayerNorm>, Encoder, LayerNorm),
    ) -> Result<Self, ModelError> {
        let width = class.len();
        let tokens = patch.grid() * patch.grid() + 1;
        if positions.len() != tokens * width || post.gamma.len() != width {
            return Err(ModelError::Input(format!(
                "image tower: {} position values and a {}-wide final norm for {tokens} tokens of width {width}",
                positions.len(),
                post.gamma.len()
            )));
        }
        Ok(ClipVision {
            class: Vector::activation(dev, class)?,
            positions: Vector::activation(dev, positions)?,
            pre,
            encoder,
            post,
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

    /// Encoder layers.
    pub fn depth(&self) -> usize {
        self.encoder.depth()
    }

    /// The hidden state after the first `depth` encoder layers, `[batch, 1 + grid², width]`
    /// (`hidden_states[depth]` in transformers).
    pub fn hidden_states(&self, dev: &Device, pixels: &[f32], batch: usize, depth: usize) -> Result<Array, ModelError> {
        self.hidden_states_with(dev, pixels, batch, depth, &mut Inference)
    }

    fn hidden_states_with(
        &self,
        dev: &Device,
        pixels: &[f32],
        batch: usize,
        depth: usize,
        pass: &mut dyn Pass,
    ) -> Result<Array, ModelError> {
        let patches = self.patch.forward(dev, pixels, batch)?;
        let adapted = pass.positions(dev, &self.positions)?;
        let x = dev.vit_tokens(&patches, Some(&self.class), adapted.as_ref().unwrap_or(&self.positions))?;
        let mut x = match &self.pre {
            Some(pre) => pass.norm(dev, &x, pre, Site::Pre)?,
            None => x,
        };
        self.encoder.forward_with(dev, &mut x, Mask::NONE, depth, pass)?;
        Ok(x)
    }

    /// The pooled output (class token after `post_layernorm`), `[batch, width]`.
    pub fn forward(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        self.forward_with(dev, pixels, batch, &mut Inference)
    }

    /// [`ClipVision::forward`] through `pass`.
    pub(crate) fn forward_with(
        &self,
        dev: &Device,
        pixels: &[f32],
        batch: usize,
        pass: &mut dyn Pass,
    ) -> Result<Array, ModelError> {
        let x = self.hidden_states_with(dev, pixels, batch, 0, pass)?;
        let cls = self.encoder.forward_row_with(dev, x, 0, pass)?;
        pass.norm(dev, &cls, &self.post, Site::Post)
    }
}
