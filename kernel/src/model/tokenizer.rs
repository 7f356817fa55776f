//! Text tokenization with the checkpoint's `tokenizer.json` (the `tokenizers` crate), padded
//! to the longest text of a batch, as MedVLMBench tokenizes its prompts.

use std::path::Path;

use serde_json::Value;
use tokenizers::Tokenizer;

use super::ModelError;

/// A batch of token ids, padded to the longest, with its attention mask.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    /// `[batch × len]` token ids.
    pub ids: Vec<u32>,
    /// `[batch × len]`: 1 for real tokens, 0 for padding.
    pub mask: Vec<u32>,
    /// Texts in the batch.
    pub batch: usize,
    /// Padded length.
    pub len: usize,
}

/// The checkpoint's tokenizer and padding token.
pub struct TextTokenizer {
    inner: Tokenizer,
    pad_id: u32,
    max_len: usize,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer").field("pad_id", &self.pad_id).field("max_len", &self.max_len).finish()
    }
}

impl TextTokenizer {
    /// Loads `dir/tokenizer.json`; the padding token comes from `tokenizer_config.json` or
    /// `special_tokens_map.json` (`pad_token`), else `fallback_pad`. Texts longer than
    /// `max_len` tokens are an error.
    pub fn open(dir: &Path, fallback_pad: u32, max_len: usize) -> Result<Self, ModelError> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(ModelError::NotFound {
                spec: dir.display().to_string(),
                reason: "no tokenizer.json in it".into(),
            });
        }
        let inner = Tokenizer::from_file(&path).map_err(|e| ModelError::Format {
            path: path.clone(),
            message: format!("cannot load the tokenizer: {e}"),
        })?;
        let pad_id = ["tokenizer_config.json", "special_tokens_map.json"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(dir.join(f)).ok())
            .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
            .filter_map(|j| match j.get("pad_token")? {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("content")?.as_str().map(str::to_owned),
                _ => None,
            })
            .find_map(|tok| inner.token_to_id(&tok))
            .unwrap_or(fallback_pad);
        Ok(TextTokenizer { inner, pad_id, max_len })
    }

    /// Tokenizes `texts` with special tokens and pads them to the longest.
    pub fn encode(&self, texts: &[String]) -> Result<TokenBatch, ModelError> {
        let mut rows = Vec::with_capacity(texts.len());
        for text in texts {
            let enc = self
                .inner
                .encode(text.as_str(), true)
                .map_err(|e| ModelError::Input(format!("cannot tokenize {text:?}: {e}")))?;
            let ids = enc.get_ids().to_vec();
            if ids.len() > self.max_len {
                return Err(ModelError::Input(format!(
                    "{text:?} is {} tokens long; the text encoder takes at most {}",
                    ids.len(),
                    self.max_len
                )));
            }
            rows.push(ids);
        }
        let len = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * len);
        let mut mask = Vec::with_capacity(rows.len() * len);
        for row in &rows {
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(self.pad_id, len - row.len()));
            mask.extend(std::iter::repeat_n(1, row.len()));
            mask.extend(std::iter::repeat_n(0, len - row.len()));
        }
        Ok(TokenBatch { ids, mask, batch: rows.len(), len })
    }
}
