//! Finding a dataset by name: among the built-in dataset plugins' catalogs (with their default
//! data), or in a third party's plugin file.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use mvb::plugin::{BUILTINS, Builtin, Dataset, PluginHost, PluginSource, World};

/// Opens dataset `name` (`PLUGIN/NAME`, or just `NAME` to search the built-ins), from `plugin`
/// when a file is given, with `data` overriding the plugin's default data folder.
pub(crate) fn open_dataset(
    host: &PluginHost,
    name: &str,
    plugin: Option<&Path>,
    data: Option<&Path>,
) -> anyhow::Result<Dataset> {
    if let Some(file) = plugin {
        let source = PluginSource::from_file(file)?;
        let Some(data) = data else {
            bail!("--data DIR is needed with --plugin: the folder the plugin reads its dataset from");
        };
        let dataset = name.rsplit('/').next().unwrap_or(name);
        return Ok(host.dataset(&source, Some(data))?.into_dataset(dataset)?);
    }
    let (builtin, dataset) = match name.split_once('/') {
        Some((plugin, dataset)) => {
            let b = Builtin::find(plugin).filter(|b| b.world == World::Dataset).with_context(|| {
                format!("no built-in dataset plugin `{plugin}` (see `mvb plugins`; use --plugin FILE.wasm for others)")
            })?;
            (b, dataset.to_owned())
        }
        None => find_in_builtins(host, name, data)?,
    };
    let dir = data_dir(builtin, data)?;
    Ok(host.dataset(&builtin.source(), Some(&dir))?.into_dataset(&dataset)?)
}

/// The data folder of a built-in: `--data` if given, else its default.
pub(crate) fn data_dir(builtin: &Builtin, data: Option<&Path>) -> anyhow::Result<PathBuf> {
    match data {
        Some(d) => Ok(d.to_owned()),
        None => builtin.default_data_dir().with_context(|| {
            format!("no data folder for plugin `{}`: pass --data DIR or set MVB_DATA_DIR", builtin.name)
        }),
    }
}

/// Finds which built-in serves `name`: a plugin of that name with a single dataset, or the
/// plugin whose catalog lists it.
fn find_in_builtins(host: &PluginHost, name: &str, data: Option<&Path>) -> anyhow::Result<(&'static Builtin, String)> {
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
        bail!("no dataset `{name}`: the built-in plugins found no datasets (pass --data DIR?)");
    }
    bail!("no dataset `{name}`; available: {}", known.join(", "))
}
