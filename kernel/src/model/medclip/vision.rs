//! MedCLIP's image side (`MedClipVisionModelViT` and `MedClipModel.encode_image` in
//! <https://github.com/RyanWangZf/MedCLIP/blob/main/medclip/modeling_medclip.py>): a Swin-T
//! tower (`microsoft/swin-tiny-patch4-window7-224`) whose `pooler_output` goes through a
//! bias-free `projection_head` (768 → 512), then L2 normalisation. Tensor names as MedCLIP's
//! state dict holds them: `vision_model.model.*` (the Swin) and `vision_model.projection_head.weight`.

use super::projection_head;
use crate::backend::{Array, Device, Linear};
use crate::model::swin::{Swin, SwinConfig};
use crate::model::{ModelError, Weights};
use crate::tensor::Tensor;

/// The prefix of the Swin tower in MedCLIP's state dict.
pub const SWIN_PREFIX: &str = "vision_model.model";
/// The projection head in MedCLIP's state dict.
pub const PROJECTION: &str = "vision_model.projection_head";

/// MedCLIP's vision model: Swin, projection head.
#[derive(Debug)]
pub struct MedClipVision {
    /// The Swin tower.
    pub swin: Swin,
    projection: Linear,
}

impl MedClipVision {
    /// Loads the tower with `config` (MedCLIP's is [`SwinConfig::default`]) and the projection,
    /// whose output width is read from the checkpoint (512 for MedCLIP).
    pub fn load(w: &Weights, dev: &Device, config: &SwinConfig) -> Result<Self, ModelError> {
        let swin = Swin::load(w, dev, SWIN_PREFIX, config)?;
        let projection = projection_head(w, dev, PROJECTION, swin.width())?;
        Ok(MedClipVision { swin, projection })
    }

    /// The projection's output width.
    pub fn dim(&self) -> usize {
        self.projection.outputs()
    }

    /// The square input side.
    pub fn image_size(&self) -> usize {
        self.swin.image_size()
    }

    /// The projected, unnormalised features, `[batch, proj]`.
    pub fn image_features(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        Ok(dev.linear(&self.swin.forward(dev, pixels, batch)?, &self.projection)?)
    }

    /// `encode_image`: the projected features, L2-normalised, as a host tensor `[batch, proj]`.
    pub fn image_embeds(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Tensor, ModelError> {
        Ok(self.image_features(dev, pixels, batch)?.to_tensor(dev)?.l2_normalized())
    }
}
