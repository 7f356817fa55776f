//! numpy's random generators, bit for bit: the legacy `RandomState` (MT19937) and `default_rng`
//! (PCG64). Evaluation draws its bootstrap replicates and FT-LP's head from them, training its
//! FT-LoRA initialisation, order and dropout masks.

pub mod pcg64;
pub mod random_state;

pub use pcg64::Pcg64;
pub use random_state::{EmptyRange, RandomState};
