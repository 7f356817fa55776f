//! Evaluation: zero-shot classification, linear probing, the paired bootstrap, metric plugins
//! as the one scoring path, opening datasets through their plugins, and the benchmark run
//! (`run`: predictions, results, RQ gaps, reports).

mod error;
pub use error::EvalError;

pub mod bootstrap;
pub mod dataset;
pub mod metrics;
pub mod probe;
pub mod run;
pub mod zeroshot;
