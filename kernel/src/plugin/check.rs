//! `mvb plugin check`: a precise account of what a third party's component offers and what it
//! lacks.

use std::path::Path;

use super::dataset::DatasetPlugin;
use super::error::PluginError;
use super::host::PluginHost;
use super::judge::JudgeInfo;
use super::metric::MetricInfo;
use super::source::PluginSource;
use super::world::{self, World};
use crate::data::DatasetInfo;

/// Each catalog entry of a dataset plugin, with its info or why it could not be opened.
pub type CatalogReport = Vec<(String, Result<DatasetInfo, String>)>;

/// What a checked plugin said about itself.
#[derive(Debug)]
pub enum WorldInfo {
    /// A dataset plugin; with a data folder, its catalog.
    Dataset(Option<CatalogReport>),
    /// A metric plugin's info.
    Metric(MetricInfo),
    /// A judge plugin's info.
    Judge(JudgeInfo),
}

/// The result of `mvb plugin check`.
#[derive(Debug)]
pub struct CheckReport {
    /// The plugin's name.
    pub plugin: String,
    /// The world it implements.
    pub world: World,
    /// What it imports (WASI interfaces and mvb host services).
    pub imports: Vec<String>,
    /// What it exports.
    pub exports: Vec<String>,
    /// What it said about itself.
    pub info: WorldInfo,
}

impl PluginHost {
    /// Validates a component against the worlds: compiles it, finds its world (or checks the
    /// one asked for), type-checks every import and export by instantiating it in the sandbox,
    /// and asks it to describe itself.
    pub fn check(
        &self,
        source: &PluginSource,
        world: Option<World>,
        data_dir: Option<&Path>,
    ) -> Result<CheckReport, PluginError> {
        let component = self.component(source)?;
        let world = match world {
            Some(w) => {
                world::expect(&self.engine, source, &component, w)?;
                w
            }
            None => world::detect(&self.engine, source, &component)?,
        };
        let info = match world {
            World::Dataset => {
                let mut plugin = self.dataset(source, data_dir)?;
                WorldInfo::Dataset(match data_dir {
                    Some(_) => Some(describe_catalog(&mut plugin)?),
                    None => None,
                })
            }
            World::Metric => WorldInfo::Metric(self.metric(source)?.info().clone()),
            World::Judge => WorldInfo::Judge(self.judge(source, None)?.info().clone()),
        };
        Ok(CheckReport {
            plugin: source.name.clone(),
            world,
            imports: world::imports(&self.engine, &component),
            exports: world::exports(&self.engine, &component),
            info,
        })
    }
}

fn describe_catalog(plugin: &mut DatasetPlugin) -> Result<CatalogReport, PluginError> {
    let names = plugin.catalog()?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let info = match plugin.open(&name) {
            Ok(handle) => {
                let info = handle.info().clone();
                plugin.close(handle)?;
                Ok(info)
            }
            Err(e @ PluginError::Failed { .. }) => Err(e.to_string()),
            Err(e) => return Err(e),
        };
        out.push((name, info));
    }
    Ok(out)
}
