//! The GGUF tokenizer against the ids of the tokenizer transformers builds from the same file.

use mvb::model::gguf::{GgufFile, tokenizer::tokenizer_from_gguf};

#[test]
fn smollm2_tokenizer_matches_transformers() {
    let Some(path) = super::smollm2("smollm2_tokenizer_matches_transformers") else { return };
    let f = GgufFile::open(&path).unwrap();
    let tok = tokenizer_from_gguf(&f).unwrap();
    assert_eq!(tok.get_vocab_size(true), 49152);
    assert_eq!(tok.token_to_id("<|im_start|>"), Some(1));
    for case in super::expected()["tokenizer"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let enc = tok.encode(text, false).unwrap();
        assert_eq!(enc.get_ids(), want.as_slice(), "{text:?}");
        assert_eq!(tok.decode(&want, false).unwrap(), text, "decode {text:?}");
    }
    let enc = tok.encode("<|im_start|>user", false).unwrap();
    assert_eq!(enc.get_ids()[0], 1, "<|im_start|> is one special token");
}

#[test]
fn non_bpe_tokenizer_is_refused() {
    let f = GgufFile::open(super::fixture("synthetic.gguf")).unwrap();
    let e = tokenizer_from_gguf(&f).unwrap_err().to_string();
    assert!(e.contains("tokenizer.ggml.model"), "{e}");
}
