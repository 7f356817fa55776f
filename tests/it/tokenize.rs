//! Tokenizers that come without a `tokenizer.json`: a SigLIP `spiece.model` (SentencePiece
//! Unigram) must give exactly the ids of transformers' `SiglipTokenizer`
//! (`tools/make_spm_fixture.py` made the fixture and the reference), and a SigLIP checkpoint
//! that ships only `spiece.model` must load and run.

use std::path::Path;

use mvb::model::{ContrastiveModel, ModelError, TextTokenizer};
use serde_json::Value;

use crate::common::root;

fn spm_dir() -> std::path::PathBuf {
    root().join("tests/fixtures/siglip-spm")
}

fn reference() -> (Vec<String>, Vec<Vec<u32>>) {
    let text = std::fs::read_to_string(root().join("tests/fixtures/reference/siglip_spm_tokens.json")).expect("read");
    let json: Value = serde_json::from_str(&text).expect("json");
    let prompts = json["prompts"].as_array().expect("prompts").iter().map(|p| p.as_str().expect("str").to_owned());
    let ids = json["input_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|row| row.as_array().expect("row").iter().map(|v| v.as_u64().expect("id") as u32).collect())
        .collect();
    (prompts.collect(), ids)
}

#[test]
fn sentencepiece_matches_siglip_tokenizer() {
    let (prompts, want) = reference();
    let tok = TextTokenizer::open(&spm_dir(), 0, 64).expect("loads spiece.model");
    let batch = tok.encode(&prompts).expect("encodes");
    assert_eq!(batch.len, want[0].len(), "padded length");
    for (i, (prompt, want)) in prompts.iter().zip(&want).enumerate() {
        assert_eq!(&batch.ids[i * batch.len..(i + 1) * batch.len], want.as_slice(), "{prompt:?}");
    }
}

fn copy(from: &Path, to: &Path, files: &[&str]) {
    for f in files {
        std::fs::copy(from.join(f), to.join(f)).expect("copy");
    }
}

#[test]
fn siglip_with_only_spiece_model_loads_and_runs() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy(
        &root().join("tests/fixtures/tiny-siglip"),
        tmp.path(),
        &["config.json", "model.safetensors", "preprocessor_config.json"],
    );
    copy(&spm_dir(), tmp.path(), &["spiece.model", "tokenizer_config.json", "special_tokens_map.json"]);
    let model = ContrastiveModel::load_dir(tmp.path(), &mvb::backend::Device::cpu()).expect("loads");
    let prompts: Vec<String> = ["a photo of pneumonia", "a photo of normal"].map(String::from).to_vec();
    let tokens = model.tokenize(&prompts).expect("tokenizes");
    assert_eq!(*tokens.ids.last().expect("ids"), 1, "padded with </s>");
    let text = model.text_features(&prompts).expect("text features");
    assert_eq!(text.rows(), 2);
    assert!(text.data().iter().all(|v| v.is_finite()));
}

#[test]
fn a_corrupt_spiece_model_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy(&spm_dir(), tmp.path(), &["tokenizer_config.json"]);
    let bytes = std::fs::read(spm_dir().join("spiece.model")).expect("read");
    std::fs::write(tmp.path().join("spiece.model"), &bytes[..bytes.len() / 3]).expect("write");
    let err = TextTokenizer::open(tmp.path(), 0, 64).expect_err("truncated model");
    assert!(matches!(err, ModelError::Format { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("spiece.model"), "{message}");
}
