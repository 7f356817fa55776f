//! Errors of model loading and inference; each names the file or tensor at fault.

use std::path::PathBuf;

/// A failure to load or run a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model is neither a folder nor in the local Hugging Face cache.
    #[error("model `{spec}` not found: {reason}")]
    NotFound {
        /// What the user asked for.
        spec: String,
        /// Where mvb looked.
        reason: String,
    },
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is malformed (JSON, safetensors header, ...).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("{file}: tensor `{name}` is missing")]
    MissingTensor {
        /// The tensor.
        name: String,
        /// The checkpoint (file or index).
        file: PathBuf,
    },
    /// A tensor has the wrong shape for the configuration.
    #[error("{file}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        /// The tensor.
        name: String,
        /// The checkpoint file.
        file: PathBuf,
        /// Its shape.
        found: Vec<usize>,
        /// The shape the configuration implies.
        expected: Vec<usize>,
    },
    /// A tensor is not a floating-point tensor mvb can read.
    #[error("{file}: tensor `{name}` has dtype {dtype}; expected F32, F16 or BF16")]
    Dtype {
        /// The tensor.
        name: String,
        /// The checkpoint file.
        file: PathBuf,
        /// Its dtype.
        dtype: String,
    },
    /// The configuration names something mvb does not implement.
    #[error("{path}: {message}")]
    Unsupported {
        /// The config file.
        path: PathBuf,
        /// What is unsupported.
        message: String,
    },
    /// FT-LoRA meets a model family it does not train.
    #[error(
        "{}: FT-LoRA (the `lora` strategy) is not implemented for the {family} family; use `zs` or `lp`",
        model.display()
    )]
    NotTrainable {
        /// The model's folder.
        model: PathBuf,
        /// Its family.
        family: &'static str,
    },
    /// The input cannot be processed (an image too small, text too long, ...).
    #[error("{0}")]
    Input(String),
    /// A GGUF file is malformed or holds what mvb cannot read.
    #[error(transparent)]
    Gguf(#[from] super::gguf::GgufError),
    /// The compute layer refused an operation or the GPU failed.
    #[error(transparent)]
    Compute(#[from] crate::backend::ComputeError),
}
