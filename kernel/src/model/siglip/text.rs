//! SigLIP's text tower (`SiglipTextTransformer`): token and position embeddings, a
//! bidirectional encoder, a final layer norm, the state at the LAST position as the pooled
//! output, and a linear head. As in MedVLMBench (whose SigLIP tokenizer returns no attention
//! mask), prompts padded to the longest are encoded without a padding mask: SigLIP was trained
//! on padded text and pools the last position, pad or not.

use crate::backend::cpu::AttentionMask;
use crate::model::config::TowerConfig;
use crate::model::nn::{Encoder, LayerNorm, Linear, TextEmbeddings};
use crate::model::tokenizer::TokenBatch;
use crate::model::{ModelError, Weights};
use crate::tensor::Tensor;

/// The SigLIP text tower.
#[derive(Debug)]
pub struct SiglipText {
    pub(crate) embeddings: TextEmbeddings,
    pub(crate) encoder: Encoder,
    pub(crate) norm: LayerNorm,
    pub(crate) head: Linear,
    pub(crate) width: usize,
}

impl SiglipText {
    /// Loads `text_model.*`.
    pub fn load(w: &Weights, cfg: &TowerConfig) -> Result<Self, ModelError> {
        let p = "text_model";
        let embeddings = TextEmbeddings::load(w, p)?;
        let width = embeddings.width();
        let proj = w.shape(&format!("{p}.head.weight")).map_or(width, |s| s[0]);
        Ok(SiglipText {
            encoder: Encoder::load(w, &format!("{p}.encoder"), width, cfg.heads, cfg.act, cfg.eps)?,
            norm: LayerNorm::load(w, &format!("{p}.final_layer_norm"), width, cfg.eps)?,
            head: Linear::load(w, &format!("{p}.head"), width, proj, true)?,
            embeddings,
            width,
        })
    }

    /// The longest text the position table allows.
    pub fn max_len(&self) -> usize {
        self.embeddings.max_len()
    }

    /// The final hidden states, `[batch, len, width]`.
    pub fn hidden_states(&self, batch: &TokenBatch) -> Result<Tensor, ModelError> {
        let x = self.embeddings.forward(batch)?;
        let x = self.encoder.forward(x, AttentionMask::NONE);
        Ok(self.norm.forward(&x))
    }

    /// The text features, `[batch, projection]`.
    pub fn forward(&self, batch: &TokenBatch) -> Result<Tensor, ModelError> {
        let h = self.hidden_states(batch)?;
        let last: Vec<f32> =
            (0..batch.batch).flat_map(|b| h.row(b * batch.len + batch.len - 1).iter().copied()).collect();
        Ok(self.head.forward(&Tensor::new([batch.batch, self.width], last)))
    }
}
