//! The scores of one unit (model × dataset × split × strategy): what `results` computes from
//! the predictions and `gaps` compares. Its own module so that both import it, neither the other.

use super::config::Group;
use super::judging::JudgeTally;
use super::predictions::UnitKey;
use crate::eval::bootstrap::Bootstrapped;
pub use crate::eval::metrics::MetricScore;

/// The scores of one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitResult {
    /// Which unit.
    pub key: UnitKey,
    /// The model's family label, when the configuration describes the model.
    pub family: Option<String>,
    /// The model's group, when the configuration describes the model.
    pub group: Option<Group>,
    /// Samples.
    pub n: usize,
    /// One entry per score, in metric order.
    pub scores: Vec<MetricScore>,
    /// VQA units of a judged run: how their open questions were judged.
    pub judge: Option<JudgeTally>,
}

impl UnitResult {
    /// A score by name.
    pub fn score(&self, name: &str) -> Option<&Bootstrapped> {
        self.scores.iter().find(|s| s.name == name).map(|s| &s.boot)
    }
}
