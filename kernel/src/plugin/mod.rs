//! The plugin host: wasmtime with the component model and WASI p2, one sandboxed store per
//! plugin instance, typed wrappers per world (`dataset`, `metric`, `judge`), the compiled
//! component cache and the first-party plugins embedded in the binary.
//!
//! Follows the wasmtime component-model embedding API
//! (<https://docs.wasmtime.dev/api/wasmtime/component/index.html>).

mod bindings;
mod builtin;
mod cache;
mod check;
mod convert;
mod dataset;
mod error;
mod host;
mod judge;
mod metric;
mod sandbox;
mod source;

pub use builtin::{BUILTINS, Builtin};
pub use check::{CatalogReport, CheckReport, World, WorldInfo};
pub use dataset::{Dataset, DatasetHandle, DatasetPlugin};
pub use error::{ErrorKind, PluginError};
pub use host::{HostConfig, PluginHost};
pub use judge::{GenerateOptions, Generator, JudgeInfo, JudgePlugin, Verdict};
pub use metric::{Evaluation, MetricInfo, MetricPlugin, Prediction, Reference, Score};
pub use sandbox::Limits;
pub use source::{Origin, PluginSource};
