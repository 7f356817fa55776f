//! Models, loaded natively from Hugging Face checkpoints (a folder, or an id in the local HF
//! cache): configuration, safetensors weights, tokenizer, preprocessing, and one module per
//! family. Contrastive families (`clip`, `siglip`) give image and text features and zero-shot
//! logits.

pub mod clip;
mod config;
mod error;
mod hub;
pub(crate) mod nn;
mod patch;
pub mod preprocess;
mod resize;
pub mod siglip;
mod spm;
pub mod synthetic;
pub mod tokenizer;
mod weights;

use std::path::{Path, PathBuf};

pub use config::Config;
pub use error::ModelError;
pub use hub::resolve;
pub use preprocess::Preprocessor;
pub use tokenizer::{TextTokenizer, TokenBatch};
pub use weights::Weights;

use crate::backend::Device;
use crate::backend::cpu::Precision;
use crate::backend::cuda::{CudaError, DType, Gpu, GpuModel};
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
}

/// A contrastive vision-language model with its preprocessing and tokenizer.
#[derive(Debug)]
pub struct ContrastiveModel {
    family: Family,
    preprocessor: Preprocessor,
    tokenizer: TextTokenizer,
    dir: PathBuf,
    dtype: String,
    /// The precision of the CPU's matrix products.
    precision: Precision,
    /// The towers on the GPU, after [`ContrastiveModel::to_device`] with [`Device::Cuda`].
    gpu: Option<OnGpu>,
}

/// A model's GPU copy; a failure at inference prints one line and the model goes on on the CPU.
#[derive(Debug)]
struct OnGpu {
    gpu: std::sync::Arc<Gpu>,
    model: GpuModel,
    failed: std::sync::atomic::AtomicBool,
}

impl OnGpu {
    /// `f` on the GPU, or `None` (after one notice) once the GPU has failed.
    fn run<T>(&self, what: &str, f: impl FnOnce(&Gpu, &GpuModel) -> Result<T, CudaError>) -> Option<T> {
        use std::sync::atomic::Ordering;
        if self.failed.load(Ordering::Relaxed) {
            return None;
        }
        match crate::backend::cuda::guarded(|| f(&self.gpu, &self.model)) {
            Ok(v) => Some(v),
            Err(e) => {
                self.failed.store(true, Ordering::Relaxed);
                eprintln!("mvb: CUDA failed computing {what} ({e}); continuing on the CPU");
                None
            }
        }
    }
}

impl ContrastiveModel {
    /// Loads `spec`: a folder in Hugging Face layout, or a model id in the local HF cache.
    pub fn load(spec: &str) -> Result<Self, ModelError> {
        Self::load_with(spec, Precision::F32)
    }

    /// Loads `spec` to compute its matrix products in `precision`.
    pub fn load_with(spec: &str, precision: Precision) -> Result<Self, ModelError> {
        let dir = resolve(spec)?;
        Self::load_dir_with(&dir, precision)
    }

    /// Loads the checkpoint in `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self, ModelError> {
        Self::load_dir_with(dir, Precision::F32)
    }

    /// Loads the checkpoint in `dir` to compute its matrix products in `precision`.
    pub fn load_dir_with(dir: &Path, precision: Precision) -> Result<Self, ModelError> {
        let config = Config::open(dir)?;
        let weights = Weights::open(dir)?.with_precision(precision);
        let preprocessor = Preprocessor::open(dir)?;
        let (family, max_len, pad) = match config.model_type.as_str() {
            "clip" => {
                let m = clip::Clip::load(&weights, &config)?;
                let max = m.text.max_len();
                (Family::Clip(Box::new(m)), max, 49407)
            }
            "siglip" => {
                let m = siglip::Siglip::load(&weights, &config)?;
                let max = m.text.max_len();
                (Family::Siglip(Box::new(m)), max, 1)
            }
            other => {
                return Err(ModelError::Unsupported {
                    path: config.path.clone(),
                    message: format!("model_type `{other}` is not a contrastive family mvb implements (clip, siglip)"),
                });
            }
        };
        let tokenizer = TextTokenizer::open(dir, pad, max_len)?;
        Ok(ContrastiveModel {
            family,
            preprocessor,
            tokenizer,
            dir: dir.to_owned(),
            dtype: weights.dtype().unwrap_or_default(),
            precision,
            gpu: None,
        })
    }

    /// Loads `spec` to run on `device` in `precision` (unset: f32 on the CPU, bf16 on the GPU;
    /// the CPU computes f16 requests in f32). When the GPU cannot take the model, it runs on the
    /// CPU in f32 and the second value says why.
    pub fn load_on(
        spec: &str,
        device: Device,
        precision: Option<DType>,
    ) -> Result<(Self, Option<CudaError>), ModelError> {
        let cpu = match (device, precision) {
            (Device::Cpu, Some(DType::Bf16)) => Precision::Bf16,
            _ => Precision::F32,
        };
        let mut model = Self::load_with(spec, cpu)?;
        let failure = match device {
            Device::Cpu => None,
            Device::Cuda => model.to_device(Device::Cuda, precision.unwrap_or(DType::Bf16)).err(),
        };
        Ok((model, failure))
    }

    /// Runs the towers on `device` from now on: for [`Device::Cuda`], uploads the weights once as
    /// `dtype` (bf16 for speed, f32 for parity with the CPU); [`Device::Cpu`] drops a GPU copy.
    pub fn to_device(&mut self, device: Device, dtype: DType) -> Result<(), CudaError> {
        self.gpu = match device {
            Device::Cpu => None,
            Device::Cuda => {
                let gpu = Gpu::get()?;
                let model = crate::backend::cuda::guarded(|| match &self.family {
                    Family::Clip(m) => GpuModel::from_clip(&gpu, dtype, m),
                    Family::Siglip(m) => GpuModel::from_siglip(&gpu, dtype, m),
                })?;
                gpu.synchronize()?;
                Some(OnGpu { gpu, model, failed: std::sync::atomic::AtomicBool::new(false) })
            }
        };
        Ok(())
    }

    /// Where the towers run now.
    pub fn device(&self) -> Device {
        match &self.gpu {
            Some(g) if !g.failed.load(std::sync::atomic::Ordering::Relaxed) => Device::Cuda,
            _ => Device::Cpu,
        }
    }

    /// `cpu` (f32), `cpu-bf16`, or `cuda-<dtype>` while the towers run on the GPU: features
    /// depend on it (feature caches are keyed by it).
    pub fn compute_tag(&self) -> String {
        match (&self.gpu, self.device(), self.precision) {
            (Some(g), Device::Cuda, _) => format!("cuda-{}", g.model.dtype()),
            (_, _, Precision::F32) => "cpu".to_owned(),
            (_, _, p) => format!("cpu-{}", p.name()),
        }
    }

    /// The GPU copy (for parity tests and benchmarks): the device and the uploaded towers.
    pub fn gpu(&self) -> Option<(&Gpu, &GpuModel)> {
        self.gpu.as_ref().map(|g| (&*g.gpu, &g.model))
    }

    /// The checkpoint folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The family name (`clip`, `siglip`).
    pub fn family(&self) -> &'static str {
        match self.family {
            Family::Clip(_) => "clip",
            Family::Siglip(_) => "siglip",
        }
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

    /// Unnormalised image features from preprocessed pixels (`get_image_features`).
    pub fn image_features_from_pixels(&self, pixels: &[f32], batch: usize) -> Tensor {
        if let Some(t) =
            self.gpu.as_ref().and_then(|g| g.run("image features", |gpu, m| m.image_features(gpu, pixels, batch)))
        {
            return t;
        }
        match &self.family {
            Family::Clip(m) => m.image_features(pixels, batch),
            Family::Siglip(m) => m.image_features(pixels, batch),
        }
    }

    /// Unnormalised image features (`get_image_features`), `[n, dim]`.
    pub fn image_features(&self, images: &[Pixels]) -> Result<Tensor, ModelError> {
        let pixels = self.preprocess(images)?;
        Ok(self.image_features_from_pixels(&pixels, images.len()))
    }

    /// Tokenizes texts, padded to the longest.
    pub fn tokenize(&self, texts: &[String]) -> Result<TokenBatch, ModelError> {
        self.tokenizer.encode(texts)
    }

    /// Unnormalised text features (`get_text_features`), `[n, dim]`.
    pub fn text_features(&self, texts: &[String]) -> Result<Tensor, ModelError> {
        let tokens = self.tokenize(texts)?;
        if let Some(g) = &self.gpu {
            let (embedded, pooled_at) = match &self.family {
                Family::Clip(m) => (m.text.embeddings.forward(&tokens)?, m.text.pooled_positions(&tokens)),
                Family::Siglip(m) => (m.text.embeddings.forward(&tokens)?, vec![tokens.len - 1; tokens.batch]),
            };
            if let Some(t) = g.run("text features", |gpu, m| m.text_features(gpu, &embedded, &tokens, &pooled_at)) {
                return Ok(t);
            }
        }
        match &self.family {
            Family::Clip(m) => m.text_features(&tokens),
            Family::Siglip(m) => m.text_features(&tokens),
        }
    }

    /// `(exp(logit_scale), logit_bias)`; the bias is 0 for CLIP.
    pub fn logit_params(&self) -> (f32, f32) {
        match &self.family {
            Family::Clip(m) => (m.scale, 0.0),
            Family::Siglip(m) => (m.scale, m.bias),
        }
    }

    /// `logits_per_image`: `scale · cos(image, text) + bias`, `[images, texts]`, from
    /// unnormalised features.
    pub fn logits(&self, image_features: &Tensor, text_features: &Tensor) -> Tensor {
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
