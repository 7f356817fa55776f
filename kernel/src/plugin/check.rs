//! Which mvb world a component implements, and `mvb plugin check`: a precise account of what
//! a third party's component offers and what it lacks.

use std::fmt;
use std::path::Path;

use wasmtime::component::Component;

use super::{DatasetPlugin, JudgeInfo, MetricInfo, PluginError, PluginHost, PluginSource};
use crate::data::DatasetInfo;

/// The WIT package version this kernel implements.
pub const PACKAGE: &str = "mvb:plugin";
/// The version of the WIT package.
pub const VERSION: &str = "0.1.0";

/// The plugin worlds of `wit/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// Datasets (`world dataset`).
    Dataset,
    /// Metrics (`world metric`).
    Metric,
    /// Judges (`world judge`).
    Judge,
}

impl World {
    /// Every world.
    pub const ALL: [World; 3] = [World::Dataset, World::Metric, World::Judge];

    /// The world's name in the WIT package.
    pub fn name(self) -> &'static str {
        match self {
            World::Dataset => "dataset",
            World::Metric => "metric",
            World::Judge => "judge",
        }
    }

    /// The interface a component of this world must export.
    pub fn interface(self) -> &'static str {
        match self {
            World::Dataset => "dataset-api",
            World::Metric => "metric-api",
            World::Judge => "judge-api",
        }
    }

    /// The fully qualified export name, such as `mvb:plugin/dataset-api@0.1.0`.
    pub fn export_name(self) -> String {
        format!("{PACKAGE}/{}@{VERSION}", self.interface())
    }

    /// Parses a world name.
    pub fn parse(name: &str) -> Option<World> {
        World::ALL.into_iter().find(|w| w.name() == name)
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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

fn exports(engine: &wasmtime::Engine, component: &Component) -> Vec<String> {
    component.component_type().exports(engine).map(|(name, _)| name.to_owned()).collect()
}

fn imports(engine: &wasmtime::Engine, component: &Component) -> Vec<String> {
    component.component_type().imports(engine).map(|(name, _)| name.to_owned()).collect()
}

/// Describes the mvb exports found, for messages.
fn describe(found: &[String]) -> String {
    if found.is_empty() {
        return "it exports nothing".into();
    }
    let mut parts = Vec::new();
    for name in found {
        let world = World::ALL.into_iter().find(|w| name == &w.export_name());
        let stale = World::ALL
            .into_iter()
            .find(|w| name.starts_with(&format!("{PACKAGE}/{}@", w.interface())) && name != &w.export_name());
        parts.push(match (world, stale) {
            (Some(w), _) => format!("`{name}` (the `{w}` world)"),
            (None, Some(w)) => {
                format!("`{name}` (the `{w}` world of another version of {PACKAGE}; this mvb speaks {VERSION})")
            }
            (None, None) => format!("`{name}`"),
        });
    }
    format!("it exports {}", parts.join(", "))
}

impl PluginHost {
    /// The world `component` implements, judged by its exports.
    pub(crate) fn detect_world(&self, source: &PluginSource, component: &Component) -> Result<World, PluginError> {
        let found = exports(&self.engine, component);
        let worlds: Vec<World> = World::ALL.into_iter().filter(|w| found.contains(&w.export_name())).collect();
        match worlds[..] {
            [world] => Ok(world),
            [] => Err(PluginError::Mismatch {
                plugin: source.name.clone(),
                world: "any",
                message: format!(
                    "expected an export of {}; {}",
                    World::ALL.map(|w| format!("`{}`", w.export_name())).join(", "),
                    describe(&found)
                ),
            }),
            _ => Err(PluginError::Mismatch {
                plugin: source.name.clone(),
                world: "any",
                message: format!("a plugin implements exactly one world; {}", describe(&found)),
            }),
        }
    }

    /// Checks that `component` exports `world`'s interface, naming what is missing.
    pub(crate) fn expect_world(
        &self,
        source: &PluginSource,
        component: &Component,
        world: World,
    ) -> Result<(), PluginError> {
        let found = exports(&self.engine, component);
        if found.contains(&world.export_name()) {
            return Ok(());
        }
        Err(PluginError::Mismatch {
            plugin: source.name.clone(),
            world: world.name(),
            message: format!("missing export `{}`; {}", world.export_name(), describe(&found)),
        })
    }

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
                self.expect_world(source, &component, w)?;
                w
            }
            None => self.detect_world(source, &component)?,
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
            imports: imports(&self.engine, &component),
            exports: exports(&self.engine, &component),
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

/// Turns a linking or type-checking failure into a message naming the import or export.
pub(crate) fn link_error(source: &PluginSource, world: World, e: &wasmtime::Error) -> PluginError {
    let detail = format!("{e:#}");
    let message = if detail.contains("matching implementation was not found") || detail.contains("import") {
        format!("it imports something the mvb sandbox does not provide: {detail}")
    } else {
        format!("its exports do not match `{}`: {detail}", world.export_name())
    };
    PluginError::Mismatch { plugin: source.name.clone(), world: world.name(), message }
}
