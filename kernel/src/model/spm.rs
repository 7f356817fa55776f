//! SentencePiece tokenizers (`spiece.model`, which google/siglip-* checkpoints ship instead of
//! a `tokenizer.json`), read from the model's protobuf
//! (<https://github.com/google/sentencepiece/blob/master/src/sentencepiece_model.proto>) into
//! the `tokenizers` crate, with the text canonicalisation of transformers' `SiglipTokenizer`
//! (lower-casing, ASCII punctuation removed, whitespace collapsed, big_vision's
//! `prompt_engineering.canonicalize_text`).

use std::path::Path;

use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::{Precompiled, Replace, Sequence};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{NormalizerWrapper, Tokenizer};

use super::ModelError;

/// SentencePiece's word-boundary symbol.
const BOUNDARY: char = '\u{2581}';

/// One vocabulary entry.
struct Piece {
    text: String,
    score: f32,
}

/// What mvb needs from a `ModelProto`.
#[derive(Default)]
struct SpModel {
    pieces: Vec<Piece>,
    /// `TrainerSpec.model_type`: 1 Unigram, 2 BPE, 3 word, 4 char.
    model_type: u64,
    unk_id: u64,
    byte_fallback: bool,
    charsmap: Vec<u8>,
}

/// A protobuf wire-format reader over one message.
struct Wire<'a> {
    buf: &'a [u8],
    at: usize,
}

/// A field's value: a varint, a fixed 32-bit word, or a length-delimited slice.
enum Value<'a> {
    Varint(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

impl<'a> Wire<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Wire { buf, at: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.at).ok_or("truncated varint")?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or("truncated field")?;
        let slice = &self.buf[self.at..end];
        self.at = end;
        Ok(slice)
    }

    /// The next `(field number, value)`, or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.at == self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Varint(0)
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length overflows")?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        Ok(Some((key >> 3, value)))
    }
}

impl SpModel {
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut model = SpModel::default();
        let mut wire = Wire::new(bytes);
        while let Some((field, value)) = wire.next_field()? {
            match (field, value) {
                (1, Value::Bytes(b)) => model.pieces.push(Self::piece(b)?),
                (2, Value::Bytes(b)) => {
                    let mut spec = Wire::new(b);
                    while let Some((f, v)) = spec.next_field()? {
                        match (f, v) {
                            (3, Value::Varint(t)) => model.model_type = t,
                            (35, Value::Varint(b)) => model.byte_fallback = b != 0,
                            (40, Value::Varint(id)) => model.unk_id = id,
                            _ => {}
                        }
                    }
                }
                (3, Value::Bytes(b)) => {
                    let mut spec = Wire::new(b);
                    while let Some((f, v)) = spec.next_field()? {
                        if let (2, Value::Bytes(map)) = (f, v) {
                            model.charsmap = map.to_vec();
                        }
                    }
                }
                _ => {}
            }
        }
        if model.model_type == 0 {
            model.model_type = 1; // the proto's default: Unigram
        }
        Ok(model)
    }

    fn piece(bytes: &[u8]) -> Result<Piece, String> {
        let mut piece = Piece { text: String::new(), score: 0.0 };
        let mut wire = Wire::new(bytes);
        while let Some((field, value)) = wire.next_field()? {
            match (field, value) {
                (1, Value::Bytes(b)) => {
                    piece.text = String::from_utf8(b.to_vec()).map_err(|_| "a piece is not valid UTF-8")?
                }
                (2, Value::Fixed32(bits)) => piece.score = f32::from_bits(bits),
                _ => {}
            }
        }
        Ok(piece)
    }
}

/// Reads `spiece.model` into a tokenizer that appends `</s>`, as `SiglipTokenizer` does.
pub(crate) fn load(path: &Path) -> Result<Tokenizer, ModelError> {
    let format = |message: String| ModelError::Format { path: path.to_owned(), message };
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io { path: path.to_owned(), source })?;
    let model = SpModel::parse(&bytes).map_err(|e| format(format!("not a SentencePiece model: {e}")))?;
    if model.model_type != 1 {
        return Err(format(format!(
            "SentencePiece model type {} is not supported (only Unigram, type 1)",
            model.model_type
        )));
    }
    let eos = model
        .pieces
        .iter()
        .position(|p| p.text == "</s>")
        .ok_or_else(|| format("the vocabulary has no `</s>` piece".into()))?;
    let vocab: Vec<(String, f64)> = model.pieces.iter().map(|p| (p.text.clone(), f64::from(p.score))).collect();
    let unk = usize::try_from(model.unk_id).ok().filter(|&u| u < vocab.len());
    let unigram =
        Unigram::from(vocab, unk, model.byte_fallback).map_err(|e| format(format!("invalid vocabulary: {e}")))?;
    let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
    if !model.charsmap.is_empty() {
        let precompiled = Precompiled::from(&model.charsmap)
            .map_err(|e| format(format!("invalid precompiled normalisation map: {e}")))?;
        normalizers.push(precompiled.into());
    }
    // SentencePiece's `remove_extra_whitespaces`, for spaces the normalisation map introduces.
    let spaces = Replace::new(tokenizers::normalizers::replace::ReplacePattern::Regex(" {2,}".into()), " ")
        .map_err(|e| format(format!("normaliser: {e}")))?;
    normalizers.push(spaces.into());
    let post = TemplateProcessing::builder()
        .try_single("$A </s>")
        .map_err(|e| format(format!("post-processor: {e}")))?
        .special_tokens(vec![("</s>".to_string(), eos as u32)])
        .build()
        .map_err(|e| format(format!("post-processor: {e}")))?;
    let mut tokenizer = Tokenizer::new(unigram);
    tokenizer
        .with_normalizer(Some(Sequence::new(normalizers)))
        .with_pre_tokenizer(Some(Metaspace::new(BOUNDARY, PrependScheme::Never, true)))
        .with_post_processor(Some(post));
    Ok(tokenizer)
}

/// `SiglipTokenizer`'s text preparation: lower-case (when `lower`), a leading word boundary,
/// ASCII punctuation removed, runs of whitespace collapsed to one space, trailing space
/// removed. Returns `None` when nothing but the boundary is left (the text has no tokens).
pub(crate) fn canonicalize(text: &str, lower: bool) -> Option<String> {
    let text = if lower { text.to_lowercase() } else { text.to_owned() };
    let mut out = String::with_capacity(text.len() + 3);
    out.push(BOUNDARY);
    let mut space = false;
    for c in text.chars().map(|c| if c == BOUNDARY { ' ' } else { c }).filter(|c| !c.is_ascii_punctuation()) {
        if c.is_whitespace() {
            space = true;
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    (out.chars().count() > 1).then_some(out)
}
