//! The error of `mvb run` and `mvb report`: one line naming the file, line, unit or plugin at
//! fault.

use std::path::{Path, PathBuf};

use crate::eval::EvalError;
use crate::eval::dataset::OpenError;
use crate::eval::metrics::MetricError;
use crate::eval::zeroshot::ZeroShotError;
use crate::model::ModelError;

/// Why a run or a report failed. Every message is one line naming the file, line, unit or
/// plugin at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The configuration does not parse or is unusable.
    #[error("config {file}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Config {
        /// The config file (or `<embedded default>`).
        file: String,
        /// The 1-based line at fault, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A predictions file line is malformed.
    #[error("{}, line {line}: {message}", file.display())]
    Predictions {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file cannot be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// A dataset cannot be opened through its plugin.
    #[error("dataset `{dataset}`: {error}")]
    Dataset {
        /// The dataset's name in the configuration.
        dataset: String,
        /// Why.
        error: OpenError,
    },
    /// A metric plugin failed.
    #[error("{context}: {error}")]
    Metric {
        /// What was being scored.
        context: String,
        /// The error (boxed: it is large).
        error: Box<MetricError>,
    },
    /// A model failed to load or run.
    #[error("model `{model}`: {error}")]
    Model {
        /// The model's name.
        model: String,
        /// The model error.
        error: ModelError,
    },
    /// Zero-shot scoring or encoding failed.
    #[error("{context}: {error}")]
    ZeroShot {
        /// The unit or split.
        context: String,
        /// The error.
        error: ZeroShotError,
    },
    /// The probe or the bootstrap refused its input.
    #[error("{context}: {error}")]
    Eval {
        /// What was being done.
        context: String,
        /// The error.
        error: EvalError,
    },
    /// The judge plugin failed.
    #[error("{context}: {error}")]
    Judge {
        /// Which judge.
        context: String,
        /// The plugin's error.
        error: crate::plugin::PluginError,
    },
    /// Units that must be paired score different samples.
    #[error("{0}")]
    Mismatch(String),
    /// A request that cannot be carried out (an existing output, a dataset of the wrong task, ...).
    #[error("{0}")]
    Usage(String),
    /// A figure could not be drawn.
    #[error("cannot draw a figure: {0}")]
    Plot(String),
}

impl RunError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        RunError::Io { path: path.to_owned(), error: source }
    }
}

/// Writes `text` to `path` atomically ([`crate::util::write_atomic`]).
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), RunError> {
    crate::util::write_atomic(path, text.as_bytes()).map_err(|e| RunError::io(path, e))
}
