//! The plugin host: one wasmtime engine with epoch interruption, a linker per world offering
//! WASI p2 and mvb's own imports, the compiled-component cache, the epoch ticker, and the one
//! start-up path (compile, check the world, link, sandbox, instantiate) of every world.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::bindings;
use super::cache::ComponentCache;
use super::error::PluginError;
use super::generation::Generator;
use super::sandbox::{EPOCH_TICK, Limits, Sandbox};
use super::source::PluginSource;
use super::state::State;
use super::world::{self, World, WorldBindings};

/// How the host is set up.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// Bounds for every plugin instance.
    pub limits: Limits,
    /// Where compiled components are kept between runs; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
}

impl HostConfig {
    /// The default configuration, caching compiled components under the user's cache folder
    /// (`$MVB_CACHE_DIR`, else `$XDG_CACHE_HOME/mvb`, else `~/.cache/mvb`).
    pub fn with_default_cache() -> Self {
        let base = std::env::var_os("MVB_CACHE_DIR").map(PathBuf::from).or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(|d| PathBuf::from(d).join("mvb"))
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("mvb")))
        });
        HostConfig { limits: Limits::default(), cache_dir: base.map(|b| b.join("components")) }
    }
}

/// One linker per world.
struct Linkers {
    dataset: Linker<State>,
    metric: Linker<State>,
    judge: Linker<State>,
}

impl Linkers {
    fn new(engine: &Engine) -> Result<Self, PluginError> {
        Ok(Linkers {
            dataset: linker::<bindings::dataset::Dataset>(engine)?,
            metric: linker::<bindings::metric::Metric>(engine)?,
            judge: linker::<bindings::judge::Judge>(engine)?,
        })
    }

    fn get(&self, world: World) -> &Linker<State> {
        match world {
            World::Dataset => &self.dataset,
            World::Metric => &self.metric,
            World::Judge => &self.judge,
        }
    }
}

/// Loads and runs plugins. Cheap to share by reference; each loaded plugin gets its own store.
pub struct PluginHost {
    pub(crate) engine: Engine,
    linkers: Linkers,
    cache: ComponentCache,
    config: HostConfig,
    ticker: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost").field("config", &self.config).finish_non_exhaustive()
    }
}

impl PluginHost {
    /// Starts an engine with the given configuration.
    pub fn new(config: HostConfig) -> Result<Self, PluginError> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&wasm).map_err(|e| PluginError::Host(format!("cannot start wasmtime: {e}")))?;
        let linkers = Linkers::new(&engine)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("mvb-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| PluginError::Host(format!("cannot start the epoch thread: {e}")))?
        };
        let cache = ComponentCache::new(config.cache_dir.clone());
        Ok(PluginHost { engine, linkers, cache, config, ticker: Some((stop, ticker)) })
    }

    /// Starts an instance of a plugin of world `W`: compiles (or fetches) its component,
    /// checks that it exports `W`'s interface and that the sandbox offers all it imports,
    /// then instantiates it in a fresh sandbox (`data_dir` at `/data`, `generator` serving
    /// `generation`). A trap while instantiating is `PluginError::Instantiate`.
    pub(crate) fn start<W: WorldBindings>(
        &self,
        source: &PluginSource,
        data_dir: Option<&Path>,
        generator: Option<Arc<dyn Generator>>,
    ) -> Result<(Sandbox, W), PluginError> {
        let component = self.component(source)?;
        world::expect(&self.engine, source, &component, W::WORLD)?;
        let pre = self
            .linkers
            .get(W::WORLD)
            .instantiate_pre(&component)
            .and_then(W::typecheck)
            .map_err(|e| world::link_error(source, W::WORLD, &e))?;
        let mut sandbox = Sandbox::new(&self.engine, &source.name, data_dir, self.config.limits, generator)?;
        let instance = sandbox.run("instantiate", |store| W::instantiate(&pre, store)).map_err(|e| match e {
            PluginError::Trap { plugin, message, .. } => PluginError::Instantiate { plugin, message },
            other => other,
        })?;
        Ok((sandbox, instance))
    }

    /// Compiles (or fetches from the cache) a plugin's component.
    pub(crate) fn component(&self, source: &PluginSource) -> Result<Component, PluginError> {
        self.cache
            .get(&self.engine, &source.bytes)
            .map_err(|e| PluginError::Compile { plugin: source.name.clone(), message: format!("{e:#}") })
    }

    /// The limits every instance runs under.
    pub fn limits(&self) -> Limits {
        self.config.limits
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.ticker.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

/// A linker offering WASI p2 and world `W`'s mvb imports.
fn linker<W: WorldBindings>(engine: &Engine) -> Result<Linker<State>, PluginError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .and_then(|()| W::add_to_linker(&mut linker))
        .map_err(|e| PluginError::Host(format!("cannot set up the plugin linker: {e:#}")))?;
    Ok(linker)
}
