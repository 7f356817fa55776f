//! Typed access to a dataset plugin: catalog, open, batched samples.

use std::path::{Path, PathBuf};

use wasmtime::component::ResourceAny;

use super::bindings::dataset::Dataset as DatasetWorld;
use super::convert;
use super::error::PluginError;
use super::host::PluginHost;
use super::sandbox::Sandbox;
use super::source::PluginSource;
use crate::data::{DatasetInfo, Sample, Split};

/// A running dataset plugin instance.
pub struct DatasetPlugin {
    sandbox: Sandbox,
    world: DatasetWorld,
    data_dir: Option<PathBuf>,
}

impl std::fmt::Debug for DatasetPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetPlugin")
            .field("plugin", &self.sandbox.plugin())
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

/// A dataset opened inside a plugin instance.
#[derive(Debug)]
pub struct DatasetHandle {
    resource: ResourceAny,
    info: DatasetInfo,
}

impl DatasetHandle {
    /// The dataset's validated info.
    pub fn info(&self) -> &DatasetInfo {
        &self.info
    }
}

impl PluginHost {
    /// Starts a dataset plugin whose data folder (`/data` inside the sandbox) is `data_dir`.
    pub fn dataset(&self, source: &PluginSource, data_dir: Option<&Path>) -> Result<DatasetPlugin, PluginError> {
        let (sandbox, world) = self.start::<DatasetWorld>(source, data_dir, None)?;
        Ok(DatasetPlugin { sandbox, world, data_dir: data_dir.map(Path::to_owned) })
    }
}

impl DatasetPlugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.sandbox.plugin()
    }

    /// The host folder mounted at `/data`; image paths resolve inside it.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// The datasets the plugin can open from its data folder.
    pub fn catalog(&mut self) -> Result<Vec<String>, PluginError> {
        let api = self.world.mvb_plugin_dataset_api();
        self.sandbox.call("catalog", |store| api.call_catalog(store))
    }

    /// Opens one dataset and reads its info.
    pub fn open(&mut self, name: &str) -> Result<DatasetHandle, PluginError> {
        let api = self.world.mvb_plugin_dataset_api();
        let resource = self.sandbox.call("open", |store| api.call_open(store, name))?;
        let raw = self.sandbox.run("dataset.info", |store| api.dataset().call_info(store, resource))?;
        let info = convert::dataset_info(raw).map_err(|message| self.sandbox.malformed("dataset.info", message))?;
        Ok(DatasetHandle { resource, info })
    }

    /// Up to `count` samples of `split` from index `start`.
    pub fn samples(
        &mut self,
        handle: &DatasetHandle,
        split: Split,
        start: u64,
        count: u32,
    ) -> Result<Vec<Sample>, PluginError> {
        let limits = self.sandbox.limits();
        if count > limits.max_batch {
            let message = format!("a batch of {count} samples is larger than the limit of {}", limits.max_batch);
            return Err(self.sandbox.usage(message));
        }
        let api = self.world.mvb_plugin_dataset_api();
        let raw = self.sandbox.call("dataset.samples", |store| {
            api.dataset().call_samples(store, handle.resource, convert::split(split), start, count)
        })?;
        let expected = handle.info.splits.get(split).saturating_sub(start).min(u64::from(count));
        if raw.len() as u64 != expected {
            return Err(self.sandbox.malformed(
                "dataset.samples",
                format!(
                    "asked for {count} samples of {split} from {start}, the split has {}, got {}",
                    handle.info.splits.get(split),
                    raw.len()
                ),
            ));
        }
        let mut samples = Vec::with_capacity(raw.len());
        for s in raw {
            samples.push(convert::sample(s, &handle.info).map_err(|m| self.sandbox.malformed("dataset.samples", m))?);
        }
        Ok(samples)
    }

    /// Releases an opened dataset inside the plugin.
    pub fn close(&mut self, handle: DatasetHandle) -> Result<(), PluginError> {
        self.sandbox.run("dataset.drop", |store| handle.resource.resource_drop(store))
    }

    /// Opens `name` and keeps the instance with it.
    pub fn into_dataset(mut self, name: &str) -> Result<Dataset, PluginError> {
        let handle = self.open(name)?;
        Ok(Dataset { plugin: self, handle })
    }
}

/// A plugin instance with one dataset open: the usual way to read a dataset.
#[derive(Debug)]
pub struct Dataset {
    plugin: DatasetPlugin,
    handle: DatasetHandle,
}

impl Dataset {
    /// The dataset's info.
    pub fn info(&self) -> &DatasetInfo {
        &self.handle.info
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        self.plugin.name()
    }

    /// The folder image paths resolve in.
    pub fn data_dir(&self) -> Option<&Path> {
        self.plugin.data_dir()
    }

    /// Up to `count` samples of `split` from `start`.
    pub fn samples(&mut self, split: Split, start: u64, count: u32) -> Result<Vec<Sample>, PluginError> {
        self.plugin.samples(&self.handle, split, start, count)
    }
}
