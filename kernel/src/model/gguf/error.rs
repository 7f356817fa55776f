//! Errors of the GGUF reader: each names the file and the metadata key or tensor at fault.

use std::path::PathBuf;

/// An error reading a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a GGUF file (magic bytes {magic:02x?}, expected \"GGUF\")", path.display())]
    BadMagic { path: PathBuf, magic: Vec<u8> },
    #[error("{}: unsupported GGUF version {version} (supported: 2, 3)", path.display())]
    Version { path: PathBuf, version: u32 },
    #[error("{}: truncated or corrupt: {what} at byte {offset} runs past the end of the file ({len} bytes)", path.display())]
    Truncated { path: PathBuf, what: String, offset: usize, len: usize },
    #[error("{}: metadata {key}: {msg}", path.display())]
    Metadata { path: PathBuf, key: String, msg: String },
    #[error("{}: metadata key {key} is missing", path.display())]
    MissingKey { path: PathBuf, key: String },
    #[error("{}: metadata {key}: expected {expected}, found {found}", path.display())]
    KeyType { path: PathBuf, key: String, expected: &'static str, found: &'static str },
    #[error("{}: tensor {name}: {msg}", path.display())]
    Tensor { path: PathBuf, name: String, msg: String },
    #[error("{}: tensor {name}: {source}", path.display())]
    Quant { path: PathBuf, name: String, source: crate::backend::cpu::quant::QuantError },
    #[error("{}: no tensor named {name}", path.display())]
    NoTensor { path: PathBuf, name: String },
    #[error("{}: tokenizer: {msg}", path.display())]
    Tokenizer { path: PathBuf, msg: String },
}
