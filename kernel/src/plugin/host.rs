//! The plugin host: one wasmtime engine with epoch interruption, a linker per world offering
//! WASI p2 and mvb's own imports, the compiled-component cache, and the epoch ticker.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::bindings::{self, host::LogLevel};
use super::cache::ComponentCache;
use super::sandbox::State;
use super::{Limits, PluginError, PluginSource};

/// The epoch period: call budgets are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

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
pub(crate) struct Linkers {
    pub(crate) dataset: Linker<State>,
    pub(crate) metric: Linker<State>,
    pub(crate) judge: Linker<State>,
}

/// Loads and runs plugins. Cheap to share by reference; each loaded plugin gets its own store.
pub struct PluginHost {
    pub(crate) engine: Engine,
    pub(crate) linkers: Linkers,
    cache: ComponentCache,
    pub(crate) config: HostConfig,
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
        let linkers = Linkers {
            dataset: linker(&engine, |l| bindings::dataset::Dataset::add_to_linker::<State, HasSelf<State>>(l, |s| s))?,
            metric: linker(&engine, |l| bindings::metric::Metric::add_to_linker::<State, HasSelf<State>>(l, |s| s))?,
            judge: linker(&engine, |l| bindings::judge::Judge::add_to_linker::<State, HasSelf<State>>(l, |s| s))?,
        };
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

fn linker(
    engine: &Engine,
    add_world: impl FnOnce(&mut Linker<State>) -> wasmtime::Result<()>,
) -> Result<Linker<State>, PluginError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .and_then(|()| add_world(&mut linker))
        .map_err(|e| PluginError::Host(format!("cannot set up the plugin linker: {e:#}")))?;
    Ok(linker)
}

/// The `host` import: plugin log lines go to stderr, tagged with the plugin's name.
impl bindings::host::Host for State {
    fn log(&mut self, level: LogLevel, message: String) {
        let level = match level {
            LogLevel::Trace | LogLevel::Debug => {
                if std::env::var_os("MVB_PLUGIN_DEBUG").is_none() {
                    return;
                }
                "debug"
            }
            LogLevel::Info => "info",
            LogLevel::Warn => "warning",
            LogLevel::Error => "error",
        };
        let mut message: String = message.chars().filter(|c| !c.is_control()).take(4096).collect();
        message.truncate(4096);
        eprintln!("[{}] {level}: {message}", self.plugin);
    }
}

impl bindings::types::Host for State {}
