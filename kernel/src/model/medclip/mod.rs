//! MedCLIP (<https://github.com/RyanWangZf/MedCLIP>, `medclip/modeling_medclip.py`,
//! `MedCLIPModel(vision_cls=MedCLIPVisionModelViT)`): a Swin-T image tower ([`vision`]) and a
//! Bio_ClinicalBERT text tower ([`text`]), each with a bias-free projection to 512 and L2
//! normalisation, logits `exp(clamp(logit_scale, 0, 4.6052)) · img · txtᵀ` (`compute_logits`).
//!
//! A MedCLIP folder holds MedCLIP's `pytorch_model.bin` (or `model.safetensors`) with its
//! state-dict names (`vision_model.model.*`, `vision_model.projection_head.weight`,
//! `text_model.model.*`, `text_model.projection_head.weight`, `logit_scale`) and
//! Bio_ClinicalBERT's tokenizer files (`vocab.txt`, or a `tokenizer.json`). It is recognised by
//! `config.json` with `"model_type": "medclip"` (whose optional `vision_config`, transformers'
//! `SwinConfig` keys, and `text_config`, `num_attention_heads`, `layer_norm_eps`, `hidden_act`,
//! replace MedCLIP's fixed Swin-T and BERT-base settings), or, without a `config.json`, by
//! those tensor names. Preprocessing and tokenization are MedCLIP's processor's
//! (`MedCLIPProcessor` in `medclip/dataset.py`): see [`Preprocessor::medclip`] and
//! [`tokenizer`].

mod text;
mod vision;

use std::path::Path;

use serde_json::Value;

pub use text::MedClipText;
pub use vision::MedClipVision;

use crate::backend::cpu::Activation;
use crate::backend::{Device, Linear};
use crate::model::bert::BertShape;
use crate::model::nn::linear;
use crate::model::swin::SwinConfig;
use crate::model::{Config, ModelError, Preprocessor, TextTokenizer, Weights};
use crate::tensor::Tensor;

/// `MedCLIPProcessor` sets the tokenizer's `model_max_length` to 77 (texts are truncated).
pub const MAX_LEN: usize = 77;
/// MedCLIP's `IMG_MEAN` (`medclip/constants.py`), one value for the grey channel.
pub const MEAN: f32 = 0.586_278_6;
/// MedCLIP's `IMG_STD`.
pub const STD: f32 = 0.279_500_9;
/// `compute_logits` clamps `logit_scale` to `[0, 4.6052]` (a scale of at most 100).
pub const MAX_LOG_SCALE: f32 = 4.6052;

/// A tensor only a MedCLIP checkpoint holds.
const MARKER: &str = "text_model.projection_head.weight";

/// A bias-free `{prefix}.weight` from `width` inputs to as many outputs as the checkpoint's
/// (512 in MedCLIP).
fn projection_head(w: &Weights, dev: &Device, prefix: &str, width: usize) -> Result<Linear, ModelError> {
    let name = format!("{prefix}.weight");
    match w.shape(&name) {
        Some(&[out, inputs]) if inputs == width => linear(w, dev, prefix, width, out, false),
        Some(_) => Err(w.tensor(&name, &[512, width]).err().unwrap_or_else(|| w.missing(&name))),
        None => Err(w.missing(&name)),
    }
}

/// A loaded MedCLIP model.
#[derive(Debug)]
pub struct MedClip {
    /// The image side.
    pub vision: MedClipVision,
    /// The text side.
    pub text: MedClipText,
    /// `exp(clamp(logit_scale, 0, 4.6052))`.
    pub scale: f32,
}

impl MedClip {
    /// `encode_image`: L2-normalised image embeddings, `[batch, dim]`.
    pub fn image_embeds(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Tensor, ModelError> {
        self.vision.image_embeds(dev, pixels, batch)
    }

    /// `encode_text`: L2-normalised text embeddings, `[batch, dim]`.
    pub fn text_embeds(&self, dev: &Device, tokens: &crate::model::TokenBatch) -> Result<Tensor, ModelError> {
        self.text.text_embeds(dev, tokens)
    }
}

/// A loaded MedCLIP folder.
#[derive(Debug)]
pub struct Loaded {
    /// The model.
    pub model: MedClip,
    /// MedCLIP's image preprocessing.
    pub preprocessor: Preprocessor,
    /// Bio_ClinicalBERT's tokenizer as MedCLIP's processor sets it up.
    pub tokenizer: TextTokenizer,
    /// The weights' storage dtype.
    pub dtype: String,
}

/// Whether `dir` is a MedCLIP folder: its `config.json` says `"model_type": "medclip"`, or it
/// has no `config.json` and its weights hold `text_model.projection_head.weight`.
pub fn is_medclip(dir: &Path) -> bool {
    match Config::open(dir) {
        Ok(config) => config.model_type == "medclip",
        Err(_) if dir.join("config.json").exists() => false,
        Err(_) => Weights::open(dir).is_ok_and(|w| w.contains(MARKER)),
    }
}

/// Loads the MedCLIP folder `dir` onto `dev`.
pub fn load(dir: &Path, dev: &Device) -> Result<Loaded, ModelError> {
    let config = Config::open(dir).ok();
    let w = Weights::open(dir)?;
    if !w.contains("vision_model.projection_head.weight") && w.contains("vision_model.model.conv1.weight") {
        return Err(ModelError::Unsupported {
            path: w.origin().to_owned(),
            message: "MedCLIP with a ResNet-50 image tower (`MedCLIPVisionModel`) is not implemented; \
                      MedCLIP-ViT (Swin-T, `MedCLIPVisionModelViT`) is"
                .into(),
        });
    }
    let swin = match &config {
        Some(c) => section(c, "vision_config").map_or(Ok(SwinConfig::default()), |s| SwinConfig::from_config(&s))?,
        None => SwinConfig::default(),
    };
    let vision = MedClipVision::load(&w, dev, &swin)?;
    let text = MedClipText::load(&w, dev, bert_shape(config.as_ref(), &w)?)?;
    if vision.dim() != text.dim() {
        return Err(ModelError::Input(format!(
            "{}: the image projection gives {} values, the text projection {}",
            w.origin().display(),
            vision.dim(),
            text.dim()
        )));
    }
    let scale = crate::model::scalar(&w, "logit_scale")?.clamp(0.0, MAX_LOG_SCALE).exp();
    let tokenizer = tokenizer(dir, MAX_LEN.min(text.max_len()))?;
    Ok(Loaded {
        preprocessor: Preprocessor::medclip(swin.image_size, MEAN, STD),
        model: MedClip { vision, text, scale },
        tokenizer,
        dtype: w.dtype().unwrap_or_default(),
    })
}

/// `config.json`'s `key` object as a configuration of its own (named `config.json` in errors).
fn section(config: &Config, key: &str) -> Option<Config> {
    let json = config.json.get(key).filter(|v| v.is_object())?.clone();
    Some(Config { path: config.path.clone(), model_type: String::new(), json })
}

/// BERT's settings: `text_config` where given, else Bio_ClinicalBERT's (12 heads of 64,
/// `layer_norm_eps` 1e-12, GELU); `num_hidden_layers`, when given, must match the checkpoint.
fn bert_shape(config: Option<&Config>, w: &Weights) -> Result<BertShape, ModelError> {
    let width = w.shape("text_model.model.embeddings.word_embeddings.weight").map_or(768, |s| s[s.len() - 1]);
    let text = config.and_then(|c| section(c, "text_config"));
    let get = |key: &str| text.as_ref().and_then(|t| t.json.get(key).filter(|v| !v.is_null()).cloned());
    let bad = |key: &str, message: String| ModelError::Format {
        path: text.as_ref().map_or_else(|| w.origin().to_owned(), |t| t.path.clone()),
        message: format!("text_config.{key}: {message}"),
    };
    let heads = match get("num_attention_heads") {
        None => (width / 64).max(1),
        Some(v) => v.as_u64().ok_or_else(|| bad("num_attention_heads", format!("{v} is not a count")))? as usize,
    };
    if let Some(layers) = get("num_hidden_layers").and_then(|v| v.as_u64()) {
        let found = (0..)
            .take_while(|i| w.contains(&format!("text_model.model.encoder.layer.{i}.attention.self.query.weight")))
            .count();
        if found as u64 != layers {
            return Err(bad("num_hidden_layers", format!("{layers}, but the checkpoint holds {found} layers")));
        }
    }
    let act_name = get("hidden_act").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| "gelu".into());
    let act =
        Activation::from_hf(&act_name).ok_or_else(|| bad("hidden_act", format!("`{act_name}` is not implemented")))?;
    let eps = get("layer_norm_eps").and_then(|v| v.as_f64()).unwrap_or(1e-12) as f32;
    Ok(BertShape { heads, eps, act })
}

/// Bio_ClinicalBERT's tokenizer as `MedCLIPProcessor` uses it: `tokenizer.json` when the folder
/// has one; else transformers' `BertTokenizerFast` built from `vocab.txt` (the hub folder has no
/// `tokenizer_config.json`, so it lower-cases and strips accents although the vocabulary is
/// cased: `do_lower_case`, `strip_accents` and `tokenize_chinese_chars` from a
/// `tokenizer_config.json` when there is one). `[CLS] … [SEP]`, truncated to `context` tokens.
pub fn tokenizer(dir: &Path, context: usize) -> Result<TextTokenizer, ModelError> {
    let json = dir.join("tokenizer.json");
    if json.is_file() {
        return TextTokenizer::open(dir, 0, context)?.truncating(context, &json);
    }
    let vocab = dir.join("vocab.txt");
    let bad = |message: String| ModelError::Format { path: vocab.clone(), message };
    if !vocab.is_file() {
        return Err(ModelError::NotFound {
            spec: dir.display().to_string(),
            reason: "a MedCLIP folder needs Bio_ClinicalBERT's vocab.txt (or a tokenizer.json)".into(),
        });
    }
    let config = dir.join("tokenizer_config.json");
    let settings: Value = match std::fs::read_to_string(&config) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| ModelError::Format { path: config.clone(), message: format!("not JSON: {e}") })?,
        Err(_) => Value::Null,
    };
    let inner = super::wordpiece::load(dir, &[settings])?;
    let pad = inner.token_to_id("[PAD]").ok_or_else(|| bad("no `[PAD]` token".into()))?;
    TextTokenizer::from_tokenizer(inner, pad, context).truncating(context, &vocab)
}
