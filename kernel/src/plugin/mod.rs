//! The plugin host: wasmtime with the component model and WASI p2, one sandboxed store per
//! plugin instance, typed wrappers per world (`dataset`, `metric`, `judge`), the compiled
//! component cache and the first-party plugins embedded in the binary.
//!
//! The modules form a DAG, leaves first: `bindings`, `cache`, `generation`, `text`; `error`,
//! `log`, `convert`, `batch`, `source`; `state` (store data and the host side of the imports); `sandbox` (the
//! call discipline); `world` (world names and the bindings glue); `host` (engine, linkers and
//! the one start-up path); the typed wrappers `dataset`, `metric`, `judge`; then `check` and
//! `builtin`. The library never prints: plugin log lines are `tracing` events.
//!
//! Follows the wasmtime component-model embedding API
//! (<https://docs.wasmtime.dev/api/wasmtime/component/index.html>).

mod batch;
mod bindings;
mod builtin;
mod cache;
mod check;
mod convert;
mod dataset;
mod error;
mod generation;
mod host;
mod judge;
mod log;
mod metric;
mod sandbox;
mod source;
mod state;
mod text;
mod world;

pub use batch::MAX_BATCH_BYTES;
pub use builtin::{BUILTINS, Builtin};
pub use check::{CatalogReport, CheckReport, WorldInfo};
pub use dataset::{Batches, Dataset, DatasetHandle, DatasetPlugin};
pub use error::{ErrorKind, PluginError};
pub use generation::{Constraint, GenerateOptions, GenerationError, Generator, MAX_TOKENS};
pub use host::{HostConfig, PluginHost};
pub use judge::{JudgeInfo, JudgeOptions, JudgePlugin, Verdict};
pub use metric::{Evaluation, MetricInfo, MetricPlugin, Prediction, Reference, Score};
pub use sandbox::Limits;
pub use source::{Origin, PluginSource};
pub use world::World;
