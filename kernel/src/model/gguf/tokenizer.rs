//! A `tokenizers::Tokenizer` built from GGUF metadata for `tokenizer.ggml.model == "gpt2"`
//! (byte-level BPE): `tokenizer.ggml.tokens`, `.merges`, `.token_type`, `.pre`.
//!
//! The pre-tokenizer follows llama.cpp's choice per `tokenizer.ggml.pre` (`llama-vocab.cpp`), written
//! as the equivalent Hugging Face `tokenizer.json` pieces: `gpt2`/`default` the GPT-2 regex;
//! `smollm`/`starcoder`/`refact` individual digits then the GPT-2 regex; `qwen2` and `llama-bpe` their
//! regexes (the ones in those models' `tokenizer.json`). Control tokens (`token_type` 3) become special
//! added tokens, user-defined ones (4) plain added tokens. The BPE itself is the tokenizers crate's.

use super::{GgufError, GgufFile};
use serde_json::{Map, Value as J, json};

const QWEN2_REGEX: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// ggml token types (`enum llama_token_type`).
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;

/// Builds the tokenizer of a GGUF file.
pub fn tokenizer_from_gguf(f: &GgufFile) -> Result<tokenizers::Tokenizer, GgufError> {
    let err = |msg: String| GgufError::Tokenizer { path: f.path().into(), msg };
    let model = f.get_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(err(format!("tokenizer.ggml.model {model:?} is not supported (only \"gpt2\" byte-level BPE)")));
    }
    let tokens = f.get_str_array("tokenizer.ggml.tokens")?;
    let merges = f.get_str_array("tokenizer.ggml.merges")?;
    let types = match f.metadata("tokenizer.ggml.token_type") {
        Some(_) => f.get_i32_array("tokenizer.ggml.token_type")?,
        None => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err(err(format!("{} token types for {} tokens", types.len(), tokens.len())));
    }
    let pre = f.metadata("tokenizer.ggml.pre").and_then(|v| v.as_str()).unwrap_or("default");
    let (pre_tokenizer, ignore_merges) =
        pre_tokenizer(pre).ok_or_else(|| err(format!("tokenizer.ggml.pre {pre:?} is not supported")))?;

    let vocab: Map<String, J> = tokens.iter().enumerate().map(|(i, t)| (t.to_string(), json!(i))).collect();
    let merges = merges
        .iter()
        .map(|m| m.split_once(' ').map(|(a, b)| json!([a, b])).ok_or_else(|| err(format!("merge {m:?} has no space"))))
        .collect::<Result<Vec<_>, _>>()?;
    let added: Vec<J> = tokens
        .iter()
        .zip(&types)
        .enumerate()
        .filter(|(_, (_, ty))| matches!(**ty, TOKEN_CONTROL | TOKEN_USER_DEFINED))
        .map(|(id, (t, ty))| {
            json!({"id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": *ty == TOKEN_CONTROL})
        })
        .collect();
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": ignore_merges,
            "vocab": vocab, "merges": merges,
        },
    });
    serde_json::from_value(spec).map_err(|e| err(format!("building the BPE tokenizer: {e}")))
}

/// The `tokenizer.json` pre-tokenizer for a `tokenizer.ggml.pre` value, and BPE's `ignore_merges`.
fn pre_tokenizer(pre: &str) -> Option<(J, bool)> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": use_regex, "use_regex": use_regex});
    let split = |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
    let seq = |items: Vec<J>| json!({"type": "Sequence", "pretokenizers": items});
    Some(match pre {
        "default" | "gpt2" | "gpt-2" => (byte_level(true), false),
        "smollm" | "starcoder" | "refact" => {
            (seq(vec![json!({"type": "Digits", "individual_digits": true}), byte_level(true)]), false)
        }
        "qwen2" => (seq(vec![split(QWEN2_REGEX), byte_level(false)]), false),
        "llama-bpe" | "llama3" => (seq(vec![split(LLAMA3_REGEX), byte_level(false)]), true),
        _ => return None,
    })
}
