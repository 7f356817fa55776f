//! Where a plugin's bytes come from: embedded in the binary, or a third party's `.wasm` file.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::error::PluginError;

/// Where a plugin was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Embedded in the `mvb` binary.
    Builtin,
    /// Read from a file.
    File(PathBuf),
}

/// A plugin's name and component bytes.
#[derive(Debug, Clone)]
pub struct PluginSource {
    /// The name used in messages: the built-in's name or the file's stem.
    pub name: String,
    /// The component.
    pub bytes: Cow<'static, [u8]>,
    /// Where it came from.
    pub origin: Origin,
}

impl PluginSource {
    /// Reads a component file.
    pub fn from_file(path: &Path) -> Result<Self, PluginError> {
        let bytes = std::fs::read(path).map_err(|error| PluginError::Read { path: path.to_owned(), error })?;
        let name = path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned());
        Ok(PluginSource { name, bytes: Cow::Owned(bytes), origin: Origin::File(path.to_owned()) })
    }
}
