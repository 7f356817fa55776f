//! CLIP (transformers' `CLIPModel`, <https://github.com/huggingface/transformers/blob/main/src/transformers/models/clip/modeling_clip.py>):
//! a ViT image tower and a causal text transformer, each projected into a shared space.
//! Covers openai/clip-vit-*, PubMedCLIP, PLIP and other `CLIPModel` checkpoints.

mod text;
mod vision;

use super::config::Config;
use super::nn::Linear;
use super::tokenizer::TokenBatch;
use super::{ModelError, Weights};
use crate::tensor::Tensor;

pub use text::ClipText;
pub use vision::ClipVision;

/// A loaded CLIP model.
#[derive(Debug)]
pub struct Clip {
    /// The image tower.
    pub vision: ClipVision,
    /// The text tower.
    pub text: ClipText,
    pub(crate) visual_projection: Linear,
    pub(crate) text_projection: Linear,
    /// `exp(logit_scale)`.
    pub scale: f32,
}

impl Clip {
    /// Loads every tensor, checking shapes against the configuration.
    pub fn load(w: &Weights, config: &Config) -> Result<Self, ModelError> {
        let vision = ClipVision::load(w, &config.tower("vision_config")?)?;
        let text = ClipText::load(w, &config.tower("text_config")?)?;
        let proj_dim = w.shape("visual_projection.weight").map_or(512, |s| s[0]);
        let visual_projection = Linear::load(w, "visual_projection", vision.width(), proj_dim, false)?;
        let text_projection = Linear::load(w, "text_projection", text.width(), proj_dim, false)?;
        let scale = super::scalar(w, "logit_scale")?.exp();
        Ok(Clip { vision, text, visual_projection, text_projection, scale })
    }

    /// `get_image_features`: projected, unnormalised, `[batch, proj]`.
    pub fn image_features(&self, pixels: &[f32], batch: usize) -> Tensor {
        self.visual_projection.forward(&self.vision.forward(pixels, batch))
    }

    /// `get_text_features`: projected, unnormalised, `[batch, proj]`.
    pub fn text_features(&self, tokens: &TokenBatch) -> Result<Tensor, ModelError> {
        Ok(self.text_projection.forward(&self.text.forward(tokens)?))
    }
}
