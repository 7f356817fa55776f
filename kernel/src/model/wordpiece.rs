//! BERT WordPiece tokenizers from a slow tokenizer's files (`vocab.txt`, `tokenizer_config.json`,
//! `added_tokens.json`), for checkpoints saved without a `tokenizer.json` (transformers 4.x with
//! the Python `BertTokenizer`, as Salesforce/blip2-itm-vit-g was converted). Built as
//! transformers' `BertConverter` (`convert_slow_tokenizer.py`) turns such files into the fast
//! tokenizer: the BERT normaliser (clean text, CJK spacing, `do_lower_case`, `strip_accents`),
//! the BERT pre-tokeniser, WordPiece (`##`, 100 characters a word, `unk_token`), `[CLS] … [SEP]`;
//! special and added tokens match whole.

use std::path::Path;

use serde_json::Value;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Tokenizer};

use super::ModelError;

/// The file this reads the vocabulary from.
pub const VOCAB: &str = "vocab.txt";

/// A token named by `key` in the configurations (a string, or an object with `content`), else
/// `default`.
fn token(configs: &[Value], key: &str, default: &str) -> String {
    configs
        .iter()
        .find_map(|c| match c.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("content")?.as_str().map(str::to_owned),
            _ => None,
        })
        .unwrap_or_else(|| default.to_owned())
}

/// Loads `dir/vocab.txt` with the settings of `configs` (`tokenizer_config.json`,
/// `special_tokens_map.json`, parsed) and the added tokens of `added_tokens.json`.
pub fn load(dir: &Path, configs: &[Value]) -> Result<Tokenizer, ModelError> {
    let path = dir.join(VOCAB);
    let bad = |message: String| ModelError::Format { path: path.clone(), message };
    if !path.is_file() {
        return Err(ModelError::NotFound { spec: dir.display().to_string(), reason: format!("no {VOCAB} in it") });
    }
    let vocab = WordPiece::read_file(&path.to_string_lossy()).map_err(|e| bad(format!("cannot read: {e}")))?;
    let flag = |key: &str| configs.iter().find_map(|c| c.get(key)?.as_bool());
    let unk = token(configs, "unk_token", "[UNK]");
    let model = WordPiece::builder()
        .vocab(vocab)
        .unk_token(unk.clone())
        .build()
        .map_err(|e| bad(format!("not a WordPiece vocabulary: {e}")))?;
    let mut tok = Tokenizer::new(model);
    tok.with_normalizer(Some(BertNormalizer::new(
        true,
        flag("tokenize_chinese_chars").unwrap_or(true),
        flag("strip_accents"),
        flag("do_lower_case").unwrap_or(true),
    )));
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    let id =
        |t: &str| tok.token_to_id(t).ok_or_else(|| bad(format!("the special token `{t}` is not in the vocabulary")));
    let (cls, sep) = (token(configs, "cls_token", "[CLS]"), token(configs, "sep_token", "[SEP]"));
    let processing = BertProcessing::new((sep.clone(), id(&sep)?), (cls.clone(), id(&cls)?));
    tok.with_post_processor(Some(processing));
    let specials: Vec<AddedToken> = ["unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]
        .iter()
        .map(|k| token(configs, k, ""))
        .filter(|t| !t.is_empty() && tok.token_to_id(t).is_some())
        .map(|t| AddedToken::from(t, true))
        .collect();
    tok.add_special_tokens(&specials);
    add_declared(&mut tok, dir, configs)?;
    Ok(tok)
}

/// Adds the tokens `added_tokens.json` (`{"token": id}`) and `tokenizer_config.json`'s
/// `added_tokens_decoder` (`{"id": {"content": ..., "special": ...}}`) declare beyond the
/// vocabulary, in id order, checking that each gets its declared id.
fn add_declared(tok: &mut Tokenizer, dir: &Path, configs: &[Value]) -> Result<(), ModelError> {
    let file = dir.join("added_tokens.json");
    let mut declared: Vec<(u64, String, bool)> = Vec::new();
    if let Ok(text) = std::fs::read_to_string(&file) {
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::Format { path: file.clone(), message: format!("invalid JSON: {e}") })?;
        for (t, id) in json.as_object().into_iter().flatten() {
            let id = id.as_u64().ok_or_else(|| ModelError::Format {
                path: file.clone(),
                message: format!("the id of `{t}` is not a number"),
            })?;
            declared.push((id, t.clone(), true));
        }
    }
    for c in configs {
        for (id, entry) in c.get("added_tokens_decoder").and_then(Value::as_object).into_iter().flatten() {
            let (Ok(id), Some(t)) = (id.parse::<u64>(), entry.get("content").and_then(Value::as_str)) else { continue };
            let special = entry.get("special").and_then(Value::as_bool).unwrap_or(true);
            declared.push((id, t.to_owned(), special));
        }
    }
    declared.sort();
    declared.dedup_by(|a, b| a.0 == b.0);
    for (id, t, special) in declared {
        if tok.token_to_id(&t).is_some() {
            continue;
        }
        let added = AddedToken::from(t.clone(), special);
        if special {
            tok.add_special_tokens(&[added])
        } else {
            tok.add_tokens(&[added])
        };
        if tok.token_to_id(&t).map(u64::from) != Some(id) {
            return Err(ModelError::Format {
                path: dir.join(VOCAB),
                message: format!("the added token `{t}` is declared as id {id} but the vocabulary puts it elsewhere"),
            });
        }
    }
    Ok(())
}
