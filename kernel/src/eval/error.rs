//! Typed errors of the evaluation layer (bootstrap, linear probe, metrics).

/// Why an evaluation step refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// Two inputs that must pair up element by element have different lengths.
    #[error("{what}: {left} vs {right} values")]
    LengthMismatch {
        /// Which inputs.
        what: &'static str,
        /// The first one's length.
        left: usize,
        /// The second one's length.
        right: usize,
    },
    /// More samples than the 32-bit index sets can address.
    #[error("{0} samples: at most 4294967295 are supported")]
    TooManySamples(usize),
    /// A score or feature that is NaN or infinite (scikit-learn refuses these too).
    #[error("{what} {index} is not finite ({value})")]
    NotFinite {
        /// What kind of value.
        what: &'static str,
        /// Its position (flat index).
        index: usize,
        /// The value.
        value: f64,
    },
    /// A tensor of the wrong shape.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// Which tensor.
        what: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape given.
        got: Vec<usize>,
    },
    /// A class label outside `0..classes`.
    #[error("label {label} at index {index} is not below the class count {classes}")]
    Label {
        /// The label.
        label: u32,
        /// Its sample.
        index: usize,
        /// The class count.
        classes: usize,
    },
    /// Nothing to train or evaluate on.
    #[error("{0}: no samples")]
    Empty(&'static str),
    /// An unusable setting.
    #[error("invalid configuration: {0}")]
    Config(String),
}
