//! Errors of the plugin host. Every message names the plugin and, for calls, the function.

use std::path::PathBuf;
use std::time::Duration;

use super::bindings::types as wit;

/// The broad reason a plugin gave for a failed call (`error-kind` in `wit/types.wit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad argument.
    InvalidArgument,
    /// Something missing.
    NotFound,
    /// Unparseable data.
    CorruptData,
    /// I/O failure.
    Io,
    /// Mathematically undefined result (bootstrap skips these).
    Undefined,
    /// A host service is unavailable.
    Unavailable,
    /// Anything else.
    Other,
}

/// A failure while loading or calling a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin file cannot be read.
    #[error("cannot read plugin file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error (in the message, not a `source`, so that it is printed once).
        error: std::io::Error,
    },
    /// The bytes are not a WebAssembly component wasmtime can compile.
    #[error("plugin `{plugin}` is not a valid WebAssembly component: {message}")]
    Compile {
        /// Plugin name.
        plugin: String,
        /// What the compiler said.
        message: String,
    },
    /// The component does not implement the expected world.
    #[error("plugin `{plugin}` does not implement the mvb `{world}` world: {message}")]
    Mismatch {
        /// Plugin name.
        plugin: String,
        /// The world it was expected to implement.
        world: &'static str,
        /// What is missing or wrong.
        message: String,
    },
    /// The component could not be instantiated (an import the sandbox does not offer, a trap
    /// in its start function, ...).
    #[error("plugin `{plugin}` cannot start: {message}")]
    Instantiate {
        /// Plugin name.
        plugin: String,
        /// The reason.
        message: String,
    },
    /// The plugin returned an error value.
    #[error("plugin `{plugin}`: `{call}` failed: {message}")]
    Failed {
        /// Plugin name.
        plugin: String,
        /// The function called.
        call: String,
        /// The plugin's reason.
        kind: ErrorKind,
        /// The plugin's message.
        message: String,
    },
    /// The plugin trapped (panic, `unreachable`, out-of-bounds access, ...).
    #[error("plugin `{plugin}` crashed in `{call}`: {message}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The function called.
        call: String,
        /// The trap and, when the plugin printed one, its panic message.
        message: String,
    },
    /// The call ran past its wall-time budget and was interrupted.
    #[error("plugin `{plugin}`: `{call}` ran longer than its time budget of {budget:?} and was stopped")]
    Timeout {
        /// Plugin name.
        plugin: String,
        /// The function called.
        call: String,
        /// The budget.
        budget: Duration,
    },
    /// The plugin tried to grow its memory past the cap.
    #[error("plugin `{plugin}`: `{call}` tried to use more than its memory cap of {cap_mib} MiB and was stopped")]
    MemoryCap {
        /// Plugin name.
        plugin: String,
        /// The function called.
        call: String,
        /// The cap, in MiB.
        cap_mib: u64,
    },
    /// The plugin returned a value that breaks the contract.
    #[error("plugin `{plugin}`: `{call}` returned a malformed result: {message}")]
    Malformed {
        /// Plugin name.
        plugin: String,
        /// The function called.
        call: String,
        /// What is wrong.
        message: String,
    },
    /// A sample's image cannot be used: a missing file, a FIFO or folder, a header declaring
    /// more pixels than the decode limit, an undecodable header.
    #[error("plugin `{plugin}`: sample `{id}`: {error}")]
    Image {
        /// Plugin name.
        plugin: String,
        /// The sample.
        id: String,
        /// What is wrong (in the message, not a `source`, so that it is printed once).
        error: Box<crate::data::DataError>,
    },
    /// An earlier call failed in a way that leaves the instance unusable.
    #[error("plugin `{plugin}` was stopped after `{call}` failed; load it again to retry")]
    Poisoned {
        /// Plugin name.
        plugin: String,
        /// The call that failed.
        call: String,
    },
    /// The caller asked for something the host refuses (a missing data folder, a batch too large).
    #[error("plugin `{plugin}`: {message}")]
    Usage {
        /// Plugin name.
        plugin: String,
        /// What is wrong.
        message: String,
    },
    /// The host itself failed (engine set-up).
    #[error("plugin host: {0}")]
    Host(String),
}

impl PluginError {
    /// The plugin's own error kind, when the plugin returned an error value.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            PluginError::Failed { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// Error kinds as the host sees them.
impl From<wit::ErrorKind> for ErrorKind {
    fn from(kind: wit::ErrorKind) -> Self {
        match kind {
            wit::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
            wit::ErrorKind::NotFound => ErrorKind::NotFound,
            wit::ErrorKind::CorruptData => ErrorKind::CorruptData,
            wit::ErrorKind::Io => ErrorKind::Io,
            wit::ErrorKind::Undefined => ErrorKind::Undefined,
            wit::ErrorKind::Unavailable => ErrorKind::Unavailable,
            wit::ErrorKind::Other => ErrorKind::Other,
        }
    }
}
