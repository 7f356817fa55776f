//! The GGUF tokenizer against the ids of the tokenizer transformers builds from the same file.

use mvb::model::gguf::{GgufFile, tokenizer::tokenizer_from_gguf};

#[test]
fn smollm2_tokenizer_matches_transformers() {
    let Some(path) = super::smollm2("smollm2_tokenizer_matches_transformers") else { return };
    let f = GgufFile::open(&path).expect("test input");
    let tok = tokenizer_from_gguf(&f).expect("test input");
    assert_eq!(tok.get_vocab_size(true), 49152);
    assert_eq!(tok.token_to_id("<|im_start|>"), Some(1));
    for case in super::expected()["tokenizer"].as_array().expect("test input") {
        let text = case["text"].as_str().expect("test input");
        let want: Vec<u32> = case["ids"]
            .as_array()
            .expect("test input")
            .iter()
            .map(|v| v.as_u64().expect("test input") as u32)
            .collect();
        let enc = tok.encode(text, false).expect("test input");
        assert_eq!(enc.get_ids(), want.as_slice(), "{text:?}");
        assert_eq!(tok.decode(&want, false).expect("test input"), text, "decode {text:?}");
    }
    let enc = tok.encode("<|im_start|>user", false).expect("test input");
    assert_eq!(enc.get_ids()[0], 1, "<|im_start|> is one special token");
}

#[test]
fn non_bpe_tokenizer_is_refused() {
    let f = GgufFile::open(super::fixture("synthetic.gguf")).expect("test input");
    let e = tokenizer_from_gguf(&f).unwrap_err().to_string();
    assert!(e.contains("tokenizer.ggml.model"), "{e}");
}
