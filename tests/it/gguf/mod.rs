//! GGUF files and quantised kernels: the reader, the kernels, the tokenizer; shared helpers
//! (fixtures, the real-model path, a small deterministic RNG).

mod quant;
mod reader;
mod tokenizer;

use std::path::PathBuf;

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf").join(name)
}

pub(crate) fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("expected.json")).expect("tests/fixtures/expected.json");
    serde_json::from_str(&text).expect("valid JSON")
}

/// The real SmolLM2 file from `MVB_SMOLLM2`, or None after printing a SKIP line.
pub(crate) fn smollm2(test: &str) -> Option<PathBuf> {
    match std::env::var_os("MVB_SMOLLM2").map(PathBuf::from) {
        Some(p) if p.is_file() => Some(p),
        _ => {
            assert!(
                std::env::var_os("MVB_REQUIRE_SMOLLM2").is_none(),
                "{test}: MVB_REQUIRE_SMOLLM2 is set but MVB_SMOLLM2 names no file"
            );
            eprintln!("SKIP {test}: set MVB_SMOLLM2 to SmolLM2-135M-Instruct.Q4_1.gguf (tools/fetch_smollm2.sh)");
            None
        }
    }
}

/// xorshift64* generator.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Roughly normal (sum of uniforms).
    pub(crate) fn normal(&mut self) -> f32 {
        (0..4).map(|_| self.unit()).sum::<f32>() - 2.0
    }
    pub(crate) fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}
