//! SigLIP's text tower (`SiglipTextTransformer`): token and position embeddings, a
//! bidirectional encoder, a final layer norm, the state at the LAST position as the pooled
//! output, and a linear head. As in MedVLMBench (whose SigLIP tokenizer returns no attention
//! mask), prompts padded to the longest are encoded without a padding mask: SigLIP was trained
//! on padded text and pools the last position, pad or not.

use crate::backend::{Array, Device, Linear, Mask};
use crate::model::config::TowerConfig;
use crate::model::nn::{Encoder, EncoderShape, LayerNorm, TextEmbeddings, linear};
use crate::model::tokenizer::TokenBatch;
use crate::model::{ModelError, Weights};

/// The SigLIP text tower.
#[derive(Debug)]
pub struct SiglipText {
    embeddings: TextEmbeddings,
    encoder: Encoder,
    norm: LayerNorm,
    head: Linear,
}

impl SiglipText {
    /// Loads `text_model.*`.
    pub fn load(w: &Weights, dev: &Device, cfg: &TowerConfig) -> Result<Self, ModelError> {
        let p = "text_model";
        let embeddings = TextEmbeddings::load(w, dev, p)?;
        let width = embeddings.width();
        let proj = w.shape(&format!("{p}.head.weight")).map_or(width, |s| s[0]);
        let shape = EncoderShape { dim: width, layers: cfg.layers, heads: cfg.heads, act: cfg.act, eps: cfg.eps };
        Ok(SiglipText {
            encoder: Encoder::load(w, dev, &format!("{p}.encoder"), shape)?,
            norm: LayerNorm::load(w, dev, &format!("{p}.final_layer_norm"), width, cfg.eps)?,
            head: linear(w, dev, &format!("{p}.head"), width, proj, true)?,
            embeddings,
        })
    }

    /// The longest text the position table allows.
    pub fn max_len(&self) -> usize {
        self.embeddings.max_len()
    }

    /// The final hidden states, `[batch, len, width]`.
    pub fn hidden_states(&self, dev: &Device, batch: &TokenBatch) -> Result<Array, ModelError> {
        let mut x = self.embeddings.forward(dev, batch)?;
        self.encoder.forward(dev, &mut x, Mask::NONE)?;
        self.norm.forward(dev, &x)
    }

    /// The text features, `[batch, projection]`.
    pub fn forward(&self, dev: &Device, batch: &TokenBatch) -> Result<Array, ModelError> {
        let h = self.hidden_states(dev, batch)?;
        let last: Vec<usize> = (0..batch.batch).map(|b| b * batch.len + batch.len - 1).collect();
        Ok(dev.linear(&dev.gather_rows(&h, &last)?, &self.head)?)
    }
}
