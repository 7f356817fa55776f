//! Typed access to a dataset plugin: catalog, open, batched samples, with every answer
//! checked against the contract (`wit/dataset.wit`) and each batch kept under the data cap and
//! the decode budget (`batch`).

use std::path::{Path, PathBuf};

use wasmtime::component::ResourceAny;

use super::batch::{self, Cost, SeenIds, Sizing};
use super::bindings::dataset::Dataset as DatasetWorld;
use super::convert;
use super::error::PluginError;
use super::host::PluginHost;
use super::sandbox::Sandbox;
use super::source::PluginSource;
use crate::data::{DatasetInfo, Sample, Split, declared_bytes};

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
    ids: SeenIds,
    sizing: Sizing,
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
        let names = self.sandbox.call("catalog", |store| api.call_catalog(store))?;
        convert::catalog(&names).map_err(|m| self.sandbox.malformed("catalog", m))?;
        Ok(names)
    }

    /// Opens one dataset and reads its info, which must name it `name`.
    pub fn open(&mut self, name: &str) -> Result<DatasetHandle, PluginError> {
        let api = self.world.mvb_plugin_dataset_api();
        let resource = self.sandbox.call("open", |store| api.call_open(store, name))?;
        let raw = self.sandbox.run("dataset.info", |store| api.dataset().call_info(store, resource))?;
        let info =
            convert::dataset_info(raw, name).map_err(|message| self.sandbox.malformed("dataset.info", message))?;
        Ok(DatasetHandle { resource, info, ids: SeenIds::default(), sizing: Sizing::default() })
    }

    /// Up to `count` samples of `split` from index `start`, read in one or more calls into the
    /// plugin. Fewer than `count` come back at the end of the split, or when more would take
    /// the batch past [`batch::MAX_BATCH_BYTES`] carried or `data::MAX_BATCH_DECODED_BYTES`
    /// of declared pixels; at least one unless the split has ended.
    pub fn samples(
        &mut self,
        handle: &mut DatasetHandle,
        split: Split,
        start: u64,
        count: u32,
    ) -> Result<Vec<Sample>, PluginError> {
        let limits = self.sandbox.limits();
        if count > limits.max_batch {
            let message = format!("a batch of {count} samples is larger than the limit of {}", limits.max_batch);
            return Err(self.sandbox.usage(message));
        }
        let mut out: Vec<Sample> = Vec::new();
        let mut held = Cost::default();
        loop {
            let ask = handle.sizing.ask(count - out.len() as u32, held);
            if ask == 0 {
                return Ok(out);
            }
            let got = self.call_samples(handle, (split, start + out.len() as u64), ask)?;
            let ended = (got.len() as u32) < ask;
            for sample in got {
                let cost = self.cost(&sample)?;
                handle.sizing.observe(cost);
                if !out.is_empty() && !held.fits(cost) {
                    return Ok(out);
                }
                held.add(cost);
                out.push(sample);
            }
            if ended {
                return Ok(out);
            }
        }
    }

    /// One `samples` call into the plugin, its answer validated: the right number of samples,
    /// each well formed, and no id already given to another sample.
    fn call_samples(
        &mut self,
        handle: &mut DatasetHandle,
        (split, start): (Split, u64),
        count: u32,
    ) -> Result<Vec<Sample>, PluginError> {
        const CALL: &str = "dataset.samples";
        let api = self.world.mvb_plugin_dataset_api();
        let raw = self.sandbox.call(CALL, |store| {
            api.dataset().call_samples(store, handle.resource, convert::split(split), start, count)
        })?;
        let size = handle.info.splits.get(split);
        let expected = size.saturating_sub(start).min(u64::from(count));
        if raw.len() as u64 != expected {
            let message =
                format!("asked for {count} samples of {split} from {start}, the split has {size}, got {}", raw.len());
            return Err(self.sandbox.malformed(CALL, message));
        }
        let mut samples = Vec::with_capacity(raw.len());
        for (index, s) in (start..).zip(raw) {
            let sample = convert::sample(s, &handle.info).map_err(|m| self.sandbox.malformed(CALL, m))?;
            handle.ids.check(&sample.id, split, index).map_err(|m| self.sandbox.malformed(CALL, m))?;
            samples.push(sample);
        }
        Ok(samples)
    }

    /// What `sample` costs a batch; its image's header is read (without decoding) to learn its
    /// decoded size, and a sample that alone exceeds the data cap is refused.
    fn cost(&self, sample: &Sample) -> Result<Cost, PluginError> {
        let carried = batch::carried(sample);
        if carried > batch::MAX_BATCH_BYTES {
            let message = format!(
                "sample `{}` carries {carried} bytes, more than the per-batch cap of {}",
                sample.id,
                batch::MAX_BATCH_BYTES
            );
            return Err(self.sandbox.usage(message));
        }
        let decoded = match &sample.image {
            None => 0,
            Some(image) => {
                let root = self.data_dir.as_deref().unwrap_or(Path::new(""));
                declared_bytes(image, root).map_err(|error| PluginError::Image {
                    plugin: self.name().to_owned(),
                    id: sample.id.clone(),
                    error: Box::new(error),
                })?
            }
        };
        Ok(Cost { carried, decoded })
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
    ///
    /// See [`DatasetPlugin::samples`].
    pub fn samples(&mut self, split: Split, start: u64, count: u32) -> Result<Vec<Sample>, PluginError> {
        self.plugin.samples(&mut self.handle, split, start, count)
    }

    /// The samples of `split` (its first `limit` when given) in order, read `batch` at a time;
    /// the plugin may return fewer per call. Ends early when the plugin has no more.
    pub fn batches(&mut self, split: Split, limit: Option<u64>, batch: u32) -> Batches<'_> {
        let total = self.info().splits.get(split).min(limit.unwrap_or(u64::MAX));
        Batches { dataset: self, split, start: 0, total, batch: batch.max(1) }
    }
}

/// The batches of one split of a [`Dataset`] (see [`Dataset::batches`]).
#[derive(Debug)]
pub struct Batches<'a> {
    dataset: &'a mut Dataset,
    split: Split,
    start: u64,
    total: u64,
    batch: u32,
}

impl Batches<'_> {
    /// The samples the split will give at most.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The samples read so far.
    pub fn done(&self) -> u64 {
        self.start
    }
}

impl Iterator for Batches<'_> {
    type Item = Result<Vec<Sample>, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.start >= self.total {
            return None;
        }
        let count = u64::from(self.batch).min(self.total - self.start) as u32;
        match self.dataset.samples(self.split, self.start, count) {
            Ok(s) if s.is_empty() => {
                self.start = self.total;
                None
            }
            Ok(s) => {
                self.start += s.len() as u64;
                Some(Ok(s))
            }
            Err(e) => {
                self.start = self.total;
                Some(Err(e))
            }
        }
    }
}
