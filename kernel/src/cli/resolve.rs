//! The command line's dataset arguments (`NAME`, `PLUGIN/NAME`, `--plugin FILE`, `--data DIR`)
//! turned into the library's [`open_dataset`](mvb::eval::dataset::open_dataset) request.

use std::path::Path;

use mvb::eval::dataset::{self, PluginRef};
use mvb::plugin::{Dataset, PluginHost};

/// Opens dataset `name` (`PLUGIN/NAME`, or just `NAME` to search the built-ins), from `plugin`
/// when a file is given, with `data` overriding the plugin's default data folder.
pub(crate) fn open_dataset(
    host: &PluginHost,
    name: &str,
    plugin: Option<&Path>,
    data: Option<&Path>,
) -> anyhow::Result<Dataset> {
    let (plugin, name) = match (plugin, name.split_once('/')) {
        (Some(file), _) => (PluginRef::File(file), name.rsplit('/').next().unwrap_or(name)),
        (None, Some((builtin, name))) => (PluginRef::Builtin(builtin), name),
        (None, None) => (PluginRef::Search, name),
    };
    Ok(dataset::open_dataset(host, name, plugin, data)?)
}
