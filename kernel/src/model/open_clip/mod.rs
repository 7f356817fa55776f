//! open_clip checkpoints (<https://github.com/mlfoundations/open_clip>, as on the Hugging Face
//! hub): `open_clip_config.json` (`model_cfg` + `preprocess_cfg`), `open_clip_model.safetensors`
//! or `open_clip_pytorch_model.bin`, and the text tokenizer's files. Two families: open_clip's
//! own `CLIP` (the `ViT-B-32` family: [`towers`]) and `CustomTextCLIP` with a timm ViT image tower
//! ([`timm`]) and a Hugging Face BERT text tower ([`hf`]), BiomedCLIP's layout. Both load into
//! mvb's [`Clip`], so zero-shot, features, probes and adapters treat them as CLIP models.

mod config;
mod hf;
mod layers;
mod timm;
mod towers;

use std::path::{Path, PathBuf};

use crate::backend::Device;
use crate::model::clip::{Clip, TextFeatures};
use crate::model::{ModelError, Preprocessor, TextTokenizer, Weights};

pub use config::FILE as CONFIG_FILE;
pub use hf::HfText;

/// The weight files open_clip's hub integration writes, in order of preference.
const WEIGHTS: [&str; 2] = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"];

/// The Hugging Face checkpoint files whose presence makes a folder a transformers checkpoint
/// (hub repositories holding both formats load as transformers models).
const HF_WEIGHTS: [&str; 4] =
    ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"];

/// Whether `dir` is an open_clip checkpoint: it has `open_clip_config.json` and no
/// transformers weights.
pub fn is_open_clip(dir: &Path) -> bool {
    dir.join(config::FILE).is_file() && !HF_WEIGHTS.iter().any(|f| dir.join(f).is_file())
}

/// A loaded open_clip checkpoint.
#[derive(Debug)]
pub struct Loaded {
    /// The model.
    pub model: Clip,
    /// Its preprocessing (`preprocess_cfg`).
    pub preprocessor: Preprocessor,
    /// Its tokenizer (cleaning and truncation as open_clip's).
    pub tokenizer: TextTokenizer,
    /// `open_clip-bert` (a Hugging Face BERT text tower, BiomedCLIP's layout) or `open_clip`.
    pub family: &'static str,
    /// The weights' storage dtype.
    pub dtype: String,
}

/// The weight file of `dir`.
fn weights_file(dir: &Path) -> Result<PathBuf, ModelError> {
    WEIGHTS.iter().map(|f| dir.join(f)).find(|p| p.is_file()).ok_or_else(|| ModelError::NotFound {
        spec: dir.display().to_string(),
        reason: format!("{} is there but neither {} nor {}", config::FILE, WEIGHTS[0], WEIGHTS[1]),
    })
}

/// Loads the open_clip checkpoint in `dir` onto `dev`.
pub fn load(dir: &Path, dev: &Device) -> Result<Loaded, ModelError> {
    let config = config::OpenClipConfig::open(dir)?;
    config.check_model()?;
    let file = weights_file(dir)?;
    let w = Weights::from_files(vec![file.clone()], file)?;
    let (vision, visual_projection) = if config.vision().has("timm_model_name") {
        timm::vision(&w, dev, &config)?
    } else {
        towers::vision(&w, dev, &config)?
    };
    let hf = config.text().has("hf_model_name");
    let (text, context, pad): (Box<dyn TextFeatures>, usize, Option<u32>) = if hf {
        let t = HfText::load(&w, dev, &config)?;
        let context = t.max_len();
        (Box::new(t) as Box<dyn TextFeatures>, context, None)
    } else {
        let prefix = if w.contains("text.token_embedding.weight") { "text." } else { "" };
        let (t, context) = towers::text(&w, dev, &config, prefix)?;
        let pad = config.text().uint("pad_id", 0)? as u32;
        (Box::new(t) as Box<dyn TextFeatures>, context, Some(pad))
    };
    let embed = config.embed_dim()?;
    if visual_projection.outputs() != embed {
        return Err(config.format(format!(
            "`model_cfg.embed_dim` {embed} disagrees with the image projection's {} outputs",
            visual_projection.outputs()
        )));
    }
    let scale = crate::model::scalar(&w, "logit_scale")?.exp();
    let preprocessor = config.preprocessor(vision.image_size())?;
    let tokenizer = TextTokenizer::open_clip(dir, context, pad)?;
    Ok(Loaded {
        model: Clip::from_parts(vision, visual_projection, text, scale),
        preprocessor,
        tokenizer,
        family: if hf { "open_clip-bert" } else { "open_clip" },
        dtype: w.dtype().unwrap_or_default(),
    })
}
