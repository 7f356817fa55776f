//! The kernel side of the judge world's `generation` import: the options a judge passes and the
//! language-model trait the host calls to answer it (`wit/host.wit`, interface `generation`).

pub use crate::model::constrain::Constraint;

/// The most tokens one `generate` call may produce, whatever the judge asks.
pub const MAX_TOKENS: u32 = 1024;

/// How a judge asked for text to be generated.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Optional system message.
    pub system: Option<String>,
    /// Token budget (at most [`MAX_TOKENS`]).
    pub max_tokens: u32,
    /// 0 for greedy decoding.
    pub temperature: f32,
    /// Seed of the sampler (when `temperature` is above 0).
    pub seed: u64,
    /// Stop strings.
    pub stop: Vec<String>,
    /// The shape the reply must take.
    pub constraint: Option<Constraint>,
}

/// Why a generation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerationError {
    /// The request cannot be served as asked (a prompt too long for the model, say): the
    /// plugin sees `invalid-argument`.
    #[error("{0}")]
    Invalid(String),
    /// The model failed: the plugin sees `other`.
    #[error("{0}")]
    Failed(String),
}

/// A language model the host offers to judges.
pub trait Generator: Send + Sync {
    /// Replies to `prompt` (the user's turn), or says why not (one line).
    fn generate(&self, prompt: &str, options: &GenerateOptions) -> Result<String, GenerationError>;
}
