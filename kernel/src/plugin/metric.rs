//! Typed access to a metric plugin: predictions and references are passed once, then scored
//! on the full set or on resamples by index (for the paired bootstrap).

use wasmtime::component::ResourceAny;

use super::bindings::metric::Metric as MetricWorld;
use super::bindings::metric::exports::mvb::plugin::metric_api as api;
use super::convert;
use super::error::PluginError;
use super::host::PluginHost;
use super::sandbox::Sandbox;
use super::source::PluginSource;
use super::text;
use crate::data::{AnswerKind, Task};

/// What a metric plugin says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricInfo {
    /// Machine name.
    pub name: String,
    /// Exact definition, in one line.
    pub description: String,
    /// The task it scores.
    pub task: Task,
    /// Whether larger is better.
    pub higher_is_better: bool,
    /// Names of the scores returned, in order.
    pub scores: Vec<String>,
}

/// One model output.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// Per-class scores, in class order.
    ClassScores(Vec<f64>),
    /// Generated text.
    Text(String),
    /// Generated text with a judge's score scaled to [0, 1] (`None`: not judged, or no verdict).
    Judged {
        /// The text.
        text: String,
        /// The scaled score.
        judge_score: Option<f64>,
    },
}

/// The ground truth of one sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reference {
    /// Class labels.
    pub labels: Vec<u32>,
    /// VQA reference answer.
    pub answer: Option<String>,
    /// VQA question kind.
    pub kind: Option<AnswerKind>,
}

/// One named value.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// One of the metric's score names.
    pub name: String,
    /// The value.
    pub value: f64,
}

/// Prepared predictions inside a metric plugin instance.
#[derive(Debug)]
pub struct Evaluation {
    resource: ResourceAny,
    len: usize,
}

impl Evaluation {
    /// How many samples were prepared.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no samples were prepared.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A running metric plugin instance.
pub struct MetricPlugin {
    sandbox: Sandbox,
    world: MetricWorld,
    info: MetricInfo,
}

impl std::fmt::Debug for MetricPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricPlugin").field("info", &self.info).finish_non_exhaustive()
    }
}

impl PluginHost {
    /// Starts a metric plugin and reads its info.
    pub fn metric(&self, source: &PluginSource) -> Result<MetricPlugin, PluginError> {
        let (mut sandbox, world) = self.start::<MetricWorld>(source, None, None)?;
        let raw = sandbox.run("info", |store| world.mvb_plugin_metric_api().call_info(store))?;
        let info = metric_info(raw).map_err(|m| sandbox.malformed("info", m))?;
        Ok(MetricPlugin { sandbox, world, info })
    }
}

/// The most score names a metric may declare.
const MAX_SCORES: usize = 256;

/// Validates a metric's info: a valid name, one to [`MAX_SCORES`] distinct valid score names;
/// the description is escaped and cut.
fn metric_info(raw: api::MetricInfo) -> Result<MetricInfo, String> {
    text::identifier("metric name", &raw.name, text::MAX_NAME_BYTES)?;
    if raw.scores.is_empty() || raw.scores.len() > MAX_SCORES {
        return Err(format!("a metric declares 1 to {MAX_SCORES} score names, not {}", raw.scores.len()));
    }
    for (i, score) in raw.scores.iter().enumerate() {
        text::identifier("score name", score, text::MAX_NAME_BYTES)?;
        if raw.scores[..i].contains(score) {
            return Err(format!("score name `{score}` is declared twice"));
        }
    }
    Ok(MetricInfo {
        name: raw.name,
        description: text::free_text(&raw.description, text::MAX_LINE_BYTES),
        task: convert::task(raw.task),
        higher_is_better: raw.higher_is_better,
        scores: raw.scores,
    })
}

impl MetricPlugin {
    /// The metric's info.
    pub fn info(&self) -> &MetricInfo {
        &self.info
    }

    /// Passes predictions and references (element `i` of each is sample `i`) to the plugin.
    pub fn prepare(&mut self, predictions: &[Prediction], references: &[Reference]) -> Result<Evaluation, PluginError> {
        let preds: Vec<api::Prediction> = predictions
            .iter()
            .map(|p| match p {
                Prediction::ClassScores(s) => api::Prediction::ClassScores(s.clone()),
                Prediction::Text(t) => api::Prediction::Text(t.clone()),
                Prediction::Judged { text, judge_score } => {
                    api::Prediction::Judged(api::JudgedAnswer { text: text.clone(), judge_score: *judge_score })
                }
            })
            .collect();
        let refs: Vec<api::Reference> = references
            .iter()
            .map(|r| api::Reference {
                labels: r.labels.clone(),
                answer: r.answer.clone(),
                kind: r.kind.map(convert::wit_answer_kind),
            })
            .collect();
        let api = self.world.mvb_plugin_metric_api();
        let resource = self.sandbox.call("prepare", |store| api.call_prepare(store, &preds, &refs))?;
        Ok(Evaluation { resource, len: predictions.len() })
    }

    /// Scores the full set (`None`) or the resample listing `indices`.
    pub fn compute(&mut self, evaluation: &Evaluation, indices: Option<&[u32]>) -> Result<Vec<Score>, PluginError> {
        if let Some(bad) = indices.and_then(|ix| ix.iter().find(|&&i| i as usize >= evaluation.len)) {
            let message = format!("resample index {bad} is out of range for {} samples", evaluation.len);
            return Err(self.sandbox.usage(message));
        }
        let api = self.world.mvb_plugin_metric_api();
        let raw = self
            .sandbox
            .call("evaluation.compute", |store| api.evaluation().call_compute(store, evaluation.resource, indices))?;
        if raw.len() > self.info.scores.len() {
            let message = format!("{} scores returned, {} declared", raw.len(), self.info.scores.len());
            return Err(self.sandbox.malformed("evaluation.compute", message));
        }
        if let Some(unknown) = raw.iter().find(|s| !self.info.scores.contains(&s.name)) {
            let message = format!(
                "score `{}` is not among the declared scores {:?}",
                text::quote(&unknown.name),
                self.info.scores
            );
            return Err(self.sandbox.malformed("evaluation.compute", message));
        }
        Ok(raw.into_iter().map(|s| Score { name: s.name, value: s.value }).collect())
    }

    /// Releases prepared predictions inside the plugin.
    pub fn release(&mut self, evaluation: Evaluation) -> Result<(), PluginError> {
        self.sandbox.run("evaluation.drop", |store| evaluation.resource.resource_drop(store))
    }
}
