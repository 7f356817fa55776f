//! CLIP's text tower (`CLIPTextTransformer`): token and position embeddings, a causal encoder
//! that also ignores padding, a final layer norm, and the state at the end-of-text token as the
//! pooled output.

use crate::backend::{Array, Device, Mask};
use crate::model::config::TowerConfig;
use crate::model::nn::{Encoder, EncoderShape, LayerNorm, TextEmbeddings};
use crate::model::tokenizer::TokenBatch;
use crate::model::{ModelError, Weights};

/// The CLIP text tower.
#[derive(Debug)]
pub struct ClipText {
    embeddings: TextEmbeddings,
    encoder: Encoder,
    norm: LayerNorm,
    eos: i64,
    width: usize,
}

impl ClipText {
    /// Loads `text_model.*`.
    pub fn load(w: &Weights, dev: &Device, cfg: &TowerConfig) -> Result<Self, ModelError> {
        let p = "text_model";
        let embeddings = TextEmbeddings::load(w, dev, p)?;
        let width = embeddings.width();
        let shape = EncoderShape { dim: width, layers: cfg.layers, heads: cfg.heads, act: cfg.act, eps: cfg.eps };
        Ok(ClipText {
            encoder: Encoder::load(w, dev, &format!("{p}.encoder"), shape)?,
            norm: LayerNorm::load(w, dev, &format!("{p}.final_layer_norm"), width, cfg.eps)?,
            embeddings,
            eos: cfg.eos_token_id,
            width,
        })
    }

    /// A tower from its parts (open_clip's layout); `eos` as in [`TowerConfig::eos_token_id`]
    /// (2 pools at the highest id, open_clip's `argmax`).
    pub(crate) fn from_parts(embeddings: TextEmbeddings, encoder: Encoder, norm: LayerNorm, eos: i64) -> Self {
        let width = embeddings.width();
        ClipText { embeddings, encoder, norm, eos, width }
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
    pub fn hidden_states(&self, dev: &Device, batch: &TokenBatch) -> Result<Array, ModelError> {
        let mut x = self.embeddings.forward(dev, batch)?;
        self.encoder.forward(dev, &mut x, Mask { causal: true, keys: Some(&batch.mask) })?;
        self.norm.forward(dev, &x)
    }

    /// Per text, the position whose final state is pooled (the end-of-text token). As
    /// transformers: with the legacy eos id 2, the highest id marks the end; otherwise the first
    /// occurrence of the configured end-of-text id.
    fn pooled_positions(&self, batch: &TokenBatch) -> Vec<usize> {
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
    pub fn forward(&self, dev: &Device, batch: &TokenBatch) -> Result<Array, ModelError> {
        let h = self.hidden_states(dev, batch)?;
        let rows: Vec<usize> =
            self.pooled_positions(batch).into_iter().enumerate().map(|(b, at)| b * batch.len + at).collect();
        Ok(dev.gather_rows(&h, &rows)?)
    }
}
