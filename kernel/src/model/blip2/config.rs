//! BLIP-2's `config.json` (transformers' `Blip2Config`, `Blip2VisionConfig`,
//! `Blip2QFormerConfig` in `configuration_blip_2.py`): the settings the tensors do not tell, with
//! transformers' defaults for keys a checkpoint leaves out (4.x wrote only non-default values).

use serde_json::Value;

use crate::backend::cpu::Activation;
use crate::model::{Config, ModelError};

/// The architecture mvb implements (`architectures` in `config.json`).
pub const ARCHITECTURE: &str = "Blip2ForImageTextRetrieval";

/// The EVA ViT's settings (`vision_config`).
#[derive(Debug, Clone, Copy)]
pub struct VisionSettings {
    /// `num_hidden_layers` (39).
    pub layers: usize,
    /// `num_attention_heads` (16).
    pub heads: usize,
    /// `image_size` (224).
    pub image_size: usize,
    /// `patch_size` (14).
    pub patch_size: usize,
    /// `hidden_act` (`gelu`).
    pub act: Activation,
    /// `layer_norm_eps` (1e-6).
    pub eps: f32,
    /// `qkv_bias` (true): the fused projection has a bias (`q_bias ‖ 0 ‖ v_bias`).
    pub qkv_bias: bool,
}

/// The Q-Former's settings (`qformer_config`).
#[derive(Debug, Clone, Copy)]
pub struct QFormerSettings {
    /// `num_hidden_layers` (12).
    pub layers: usize,
    /// `num_attention_heads` (12).
    pub heads: usize,
    /// `hidden_act` (`gelu`).
    pub act: Activation,
    /// `layer_norm_eps` (1e-12).
    pub eps: f32,
    /// `cross_attention_frequency` (2): layer `i` cross-attends to the image when `i % f == 0`.
    pub cross_every: usize,
}

/// Everything [`super::Blip2::load`] reads from `config.json`.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The image tower.
    pub vision: VisionSettings,
    /// The Q-Former.
    pub qformer: QFormerSettings,
    /// `num_query_tokens` (32).
    pub queries: usize,
}

/// Whether `config` is a BLIP-2 checkpoint (`model_type` `blip-2`), of any architecture.
pub fn is_blip2(config: &Config) -> bool {
    config.model_type == "blip-2"
}

/// Reads the settings, refusing BLIP-2 architectures other than [`ARCHITECTURE`] and a
/// Q-Former without its text path (`use_qformer_text_input`).
pub fn read(config: &Config) -> Result<Settings, ModelError> {
    let bad = |message: String| ModelError::Unsupported { path: config.path.clone(), message };
    let archs: Vec<&str> = config
        .json
        .get("architectures")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !archs.contains(&ARCHITECTURE) {
        return Err(bad(format!(
            "a BLIP-2 checkpoint of architecture {archs:?}: mvb implements {ARCHITECTURE} (Salesforce/blip2-itm-vit-g), \
             the contrastive BLIP-2 MedVLMBench scores"
        )));
    }
    let section = |name: &str| config.json.get(name).cloned().unwrap_or(Value::Null);
    let (v, q) = (section("vision_config"), section("qformer_config"));
    let key = |s: &Value, k: &str| s.get(k).filter(|x| !x.is_null()).cloned();
    let uint = |s: &Value, k: &str, d: usize| key(s, k).and_then(|x| x.as_u64()).map_or(d, |x| x as usize);
    let float = |s: &Value, k: &str, d: f64| key(s, k).and_then(|x| x.as_f64()).unwrap_or(d) as f32;
    let act = |s: &Value, tower: &str| {
        let name = key(s, "hidden_act").and_then(|x| x.as_str().map(str::to_owned)).unwrap_or_else(|| "gelu".into());
        Activation::from_hf(&name).ok_or_else(|| {
            bad(format!("{tower}.hidden_act `{name}` is not implemented (gelu, gelu_pytorch_tanh, quick_gelu are)"))
        })
    };
    if !key(&q, "use_qformer_text_input").and_then(|x| x.as_bool()).unwrap_or(false) {
        return Err(bad("qformer_config.use_qformer_text_input is false: the Q-Former has no text path".into()));
    }
    let cross_every = uint(&q, "cross_attention_frequency", 2);
    if cross_every == 0 {
        return Err(bad("qformer_config.cross_attention_frequency is 0".into()));
    }
    Ok(Settings {
        vision: VisionSettings {
            layers: uint(&v, "num_hidden_layers", 39),
            heads: uint(&v, "num_attention_heads", 16),
            image_size: uint(&v, "image_size", 224),
            patch_size: uint(&v, "patch_size", 14),
            act: act(&v, "vision_config")?,
            eps: float(&v, "layer_norm_eps", 1e-6),
            qkv_bias: key(&v, "qkv_bias").and_then(|x| x.as_bool()).unwrap_or(true),
        },
        qformer: QFormerSettings {
            layers: uint(&q, "num_hidden_layers", 12),
            heads: uint(&q, "num_attention_heads", 12),
            act: act(&q, "qformer_config")?,
            eps: float(&q, "layer_norm_eps", 1e-12),
            cross_every,
        },
        queries: uint(&config.json, "num_query_tokens", 32),
    })
}

/// `image_token_index` when the configuration sets one (transformers then drops the first
/// `num_query_tokens` ids of every prompt, expecting the processor to have put image tokens
/// there; MedVLMBench tokenizes with the tokenizer alone, and so does mvb).
pub fn image_token_index(config: &Config) -> Option<i64> {
    config.json.get("image_token_index").and_then(Value::as_i64)
}
