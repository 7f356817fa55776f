//! The sandbox around one plugin instance: a WASI context with nothing but a read-only
//! `/data` preopen, a memory cap enforced by a `ResourceLimiter`, a wall-time budget per call
//! enforced by epoch interruption, and the translation of every failure into a `PluginError`.

use std::path::Path;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::PluginError;
use super::error::ErrorKind;
use super::host::EPOCH_TICK;
use super::judge::Generator;

/// The guest path at which a plugin sees its data folder.
pub const DATA_MOUNT: &str = "/data";

/// How much of the plugin's stderr is kept (for panic messages).
const STDERR_CAPACITY: usize = 64 * 1024;

/// Resource bounds for each plugin instance.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most linear memory an instance may hold, in bytes (all its memories together).
    pub memory_bytes: u64,
    /// The longest a single call (or instantiation) may run.
    pub call_budget: Duration,
    /// The most samples a single `samples` call may ask for.
    pub max_batch: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_bytes: 1 << 30, call_budget: Duration::from_secs(60), max_batch: 4096 }
    }
}

/// Counts linear-memory growth against the cap and remembers a refusal, so that the trap that
/// follows (a Rust guest aborts when allocation fails) is reported as what it is.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    cap: u64,
    used: u64,
    pub(crate) refused: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        if self.used + growth > self.cap {
            self.refused = true;
            return Ok(false);
        }
        self.used += growth;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }

    fn instances(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        64
    }
}

/// The store data of one plugin instance.
pub(crate) struct State {
    pub(crate) plugin: String,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    stderr: MemoryOutputPipe,
    pub(crate) generator: Option<std::sync::Arc<dyn Generator>>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// One live plugin instance and its store, with the call discipline: a fresh time budget per
/// call, failures classified, and the instance retired after a trap.
pub(crate) struct Sandbox {
    pub(crate) store: Store<State>,
    limits: Limits,
    poisoned: Option<String>,
}

impl Sandbox {
    /// Builds the store for `plugin`, preopening `data_dir` read-only at `/data`.
    pub(crate) fn new(
        engine: &wasmtime::Engine,
        plugin: &str,
        data_dir: Option<&Path>,
        limits: Limits,
        generator: Option<std::sync::Arc<dyn Generator>>,
    ) -> Result<Self, PluginError> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let mut wasi = WasiCtxBuilder::new();
        // Nothing is inherited: no stdin, stdout is discarded, stderr is captured, no
        // environment, no arguments, no network (sockets are denied by default; say so anyway).
        wasi.stderr(stderr.clone()).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        if let Some(dir) = data_dir {
            if !dir.is_dir() {
                return Err(PluginError::Usage {
                    plugin: plugin.to_owned(),
                    message: format!("data folder {} does not exist or is not a folder", dir.display()),
                });
            }
            wasi.preopened_dir(dir, DATA_MOUNT, FsPerms::ReadOnly).map_err(|e| PluginError::Usage {
                plugin: plugin.to_owned(),
                message: format!("cannot open data folder {}: {e}", dir.display()),
            })?;
        }
        let state = State {
            plugin: plugin.to_owned(),
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter { cap: limits.memory_bytes, used: 0, refused: false },
            stderr,
            generator,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        Ok(Sandbox { store, limits, poisoned: None })
    }

    /// The plugin's name.
    pub(crate) fn plugin(&self) -> &str {
        &self.store.data().plugin
    }

    /// The instance's limits.
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs one call into the plugin under the sandbox's budget. `f` returns the plugin's own
    /// `result`, whose error side becomes `PluginError::Failed`.
    pub(crate) fn call<R>(
        &mut self,
        call: &str,
        f: impl FnOnce(&mut Store<State>) -> wasmtime::Result<Result<R, super::bindings::types::Error>>,
    ) -> Result<R, PluginError> {
        match self.run(call, f)? {
            Ok(r) => Ok(r),
            Err(e) => Err(PluginError::Failed {
                plugin: self.plugin().to_owned(),
                call: call.to_owned(),
                kind: e.kind.into(),
                message: e.message,
            }),
        }
    }

    /// Runs one call that cannot return a plugin error (such as `info`).
    pub(crate) fn run<R>(
        &mut self,
        call: &str,
        f: impl FnOnce(&mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if let Some(failed) = &self.poisoned {
            return Err(PluginError::Poisoned { plugin: self.plugin().to_owned(), call: failed.clone() });
        }
        let ticks = (self.limits.call_budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        self.store.set_epoch_deadline(ticks);
        self.store.data_mut().limiter.refused = false;
        match f(&mut self.store) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.poisoned = Some(call.to_owned());
                Err(self.classify(call, &e))
            }
        }
    }

    /// Marks the instance unusable (used when a result breaks the contract).
    pub(crate) fn retire(&mut self, call: &str) {
        self.poisoned.get_or_insert_with(|| call.to_owned());
    }

    fn classify(&self, call: &str, e: &wasmtime::Error) -> PluginError {
        let plugin = self.plugin().to_owned();
        let call = call.to_owned();
        if self.store.data().limiter.refused {
            return PluginError::MemoryCap { plugin, call, cap_mib: self.limits.memory_bytes >> 20 };
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => PluginError::Timeout { plugin, call, budget: self.limits.call_budget },
            Some(trap) => {
                let mut message = trap.to_string();
                if let Some(said) = self.last_words() {
                    message = format!("{message} ({said})");
                }
                PluginError::Trap { plugin, call, message }
            }
            None => PluginError::Trap { plugin, call, message: format!("{e:#}") },
        }
    }

    /// What the plugin wrote to stderr (a Rust panic message, typically), on one line.
    fn last_words(&self) -> Option<String> {
        let bytes = self.store.data().stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let words: Vec<&str> =
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("note:")).collect();
        let joined = words.join(" ");
        let tail: String = joined.chars().rev().take(400).collect::<Vec<_>>().into_iter().rev().collect();
        (!tail.is_empty()).then_some(tail)
    }
}

/// Error kinds as the host sees them.
impl From<super::bindings::types::ErrorKind> for ErrorKind {
    fn from(kind: super::bindings::types::ErrorKind) -> Self {
        use super::bindings::types::ErrorKind as K;
        match kind {
            K::InvalidArgument => ErrorKind::InvalidArgument,
            K::NotFound => ErrorKind::NotFound,
            K::CorruptData => ErrorKind::CorruptData,
            K::Io => ErrorKind::Io,
            K::Undefined => ErrorKind::Undefined,
            K::Unavailable => ErrorKind::Unavailable,
            K::Other => ErrorKind::Other,
        }
    }
}
