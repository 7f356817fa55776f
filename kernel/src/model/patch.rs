//! Patch embedding of ViT image towers: a `p×p` convolution with stride `p`, computed as one
//! matrix product over the image's patches (im2col).

use super::{ModelError, Weights};
use crate::backend::{Array, Device, Linear};

/// The patch embedding `Conv2d(3, hidden, p, stride p)`.
#[derive(Debug)]
pub struct PatchEmbedding {
    proj: Linear,
    patch: usize,
    image: usize,
}

impl PatchEmbedding {
    /// Loads `{prefix}.weight` (`[hidden, 3, p, p]`) and, when `bias`, `{prefix}.bias`.
    pub fn load(
        w: &Weights,
        dev: &Device,
        prefix: &str,
        hidden: usize,
        (patch, image): (usize, usize),
        bias: bool,
    ) -> Result<Self, ModelError> {
        if patch == 0 || !image.is_multiple_of(patch) {
            return Err(ModelError::Input(format!("image size {image} is not a multiple of patch size {patch}")));
        }
        let weight =
            w.tensor(&format!("{prefix}.weight"), &[hidden, 3, patch, patch])?.reshape([hidden, 3 * patch * patch]);
        let bias = if bias { Some(w.vector(&format!("{prefix}.bias"), hidden)?) } else { None };
        Ok(PatchEmbedding { proj: Linear::new(dev, weight, bias)?, patch, image })
    }

    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image / self.patch
    }

    /// The image side the tower expects.
    pub fn image_size(&self) -> usize {
        self.image
    }

    /// `pixels` is `[batch, 3, image, image]`; returns `[batch, grid², hidden]`.
    pub fn forward(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        let cols = dev.patches(pixels, batch, self.image, self.patch)?;
        Ok(dev.linear(&cols, &self.proj)?)
    }
}
