//! CLIP's text tower (`CLIPTextTransformer`): token and position embeddings, a causal encoder
//! that also ignores padding, a final layer norm, and the state at the end-of-text token as the
//! pooled output.

use crate::backend::cpu::AttentionMask;
use crate::model::config::TowerConfig;
use crate::model::nn::{Encoder, LayerNorm};
use crate::model::tokenizer::TokenBatch;
use crate::model::{ModelError, Weights};
use crate::tensor::Tensor;

/// The CLIP text tower.
#[derive(Debug)]
pub struct ClipText {
    tokens: Tensor,
    positions: Tensor,
    encoder: Encoder,
    norm: LayerNorm,
    eos: i64,
    width: usize,
}

impl ClipText {
    /// Loads `text_model.*`.
    pub fn load(w: &Weights, cfg: &TowerConfig) -> Result<Self, ModelError> {
        let p = "text_model";
        let tok_name = format!("{p}.embeddings.token_embedding.weight");
        let pos_name = format!("{p}.embeddings.position_embedding.weight");
        let (vocab, width) = match w.shape(&tok_name) {
            Some(&[v, d]) => (v, d),
            _ => return Err(w.missing(&tok_name)),
        };
        let max_pos = w.shape(&pos_name).map_or(77, |s| s[0]);
        Ok(ClipText {
            tokens: w.tensor(&tok_name, &[vocab, width])?,
            positions: w.tensor(&pos_name, &[max_pos, width])?,
            encoder: Encoder::load(w, &format!("{p}.encoder"), width, cfg.heads, cfg.act, cfg.eps)?,
            norm: LayerNorm::load(w, &format!("{p}.final_layer_norm"), width, cfg.eps)?,
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
        self.positions.shape()[0]
    }

    /// Embeds token ids, failing on an id outside the vocabulary.
    pub(crate) fn embed(tokens: &Tensor, positions: &Tensor, batch: &TokenBatch) -> Result<Tensor, ModelError> {
        let width = tokens.cols();
        let vocab = tokens.shape()[0];
        let mut x = Tensor::zeros([batch.batch, batch.len, width]);
        for (i, (&id, dst)) in batch.ids.iter().zip(x.data_mut().chunks_mut(width)).enumerate() {
            if id as usize >= vocab {
                return Err(ModelError::Input(format!("token id {id} is outside the vocabulary of {vocab}")));
            }
            let pos = positions.row(i % batch.len);
            for ((d, t), p) in dst.iter_mut().zip(tokens.row(id as usize)).zip(pos) {
                *d = t + p;
            }
        }
        Ok(x)
    }

    /// The final hidden states, `[batch, len, width]`.
    pub fn hidden_states(&self, batch: &TokenBatch) -> Result<Tensor, ModelError> {
        let x = Self::embed(&self.tokens, &self.positions, batch)?;
        let x = self.encoder.forward(x, AttentionMask { causal: true, keys: Some(&batch.mask) });
        Ok(self.norm.forward(&x))
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
