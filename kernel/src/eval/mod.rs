//! Evaluation: zero-shot classification, linear probing, the paired bootstrap, and (later)
//! the RQ gaps and the run orchestrator.

mod error;
pub use error::EvalError;

pub mod bootstrap;
pub mod probe;
pub mod rng;
pub mod run;
pub mod zeroshot;
