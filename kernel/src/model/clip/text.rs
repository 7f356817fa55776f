//! CLIP's text tower (`CLIPTextTransformer`): token and position embeddings, a causal encoder
//! that also ignores padding, a final layer norm, and the state at the end-of-text token as the
//! pooled output.

use crate::backend::cpu::AttentionMask;
use crate::model::config::TowerConfig;
use crate::model::nn::{Encoder, LayerNorm, TextEmbeddings};
use crate::model::tokenizer::TokenBatch;
use crate::model::{ModelError, Weights};
use crate::tensor::Tensor;

/// The CLIP text tower.
#[derive(Debug)]
pub struct ClipText {
    pub(crate) embeddings: TextEmbeddings,
    pub(crate) encoder: Encoder,
    pub(crate) norm: LayerNorm,
    pub(crate) eos: i64,
    pub(crate) width: usize,
}

impl ClipText {
    /// Loads `text_model.*`.
    pub fn load(w: &Weights, cfg: &TowerConfig) -> Result<Self, ModelError> {
        let p = "text_model";
        let embeddings = TextEmbeddings::load(w, p)?;
        let width = embeddings.width();
        Ok(ClipText {
            encoder: Encoder::load(w, &format!("{p}.encoder"), width, cfg.heads, cfg.act, cfg.eps)?,
            norm: LayerNorm::load(w, &format!("{p}.final_layer_norm"), width, cfg.eps)?,
            embeddings,
            eos: cfg.eos_token_id,
            width,
        })
    }

    /// Hidden width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The longest text the position table allows.
    pub fn max_len(&self) -> usize {
        self.embeddings.max_len()
    }

    /// The final hidden states, `[batch, len, width]`.
    pub fn hidden_states(&self, batch: &TokenBatch) -> Result<Tensor, ModelError> {
        let x = self.embeddings.forward(batch)?;
        let x = self.encoder.forward(x, AttentionMask { causal: true, keys: Some(&batch.mask) });
        Ok(self.norm.forward(&x))
    }

    /// Per text, the position whose final state is pooled (the end-of-text token), as `forward`
    /// picks it; the GPU tower gathers the same rows.
    pub(crate) fn pooled_positions(&self, batch: &TokenBatch) -> Vec<usize> {
        (0..batch.batch)
            .map(|b| {
                let ids = &batch.ids[b * batch.len..(b + 1) * batch.len];
                if self.eos == 2 {
                    let max = ids.iter().copied().max().unwrap_or(0);
                    ids.iter().position(|&t| t == max).unwrap_or(0)
                } else {
                    ids.iter().position(|&t| i64::from(t) == self.eos).unwrap_or(batch.len - 1)
                }
            })
            .collect()
    }

    /// The pooled output at each text's end-of-text token, `[batch, width]`.
    pub fn forward(&self, batch: &TokenBatch) -> Result<Tensor, ModelError> {
        let h = self.hidden_states(batch)?;
        let mut pooled = Vec::with_capacity(batch.batch * self.width);
        for b in 0..batch.batch {
            let ids = &batch.ids[b * batch.len..(b + 1) * batch.len];
            // transformers: with the legacy eos id 2, the highest id marks the end; otherwise the
            // first occurrence of the configured end-of-text id.
            let at = if self.eos == 2 {
                let max = ids.iter().copied().max().unwrap_or(0);
                ids.iter().position(|&t| t == max).unwrap_or(0)
            } else {
                ids.iter().position(|&t| i64::from(t) == self.eos).unwrap_or(batch.len - 1)
            };
            pooled.extend_from_slice(h.row(b * batch.len + at));
        }
        Ok(Tensor::new([batch.batch, self.width], pooled))
    }
}
