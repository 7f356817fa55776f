//! The building blocks shared by the encoders — linear layers, layer norms, the pre-norm
//! transformer layer — loaded by tensor name from a checkpoint (transformers'
//! `CLIPEncoderLayer` and `SiglipEncoderLayer` have the same structure and names).

use super::tokenizer::TokenBatch;
use super::{ModelError, Weights};
use crate::backend::cpu::{self, Activation, AttentionMask, PackedBf16, Precision};
use crate::tensor::Tensor;

/// Token and learned position embeddings of a text tower (`{prefix}.embeddings.*`).
#[derive(Debug)]
pub struct TextEmbeddings {
    pub(crate) tokens: Tensor,
    pub(crate) positions: Tensor,
}

impl TextEmbeddings {
    /// Loads `{prefix}.embeddings.token_embedding.weight` (`[vocab, width]`) and
    /// `{prefix}.embeddings.position_embedding.weight`; sizes come from the checkpoint.
    pub fn load(w: &Weights, prefix: &str) -> Result<Self, ModelError> {
        let tok_name = format!("{prefix}.embeddings.token_embedding.weight");
        let pos_name = format!("{prefix}.embeddings.position_embedding.weight");
        let (vocab, width) = match w.shape(&tok_name) {
            Some(&[v, d]) => (v, d),
            _ => return Err(w.missing(&tok_name)),
        };
        let max_pos = w.shape(&pos_name).map(|s| s[0]).ok_or_else(|| w.missing(&pos_name))?;
        Ok(TextEmbeddings {
            tokens: w.tensor(&tok_name, &[vocab, width])?,
            positions: w.tensor(&pos_name, &[max_pos, width])?,
        })
    }

    /// Hidden width.
    pub fn width(&self) -> usize {
        self.tokens.cols()
    }

    /// The longest text the position table allows.
    pub fn max_len(&self) -> usize {
        self.positions.shape()[0]
    }

    /// `[batch, len, width]` embeddings of a token batch; an id outside the vocabulary is an error.
    pub fn forward(&self, batch: &TokenBatch) -> Result<Tensor, ModelError> {
        let width = self.width();
        let vocab = self.tokens.shape()[0];
        if batch.len > self.max_len() {
            return Err(ModelError::Input(format!(
                "{} tokens exceed the {} positions of the text tower",
                batch.len,
                self.max_len()
            )));
        }
        let mut x = Tensor::zeros([batch.batch, batch.len, width]);
        for (i, (&id, dst)) in batch.ids.iter().zip(x.data_mut().chunks_mut(width)).enumerate() {
            if id as usize >= vocab {
                return Err(ModelError::Input(format!("token id {id} is outside the vocabulary of {vocab}")));
            }
            let pos = self.positions.row(i % batch.len);
            for ((d, t), p) in dst.iter_mut().zip(self.tokens.row(id as usize)).zip(pos) {
                *d = t + p;
            }
        }
        Ok(x)
    }
}

/// `y = x · Wᵀ + b`.
#[derive(Debug)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Tensor,
    /// `[out]`, if the layer has a bias.
    pub bias: Option<Vec<f32>>,
    /// The weight packed for bf16 products, when the model computes in bf16.
    packed: Option<PackedBf16>,
}

impl Linear {
    /// Loads `{prefix}.weight` (and `{prefix}.bias` when `bias`), of shape `[out, inp]`.
    pub fn load(w: &Weights, prefix: &str, inp: usize, out: usize, bias: bool) -> Result<Self, ModelError> {
        let weight = w.tensor(&format!("{prefix}.weight"), &[out, inp])?;
        let bias = if bias { Some(w.vector(&format!("{prefix}.bias"), out)?) } else { None };
        Ok(Linear::new(weight, bias, w.precision()))
    }

    /// A layer from a `[out, in]` weight, computing in `precision`.
    pub fn new(weight: Tensor, bias: Option<Vec<f32>>, precision: Precision) -> Self {
        let packed = (precision == Precision::Bf16).then(|| PackedBf16::pack(&weight));
        Linear { weight, bias, packed }
    }

    /// Applies the layer to the last dimension of `x`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        match &self.packed {
            Some(packed) => cpu::linear_bf16(x, packed, self.bias.as_deref()),
            None => cpu::linear(x, &self.weight, self.bias.as_deref()),
        }
    }
}

/// Layer normalisation with affine parameters.
#[derive(Debug)]
pub struct LayerNorm {
    pub(crate) gamma: Vec<f32>,
    pub(crate) beta: Vec<f32>,
    pub(crate) eps: f32,
}

impl LayerNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias` of length `dim`.
    pub fn load(w: &Weights, prefix: &str, dim: usize, eps: f32) -> Result<Self, ModelError> {
        Ok(LayerNorm {
            gamma: w.vector(&format!("{prefix}.weight"), dim)?,
            beta: w.vector(&format!("{prefix}.bias"), dim)?,
            eps,
        })
    }

    /// Normalises the last dimension.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        cpu::layer_norm(x, &self.gamma, &self.beta, self.eps)
    }
}

/// Multi-head self-attention with separate q/k/v projections.
#[derive(Debug)]
pub struct SelfAttention {
    pub(crate) q: Linear,
    pub(crate) k: Linear,
    pub(crate) v: Linear,
    pub(crate) out: Linear,
    pub(crate) heads: usize,
}

impl SelfAttention {
    fn load(w: &Weights, prefix: &str, dim: usize, heads: usize) -> Result<Self, ModelError> {
        let lin = |name: &str| Linear::load(w, &format!("{prefix}.{name}"), dim, dim, true);
        Ok(SelfAttention { q: lin("q_proj")?, k: lin("k_proj")?, v: lin("v_proj")?, out: lin("out_proj")?, heads })
    }

    fn forward(&self, x: &Tensor, mask: AttentionMask<'_>) -> Tensor {
        let (q, k, v) = (self.q.forward(x), self.k.forward(x), self.v.forward(x));
        self.out.forward(&cpu::attention(&q, &k, &v, self.heads, mask))
    }
}

/// Two linear layers with an activation between.
#[derive(Debug)]
pub struct Mlp {
    pub(crate) fc1: Linear,
    pub(crate) fc2: Linear,
    pub(crate) act: Activation,
}

impl Mlp {
    /// Loads `{prefix}.fc1` (`[hidden, dim]`) and `{prefix}.fc2`; the hidden width is read from
    /// the checkpoint.
    pub fn load(w: &Weights, prefix: &str, dim: usize, act: Activation) -> Result<Self, ModelError> {
        let hidden = w.shape(&format!("{prefix}.fc1.weight")).map_or(4 * dim, |s| s[0]);
        Ok(Mlp {
            fc1: Linear::load(w, &format!("{prefix}.fc1"), dim, hidden, true)?,
            fc2: Linear::load(w, &format!("{prefix}.fc2"), hidden, dim, true)?,
            act,
        })
    }

    /// `fc2(act(fc1(x)))`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = self.fc1.forward(x);
        cpu::activate(&mut h, self.act);
        self.fc2.forward(&h)
    }
}

/// A pre-norm transformer layer: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Debug)]
pub struct EncoderLayer {
    pub(crate) ln1: LayerNorm,
    pub(crate) attn: SelfAttention,
    pub(crate) ln2: LayerNorm,
    pub(crate) mlp: Mlp,
}

/// A stack of encoder layers.
#[derive(Debug)]
pub struct Encoder {
    pub(crate) layers: Vec<EncoderLayer>,
}

impl Encoder {
    /// Loads `{prefix}.layers.{i}` for every `i` present in the checkpoint.
    pub fn load(
        w: &Weights,
        prefix: &str,
        dim: usize,
        heads: usize,
        act: Activation,
        eps: f32,
    ) -> Result<Self, ModelError> {
        let mut layers = Vec::new();
        while w.contains(&format!("{prefix}.layers.{}.layer_norm1.weight", layers.len())) {
            let p = format!("{prefix}.layers.{}", layers.len());
            layers.push(EncoderLayer {
                ln1: LayerNorm::load(w, &format!("{p}.layer_norm1"), dim, eps)?,
                attn: SelfAttention::load(w, &format!("{p}.self_attn"), dim, heads)?,
                ln2: LayerNorm::load(w, &format!("{p}.layer_norm2"), dim, eps)?,
                mlp: Mlp::load(w, &format!("{p}.mlp"), dim, act)?,
            });
        }
        if layers.is_empty() {
            return Err(w.missing(&format!("{prefix}.layers.0.layer_norm1.weight")));
        }
        if !dim.is_multiple_of(heads) {
            return Err(ModelError::Input(format!(
                "{prefix}: width {dim} is not divisible by {heads} attention heads"
            )));
        }
        Ok(Encoder { layers })
    }

    /// Runs every layer over `x` (`[batch, seq, dim]`).
    pub fn forward(&self, mut x: Tensor, mask: AttentionMask<'_>) -> Tensor {
        for layer in &self.layers {
            let a = layer.attn.forward(&layer.ln1.forward(&x), mask);
            cpu::add_assign(&mut x, a.data());
            let m = layer.mlp.forward(&layer.ln2.forward(&x));
            cpu::add_assign(&mut x, m.data());
        }
        x
    }
}
