//! SigLIP (transformers' `SiglipModel`, <https://github.com/huggingface/transformers/blob/main/src/transformers/models/siglip/modeling_siglip.py>):
//! a ViT image tower pooled by attention (a learned probe), a bidirectional text tower pooled
//! at its last position, and logits `exp(scale)·cos + bias`. Covers google/siglip-* and
//! google/medsiglip-448; written once on the compute layer, it runs on the CPU or the GPU.

mod text;
mod vision;

use super::config::Config;
use super::tokenizer::TokenBatch;
use super::{ModelError, Weights};
use crate::backend::{Array, Device};

pub use text::SiglipText;
pub use vision::SiglipVision;

/// A loaded SigLIP model.
#[derive(Debug)]
pub struct Siglip {
    /// The image tower (its pooled output is the image feature).
    pub vision: SiglipVision,
    /// The text tower (its head output is the text feature).
    pub text: SiglipText,
    /// `exp(logit_scale)`.
    pub scale: f32,
    /// `logit_bias`.
    pub bias: f32,
}

impl Siglip {
    /// Loads every tensor onto `dev`, checking shapes against the configuration.
    pub fn load(w: &Weights, dev: &Device, config: &Config) -> Result<Self, ModelError> {
        Ok(Siglip {
            vision: SiglipVision::load(w, dev, &config.tower("vision_config")?)?,
            text: SiglipText::load(w, dev, &config.tower("text_config")?)?,
            scale: super::scalar(w, "logit_scale")?.exp(),
            bias: super::scalar(w, "logit_bias")?,
        })
    }

    /// `get_image_features`: `[batch, width]`.
    pub fn image_features(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        self.vision.forward(dev, pixels, batch)
    }

    /// `get_text_features`: `[batch, projection]`.
    pub fn text_features(&self, dev: &Device, tokens: &TokenBatch) -> Result<Array, ModelError> {
        self.text.forward(dev, tokens)
    }
}
