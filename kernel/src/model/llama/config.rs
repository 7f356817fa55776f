//! The settings of a Llama-family decoder (transformers' `LlamaConfig`, `Qwen2Config`,
//! `MistralConfig`), read from `config.json` in the 4.x layout (`rope_theta`, `rope_scaling`)
//! or the 5.x one (`rope_parameters`), with transformers' defaults; and the rotary
//! frequencies they imply (`default` and `llama3` rope types, `modeling_rope_utils.py`).

use std::path::Path;

use serde_json::Value;

use crate::model::ModelError;

/// The rotary embedding's scaling.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain `theta^(-2i/d)` frequencies.
    None,
    /// Llama 3.1's frequency-dependent scaling.
    Llama3 {
        /// `factor`.
        factor: f64,
        /// `low_freq_factor`.
        low_freq_factor: f64,
        /// `high_freq_factor`.
        high_freq_factor: f64,
        /// `original_max_position_embeddings`.
        original_max_positions: f64,
    },
}

/// A decoder's shape and settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    /// `llama`, `qwen2` or `mistral`.
    pub model_type: String,
    /// Vocabulary size.
    pub vocab: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Decoder layers.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: usize,
    /// Elements per head.
    pub head_dim: usize,
    /// MLP width.
    pub ffn: usize,
    /// RMS norm epsilon.
    pub rms_eps: f32,
    /// Rotary base.
    pub rope_theta: f64,
    /// Rotary scaling.
    pub rope_scaling: RopeScaling,
    /// Biases on the q/k/v projections (Qwen2).
    pub qkv_bias: bool,
    /// The output layer shares the token embeddings.
    pub tie_embeddings: bool,
    /// Longest context.
    pub max_positions: usize,
}

impl DecoderConfig {
    /// Reads a decoder config from `json` (the whole `config.json`, or LLaVA's `text_config`).
    pub fn from_json(json: &Value, path: &Path) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::Format { path: path.to_owned(), message };
        let uint = |key: &str| json.get(key).and_then(Value::as_u64).map(|v| v as usize);
        let need = |key: &str| uint(key).ok_or_else(|| bad(format!("`{key}` is missing or not a whole number")));
        let model_type = json.get("model_type").and_then(Value::as_str).unwrap_or("llama").to_owned();
        if !matches!(model_type.as_str(), "llama" | "qwen2" | "mistral") {
            return Err(ModelError::Unsupported {
                path: path.to_owned(),
                message: format!("model_type `{model_type}` is not a decoder mvb implements (llama, qwen2, mistral)"),
            });
        }
        let act = json.get("hidden_act").and_then(Value::as_str).unwrap_or("silu");
        if act != "silu" {
            return Err(bad(format!("hidden_act `{act}`: Llama-family decoders use silu")));
        }
        let hidden = need("hidden_size")?;
        let heads = need("num_attention_heads")?;
        if heads == 0 {
            return Err(bad("`num_attention_heads` is 0".into()));
        }
        let head_dim = uint("head_dim").unwrap_or(hidden / heads);
        let kv_heads = uint("num_key_value_heads").unwrap_or(heads);
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(bad(format!("{heads} attention heads cannot share {kv_heads} key/value heads")));
        }
        let rope = json.get("rope_parameters").filter(|v| v.is_object());
        let scaling = rope.or_else(|| json.get("rope_scaling").filter(|v| v.is_object()));
        let rope_theta = rope
            .and_then(|r| r.get("rope_theta"))
            .or_else(|| json.get("rope_theta"))
            .and_then(Value::as_f64)
            .unwrap_or(if model_type == "qwen2" { 1e6 } else { 1e4 });
        let qwen = model_type == "qwen2";
        Ok(DecoderConfig {
            vocab: need("vocab_size")?,
            hidden,
            layers: need("num_hidden_layers")?,
            heads,
            kv_heads,
            head_dim,
            ffn: need("intermediate_size")?,
            rms_eps: json.get("rms_norm_eps").and_then(Value::as_f64).unwrap_or(1e-6) as f32,
            rope_theta,
            rope_scaling: parse_scaling(scaling, &bad)?,
            qkv_bias: json.get("attention_bias").and_then(Value::as_bool).unwrap_or(qwen),
            tie_embeddings: json.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false),
            max_positions: uint("max_position_embeddings").unwrap_or(4096),
            model_type,
        })
    }

    /// The rotary inverse frequencies, `head_dim / 2` of them, in f32 as transformers computes
    /// them.
    pub fn inv_freq(&self) -> Vec<f32> {
        let d = self.head_dim;
        let base: Vec<f32> =
            (0..d / 2).map(|i| 1.0 / (self.rope_theta as f32).powf((2 * i) as f32 / d as f32)).collect();
        match &self.rope_scaling {
            RopeScaling::None => base,
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_positions } => {
                let (factor, low, high) = (*factor as f32, *low_freq_factor as f32, *high_freq_factor as f32);
                let old = *original_max_positions as f32;
                let (low_wavelen, high_wavelen) = (old / low, old / high);
                base.into_iter()
                    .map(|f| {
                        let wavelen = 2.0 * std::f32::consts::PI / f;
                        let scaled = if wavelen > low_wavelen { f / factor } else { f };
                        let medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
                        if medium {
                            let smooth = (old / wavelen - low) / (high - low);
                            (1.0 - smooth) * scaled / factor + smooth * scaled
                        } else {
                            scaled
                        }
                    })
                    .collect()
            }
        }
    }
}

fn parse_scaling(v: Option<&Value>, bad: &dyn Fn(String) -> ModelError) -> Result<RopeScaling, ModelError> {
    let Some(v) = v else { return Ok(RopeScaling::None) };
    let kind = v.get("rope_type").or_else(|| v.get("type")).and_then(Value::as_str).unwrap_or("default");
    let num = |key: &str| v.get(key).and_then(Value::as_f64).ok_or_else(|| bad(format!("rope scaling lacks `{key}`")));
    match kind {
        "default" => Ok(RopeScaling::None),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_positions: num("original_max_position_embeddings")?,
        }),
        other => Err(bad(format!("rope type `{other}` is not implemented (default, llama3 are)"))),
    }
}
