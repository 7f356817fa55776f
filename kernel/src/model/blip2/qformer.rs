//! BLIP-2's Q-Former (transformers' `Blip2QFormerModel`, `modeling_blip_2.py`): a BERT-like
//! post-norm encoder over either the learned query tokens or a text. Every layer has
//! self-attention (`attention.attention.{query,key,value}`, `attention.output.{dense,LayerNorm}`);
//! layer `i` with `i % cross_attention_frequency == 0` then lets the queries attend to the image
//! tokens (`crossattention.*`, keys and values from the image width); the feed-forward is
//! `intermediate_query`/`output_query` at query positions and `intermediate`/`output` for text.
//! The input (queries, or word + position embeddings) goes through `qformer.layernorm` first.
//! The image-text contrastive path never mixes queries and text in one sequence, so each pass
//! here is all queries (no mask) or all text (padding masked).

use super::config::QFormerSettings;
use crate::backend::{Array, Device, Heads, Linear, Mask};
use crate::model::nn::{Inference, LayerNorm, Mlp, SelfAttention, Site, linear, stacked};
use crate::model::{ModelError, Weights};

/// `x = LayerNorm(x + fc2(act(fc1(x))))`.
#[derive(Debug)]
struct FeedForward {
    mlp: Mlp,
    norm: LayerNorm,
}

/// Queries attending to the image: `x = LayerNorm(x + out(attention(q(x), kv(image))))`.
#[derive(Debug)]
struct CrossAttention {
    query: Linear,
    /// `key` and `value` stacked (`[2·width, image width]`).
    kv: Linear,
    out: Linear,
    norm: LayerNorm,
}

/// One Q-Former layer.
#[derive(Debug)]
struct Layer {
    attn: SelfAttention,
    attn_norm: LayerNorm,
    cross: Option<CrossAttention>,
    query_ffn: FeedForward,
    text_ffn: FeedForward,
}

/// The loaded Q-Former.
#[derive(Debug)]
pub struct QFormer {
    norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    width: usize,
}

impl QFormer {
    /// Loads `qformer.*` of `width` (the query tokens') for images of width `image_width`.
    pub fn load(
        w: &Weights,
        dev: &Device,
        (width, image_width): (usize, usize),
        s: &QFormerSettings,
    ) -> Result<Self, ModelError> {
        if s.heads == 0 || !width.is_multiple_of(s.heads) {
            return Err(ModelError::Input(format!("qformer: width {width} is not divisible by {} heads", s.heads)));
        }
        let extra = format!("qformer.encoder.layer.{}.attention.attention.query.weight", s.layers);
        if w.contains(&extra) {
            return Err(ModelError::Input(format!(
                "the checkpoint holds `{extra}`, more layers than qformer_config.num_hidden_layers ({})",
                s.layers
            )));
        }
        let layers = (0..s.layers)
            .map(|i| Layer::load(w, dev, &format!("qformer.encoder.layer.{i}"), (width, image_width), (i, s)))
            .collect::<Result<Vec<_>, _>>()?;
        let norm = LayerNorm::load(w, dev, "qformer.layernorm", width, s.eps)?;
        Ok(QFormer { norm, layers, heads: s.heads, width })
    }

    /// Hidden width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The query outputs `[batch, queries, width]` of `queries` (`[batch, queries, width]`)
    /// attending to `image` (`[batch, tokens, image width]`).
    pub fn queries(&self, dev: &Device, queries: &Array, image: &Array) -> Result<Array, ModelError> {
        let mut x = self.norm.forward(dev, queries)?;
        for layer in &self.layers {
            x = layer.self_attention(dev, x, Mask::NONE)?;
            if let Some(cross) = &layer.cross {
                x = cross.forward(dev, x, image, self.heads)?;
            }
            x = layer.query_ffn.forward(dev, x)?;
        }
        Ok(x)
    }

    /// The text outputs `[batch, len, width]` of embedded tokens `embeddings`, padding (`mask`
    /// 0, `[batch × len]`) not attended to.
    pub fn text(&self, dev: &Device, embeddings: &Array, mask: &[u32]) -> Result<Array, ModelError> {
        let mut x = self.norm.forward(dev, embeddings)?;
        for layer in &self.layers {
            x = layer.self_attention(dev, x, Mask { causal: false, keys: Some(mask) })?;
            x = layer.text_ffn.forward(dev, x)?;
        }
        Ok(x)
    }
}

impl Layer {
    fn load(
        w: &Weights,
        dev: &Device,
        p: &str,
        (width, image_width): (usize, usize),
        (i, s): (usize, &QFormerSettings),
    ) -> Result<Self, ModelError> {
        let cross = if i.is_multiple_of(s.cross_every) {
            let c = format!("{p}.crossattention");
            Some(CrossAttention {
                query: linear(w, dev, &format!("{c}.attention.query"), width, width, true)?,
                kv: stacked(w, dev, &format!("{c}.attention"), &["key", "value"], image_width, true)?,
                out: linear(w, dev, &format!("{c}.output.dense"), width, width, true)?,
                norm: LayerNorm::load(w, dev, &format!("{c}.output.LayerNorm"), width, s.eps)?,
            })
        } else {
            None
        };
        Ok(Layer {
            attn: SelfAttention {
                qkv: stacked(w, dev, &format!("{p}.attention.attention"), &["query", "key", "value"], width, true)?,
                out: linear(w, dev, &format!("{p}.attention.output.dense"), width, width, true)?,
                heads: s.heads,
            },
            attn_norm: LayerNorm::load(w, dev, &format!("{p}.attention.output.LayerNorm"), width, s.eps)?,
            cross,
            query_ffn: FeedForward::load(
                w,
                dev,
                (&format!("{p}.intermediate_query"), &format!("{p}.output_query")),
                width,
                s,
            )?,
            text_ffn: FeedForward::load(w, dev, (&format!("{p}.intermediate"), &format!("{p}.output")), width, s)?,
        })
    }

    /// `x = LayerNorm(x + out(attention(qkv(x))))`.
    fn self_attention(&self, dev: &Device, mut x: Array, mask: Mask<'_>) -> Result<Array, ModelError> {
        let h = dev.copy(&x)?;
        self.attn.forward_add(dev, &h, mask, &mut x, (0, &mut Inference))?;
        self.attn_norm.forward(dev, &x)
    }
}

impl FeedForward {
    /// `{intermediate}.dense` and `{output}.dense` with `{output}.LayerNorm`.
    fn load(
        w: &Weights,
        dev: &Device,
        (intermediate, output): (&str, &str),
        width: usize,
        s: &QFormerSettings,
    ) -> Result<Self, ModelError> {
        let hidden = match w.shape(&format!("{intermediate}.dense.weight")) {
            Some(&[h, _]) => h,
            _ => return Err(w.missing(&format!("{intermediate}.dense.weight"))),
        };
        Ok(FeedForward {
            mlp: Mlp {
                fc1: linear(w, dev, &format!("{intermediate}.dense"), width, hidden, true)?,
                fc2: linear(w, dev, &format!("{output}.dense"), hidden, width, true)?,
                act: s.act,
            },
            norm: LayerNorm::load(w, dev, &format!("{output}.LayerNorm"), width, s.eps)?,
        })
    }

    fn forward(&self, dev: &Device, mut x: Array) -> Result<Array, ModelError> {
        let h = dev.copy(&x)?;
        self.mlp.forward_add_with(dev, &h, &mut x, [Site::Fc1(0), Site::Fc2(0)], &mut Inference)?;
        self.norm.forward(dev, &x)
    }
}

impl CrossAttention {
    fn forward(&self, dev: &Device, mut x: Array, image: &Array, heads: usize) -> Result<Array, ModelError> {
        let width = self.query.outputs();
        let q = dev.linear(&x, &self.query)?;
        let kv = dev.linear(image, &self.kv)?;
        let d = width / heads;
        let a = dev.attention(view(&q, 0, heads, d), view(&kv, 0, heads, d), view(&kv, width, heads, d), Mask::NONE)?;
        dev.linear_add(&a, &self.out, &mut x)?;
        self.norm.forward(dev, &x)
    }
}

/// Columns `col..col + heads·head_dim` of `array` (`[batch, len, row]`) as attention heads.
fn view(array: &Array, col: usize, heads: usize, head_dim: usize) -> Heads<'_> {
    let len = array.shape().get(1).copied().unwrap_or(0);
    Heads { array, col, heads, head_dim, len }
}
