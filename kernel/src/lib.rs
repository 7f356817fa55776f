//! mvb: an evaluation kernel for medical vision-language models, re-implementing the
//! MedVLMBench study (<https://arxiv.org/abs/2506.17337>).
//!
//! The kernel loads models natively and runs datasets, metrics and judges as sandboxed
//! WebAssembly components behind the WIT contract in `wit/`. See `docs/ARCHITECTURE.md` for the map.

pub mod backend;
pub mod data;
pub mod eval;
pub mod model;
pub mod plugin;
pub mod random;
pub mod tensor;
pub mod train;
pub mod util;
