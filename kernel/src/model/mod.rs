//! Models, loaded natively from Hugging Face checkpoints (a folder, or an id in the local HF
//! cache): configuration, safetensors weights, tokenizer, preprocessing, and one module per
//! family. Contrastive families (`clip`, `siglip`, `medclip`, `blip2`) give image and text
//! features and zero-shot logits (open_clip checkpoints, `open_clip`, load as CLIP models);
//! generative ones (`llama`, `llava`) generate text.

pub mod bert;
pub mod blip2;
pub mod causal;
pub mod chat;
mod clean;
pub mod clip;
mod config;
pub mod constrain;
mod error;
pub mod generate;
pub mod gguf;
mod hub;
pub mod llama;
pub mod llava;
pub mod medclip;
pub(crate) mod nn;
pub mod open_clip;
mod patch;
pub mod preprocess;
mod resize;
pub mod siglip;
mod spm;
pub mod swin;
pub mod synthetic;
pub mod tokenizer;
mod torch_bin;
mod weights;
mod wordpiece;

use std::path::{Path, PathBuf};

pub use config::Config;
pub use error::ModelError;
pub use hub::resolve;
pub use preprocess::Preprocessor;
pub use tokenizer::{TextTokenizer, TokenBatch};
pub use weights::Weights;

use crate::backend::Device;
use crate::data::Pixels;
use crate::tensor::Tensor;

/// Reads a scalar parameter stored as shape `[]` or `[1]`.
fn scalar(w: &Weights, name: &str) -> Result<f32, ModelError> {
    let shape = w.shape(name).ok_or_else(|| w.missing(name))?.to_vec();
    let expected: &[usize] = if shape.is_empty() { &[] } else { &[1] };
    Ok(w.tensor(name, expected)?.data()[0])
}

/// The contrastive architectures.
#[derive(Debug)]
enum Family {
    Clip(Box<clip::Clip>),
    Siglip(Box<siglip::Siglip>),
    MedClip(Box<medclip::MedClip>),
    Blip2(Box<blip2::Blip2>),
}

/// A contrastive model's image tower with what follows it up to the image features: the
/// access `train/` needs to run it through its hooks and to attach LoRA adapters.
#[derive(Debug)]
pub(crate) enum Tower<'a> {
    /// CLIP (the vision tower and `visual_projection`).
    Clip(&'a clip::Clip),
    /// SigLIP (the vision tower with its pooling head).
    Siglip(&'a siglip::Siglip),
}

/// [`Tower`], mutable.
#[derive(Debug)]
pub(crate) enum TowerMut<'a> {
    /// CLIP.
    Clip(&'a mut clip::Clip),
    /// SigLIP.
    Siglip(&'a mut siglip::Siglip),
}

/// A contrastive vision-language model with its preprocessing and tokenizer, on a device.
#[derive(Debug)]
pub struct ContrastiveModel {
    family: Family,
    /// The family's name (`clip`, `siglip`, `medclip`, `blip2`, `open_clip`, `open_clip-bert`).
    label: &'static str,
    preprocessor: Preprocessor,
    tokenizer: TextTokenizer,
    dir: PathBuf,
    dtype: String,
    device: Device,
}

impl ContrastiveModel {
    /// Loads `spec` (a folder in Hugging Face layout, or a model id in the local HF cache) onto
    /// the CPU in f32, the reference.
    pub fn load(spec: &str) -> Result<Self, ModelError> {
        Self::load_on(spec, &Device::cpu())
    }

    /// Loads `spec` onto `device` (weights uploaded once, in the device's precision).
    pub fn load_on(spec: &str, device: &Device) -> Result<Self, ModelError> {
        Self::load_dir(&resolve(spec)?, device)
    }

    /// Loads the checkpoint in `dir` onto `device`.
    pub fn load_dir(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        if open_clip::is_open_clip(dir) {
            let l = open_clip::load(dir, device)?;
            return Ok(ContrastiveModel {
                family: Family::Clip(Box::new(l.model)),
                label: l.family,
                preprocessor: l.preprocessor,
                tokenizer: l.tokenizer,
                dir: dir.to_owned(),
                dtype: l.dtype,
                device: device.clone(),
            });
        }
        if medclip::is_medclip(dir) {
            let l = medclip::load(dir, device)?;
            return Ok(ContrastiveModel {
                family: Family::MedClip(Box::new(l.model)),
                label: "medclip",
                preprocessor: l.preprocessor,
                tokenizer: l.tokenizer,
                dir: dir.to_owned(),
                dtype: l.dtype,
                device: device.clone(),
            });
        }
        let config = Config::open(dir)?;
        let weights = Weights::open(dir)?;
        let preprocessor = Preprocessor::open(dir)?;
        let (family, label, max_len, pad) = match config.model_type.as_str() {
            _ if blip2::is_blip2(&config) => {
                let m = blip2::Blip2::load(&weights, device, &config)?;
                let max = m.max_len();
                (Family::Blip2(Box::new(m)), "blip2", max, 0)
            }
            "clip" => {
                let m = clip::Clip::load(&weights, device, &config)?;
                let max = m.text.max_len();
                (Family::Clip(Box::new(m)), "clip", max, 49407)
            }
            "siglip" => {
                let m = siglip::Siglip::load(&weights, device, &config)?;
                let max = m.text.max_len();
                (Family::Siglip(Box::new(m)), "siglip", max, 1)
            }
            other => {
                return Err(ModelError::Unsupported {
                    path: config.path.clone(),
                    message: format!(
                        "model_type `{other}` is not a contrastive family mvb implements (clip, siglip, \
                         medclip, blip-2; open_clip folders have open_clip_config.json)"
                    ),
                });
            }
        };
        let tokenizer = TextTokenizer::open(dir, pad, max_len)?;
        Ok(ContrastiveModel {
            family,
            label,
            preprocessor,
            tokenizer,
            dir: dir.to_owned(),
            dtype: weights.dtype().unwrap_or_default(),
            device: device.clone(),
        })
    }

    /// The image tower (training and adapters); [`ModelError::NotTrainable`] for a family
    /// FT-LoRA does not cover.
    pub(crate) fn tower(&self) -> Result<Tower<'_>, ModelError> {
        match &self.family {
            Family::Clip(m) => Ok(Tower::Clip(m)),
            Family::Siglip(m) => Ok(Tower::Siglip(m)),
            Family::MedClip(_) | Family::Blip2(_) => Err(self.not_trainable()),
        }
    }

    /// The image tower, mutable (attaching adapters).
    pub(crate) fn tower_mut(&mut self) -> Result<TowerMut<'_>, ModelError> {
        let err = self.not_trainable();
        match &mut self.family {
            Family::Clip(m) => Ok(TowerMut::Clip(m)),
            Family::Siglip(m) => Ok(TowerMut::Siglip(m)),
            Family::MedClip(_) | Family::Blip2(_) => Err(err),
        }
    }

    /// Whether FT-LoRA can train this model's image tower (`Ok`), else the error saying so.
    pub fn check_trainable(&self) -> Result<(), ModelError> {
        self.tower().map(drop)
    }

    fn not_trainable(&self) -> ModelError {
        ModelError::NotTrainable { model: self.dir.clone(), family: self.label }
    }

    /// Where and in what precision the towers run.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `cpu` (f32), `cpu-bf16`, `cuda-bf16`, ...: features depend on it (feature caches are
    /// keyed by it).
    pub fn compute_tag(&self) -> String {
        self.device.tag()
    }

    /// The checkpoint folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The family name (`clip`, `siglip`, `medclip`, `blip2`, `open_clip`, `open_clip-bert`).
    pub fn family(&self) -> &'static str {
        self.label
    }

    /// The checkpoint's storage dtype (`F32`, `BF16`, ...).
    pub fn dtype(&self) -> &str {
        &self.dtype
    }

    /// The square input side of the image tower.
    pub fn image_size(&self) -> usize {
        match &self.family {
            Family::Clip(m) => m.vision.image_size(),
            Family::Siglip(m) => m.vision.image_size(),
            Family::MedClip(m) => m.vision.image_size(),
            Family::Blip2(m) => m.vision.image_size(),
        }
    }

    /// Preprocesses images into a `[batch, 3, S, S]` buffer.
    pub fn preprocess(&self, images: &[Pixels]) -> Result<Vec<f32>, ModelError> {
        let side = self.image_size();
        let mut out = Vec::with_capacity(images.len() * 3 * side * side);
        for image in images {
            let px = self.preprocessor.apply(image)?;
            if px.len() != 3 * side * side {
                return Err(ModelError::Input(format!(
                    "preprocessing gives {} values per image; the image tower takes 3x{side}x{side}",
                    px.len()
                )));
            }
            out.extend_from_slice(&px);
        }
        Ok(out)
    }

    /// Unnormalised image features from preprocessed pixels (`get_image_features`), `[batch, dim]`;
    /// MedCLIP's are its `encode_image` output, normalised (what MedVLMBench probes); BLIP-2: see
    /// [`blip2::FeatureLayout`].
    pub fn image_features_from_pixels(&self, pixels: &[f32], batch: usize) -> Result<Tensor, ModelError> {
        let dev = &self.device;
        let f = match &self.family {
            Family::Clip(m) => m.image_features(dev, pixels, batch)?,
            Family::Siglip(m) => m.image_features(dev, pixels, batch)?,
            Family::MedClip(m) => return m.image_embeds(dev, pixels, batch),
            Family::Blip2(m) => return m.image_features(dev, pixels, batch),
        };
        Ok(f.into_tensor(dev)?)
    }

    /// Unnormalised image features (`get_image_features`), `[n, dim]`.
    pub fn image_features(&self, images: &[Pixels]) -> Result<Tensor, ModelError> {
        let pixels = self.preprocess(images)?;
        self.image_features_from_pixels(&pixels, images.len())
    }

    /// Tokenizes texts, padded to the longest.
    pub fn tokenize(&self, texts: &[String]) -> Result<TokenBatch, ModelError> {
        self.tokenizer.encode(texts)
    }

    /// Unnormalised text features (`get_text_features`), `[n, dim]`; MedCLIP's are its
    /// `encode_text` output, normalised (its pooling averages over the padded batch, so a text's
    /// features depend on the longest text beside it, as in MedCLIP).
    pub fn text_features(&self, texts: &[String]) -> Result<Tensor, ModelError> {
        let tokens = self.tokenize(texts)?;
        let dev = &self.device;
        let f = match &self.family {
            Family::Clip(m) => m.text_features(dev, &tokens)?,
            Family::Siglip(m) => m.text_features(dev, &tokens)?,
            Family::MedClip(m) => return m.text_embeds(dev, &tokens),
            Family::Blip2(m) => return m.text_features(dev, &tokens),
        };
        Ok(f.into_tensor(dev)?)
    }

    /// `(exp(logit_scale), logit_bias)`; the bias is 0 for CLIP; BLIP-2's cosines are unscaled.
    pub fn logit_params(&self) -> (f32, f32) {
        match &self.family {
            Family::Clip(m) => (m.scale, 0.0),
            Family::Siglip(m) => (m.scale, m.bias),
            Family::MedClip(m) => (m.scale, 0.0),
            Family::Blip2(_) => (1.0, 0.0),
        }
    }

    /// The part of image features a linear probe reads: all of them, but for BLIP-2 the vision
    /// tower's class token (MedVLMBench's FT-LP feature for BLIP2).
    pub fn probe_features(&self, image_features: &Tensor) -> Option<Tensor> {
        match &self.family {
            Family::Blip2(m) => Some(m.probe_features(image_features)),
            Family::Clip(_) | Family::Siglip(_) | Family::MedClip(_) => None,
        }
    }

    /// `logits_per_image`: `scale · cos(image, text) + bias`, `[images, texts]`, from
    /// unnormalised features.
    pub fn logits(&self, image_features: &Tensor, text_features: &Tensor) -> Tensor {
        if let Family::Blip2(m) = &self.family {
            return m.logits(image_features, text_features);
        }
        let (scale, bias) = self.logit_params();
        let (img, txt) = (image_features.l2_normalized(), text_features.l2_normalized());
        let (n, m, d) = (img.rows(), txt.rows(), img.cols());
        let mut out = vec![0f32; n * m];
        for i in 0..n {
            for j in 0..m {
                let dot: f32 = img.row(i).iter().zip(txt.row(j)).map(|(a, b)| a * b).sum();
                out[i * m + j] = scale * dot + bias;
            }
        }
        debug_assert_eq!(d, txt.cols());
        Tensor::new([n, m], out)
    }
}
