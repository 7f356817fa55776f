//! Model hyper-parameters from GGUF metadata for the `llama` and `qwen2` architectures
//! (keys `{arch}.*` and `tokenizer.*` as written by llama.cpp's `gguf-py/gguf/constants.py`).

use super::{GgufError, GgufFile};

/// Rope scaling (`{arch}.rope.scaling.*`), when present.
#[derive(Clone, Debug, PartialEq)]
pub struct RopeScaling {
    /// `none`, `linear`, `yarn`, `llama3`, ...
    pub kind: String,
    pub factor: Option<f32>,
    pub original_context_length: Option<usize>,
}

/// Decoder hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaParams {
    pub arch: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    /// Per-head dimension (`{arch}.attention.key_length`, else hidden / heads).
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub rms_norm_eps: f32,
    pub rope_theta: f32,
    /// Rotary dimensions (`{arch}.rope.dimension_count`, else head_dim).
    pub rope_dim: usize,
    pub rope_scaling: Option<RopeScaling>,
    pub context_length: usize,
    /// No `output.weight` tensor: the LM head is the token embedding.
    pub tied_embeddings: bool,
    /// Q/K biases present (`blk.0.attn_q.bias`), as in Qwen2.
    pub qkv_bias: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    pub add_bos_token: Option<bool>,
    pub chat_template: Option<String>,
}

impl LlamaParams {
    /// Reads the parameters; errors on an architecture other than `llama`/`qwen2` or a missing key.
    pub fn from_gguf(f: &GgufFile) -> Result<Self, GgufError> {
        let arch = f.get_str("general.architecture")?.to_string();
        if arch != "llama" && arch != "qwen2" {
            let msg = format!("architecture {arch:?} is not supported (llama, qwen2)");
            return Err(GgufError::Metadata { path: f.path().into(), key: "general.architecture".into(), msg });
        }
        let k = |s: &str| format!("{arch}.{s}");
        let opt_usize = |key: &str| f.metadata(key).map(|_| f.get_usize(key)).transpose();
        let opt_u32 = |key: &str| f.metadata(key).map(|_| f.get_u32(key)).transpose();
        let hidden_size = f.get_usize(&k("embedding_length"))?;
        let num_heads = f.get_usize(&k("attention.head_count"))?;
        let num_kv_heads = opt_usize(&k("attention.head_count_kv"))?.unwrap_or(num_heads);
        let head_dim = opt_usize(&k("attention.key_length"))?.unwrap_or(hidden_size / num_heads.max(1));
        let vocab_size = match opt_usize(&k("vocab_size"))? {
            Some(v) => v,
            None => f
                .metadata("tokenizer.ggml.tokens")
                .and_then(|v| v.as_array())
                .map(|a| a.len())
                .ok_or_else(|| GgufError::MissingKey { path: f.path().into(), key: k("vocab_size") })?,
        };
        let rope_scaling = match f.metadata(&k("rope.scaling.type")) {
            None => None,
            Some(_) => Some(RopeScaling {
                kind: f.get_str(&k("rope.scaling.type"))?.to_string(),
                factor: f
                    .metadata(&k("rope.scaling.factor"))
                    .map(|_| f.get_f32(&k("rope.scaling.factor")))
                    .transpose()?,
                original_context_length: opt_usize(&k("rope.scaling.original_context_length"))?,
            }),
        };
        Ok(LlamaParams {
            vocab_size,
            hidden_size,
            num_layers: f.get_usize(&k("block_count"))?,
            num_heads,
            num_kv_heads,
            head_dim,
            intermediate_size: f.get_usize(&k("feed_forward_length"))?,
            rms_norm_eps: f.get_f32(&k("attention.layer_norm_rms_epsilon"))?,
            rope_theta: f
                .metadata(&k("rope.freq_base"))
                .map(|_| f.get_f32(&k("rope.freq_base")))
                .transpose()?
                .unwrap_or(10000.0),
            rope_dim: opt_usize(&k("rope.dimension_count"))?.unwrap_or(head_dim),
            rope_scaling,
            context_length: f.get_usize(&k("context_length"))?,
            tied_embeddings: f.tensor("output.weight").is_none(),
            qkv_bias: f.tensor("blk.0.attn_q.bias").is_some(),
            bos_token_id: opt_u32("tokenizer.ggml.bos_token_id")?,
            eos_token_id: opt_u32("tokenizer.ggml.eos_token_id")?,
            pad_token_id: opt_u32("tokenizer.ggml.padding_token_id")?,
            add_bos_token: f
                .metadata("tokenizer.ggml.add_bos_token")
                .map(|_| f.get_bool("tokenizer.ggml.add_bos_token"))
                .transpose()?,
            chat_template: f
                .metadata("tokenizer.chat_template")
                .map(|_| f.get_str("tokenizer.chat_template").map(str::to_string))
                .transpose()?,
            arch,
        })
    }
}
