//! The three plugin worlds of `wit/` (`dataset`, `metric`, `judge`): their names and exports,
//! which world a component implements, and the glue from each world's generated bindings to
//! the one start-up path in `host`.

use std::fmt;

use wasmtime::Store;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};

use super::bindings;
use super::error::PluginError;
use super::source::PluginSource;
use super::state::State;

/// The WIT package this kernel implements.
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

/// The names `component` exports.
pub(crate) fn exports(engine: &wasmtime::Engine, component: &Component) -> Vec<String> {
    component.component_type().exports(engine).map(|(name, _)| name.to_owned()).collect()
}

/// The names `component` imports.
pub(crate) fn imports(engine: &wasmtime::Engine, component: &Component) -> Vec<String> {
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

/// The world `component` implements, judged by its exports.
pub(crate) fn detect(
    engine: &wasmtime::Engine,
    source: &PluginSource,
    component: &Component,
) -> Result<World, PluginError> {
    let found = exports(engine, component);
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
pub(crate) fn expect(
    engine: &wasmtime::Engine,
    source: &PluginSource,
    component: &Component,
    world: World,
) -> Result<(), PluginError> {
    let found = exports(engine, component);
    if found.contains(&world.export_name()) {
        return Ok(());
    }
    Err(PluginError::Mismatch {
        plugin: source.name.clone(),
        world: world.name(),
        message: format!("missing export `{}`; {}", world.export_name(), describe(&found)),
    })
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

/// A world's generated bindings, as the start-up path in `host` uses them: what to add to the
/// linker, how to type-check a component's exports, and how to instantiate it.
pub(crate) trait WorldBindings: Sized {
    /// The world.
    const WORLD: World;
    /// The type-checked, not yet instantiated component.
    type Pre;
    /// Adds the world's imports (mvb's own; WASI is added by the host) to `linker`.
    fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()>;
    /// Checks the component's exports against the world.
    fn typecheck(pre: InstancePre<State>) -> wasmtime::Result<Self::Pre>;
    /// Instantiates the checked component in `store`.
    fn instantiate(pre: &Self::Pre, store: &mut Store<State>) -> wasmtime::Result<Self>;
}

/// Implements [`WorldBindings`] for one `bindgen!` world.
macro_rules! world_bindings {
    ($bindings:ty, $pre:ty, $world:expr) => {
        impl WorldBindings for $bindings {
            const WORLD: World = $world;
            type Pre = $pre;

            fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
                <$bindings>::add_to_linker::<State, HasSelf<State>>(linker, |s| s)
            }

            fn typecheck(pre: InstancePre<State>) -> wasmtime::Result<Self::Pre> {
                <$pre>::new(pre)
            }

            fn instantiate(pre: &Self::Pre, store: &mut Store<State>) -> wasmtime::Result<Self> {
                pre.instantiate(store)
            }
        }
    };
}

world_bindings!(bindings::dataset::Dataset, bindings::dataset::DatasetPre<State>, World::Dataset);
world_bindings!(bindings::metric::Metric, bindings::metric::MetricPre<State>, World::Metric);
world_bindings!(bindings::judge::Judge, bindings::judge::JudgePre<State>, World::Judge);
