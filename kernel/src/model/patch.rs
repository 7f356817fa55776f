//! Patch embedding of ViT image towers: a `p×p` convolution with stride `p`, computed as one
//! matrix product over the image's patches (im2col).

use super::nn::Linear;
use super::{ModelError, Weights};
use crate::tensor::Tensor;

/// The patch embedding `Conv2d(3, hidden, p, stride p)`.
#[derive(Debug)]
pub struct PatchEmbedding {
    pub(crate) proj: Linear,
    pub(crate) patch: usize,
    pub(crate) image: usize,
}

impl PatchEmbedding {
    /// Loads `{prefix}.weight` (`[hidden, 3, p, p]`) and, when `bias`, `{prefix}.bias`.
    pub fn load(
        w: &Weights,
        prefix: &str,
        hidden: usize,
        patch: usize,
        image: usize,
        bias: bool,
    ) -> Result<Self, ModelError> {
        let weight =
            w.tensor(&format!("{prefix}.weight"), &[hidden, 3, patch, patch])?.reshape([hidden, 3 * patch * patch]);
        let bias = if bias { Some(w.vector(&format!("{prefix}.bias"), hidden)?) } else { None };
        if !image.is_multiple_of(patch) {
            return Err(ModelError::Input(format!("image size {image} is not a multiple of patch size {patch}")));
        }
        Ok(PatchEmbedding { proj: Linear::new(weight, bias, w.precision()), patch, image })
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
    pub fn forward(&self, pixels: &[f32], batch: usize) -> Tensor {
        let (p, s, g) = (self.patch, self.image, self.grid());
        let k = 3 * p * p;
        let mut cols = vec![0f32; batch * g * g * k];
        for b in 0..batch {
            let img = &pixels[b * 3 * s * s..(b + 1) * 3 * s * s];
            for gy in 0..g {
                for gx in 0..g {
                    let dst = &mut cols[((b * g + gy) * g + gx) * k..][..k];
                    for c in 0..3 {
                        for ky in 0..p {
                            let src = &img[(c * s + gy * p + ky) * s + gx * p..][..p];
                            dst[(c * p + ky) * p..][..p].copy_from_slice(src);
                        }
                    }
                }
            }
        }
        self.proj.forward(&Tensor::new([batch, g * g, k], cols))
    }
}
