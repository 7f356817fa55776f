//! The store data of one plugin instance (its WASI context, memory limiter, captured stderr,
//! log budget and judge model) and the host side of the imports it may call: `host.log`,
//! `types` and `generation.generate` (`wit/host.wit`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::host::LogLevel;
use super::bindings::judge::mvb::plugin::generation;
use super::bindings::{self, types as wit};
use super::generation::{Constraint, GenerateOptions, GenerationError, Generator, MAX_TOKENS};
use super::log::LogBudget;

/// Counts linear-memory growth against the cap and remembers a refusal, so that the trap that
/// follows (a Rust guest aborts when allocation fails) is reported as what it is.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    cap: u64,
    used: u64,
    pub(crate) refused: bool,
}

impl MemoryLimiter {
    /// A limiter allowing `cap` bytes of linear memory in all.
    fn new(cap: u64) -> Self {
        MemoryLimiter { cap, used: 0, refused: false }
    }
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
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) log: LogBudget,
    pub(crate) generator: Option<Arc<dyn Generator>>,
    pub(crate) clock: CallClock,
}

/// The time of the current call: when it started and how much of it the host spent serving
/// `generation.generate` (which does not count against the plugin's budget).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallClock {
    pub(crate) started: Instant,
    pub(crate) host: Duration,
}

impl CallClock {
    /// A clock started now.
    pub(crate) fn start() -> Self {
        CallClock { started: Instant::now(), host: Duration::ZERO }
    }

    /// The plugin's own share of the call so far.
    pub(crate) fn plugin_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host)
    }
}

impl State {
    /// The data of a fresh instance of `plugin`.
    pub(crate) fn new(
        plugin: &str,
        wasi: WasiCtx,
        memory_cap: u64,
        stderr: MemoryOutputPipe,
        generator: Option<Arc<dyn Generator>>,
    ) -> Self {
        State {
            plugin: plugin.to_owned(),
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_cap),
            stderr,
            log: LogBudget::default(),
            generator,
            clock: CallClock::start(),
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The `host` import: log lines become `tracing` events (see `log`).
impl bindings::host::Host for State {
    fn log(&mut self, level: LogLevel, message: String) {
        self.log.log(&self.plugin, level, &message);
    }
}

impl wit::Host for State {}

/// The `generation` import: served by the run's judge model, if it has one.
impl generation::Host for State {
    fn generate(&mut self, prompt: String, options: generation::GenerateOptions) -> Result<String, wit::Error> {
        let Some(generator) = &self.generator else {
            return Err(wit::Error {
                kind: wit::ErrorKind::Unavailable,
                message: "this run has no judge language model configured".into(),
            });
        };
        let invalid = |message: String| wit::Error { kind: wit::ErrorKind::InvalidArgument, message };
        if options.max_tokens > MAX_TOKENS {
            return Err(invalid(format!(
                "max-tokens {} is above the host's limit of {MAX_TOKENS}",
                options.max_tokens
            )));
        }
        if !(options.temperature.is_finite() && options.temperature >= 0.0) {
            return Err(invalid(format!("temperature {} is not a finite number >= 0", options.temperature)));
        }
        let constraint = match options.constraint {
            None => None,
            Some(generation::Constraint::IntegerLine(r)) => {
                let (Ok(min), Ok(max)) = (u64::try_from(r.min), u64::try_from(r.max)) else {
                    return Err(invalid(format!("integer-line range {}..={} has a negative bound", r.min, r.max)));
                };
                Some(Constraint::IntegerLine { min, max })
            }
            Some(generation::Constraint::OneOf(options)) => Some(Constraint::OneOf(options)),
        };
        if let Some(c) = &constraint {
            c.validate().map_err(invalid)?;
        }
        let options = GenerateOptions {
            system: options.system,
            max_tokens: options.max_tokens,
            temperature: options.temperature,
            seed: options.seed,
            stop: options.stop,
            constraint,
        };
        let started = Instant::now();
        let reply = generator.generate(&prompt, &options);
        self.clock.host += started.elapsed();
        reply.map_err(|e| match e {
            GenerationError::Invalid(message) => invalid(message),
            GenerationError::Failed(message) => wit::Error { kind: wit::ErrorKind::Other, message },
        })
    }
}
