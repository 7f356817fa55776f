//! MedCLIP's text side (`MedCLIPTextModel` and `MedCLIPModel.encode_text` in
//! <https://github.com/RyanWangZf/MedCLIP/blob/main/medclip/modeling_medclip.py>): a
//! Bio_ClinicalBERT ([`crate::model::bert`]) under `text_model.model.`, pooled as MedCLIP pools
//! it (the states after layer 1, layer 2 and the last layer, `hidden_states[1]`, `[2]` and
//! `[-1]`, each averaged over every position of the padded batch, padding included, then
//! averaged), a bias-free `text_model.projection_head`, then L2 normalisation.

use super::projection_head;
use crate::backend::{Array, Device, Linear};
use crate::model::bert::{Bert, BertShape};
use crate::model::tokenizer::TokenBatch;
use crate::model::{ModelError, Weights};
use crate::tensor::Tensor;

/// The prefix of the BERT in MedCLIP's state dict.
pub const BERT_PREFIX: &str = "text_model.model";
/// The text projection head in MedCLIP's state dict.
pub const PROJECTION: &str = "text_model.projection_head";

/// MedCLIP's text model: BERT, pooling, projection head.
#[derive(Debug)]
pub struct MedClipText {
    bert: Bert,
    projection: Linear,
}

impl MedClipText {
    /// Loads the BERT with `shape` and the projection, whose output width is read from the
    /// checkpoint (512 for MedCLIP). MedCLIP pools `hidden_states[2]`, so the BERT needs at
    /// least two layers.
    pub fn load(w: &Weights, dev: &Device, shape: BertShape) -> Result<Self, ModelError> {
        let bert = Bert::load(w, dev, BERT_PREFIX, shape)?;
        if bert.depth() < 2 {
            return Err(ModelError::Input(format!(
                "{}: MedCLIP pools the second layer's states, but `{BERT_PREFIX}` has {} layer",
                w.origin().display(),
                bert.depth()
            )));
        }
        let projection = projection_head(w, dev, PROJECTION, bert.width())?;
        Ok(MedClipText { bert, projection })
    }

    /// The longest text the position table allows.
    pub fn max_len(&self) -> usize {
        self.bert.max_len()
    }

    /// The projection's output width.
    pub fn dim(&self) -> usize {
        self.projection.outputs()
    }

    /// The projected, unnormalised features (`MedCLIPTextModel.forward`), `[batch, dim]`.
    pub fn features(&self, dev: &Device, tokens: &TokenBatch) -> Result<Array, ModelError> {
        let (batch, len, width, last) = (tokens.batch, tokens.len, self.bert.width(), self.bert.depth());
        let mut pooled = vec![0f64; batch * width];
        self.bert.forward_each(dev, tokens, |layer, states| {
            // hidden_states[1], [2] and [-1]: a layer counts as often as it is named.
            let times = [1, 2, last].iter().filter(|&&k| k == layer).count();
            if times == 0 {
                return Ok(());
            }
            let states = states.to_tensor(dev)?;
            for (b, out) in pooled.chunks_mut(width).enumerate() {
                for t in 0..len {
                    let row = states.row(b * len + t);
                    out.iter_mut().zip(row).for_each(|(o, &v)| *o += times as f64 * f64::from(v));
                }
            }
            Ok(())
        })?;
        let scale = 1.0 / (3.0 * len.max(1) as f64);
        let pooled: Vec<f32> = pooled.iter().map(|&v| (v * scale) as f32).collect();
        let pooled = dev.upload(Tensor::new([batch, width], pooled))?;
        Ok(dev.linear(&pooled, &self.projection)?)
    }

    /// `encode_text`: the projected features, L2-normalised, as a host tensor `[batch, dim]`.
    pub fn text_embeds(&self, dev: &Device, tokens: &TokenBatch) -> Result<Tensor, ModelError> {
        Ok(self.features(dev, tokens)?.to_tensor(dev)?.l2_normalized())
    }
}
