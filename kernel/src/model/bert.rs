//! A BERT text encoder (transformers' `BertModel`,
//! <https://github.com/huggingface/transformers/blob/main/src/transformers/models/bert/modeling_bert.py>):
//! word, absolute position and token-type embeddings (every token of type 0) under a layer
//! norm, then post-norm encoder layers (`x = ln1(x + attn(x))`, `x = ln2(x + mlp(x))`),
//! bidirectional with padding masked; the final hidden states, without the pooler. Written once
//! on the compute layer; open_clip's Hugging Face text tower (BiomedCLIP's PubMedBERT) and MedCLIP's
//! Bio_ClinicalBERT use it.

use super::nn::{Inference, LayerNorm, Mlp, SelfAttention, Site, TextEmbeddings, linear, stacked};
use super::tokenizer::TokenBatch;
use super::{ModelError, Weights};
use crate::backend::cpu::Activation;
use crate::backend::{Array, Device, Mask, Vector};

/// The settings a BERT checkpoint's tensors do not tell.
#[derive(Debug, Clone, Copy)]
pub struct BertShape {
    /// Attention heads.
    pub heads: usize,
    /// Layer-norm epsilon (`layer_norm_eps`, 1e-12 in BERT).
    pub eps: f32,
    /// The MLP's activation (`hidden_act`, `gelu` in BERT).
    pub act: Activation,
}

/// One post-norm layer.
#[derive(Debug)]
struct BertLayer {
    attn: SelfAttention,
    ln1: LayerNorm,
    mlp: Mlp,
    ln2: LayerNorm,
}

/// A loaded BERT encoder.
#[derive(Debug)]
pub struct Bert {
    embeddings: TextEmbeddings,
    /// The token-type embedding of type 0, added to every token.
    type0: Vector,
    norm: LayerNorm,
    layers: Vec<BertLayer>,
}

/// `[rows, cols]` of a 2-D tensor `name`, or the error naming it.
fn dims(w: &Weights, name: &str) -> Result<(usize, usize), ModelError> {
    match w.shape(name) {
        Some(&[r, c]) => Ok((r, c)),
        _ => Err(w.missing(name)),
    }
}

impl Bert {
    /// Loads `{prefix}.embeddings.*` and `{prefix}.encoder.layer.{i}.*` for every layer the
    /// checkpoint holds (at least one); sizes come from the tensors.
    pub fn load(w: &Weights, dev: &Device, prefix: &str, s: BertShape) -> Result<Self, ModelError> {
        let e = format!("{prefix}.embeddings");
        let (_, width) = dims(w, &format!("{e}.word_embeddings.weight"))?;
        if s.heads == 0 || !width.is_multiple_of(s.heads) {
            return Err(ModelError::Input(format!("{prefix}: width {width} is not divisible by {} heads", s.heads)));
        }
        let embeddings = TextEmbeddings::from_names(
            w,
            dev,
            &format!("{e}.word_embeddings.weight"),
            &format!("{e}.position_embeddings.weight"),
        )?;
        let types = format!("{e}.token_type_embeddings.weight");
        let (rows, _) = dims(w, &types)?;
        let type0 = w.tensor(&types, &[rows, width])?.into_data()[..width].to_vec();
        let type0 = Vector::activation(dev, type0)?;
        let norm = LayerNorm::load(w, dev, &format!("{e}.LayerNorm"), width, s.eps)?;
        let layer_name = |i: usize| format!("{prefix}.encoder.layer.{i}");
        let count =
            (0..).take_while(|&i| w.contains(&format!("{}.attention.self.query.weight", layer_name(i)))).count();
        if count == 0 {
            return Err(w.missing(&format!("{}.attention.self.query.weight", layer_name(0))));
        }
        let layers = (0..count).map(|i| BertLayer::load(w, dev, &layer_name(i), width, s)).collect::<Result<_, _>>()?;
        Ok(Bert { embeddings, type0, norm, layers })
    }

    /// Hidden width.
    pub fn width(&self) -> usize {
        self.embeddings.width()
    }

    /// The longest text the position table allows.
    pub fn max_len(&self) -> usize {
        self.embeddings.max_len()
    }

    /// Encoder layers.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// The final hidden states, `[batch, len, width]`; padding (mask 0) is not attended to.
    pub fn forward(&self, dev: &Device, batch: &TokenBatch) -> Result<Array, ModelError> {
        self.forward_each(dev, batch, |_, _| Ok(()))
    }

    /// [`Bert::forward`], showing `visit` the states after each layer `i` (1-based: transformers'
    /// `hidden_states[i]`, every position, padding included).
    pub fn forward_each(
        &self,
        dev: &Device,
        batch: &TokenBatch,
        mut visit: impl FnMut(usize, &Array) -> Result<(), ModelError>,
    ) -> Result<Array, ModelError> {
        let mut x = self.embeddings.forward(dev, batch)?;
        dev.add_periodic(&mut x, &self.type0)?;
        let mut x = self.norm.forward(dev, &x)?;
        let mask = Mask { causal: false, keys: Some(&batch.mask) };
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(dev, x, mask)?;
            visit(i + 1, &x)?;
        }
        Ok(x)
    }
}

impl BertLayer {
    fn load(w: &Weights, dev: &Device, p: &str, width: usize, s: BertShape) -> Result<Self, ModelError> {
        let (hidden, _) = dims(w, &format!("{p}.intermediate.dense.weight"))?;
        Ok(BertLayer {
            attn: SelfAttention {
                qkv: stacked(w, dev, &format!("{p}.attention.self"), &["query", "key", "value"], width, true)?,
                out: linear(w, dev, &format!("{p}.attention.output.dense"), width, width, true)?,
                heads: s.heads,
            },
            ln1: LayerNorm::load(w, dev, &format!("{p}.attention.output.LayerNorm"), width, s.eps)?,
            mlp: Mlp {
                fc1: linear(w, dev, &format!("{p}.intermediate.dense"), width, hidden, true)?,
                fc2: linear(w, dev, &format!("{p}.output.dense"), hidden, width, true)?,
                act: s.act,
            },
            ln2: LayerNorm::load(w, dev, &format!("{p}.output.LayerNorm"), width, s.eps)?,
        })
    }

    /// `ln1(x + attn(x))`, then `ln2(x + mlp(x))`.
    fn forward(&self, dev: &Device, mut x: Array, mask: Mask<'_>) -> Result<Array, ModelError> {
        let h = dev.copy(&x)?;
        self.attn.forward_add(dev, &h, mask, &mut x, (0, &mut Inference))?;
        let mut x = self.ln1.forward(dev, &x)?;
        let h = dev.copy(&x)?;
        self.mlp.forward_add_with(dev, &h, &mut x, [Site::Fc1(0), Site::Fc2(0)], &mut Inference)?;
        self.ln2.forward(dev, &x)
    }
}
