//! Opening a dataset by name through its plugin (a built-in with its vendored data, or a third
//! party's `.wasm` file with a data folder): the one place `mvb run`, `mvb zeroshot`, `mvb embed`
//! and `mvb dataset show` find their datasets.

use std::path::{Path, PathBuf};

use crate::plugin::{BUILTINS, Builtin, Dataset, PluginError, PluginHost, PluginSource, World};

/// Which plugin serves a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginRef<'a> {
    /// A built-in dataset plugin, by name.
    Builtin(&'a str),
    /// A third party's plugin file; it needs a data folder.
    File(&'a Path),
    /// Whichever built-in lists the dataset in its catalog, or is named like it and serves a
    /// single dataset.
    Search,
}

/// Why a dataset cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The plugin failed to load, or refused the dataset.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// No built-in dataset plugin has that name.
    #[error("no built-in dataset plugin `{0}` (see `mvb plugins`; a third party's is given as a .wasm file)")]
    NoBuiltin(String),
    /// A built-in without vendored data, and no folder given.
    #[error("no data folder for plugin `{0}`: give one (--data DIR, or `data` in a run config) or set MVB_DATA_DIR")]
    NoDataFolder(String),
    /// A plugin file without a data folder.
    #[error("a dataset plugin file needs a data folder (--data DIR, or `data` in a run config)")]
    FileNeedsData,
    /// No built-in serves the name.
    #[error("no dataset `{name}`; available: {}", known.join(", "))]
    NotFound {
        /// The name asked for.
        name: String,
        /// What the built-ins serve, as `PLUGIN/NAME`.
        known: Vec<String>,
    },
    /// No built-in serves any dataset (no data found).
    #[error("no dataset `{0}`: the built-in plugins found no datasets (is the data folder right?)")]
    NoneFound(String),
}

/// Opens dataset `name` (a name in the plugin's catalog) from `plugin`, `data` overriding a
/// built-in's default data folder.
pub fn open_dataset(
    host: &PluginHost,
    name: &str,
    plugin: PluginRef<'_>,
    data: Option<&Path>,
) -> Result<Dataset, OpenError> {
    let (builtin, name) = match plugin {
        PluginRef::File(file) => {
            let data = data.ok_or(OpenError::FileNeedsData)?;
            let source = PluginSource::from_file(file)?;
            return Ok(host.dataset(&source, Some(data))?.into_dataset(name)?);
        }
        PluginRef::Builtin(plugin) => (builtin_dataset_plugin(plugin)?, name.to_owned()),
        PluginRef::Search => find_in_builtins(host, name, data)?,
    };
    let dir = data_dir(builtin, data)?;
    Ok(host.dataset(&builtin.source(), Some(&dir))?.into_dataset(&name)?)
}

/// The built-in dataset plugin called `name`.
pub fn builtin_dataset_plugin(name: &str) -> Result<&'static Builtin, OpenError> {
    Builtin::find(name).filter(|b| b.world == World::Dataset).ok_or_else(|| OpenError::NoBuiltin(name.to_owned()))
}

/// The data folder of a built-in: `data` if given, else its default.
pub fn data_dir(builtin: &Builtin, data: Option<&Path>) -> Result<PathBuf, OpenError> {
    match data {
        Some(d) => Ok(d.to_owned()),
        None => builtin.default_data_dir().ok_or_else(|| OpenError::NoDataFolder(builtin.name.to_owned())),
    }
}

/// Finds which built-in serves `name`: one whose catalog lists it, or a plugin of that name
/// with a single dataset.
fn find_in_builtins(
    host: &PluginHost,
    name: &str,
    data: Option<&Path>,
) -> Result<(&'static Builtin, String), OpenError> {
    let mut known = Vec::new();
    for builtin in BUILTINS.iter().filter(|b| b.world == World::Dataset) {
        let Ok(dir) = data_dir(builtin, data) else {
            continue;
        };
        let catalog = host.dataset(&builtin.source(), Some(&dir))?.catalog()?;
        if catalog.iter().any(|n| n == name) {
            return Ok((builtin, name.to_owned()));
        }
        if builtin.name == name && catalog.len() == 1 {
            return Ok((builtin, catalog[0].clone()));
        }
        known.extend(catalog.into_iter().map(|n| format!("{}/{n}", builtin.name)));
    }
    if known.is_empty() {
        return Err(OpenError::NoneFound(name.to_owned()));
    }
    Err(OpenError::NotFound { name: name.to_owned(), known })
}
