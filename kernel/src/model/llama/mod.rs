//! Llama-family decoders (transformers' `LlamaForCausalLM`, `Qwen2ForCausalLM`,
//! `MistralForCausalLM`, <https://github.com/huggingface/transformers/blob/main/src/transformers/models/llama/modeling_llama.py>):
//! RMSNorm, grouped-query attention with rotary positions and a KV cache, a SwiGLU MLP, tied
//! or untied output embeddings. Written once on the compute layer: the same code runs on the
//! CPU (also with GGUF-quantised weights) and the GPU.

mod config;

pub use config::{DecoderConfig, RopeScaling};

use super::ModelError;
use crate::backend::{Array, ComputeError, Device, Heads, Linear, Mask, Matrix, Vector};
use crate::tensor::Tensor;

/// Where a decoder's tensors come from: a safetensors checkpoint or a GGUF file, under
/// Hugging Face names (`model.layers.0.self_attn.q_proj.weight`, ...).
pub trait Checkpoint {
    /// The tensor's shape in PyTorch order, when present.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// A `[rows, cols]` weight on `dev` (a GGUF's quantised weight stays quantised on the CPU).
    fn matrix(&self, dev: &Device, name: &str, rows: usize, cols: usize) -> Result<Matrix, ModelError>;
    /// A `[rows, cols]` lookup table on `dev` (token embeddings).
    fn table(&self, dev: &Device, name: &str, rows: usize, cols: usize) -> Result<Matrix, ModelError>;
    /// A vector of `len` values.
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError>;
}

impl Checkpoint for super::Weights {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        super::Weights::shape(self, name).map(<[usize]>::to_vec)
    }
    fn matrix(&self, dev: &Device, name: &str, rows: usize, cols: usize) -> Result<Matrix, ModelError> {
        Ok(Matrix::new(dev, self.tensor(name, &[rows, cols])?)?)
    }
    fn table(&self, dev: &Device, name: &str, rows: usize, cols: usize) -> Result<Matrix, ModelError> {
        Ok(Matrix::table(dev, self.tensor(name, &[rows, cols])?)?)
    }
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        super::Weights::vector(self, name, len)
    }
}

fn linear(
    c: &dyn Checkpoint,
    dev: &Device,
    prefix: &str,
    (out, inp): (usize, usize),
    bias: bool,
) -> Result<Linear, ModelError> {
    let weight = c.matrix(dev, &format!("{prefix}.weight"), out, inp)?;
    let bias = if bias { Some(c.vector(&format!("{prefix}.bias"), out)?) } else { None };
    Ok(Linear::from_matrix(dev, weight, bias)?)
}

/// One decoder layer.
#[derive(Debug)]
struct Layer {
    input_norm: Vector,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    post_norm: Vector,
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Layer {
    fn load(c: &dyn Checkpoint, dev: &Device, p: &str, cfg: &DecoderConfig) -> Result<Self, ModelError> {
        let (h, q, kv, b) = (cfg.hidden, cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.qkv_bias);
        Ok(Layer {
            input_norm: Vector::f32(dev, c.vector(&format!("{p}.input_layernorm.weight"), h)?)?,
            q: linear(c, dev, &format!("{p}.self_attn.q_proj"), (q, h), b)?,
            k: linear(c, dev, &format!("{p}.self_attn.k_proj"), (kv, h), b)?,
            v: linear(c, dev, &format!("{p}.self_attn.v_proj"), (kv, h), b)?,
            o: linear(c, dev, &format!("{p}.self_attn.o_proj"), (h, q), false)?,
            post_norm: Vector::f32(dev, c.vector(&format!("{p}.post_attention_layernorm.weight"), h)?)?,
            gate: linear(c, dev, &format!("{p}.mlp.gate_proj"), (cfg.ffn, h), false)?,
            up: linear(c, dev, &format!("{p}.mlp.up_proj"), (cfg.ffn, h), false)?,
            down: linear(c, dev, &format!("{p}.mlp.down_proj"), (h, cfg.ffn), false)?,
        })
    }
}

/// The keys and values of every layer for a batch, `[batch, capacity, kv_heads·head_dim]`
/// each, filled up to `len` positions.
#[derive(Debug)]
pub struct KvCache {
    keys: Vec<Array>,
    values: Vec<Array>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    /// Positions filled.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// `Device::linears` returned another number of outputs than layers (a bug).
fn internal() -> ModelError {
    ModelError::Compute(ComputeError::Shape("linears: outputs do not match the layers".into()))
}

/// A loaded decoder.
#[derive(Debug)]
pub struct Llama {
    cfg: DecoderConfig,
    embed: Matrix,
    layers: Vec<Layer>,
    norm: Vector,
    lm_head: Linear,
    inv_freq: Vec<f32>,
}

/// The names a checkpoint stores a decoder under: the body (`model`) and the output layer
/// (`lm_head`); LLaVA checkpoints nest them (`language_model.model`, `language_model.lm_head`).
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    /// Prefix of `embed_tokens`, `layers.N` and `norm`.
    pub body: &'a str,
    /// Prefix of the output layer's `weight`.
    pub head: &'a str,
}

impl Names<'static> {
    /// `LlamaForCausalLM`'s names.
    pub const CAUSAL_LM: Names<'static> = Names { body: "model", head: "lm_head" };
}

impl Llama {
    /// Loads every tensor `cfg` implies from `c` onto `dev`.
    pub fn load(c: &dyn Checkpoint, dev: &Device, cfg: DecoderConfig, names: Names<'_>) -> Result<Self, ModelError> {
        let b = names.body;
        let embed_name = format!("{b}.embed_tokens.weight");
        let embed = c.table(dev, &embed_name, cfg.vocab, cfg.hidden)?;
        let lm_head = if cfg.tie_embeddings {
            Linear::from_matrix(dev, c.matrix(dev, &embed_name, cfg.vocab, cfg.hidden)?, None)?
        } else {
            linear(c, dev, names.head, (cfg.vocab, cfg.hidden), false)?
        };
        let layers = (0..cfg.layers)
            .map(|i| Layer::load(c, dev, &format!("{b}.layers.{i}"), &cfg))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Llama {
            norm: Vector::f32(dev, c.vector(&format!("{b}.norm.weight"), cfg.hidden)?)?,
            inv_freq: cfg.inv_freq(),
            embed,
            layers,
            lm_head,
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// An empty cache for `batch` sequences of up to `capacity` positions: in f16 when the
    /// weights are block-quantised (a GGUF's on the CPU, whose results are 8-bit products
    /// already; llama.cpp caches them in f16 too), else in the activations' type (f32
    /// checkpoints and `--dequantize` keep f32 keys and values, for parity with transformers).
    pub fn cache(&self, dev: &Device, batch: usize, capacity: usize) -> Result<KvCache, ModelError> {
        let heads = (self.cfg.kv_heads, self.cfg.head_dim);
        let half = self.layers.first().is_some_and(|l| l.k.is_quantized() && l.v.is_quantized());
        let make = || {
            (0..self.layers.len()).map(|_| dev.kv_cache(batch, capacity, heads, half)).collect::<Result<Vec<_>, _>>()
        };
        Ok(KvCache { keys: make()?, values: make()?, len: 0, capacity })
    }

    /// Token embeddings, `[ids.len(), hidden]`.
    pub fn embed(&self, dev: &Device, ids: &[u32]) -> Result<Array, ModelError> {
        Ok(dev.embedding(&self.embed, ids)?)
    }

    /// Runs `x` (`[batch, steps, hidden]` input embeddings) through every layer after what
    /// `cache` holds, appending its keys and values, then returns the logits of `rows` of the
    /// final-normed hidden states (viewed as `[batch·steps, hidden]`), as one sequence of
    /// operations (`Device::run_steps`; a decoding step, whose output layer is a large share of
    /// it). `positions` has one rotary position per row of `x`; `keys` is the padding mask over
    /// all `cache.len() + steps` positions (`[batch × (len + steps)]`, 1 = real).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_logits(
        &self,
        dev: &Device,
        x: Array,
        cache: &mut KvCache,
        positions: &[u32],
        keys: &[u32],
        rows: &[usize],
    ) -> Result<Tensor, ModelError> {
        dev.run_steps(|| {
            let hidden = self.forward_layers(dev, x, cache, positions, keys)?;
            self.logits(dev, &hidden, rows)
        })
    }

    fn forward_layers(
        &self,
        dev: &Device,
        mut x: Array,
        cache: &mut KvCache,
        positions: &[u32],
        keys: &[u32],
    ) -> Result<Array, ModelError> {
        let steps = x.shape()[1];
        let total = cache.len + steps;
        if total > cache.capacity {
            return Err(ModelError::Input(format!("{total} positions exceed the cache's {}", cache.capacity)));
        }
        let cfg = &self.cfg;
        let d = cfg.head_dim;
        for (i, l) in self.layers.iter().enumerate() {
            let h = dev.rms_norm(&x, &l.input_norm, cfg.rms_eps)?;
            let [mut q, mut k, v]: [Array; 3] =
                dev.linears(&h, &[&l.q, &l.k, &l.v])?.try_into().map_err(|_| internal())?;
            dev.rope(&mut q, positions, &self.inv_freq)?;
            dev.rope(&mut k, positions, &self.inv_freq)?;
            dev.write_positions(&mut cache.keys[i], cache.len, &k)?;
            dev.write_positions(&mut cache.values[i], cache.len, &v)?;
            let qh = Heads { array: &q, col: 0, heads: cfg.heads, head_dim: d, len: steps };
            let kh = Heads { array: &cache.keys[i], col: 0, heads: cfg.kv_heads, head_dim: d, len: total };
            let vh = Heads { array: &cache.values[i], col: 0, heads: cfg.kv_heads, head_dim: d, len: total };
            let a = dev.attention(qh, kh, vh, Mask { causal: true, keys: Some(keys) })?;
            dev.linear_add(&a, &l.o, &mut x)?;
            let h = dev.rms_norm(&x, &l.post_norm, cfg.rms_eps)?;
            let [mut g, u]: [Array; 2] = dev.linears(&h, &[&l.gate, &l.up])?.try_into().map_err(|_| internal())?;
            dev.silu_mul(&mut g, &u)?;
            dev.linear_add(&g, &l.down, &mut x)?;
        }
        cache.len = total;
        Ok(dev.rms_norm(&x, &self.norm, cfg.rms_eps)?)
    }

    /// Logits of the given rows of `hidden` (viewed as `[rows, hidden]`), `[rows.len(), vocab]`.
    pub fn logits(&self, dev: &Device, hidden: &Array, rows: &[usize]) -> Result<Tensor, ModelError> {
        let picked = dev.gather_rows(hidden, rows)?;
        let logits = dev.linear(&picked, &self.lm_head)?.into_tensor(dev)?;
        if let Some(bad) = logits.first_non_finite() {
            return Err(ModelError::Compute(ComputeError::Shape(format!(
                "non-finite logit at row {} (the weights or inputs hold NaN or Inf)",
                bad / self.cfg.vocab.max(1)
            ))));
        }
        Ok(logits)
    }
}
