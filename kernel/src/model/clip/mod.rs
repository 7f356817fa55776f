//! CLIP (transformers' `CLIPModel`, <https://github.com/huggingface/transformers/blob/main/src/transformers/models/clip/modeling_clip.py>):
//! a ViT image tower and a causal text transformer, each projected into a shared space.
//! Covers openai/clip-vit-*, PubMedCLIP, PLIP and other `CLIPModel` checkpoints, and (built by
//! `open_clip`) open_clip's CLIPs, whose text side may be another encoder ([`TextFeatures`]);
//! written once on the compute layer, it runs on the CPU or the GPU.

mod text;
mod vision;

use super::config::Config;
use super::nn::{Inference, Pass, Site, linear};
use super::tokenizer::TokenBatch;
use super::{ModelError, Weights};
use crate::backend::{Array, Device, Linear};

pub use text::ClipText;
pub use vision::ClipVision;

/// A text encoder giving a CLIP model's (projected, unnormalised) text features.
pub trait TextFeatures: std::fmt::Debug + Send + Sync {
    /// `[batch, proj]` features of a token batch.
    fn features(&self, dev: &Device, tokens: &TokenBatch) -> Result<Array, ModelError>;
    /// The longest text (in tokens) the encoder takes.
    fn max_len(&self) -> usize;
}

/// CLIP's text tower followed by `text_projection`.
#[derive(Debug)]
pub struct ProjectedText {
    /// The tower.
    pub tower: ClipText,
    projection: Linear,
}

impl ProjectedText {
    /// The tower and its projection (`[proj, width]`, no bias).
    pub(crate) fn new(tower: ClipText, projection: Linear) -> Self {
        ProjectedText { tower, projection }
    }
}

impl TextFeatures for ProjectedText {
    fn features(&self, dev: &Device, tokens: &TokenBatch) -> Result<Array, ModelError> {
        Ok(dev.linear(&self.tower.forward(dev, tokens)?, &self.projection)?)
    }

    fn max_len(&self) -> usize {
        self.tower.max_len()
    }
}

/// A loaded CLIP model.
#[derive(Debug)]
pub struct Clip {
    /// The image tower.
    pub vision: ClipVision,
    /// The text encoder with its projection.
    pub text: Box<dyn TextFeatures>,
    pub(crate) visual_projection: Linear,
    /// `exp(logit_scale)`.
    pub scale: f32,
}

impl Clip {
    /// Loads every tensor onto `dev`, checking shapes against the configuration.
    pub fn load(w: &Weights, dev: &Device, config: &Config) -> Result<Self, ModelError> {
        let vision = ClipVision::load(w, dev, "vision_model", &config.tower("vision_config")?)?;
        let text = ClipText::load(w, dev, &config.tower("text_config")?)?;
        let proj_dim = w.shape("visual_projection.weight").map_or(512, |s| s[0]);
        let visual_projection = linear(w, dev, "visual_projection", vision.width(), proj_dim, false)?;
        let text_projection = linear(w, dev, "text_projection", text.width(), proj_dim, false)?;
        let scale = super::scalar(w, "logit_scale")?.exp();
        let text = Box::new(ProjectedText::new(text, text_projection));
        Ok(Clip { vision, text, visual_projection, scale })
    }

    /// A model from its parts (other checkpoint layouts: open_clip); `scale` is
    /// `exp(logit_scale)`.
    pub(crate) fn from_parts(
        vision: ClipVision,
        visual_projection: Linear,
        text: Box<dyn TextFeatures>,
        scale: f32,
    ) -> Self {
        Clip { vision, text, visual_projection, scale }
    }

    /// `get_image_features`: projected, unnormalised, `[batch, proj]`.
    pub fn image_features(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        self.image_features_with(dev, pixels, batch, &mut Inference)
    }

    /// [`Clip::image_features`] through `pass` (training hooks).
    pub(crate) fn image_features_with(
        &self,
        dev: &Device,
        pixels: &[f32],
        batch: usize,
        pass: &mut dyn Pass,
    ) -> Result<Array, ModelError> {
        let pooled = self.vision.forward_with(dev, pixels, batch, pass)?;
        pass.linear(dev, &pooled, &self.visual_projection, Site::Projection)
    }

    /// `get_text_features`: projected, unnormalised, `[batch, proj]`.
    pub fn text_features(&self, dev: &Device, tokens: &TokenBatch) -> Result<Array, ModelError> {
        self.text.features(dev, tokens)
    }
}
