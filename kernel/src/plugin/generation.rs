//! The kernel side of the judge world's `generation` import: the options a judge passes and the
//! language-model trait the host calls to answer it (`wit/host.wit`, interface `generation`).

/// How a judge asked for text to be generated.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Optional system message.
    pub system: Option<String>,
    /// Token budget.
    pub max_tokens: u32,
    /// 0 for greedy decoding.
    pub temperature: f32,
    /// Stop strings.
    pub stop: Vec<String>,
}

/// A language model the host offers to judges.
pub trait Generator: Send + Sync {
    /// Generates a continuation of `prompt`, or says why not (one line).
    fn generate(&self, prompt: &str, options: &GenerateOptions) -> Result<String, String>;
}
