//! The building blocks of the models, written once on the device-generic compute layer
//! (`backend`): linear layers, layer and RMS norms, token embeddings, and the pre-norm
//! transformer encoder layer of transformers' `CLIPEncoderLayer`/`SiglipEncoderLayer` (same
//! structure and tensor names), loaded by name from a checkpoint onto a [`Device`].

use super::tokenizer::TokenBatch;
use super::{ModelError, Weights};
use crate::backend::cpu::Activation;
use crate::backend::{Array, Device, Heads, Linear, Mask, Matrix, Vector};

use crate::tensor::Tensor;

/// Loads `{prefix}.weight` (`[out, inp]`) and, when `bias`, `{prefix}.bias` onto `dev`.
pub fn linear(
    w: &Weights,
    dev: &Device,
    prefix: &str,
    inp: usize,
    out: usize,
    bias: bool,
) -> Result<Linear, ModelError> {
    let weight = w.tensor(&format!("{prefix}.weight"), &[out, inp])?;
    let bias = if bias { Some(w.vector(&format!("{prefix}.bias"), out)?) } else { None };
    Ok(Linear::new(dev, weight, bias)?)
}

/// Several layers of one input width stacked along their outputs (a fused QKV projection):
/// `{prefix}.{part}.weight` for each part, biases where `bias`.
pub fn stacked(
    w: &Weights,
    dev: &Device,
    prefix: &str,
    parts: &[&str],
    inp: usize,
    bias: bool,
) -> Result<Linear, ModelError> {
    let (mut weights, mut biases, mut rows) = (Vec::new(), Vec::new(), 0);
    for part in parts {
        let name = format!("{prefix}.{part}.weight");
        let out = match w.shape(&name) {
            Some(&[o, _]) => o,
            _ => return Err(w.missing(&name)),
        };
        weights.extend(w.tensor(&name, &[out, inp])?.into_data());
        if bias {
            biases.extend(w.vector(&format!("{prefix}.{part}.bias"), out)?);
        }
        rows += out;
    }
    let bias = bias.then_some(biases);
    Ok(Linear::new(dev, Tensor::new([rows, inp], weights), bias)?)
}

/// Token and learned position embeddings of a text tower (`{prefix}.embeddings.*`).
#[derive(Debug)]
pub struct TextEmbeddings {
    tokens: Matrix,
    positions: Matrix,
}

impl TextEmbeddings {
    /// Loads `{prefix}.embeddings.token_embedding.weight` (`[vocab, width]`) and
    /// `{prefix}.embeddings.position_embedding.weight`; sizes come from the checkpoint.
    pub fn load(w: &Weights, dev: &Device, prefix: &str) -> Result<Self, ModelError> {
        let tok_name = format!("{prefix}.embeddings.token_embedding.weight");
        let pos_name = format!("{prefix}.embeddings.position_embedding.weight");
        Self::from_names(w, dev, &tok_name, &pos_name)
    }

    /// Loads the token table `tok_name` (`[vocab, width]`) and the position table `pos_name`
    /// (`[positions, width]`).
    pub fn from_names(w: &Weights, dev: &Device, tok_name: &str, pos_name: &str) -> Result<Self, ModelError> {
        let (vocab, width) = match w.shape(tok_name) {
            Some(&[v, d]) => (v, d),
            _ => return Err(w.missing(tok_name)),
        };
        let max_pos = w.shape(pos_name).map(|s| s[0]).ok_or_else(|| w.missing(pos_name))?;
        Ok(TextEmbeddings {
            tokens: Matrix::table(dev, w.tensor(tok_name, &[vocab, width])?)?,
            positions: Matrix::table(dev, w.tensor(pos_name, &[max_pos, width])?)?,
        })
    }

    /// Hidden width.
    pub fn width(&self) -> usize {
        self.tokens.cols()
    }

    /// The longest text the position table allows.
    pub fn max_len(&self) -> usize {
        self.positions.rows()
    }

    /// `[batch, len, width]` embeddings of a token batch; an id outside the vocabulary is an error.
    pub fn forward(&self, dev: &Device, batch: &TokenBatch) -> Result<Array, ModelError> {
        if batch.len > self.max_len() {
            return Err(ModelError::Input(format!(
                "{} tokens exceed the {} positions of the text tower",
                batch.len,
                self.max_len()
            )));
        }
        let mut x = dev.embedding(&self.tokens, &batch.ids)?;
        let pos: Vec<u32> = (0..batch.batch * batch.len).map(|i| (i % batch.len) as u32).collect();
        dev.add(&mut x, &dev.embedding(&self.positions, &pos)?)?;
        Ok(x.reshape([batch.batch, batch.len, self.width()])?)
    }
}

/// Where a hooked operation sits in an image tower: the key under which a training pass
/// (`train/`) adds a LoRA branch and keeps the activations its backward pass needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Site {
    /// CLIP's `pre_layrnorm`.
    Pre,
    /// Encoder layer `i`: `layer_norm1`.
    Ln1(usize),
    /// Encoder layer `i`: the fused `q_proj`/`k_proj`/`v_proj`.
    Qkv(usize),
    /// Encoder layer `i`: `out_proj`.
    Out(usize),
    /// Encoder layer `i`: `layer_norm2`.
    Ln2(usize),
    /// Encoder layer `i`: `mlp.fc1`.
    Fc1(usize),
    /// Encoder layer `i`: `mlp.fc2`.
    Fc2(usize),
    /// `post_layernorm`.
    Post,
    /// SigLIP's pooling head: the key/value part of `in_proj`.
    PoolKv,
    /// SigLIP's pooling head: `attention.out_proj`.
    PoolOut,
    /// SigLIP's pooling head: `layernorm`.
    PoolNorm,
    /// SigLIP's pooling head: `mlp.fc1`.
    PoolFc1,
    /// SigLIP's pooling head: `mlp.fc2`.
    PoolFc2,
    /// CLIP's `visual_projection`.
    Projection,
}

/// Hooks into an image tower's forward pass, so that one forward serves inference and
/// training: the default methods (what [`Inference`] uses) run the plain operations; a
/// training pass overrides them to add LoRA branches (with dropout) and keep activations.
pub(crate) trait Pass {
    /// `x · Wᵀ + b` of `l` at `site`.
    fn linear(&mut self, dev: &Device, x: &Array, l: &Linear, _site: Site) -> Result<Array, ModelError> {
        Ok(dev.linear(x, l)?)
    }

    /// `y += x · Wᵀ + b` of `l` at `site`.
    fn linear_add(
        &mut self,
        dev: &Device,
        x: &Array,
        l: &Linear,
        _site: Site,
        y: &mut Array,
    ) -> Result<(), ModelError> {
        Ok(dev.linear_add(x, l, y)?)
    }

    /// Layer normalisation `ln` at `site`.
    fn norm(&mut self, dev: &Device, x: &Array, ln: &LayerNorm, _site: Site) -> Result<Array, ModelError> {
        ln.forward(dev, x)
    }

    /// The learned position table to use instead of `table` (a LoRA on the embedding), if any.
    fn positions(&mut self, _dev: &Device, _table: &Vector) -> Result<Option<Vector>, ModelError> {
        Ok(None)
    }
}

/// The plain forward pass.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Inference;

impl Pass for Inference {}

/// Layer normalisation with affine parameters.
#[derive(Debug)]
pub struct LayerNorm {
    pub(crate) gamma: Vector,
    pub(crate) beta: Vector,
    pub(crate) eps: f32,
}

impl LayerNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias` of length `dim`.
    pub fn load(w: &Weights, dev: &Device, prefix: &str, dim: usize, eps: f32) -> Result<Self, ModelError> {
        Ok(LayerNorm {
            gamma: Vector::f32(dev, w.vector(&format!("{prefix}.weight"), dim)?)?,
            beta: Vector::f32(dev, w.vector(&format!("{prefix}.bias"), dim)?)?,
            eps,
        })
    }

    /// Normalises the last dimension.
    pub fn forward(&self, dev: &Device, x: &Array) -> Result<Array, ModelError> {
        Ok(dev.layer_norm(x, &self.gamma, &self.beta, self.eps)?)
    }
}

/// Multi-head self-attention with one fused QKV projection.
#[derive(Debug)]
pub struct SelfAttention {
    pub(crate) qkv: Linear,
    pub(crate) out: Linear,
    pub(crate) heads: usize,
}

impl SelfAttention {
    fn load(w: &Weights, dev: &Device, prefix: &str, dim: usize, heads: usize) -> Result<Self, ModelError> {
        Ok(SelfAttention {
            qkv: stacked(w, dev, prefix, &["q_proj", "k_proj", "v_proj"], dim, true)?,
            out: linear(w, dev, &format!("{prefix}.out_proj"), dim, dim, true)?,
            heads,
        })
    }

    /// `x += out(attention(qkv(h)))` in layer `i`.
    pub(crate) fn forward_add(
        &self,
        dev: &Device,
        h: &Array,
        mask: Mask<'_>,
        x: &mut Array,
        (i, pass): (usize, &mut dyn Pass),
    ) -> Result<(), ModelError> {
        let qkv = pass.linear(dev, h, &self.qkv, Site::Qkv(i))?;
        let a = dev.attention(self.view(&qkv, 0), self.view(&qkv, 1), self.view(&qkv, 2), mask)?;
        pass.linear_add(dev, &a, &self.out, Site::Out(i), x)
    }

    /// Part `part` (0 Q, 1 K, 2 V) of the fused projection's output `qkv` as heads.
    pub(crate) fn view<'a>(&self, qkv: &'a Array, part: usize) -> Heads<'a> {
        let width = self.out.inputs();
        let len = qkv.shape().get(1).copied().unwrap_or(0);
        Heads { array: qkv, col: part * width, heads: self.heads, head_dim: width / self.heads, len }
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
    pub fn load(w: &Weights, dev: &Device, prefix: &str, dim: usize, act: Activation) -> Result<Self, ModelError> {
        let hidden = w.shape(&format!("{prefix}.fc1.weight")).map_or(4 * dim, |s| s[0]);
        Ok(Mlp {
            fc1: linear(w, dev, &format!("{prefix}.fc1"), dim, hidden, true)?,
            fc2: linear(w, dev, &format!("{prefix}.fc2"), hidden, dim, true)?,
            act,
        })
    }

    /// `x += fc2(act(fc1(h)))`.
    /// `x += fc2(act(fc1(h)))` with `fc1` and `fc2` at `sites`, through `pass`.
    pub(crate) fn forward_add_with(
        &self,
        dev: &Device,
        h: &Array,
        x: &mut Array,
        [s1, s2]: [Site; 2],
        pass: &mut dyn Pass,
    ) -> Result<(), ModelError> {
        let mut m = pass.linear(dev, h, &self.fc1, s1)?;
        dev.activate(&mut m, self.act)?;
        pass.linear_add(dev, &m, &self.fc2, s2, x)
    }
}

/// A pre-norm transformer layer: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Debug)]
pub(crate) struct EncoderLayer {
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

/// The shape of an encoder: width, heads, activation and norm epsilon.
#[derive(Debug, Clone, Copy)]
pub struct EncoderShape {
    /// Hidden width.
    pub dim: usize,
    /// Layers (the configuration's `num_hidden_layers`).
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP activation.
    pub act: Activation,
    /// Layer norm epsilon.
    pub eps: f32,
}

impl Encoder {
    /// Loads `{prefix}.layers.{i}` for `i < s.layers`: a missing layer is an error naming its
    /// first tensor, and so is a checkpoint holding more layers than the configuration says.
    pub fn load(w: &Weights, dev: &Device, prefix: &str, s: EncoderShape) -> Result<Self, ModelError> {
        if s.heads == 0 || !s.dim.is_multiple_of(s.heads) {
            return Err(ModelError::Input(format!(
                "{prefix}: width {} is not divisible by {} attention heads",
                s.dim, s.heads
            )));
        }
        if s.layers == 0 {
            return Err(ModelError::Input(format!("{prefix}: the configuration gives 0 layers")));
        }
        let extra = format!("{prefix}.layers.{}.layer_norm1.weight", s.layers);
        if w.contains(&extra) {
            return Err(ModelError::Input(format!(
                "{prefix}: the checkpoint holds `{extra}`, more layers than the configuration's {} \
                 (`num_hidden_layers`)",
                s.layers
            )));
        }
        let layers = (0..s.layers)
            .map(|i| {
                let p = format!("{prefix}.layers.{i}");
                Ok(EncoderLayer {
                    ln1: LayerNorm::load(w, dev, &format!("{p}.layer_norm1"), s.dim, s.eps)?,
                    attn: SelfAttention::load(w, dev, &format!("{p}.self_attn"), s.dim, s.heads)?,
                    ln2: LayerNorm::load(w, dev, &format!("{p}.layer_norm2"), s.dim, s.eps)?,
                    mlp: Mlp::load(w, dev, &format!("{p}.mlp"), s.dim, s.act)?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(Encoder { layers })
    }

    /// Layers.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Runs the first `depth` layers over `x` (`[batch, seq, dim]`), in place.
    pub fn forward_to(&self, dev: &Device, x: &mut Array, mask: Mask<'_>, depth: usize) -> Result<(), ModelError> {
        self.forward_with(dev, x, mask, depth, &mut Inference)
    }

    /// [`Encoder::forward_to`] through `pass`.
    pub(crate) fn forward_with(
        &self,
        dev: &Device,
        x: &mut Array,
        mask: Mask<'_>,
        depth: usize,
        pass: &mut dyn Pass,
    ) -> Result<(), ModelError> {
        for (i, layer) in self.layers.iter().enumerate().take(depth) {
            let h = pass.norm(dev, x, &layer.ln1, Site::Ln1(i))?;
            layer.attn.forward_add(dev, &h, mask, x, (i, pass))?;
            let h = pass.norm(dev, x, &layer.ln2, Site::Ln2(i))?;
            layer.mlp.forward_add_with(dev, &h, x, [Site::Fc1(i), Site::Fc2(i)], pass)?;
        }
        Ok(())
    }

    /// Runs every layer over `x` (`[batch, seq, dim]`), in place.
    pub fn forward(&self, dev: &Device, x: &mut Array, mask: Mask<'_>) -> Result<(), ModelError> {
        self.forward_to(dev, x, mask, self.layers.len())
    }

    /// Runs every layer over `x` (`[batch, seq, dim]`, unmasked) and returns the output rows of
    /// position `row` only, `[batch, dim]` (a class token). Exact: the last layer's keys and
    /// values need every position, but its queries, attention output, output projection and MLP
    /// only the rows that are kept, so those run on `batch` rows instead of `batch · seq`.
    pub(crate) fn forward_row_with(
        &self,
        dev: &Device,
        mut x: Array,
        row: usize,
        pass: &mut dyn Pass,
    ) -> Result<Array, ModelError> {
        let (batch, seq, dim) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let (layer, first) =
            self.layers.split_last().ok_or_else(|| ModelError::Input("an encoder without layers".into()))?;
        let last = first.len();
        self.forward_with(dev, &mut x, Mask::NONE, last, pass)?;
        let rows: Vec<usize> = (0..batch).map(|b| b * seq + row).collect();
        let h = pass.norm(dev, &x, &layer.ln1, Site::Ln1(last))?;
        let qkv = pass.linear(dev, &h, &layer.attn.qkv, Site::Qkv(last))?;
        let kept = dev.gather_rows(&qkv, &rows)?.reshape([batch, 1, qkv.cols()])?;
        let attn = &layer.attn;
        let a = dev.attention(attn.view(&kept, 0), attn.view(&qkv, 1), attn.view(&qkv, 2), Mask::NONE)?;
        let mut y = dev.gather_rows(&x, &rows)?.reshape([batch, 1, dim])?;
        pass.linear_add(dev, &a, &attn.out, Site::Out(last), &mut y)?;
        let h = pass.norm(dev, &y, &layer.ln2, Site::Ln2(last))?;
        layer.mlp.forward_add_with(dev, &h, &mut y, [Site::Fc1(last), Site::Fc2(last)], pass)?;
        Ok(y.reshape([batch, dim])?)
    }
}
