//! Text tokenization with the checkpoint's `tokenizer.json` (the `tokenizers` crate), a BERT
//! `vocab.txt` (see [`super::wordpiece`]), or its SentencePiece `spiece.model` with SigLIP's
//! text canonicalisation (see [`super::spm`]), padded to the longest text of a batch, as
//! MedVLMBench tokenizes its prompts. open_clip checkpoints clean texts first (see
//! [`super::clean`]) and truncate them to their context; MedCLIP builds Bio_ClinicalBERT's
//! WordPiece from `vocab.txt` ([`super::medclip`]).

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
    prepare: Prepare,
}

/// What happens to a text before the tokenizer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prepare {
    /// Nothing (`tokenizer.json` describes the whole pipeline).
    Nothing,
    /// `SiglipTokenizer`'s canonicalisation, lower-casing first when `lower`.
    Siglip { lower: bool },
    /// open_clip's cleaning ([`super::clean::open_clip`]), and truncation to the context.
    OpenClip,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("pad_id", &self.pad_id)
            .field("max_len", &self.max_len)
            .field("prepare", &self.prepare)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `dir/tokenizer.json`, or else a SigLIP `dir/spiece.model`; the padding token
    /// comes from `tokenizer_config.json` or `special_tokens_map.json` (`pad_token`), else
    /// `fallback_pad`. Texts longer than `max_len` tokens are an error.
    pub fn open(dir: &Path, fallback_pad: u32, max_len: usize) -> Result<Self, ModelError> {
        let configs: Vec<Value> = ["tokenizer_config.json", "special_tokens_map.json"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(dir.join(f)).ok())
            .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
            .collect();
        let path = dir.join("tokenizer.json");
        let spiece = dir.join("spiece.model");
        let (inner, prepare) = if path.is_file() {
            let inner = Tokenizer::from_file(&path).map_err(|e| ModelError::Format {
                path: path.clone(),
                message: format!("cannot load the tokenizer: {e}"),
            })?;
            (inner, Prepare::Nothing)
        } else if dir.join(super::wordpiece::VOCAB).is_file() {
            (super::wordpiece::load(dir, &configs)?, Prepare::Nothing)
        } else if spiece.is_file() {
            let class = configs.iter().find_map(|c| c.get("tokenizer_class")?.as_str()).unwrap_or("SiglipTokenizer");
            if class != "SiglipTokenizer" {
                return Err(ModelError::Unsupported {
                    path: dir.join("tokenizer_config.json"),
                    message: format!(
                        "a SentencePiece tokenizer of class `{class}` without tokenizer.json is not supported \
                         (only SiglipTokenizer)"
                    ),
                });
            }
            let lower = configs.iter().find_map(|c| c.get("do_lower_case")?.as_bool()).unwrap_or(true);
            (super::spm::load(&spiece)?, Prepare::Siglip { lower })
        } else {
            return Err(ModelError::NotFound {
                spec: dir.display().to_string(),
                reason: "no tokenizer.json, vocab.txt or spiece.model in it".into(),
            });
        };
        let pad_id = configs
            .iter()
            .filter_map(|j| match j.get("pad_token")? {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("content")?.as_str().map(str::to_owned),
                _ => None,
            })
            .find_map(|tok| inner.token_to_id(&tok))
            .unwrap_or(fallback_pad);
        Ok(TextTokenizer { inner, pad_id, max_len, prepare })
    }

    /// [`TextTokenizer::open`] for an open_clip checkpoint: texts are cleaned as open_clip
    /// cleans them and truncated (special tokens kept) to `context` tokens, as open_clip's
    /// tokenizers do, instead of refused; `pad`, when given, replaces the tokenizer's padding
    /// id (open_clip's own tokenizer pads with `pad_id`, 0).
    pub(crate) fn open_clip(dir: &Path, context: usize, pad: Option<u32>) -> Result<Self, ModelError> {
        let mut t = Self::open(dir, pad.unwrap_or(0), context)?;
        if let Some(pad) = pad {
            t.pad_id = pad;
        }
        let params = tokenizers::TruncationParams { max_length: context, ..Default::default() };
        t.inner.with_truncation(Some(params)).map_err(|e| ModelError::Format {
            path: dir.join("tokenizer.json"),
            message: format!("cannot truncate to {context} tokens: {e}"),
        })?;
        t.prepare = Prepare::OpenClip;
        Ok(t)
    }

    /// A tokenizer a family's loader built itself (no `tokenizer.json`); texts go in as they are.
    pub(crate) fn from_tokenizer(inner: Tokenizer, pad_id: u32, max_len: usize) -> Self {
        TextTokenizer { inner, pad_id, max_len, prepare: Prepare::Nothing }
    }

    /// Truncates texts to `context` tokens, special tokens kept (transformers' `truncation=True`),
    /// instead of refusing them; `path` is named in errors.
    pub(crate) fn truncating(mut self, context: usize, path: &Path) -> Result<Self, ModelError> {
        let params = tokenizers::TruncationParams { max_length: context, ..Default::default() };
        self.inner.with_truncation(Some(params)).map_err(|e| ModelError::Format {
            path: path.to_owned(),
            message: format!("cannot truncate to {context} tokens: {e}"),
        })?;
        self.max_len = context;
        Ok(self)
    }

    /// Tokenizes `texts` with special tokens and pads them to the longest.
    pub fn encode(&self, texts: &[String]) -> Result<TokenBatch, ModelError> {
        let mut rows = Vec::with_capacity(texts.len());
        for text in texts {
            let prepared = match self.prepare {
                Prepare::Nothing => None,
                Prepare::Siglip { lower } => Some(super::spm::canonicalize(text, lower).unwrap_or_default()),
                Prepare::OpenClip => Some(super::clean::open_clip(text)),
            };
            let enc = self
                .inner
                .encode(prepared.as_deref().unwrap_or(text), true)
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
