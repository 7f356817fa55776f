//! The sandbox around one plugin instance: a WASI context with nothing but a read-only
//! `/data` preopen, a memory cap enforced by the store's limiter (`state::MemoryLimiter`), a
//! wall-time budget per call enforced by epoch interruption, a fresh log budget per call, and
//! the translation of every failure into a `PluginError`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::bindings::types as wit;
use super::error::PluginError;
use super::generation::Generator;
use super::state::{CallClock, State};
use super::text;

/// The epoch period: call budgets are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

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

/// Epoch ticks in `budget` (at least one).
fn ticks(budget: Duration) -> u64 {
    (budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

/// One live plugin instance and its store, with the call discipline: a fresh time budget per
/// call, failures classified, and the instance retired after a trap.
pub(crate) struct Sandbox {
    store: Store<State>,
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
        generator: Option<Arc<dyn Generator>>,
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
        let state = State::new(plugin, wasi.build(), limits.memory_bytes, stderr, generator);
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        let budget = limits.call_budget;
        // At each deadline, the plugin's own time is what counts: time the host spent serving
        // `generation.generate` extends the deadline by as much.
        store.epoch_deadline_callback(move |store| {
            let spent = store.data().clock.plugin_time();
            if spent >= budget {
                return Err(Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::Continue(ticks(budget - spent)))
        });
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
    /// `result`, whose error side becomes `PluginError::Failed` (its message escaped and cut
    /// to `text::MAX_LINE_BYTES`).
    pub(crate) fn call<R>(
        &mut self,
        call: &str,
        f: impl FnOnce(&mut Store<State>) -> wasmtime::Result<Result<R, wit::Error>>,
    ) -> Result<R, PluginError> {
        match self.run(call, f)? {
            Ok(r) => Ok(r),
            Err(e) => Err(PluginError::Failed {
                plugin: self.plugin().to_owned(),
                call: call.to_owned(),
                kind: e.kind.into(),
                message: text::free_text(&e.message, text::MAX_LINE_BYTES),
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
        self.store.set_epoch_deadline(ticks(self.limits.call_budget));
        let state = self.store.data_mut();
        state.clock = CallClock::start();
        state.limiter.refused = false;
        state.log.new_call();
        match f(&mut self.store) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.poisoned = Some(call.to_owned());
                Err(self.classify(call, &e))
            }
        }
    }

    /// Marks the instance unusable because `call` returned a result that breaks the contract,
    /// and says so.
    pub(crate) fn malformed(&mut self, call: &str, message: String) -> PluginError {
        self.poisoned.get_or_insert_with(|| call.to_owned());
        PluginError::Malformed { plugin: self.plugin().to_owned(), call: call.to_owned(), message }
    }

    /// A request the host refuses before calling the plugin.
    pub(crate) fn usage(&self, message: String) -> PluginError {
        PluginError::Usage { plugin: self.plugin().to_owned(), message }
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
        (!tail.is_empty()).then(|| text::escape(&tail))
    }
}
