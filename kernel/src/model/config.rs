//! Reading `config.json` (transformers' `CLIPConfig` / `SiglipConfig`). Dimensions are also
//! checked against the tensors, so a config that disagrees with its weights fails naming the
//! tensor. Missing keys take transformers' defaults for the model type.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ModelError;
use crate::backend::cpu::Activation;

/// The parsed `config.json`.
#[derive(Debug)]
pub struct Config {
    /// The file, for messages.
    pub path: PathBuf,
    /// `model_type`: `clip` or `siglip`.
    pub model_type: String,
    pub(crate) json: Value,
}

/// One tower's settings.
#[derive(Debug, Clone)]
pub struct TowerConfig {
    /// Encoder layers (`num_hidden_layers`; the checkpoint must hold exactly these).
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Activation of the MLP.
    pub act: Activation,
    /// Layer-norm epsilon.
    pub eps: f32,
    /// Vision only: image side, patch side.
    pub image_size: usize,
    /// Vision only: patch side.
    pub patch_size: usize,
    /// Text only: end-of-text token id (CLIP pools there).
    pub eos_token_id: i64,
}

impl Config {
    /// Reads `dir/config.json`.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::Format { path: path.clone(), message: format!("invalid JSON: {e}") })?;
        let model_type = json.get("model_type").and_then(Value::as_str).unwrap_or_default().to_owned();
        Ok(Config { path, model_type, json })
    }

    /// The settings of `tower` (`vision_config` or `text_config`), with transformers' defaults.
    pub fn tower(&self, tower: &str) -> Result<TowerConfig, ModelError> {
        let section = self.json.get(tower).cloned().unwrap_or(Value::Null);
        let get = |key: &str| section.get(key).filter(|v| !v.is_null());
        let siglip = self.model_type == "siglip";
        let vision = tower == "vision_config";
        let default_heads = match (siglip, vision) {
            (false, false) => 8,
            _ => 12,
        };
        let act_name = get("hidden_act")
            .and_then(Value::as_str)
            .unwrap_or(if siglip { "gelu_pytorch_tanh" } else { "quick_gelu" })
            .to_owned();
        let act = Activation::from_hf(&act_name).ok_or_else(|| ModelError::Unsupported {
            path: self.path.clone(),
            message: format!(
                "{tower}.hidden_act `{act_name}` is not implemented (gelu, gelu_pytorch_tanh, quick_gelu are)"
            ),
        })?;
        let uint = |key: &str, default: usize| get(key).and_then(Value::as_u64).map_or(default, |v| v as usize);
        Ok(TowerConfig {
            layers: uint("num_hidden_layers", 12),
            heads: uint("num_attention_heads", default_heads),
            act,
            eps: get("layer_norm_eps").and_then(Value::as_f64).unwrap_or(if siglip { 1e-6 } else { 1e-5 }) as f32,
            image_size: uint("image_size", 224),
            patch_size: uint("patch_size", if siglip { 16 } else { 32 }),
            eos_token_id: get("eos_token_id").and_then(Value::as_i64).unwrap_or(if siglip { 1 } else { 49407 }),
        })
    }
}
