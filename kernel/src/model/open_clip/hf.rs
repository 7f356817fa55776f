//! open_clip's Hugging Face text tower (`open_clip/hf_model.py` `HFTextEncoder`; BiomedCLIP's
//! PubMedBERT): a BERT ([`crate::model::bert`]) under `text.transformer.`, padding masked,
//! pooled by `hf_pooler_type` (`cls_last_hidden_state_pooler`: the first token's final state;
//! `mean_pooler`: the mean over real tokens), then projected by `hf_proj_type` (`mlp`:
//! `text.proj.0`, exact GELU, `text.proj.2`, no biases, hidden `(width + embed) / 2`; `linear`:
//! `text.proj`; none when the widths agree).

use super::config::OpenClipConfig;
use crate::backend::cpu::Activation;
use crate::backend::{Array, Device, Linear};
use crate::model::bert::{Bert, BertShape};
use crate::model::clip::TextFeatures;
use crate::model::nn::linear;
use crate::model::tokenizer::TokenBatch;
use crate::model::{ModelError, Weights};
use crate::tensor::Tensor;

/// How the final hidden states become one vector per text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooler {
    /// The first (`[CLS]`) token's state.
    Cls,
    /// The mean over the real tokens.
    Mean,
}

/// The Hugging Face text tower with its pooling and projection.
#[derive(Debug)]
pub struct HfText {
    bert: Bert,
    pooler: Pooler,
    /// The projection's layers, exact GELU between them (none: the identity).
    projection: Vec<Linear>,
    context: usize,
}

impl HfText {
    /// Loads `text.transformer.*` and `text.proj*`; BERT's head count is its width / 64 (every
    /// BERT size's), its norm epsilon 1e-12 and activation GELU (BERT's configuration, which
    /// open_clip checkpoints do not carry).
    pub fn load(w: &Weights, dev: &Device, config: &OpenClipConfig) -> Result<Self, ModelError> {
        let t = config.text();
        let model = t.string("hf_model_name", "")?;
        if !w.contains("text.transformer.embeddings.word_embeddings.weight") {
            return Err(config.unsupported(format!(
                "text tower `{model}`: only BERT-style Hugging Face text towers are implemented \
                 (no `text.transformer.embeddings.word_embeddings.weight` in {})",
                w.origin().display()
            )));
        }
        let pooler = match t.string("hf_pooler_type", "mean_pooler")?.as_str() {
            "cls_last_hidden_state_pooler" => Pooler::Cls,
            "mean_pooler" => Pooler::Mean,
            other => {
                return Err(config.unsupported(format!(
                    "`text_cfg.hf_pooler_type` `{other}` is not implemented \
                     (cls_last_hidden_state_pooler, mean_pooler are)"
                )));
            }
        };
        let width = w.shape("text.transformer.embeddings.word_embeddings.weight").map_or(0, |s| s[1]);
        if !width.is_multiple_of(64) {
            tracing::warn!("BERT width {width} is not a multiple of 64; assuming one attention head");
        }
        let shape = BertShape { heads: (width / 64).max(1), eps: 1e-12, act: Activation::Gelu };
        let bert = Bert::load(w, dev, "text.transformer", shape)?;
        let embed = config.embed_dim()?;
        let projection = match t.string("hf_proj_type", "mlp")?.as_str() {
            "mlp" => {
                let hidden = (width + embed) / 2;
                vec![
                    linear(w, dev, "text.proj.0", width, hidden, false)?,
                    linear(w, dev, "text.proj.2", hidden, embed, false)?,
                ]
            }
            "linear" => vec![linear(w, dev, "text.proj", width, embed, false)?],
            _ if width == embed => Vec::new(),
            other => {
                return Err(config.unsupported(format!("`text_cfg.hf_proj_type` `{other}` is not implemented")));
            }
        };
        let context = t.uint("context_length", 77)?;
        if context > bert.max_len() {
            return Err(config.format(format!(
                "`text_cfg.context_length` {context} exceeds the text tower's {} positions",
                bert.max_len()
            )));
        }
        Ok(HfText { bert, pooler, projection, context })
    }

    /// One vector per text from the final states `h` (`[batch, len, width]`).
    fn pool(&self, dev: &Device, h: &Array, tokens: &TokenBatch) -> Result<Array, ModelError> {
        let (b, len, width) = (tokens.batch, tokens.len, self.bert.width());
        if self.pooler == Pooler::Cls {
            return Ok(dev.gather_rows(h, &(0..b).map(|i| i * len).collect::<Vec<_>>())?);
        }
        let states = h.to_tensor(dev)?;
        let mut out = vec![0f32; b * width];
        for (i, row) in out.chunks_mut(width).enumerate() {
            let mask = &tokens.mask[i * len..(i + 1) * len];
            for (t, _) in mask.iter().enumerate().filter(|(_, m)| **m != 0) {
                row.iter_mut().zip(states.row(i * len + t)).for_each(|(o, v)| *o += v);
            }
            let n = mask.iter().filter(|m| **m != 0).count().max(1) as f32;
            row.iter_mut().for_each(|o| *o /= n);
        }
        Ok(dev.upload(Tensor::new([b, width], out))?)
    }
}

impl TextFeatures for HfText {
    fn features(&self, dev: &Device, tokens: &TokenBatch) -> Result<Array, ModelError> {
        let h = self.bert.forward(dev, tokens)?;
        let mut x = self.pool(dev, &h, tokens)?;
        for (i, layer) in self.projection.iter().enumerate() {
            if i > 0 {
                dev.activate(&mut x, Activation::Gelu)?;
            }
            x = dev.linear(&x, layer)?;
        }
        Ok(x)
    }

    fn max_len(&self) -> usize {
        self.context
    }
}
