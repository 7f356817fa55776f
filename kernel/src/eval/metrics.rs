//! Scoring predictions (class scores, or VQA answers) with metric plugins: the one path by which `mvb run` (point
//! estimates and the paired bootstrap's replicates) and `mvb zeroshot` (point estimates)
//! compute accuracy, AUROC and every other metric, so the two commands cannot disagree. The
//! definitions are the plugins' (`plugins/auroc`, `plugins/accuracy`, ...; for AUROC,
//! MedVLMBench's `roc_auc_score`, undefined when a class is absent); `eval::bootstrap::auroc`
//! is only a reference for tests and benches.
//!
//! A metric is named by a [`Metric`]: a built-in by name, or a plugin file ending in `.wasm`,
//! parsed once (from a run config or the command line) with an error naming the built-ins.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::bootstrap::Bootstrapped;
use crate::data::{Qa, Task};
use crate::plugin::{
    BUILTINS, Builtin, ErrorKind, Evaluation, MetricPlugin, PluginError, PluginHost, PluginSource, Prediction,
    Reference, Score, World,
};

/// A metric plugin, as a run config names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Metric {
    /// A metric plugin embedded in mvb (`auroc`, `accuracy`, `balanced-accuracy`, `vqa`).
    Builtin(&'static str),
    /// A third party's metric plugin file (`.wasm`).
    File(PathBuf),
}

/// A metric entry that is neither a built-in metric nor a `.wasm` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric `{0}`: the built-in metrics are {list}; a plugin file must end in `.wasm`", list = builtin_metrics().join(", "))]
pub struct UnknownMetric(pub String);

/// The names of the built-in metric plugins.
pub fn builtin_metrics() -> Vec<&'static str> {
    BUILTINS.iter().filter(|b| b.world == World::Metric).map(|b| b.name).collect()
}

impl Metric {
    /// The built-in metric called `name`.
    pub fn builtin(name: &str) -> Result<Metric, UnknownMetric> {
        Builtin::find(name)
            .filter(|b| b.world == World::Metric)
            .map(|b| Metric::Builtin(b.name))
            .ok_or_else(|| UnknownMetric(name.to_owned()))
    }

    /// The plugin's bytes.
    pub fn source(&self) -> Result<PluginSource, MetricError> {
        match self {
            Metric::Builtin(name) => Builtin::find(name)
                .filter(|b| b.world == World::Metric)
                .map(Builtin::source)
                .ok_or_else(|| MetricError::Unknown(UnknownMetric((*name).to_owned()))),
            Metric::File(path) => {
                PluginSource::from_file(path).map_err(|error| MetricError::Plugin { metric: self.to_string(), error })
            }
        }
    }
}

impl FromStr for Metric {
    type Err = UnknownMetric;

    /// `*.wasm` is a plugin file; anything else must name a built-in metric.
    fn from_str(s: &str) -> Result<Metric, UnknownMetric> {
        if s.ends_with(".wasm") { Ok(Metric::File(PathBuf::from(s))) } else { Metric::builtin(s) }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Builtin(name) => f.write_str(name),
            Metric::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Metric, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Why scoring failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricError {
    /// No built-in metric has that name.
    #[error(transparent)]
    Unknown(#[from] UnknownMetric),
    /// A metric plugin failed to load, or refused its input.
    #[error("metric `{metric}`: {error}")]
    Plugin {
        /// The metric entry.
        metric: String,
        /// The plugin's error.
        error: PluginError,
    },
    /// Two metrics report a score of the same name.
    #[error("two metrics report a score named `{score}` (the second is `{metric}`)")]
    DuplicateScore {
        /// The score.
        score: String,
        /// The second metric reporting it.
        metric: String,
    },
}

/// One score of one set: the full-set value and one value per bootstrap replicate.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricScore {
    /// The score's name (as the metric plugin declares it).
    pub name: String,
    /// Point estimate (NaN where undefined) and replicate values (`None` where undefined).
    pub boot: Bootstrapped,
}

/// Loaded metric plugins, ready to score sets of class predictions.
pub struct Scorer {
    metrics: Vec<(Metric, MetricPlugin)>,
    names: Vec<String>,
}

impl fmt::Debug for Scorer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scorer").field("metrics", &self.metrics.iter().map(|(m, _)| m).collect::<Vec<_>>()).finish()
    }
}

impl Scorer {
    /// Loads `metrics`; their score names must be distinct.
    pub fn new(host: &PluginHost, metrics: &[Metric]) -> Result<Scorer, MetricError> {
        let mut loaded = Vec::with_capacity(metrics.len());
        let mut names: Vec<String> = Vec::new();
        for metric in metrics {
            let fail = |error| MetricError::Plugin { metric: metric.to_string(), error };
            let plugin = host.metric(&metric.source()?).map_err(fail)?;
            for score in &plugin.info().scores {
                if names.contains(score) {
                    return Err(MetricError::DuplicateScore { score: score.clone(), metric: metric.to_string() });
                }
                names.push(score.clone());
            }
            loaded.push((metric.clone(), plugin));
        }
        Ok(Scorer { metrics: loaded, names })
    }

    /// Every score name, in metric order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Each metric with its plugin's one-line definition.
    pub fn descriptions(&self) -> Vec<(String, String)> {
        self.metrics.iter().map(|(m, p)| (m.to_string(), p.info().description.clone())).collect()
    }

    /// The score names of the metrics of `task`, in metric order.
    pub fn names_for(&self, task: Task) -> Vec<String> {
        self.metrics.iter().filter(|(_, p)| p.info().task == task).flat_map(|(_, p)| p.info().scores.clone()).collect()
    }

    /// Scores one set of diagnosis samples (class scores, labels) with the diagnosis metrics, on
    /// the full set and on each index set of `index_sets` (none: point estimates only). Where a
    /// metric is undefined (the plugin says `undefined`, such as AUROC with a class absent), its
    /// point is NaN and its replicate `None`.
    pub fn score<'a>(
        &mut self,
        samples: impl IntoIterator<Item = (&'a [f32], &'a [u32])>,
        index_sets: &[Vec<u32>],
    ) -> Result<Vec<MetricScore>, MetricError> {
        let (predictions, references): (Vec<Prediction>, Vec<Reference>) = samples
            .into_iter()
            .map(|(scores, labels)| {
                let prediction = Prediction::ClassScores(scores.iter().map(|&v| f64::from(v)).collect());
                (prediction, Reference { labels: labels.to_vec(), ..Reference::default() })
            })
            .unzip();
        self.score_task(Task::Diagnosis, &predictions, &references, index_sets)
    }

    /// Scores one set of VQA samples (generated text, question, and in a judged run the
    /// judge's scaled score: `Some(None)` for a question not judged or without a verdict) with
    /// the VQA metrics, as [`Scorer::score`] does.
    pub fn score_answers<'a>(
        &mut self,
        samples: impl IntoIterator<Item = (&'a str, &'a Qa, Option<Option<f64>>)>,
        index_sets: &[Vec<u32>],
    ) -> Result<Vec<MetricScore>, MetricError> {
        let (predictions, references): (Vec<Prediction>, Vec<Reference>) = samples
            .into_iter()
            .map(|(text, qa, judged)| {
                let reference = Reference { labels: Vec::new(), answer: Some(qa.answer.clone()), kind: Some(qa.kind) };
                let text = text.to_owned();
                let prediction = match judged {
                    None => Prediction::Text(text),
                    Some(judge_score) => Prediction::Judged { text, judge_score },
                };
                (prediction, reference)
            })
            .unzip();
        self.score_task(Task::Vqa, &predictions, &references, index_sets)
    }

    fn score_task(
        &mut self,
        task: Task,
        predictions: &[Prediction],
        references: &[Reference],
        index_sets: &[Vec<u32>],
    ) -> Result<Vec<MetricScore>, MetricError> {
        let mut out = Vec::with_capacity(self.names.len());
        for (metric, plugin) in self.metrics.iter_mut().filter(|(_, p)| p.info().task == task) {
            let fail = |error| MetricError::Plugin { metric: metric.to_string(), error };
            let eval = plugin.prepare(predictions, references).map_err(fail)?;
            out.extend(bootstrap(plugin, &eval, index_sets).map_err(fail)?);
            plugin.release(eval).map_err(fail)?;
        }
        Ok(out)
    }
}

/// Scores by name on the full set and on each index set of one prepared evaluation.
fn bootstrap(
    plugin: &mut MetricPlugin,
    eval: &Evaluation,
    index_sets: &[Vec<u32>],
) -> Result<Vec<MetricScore>, PluginError> {
    let names = plugin.info().scores.clone();
    let value = |scores: &Option<Vec<Score>>, name: &str| {
        scores.as_ref().and_then(|s| s.iter().find(|s| s.name == name)).map(|s| s.value).filter(|v| !v.is_nan())
    };
    let point = compute(plugin, eval, None)?;
    let mut values: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(index_sets.len()); names.len()];
    for indices in index_sets {
        let replicate = compute(plugin, eval, Some(indices.as_slice()))?;
        for (name, v) in names.iter().zip(&mut values) {
            v.push(value(&replicate, name));
        }
    }
    Ok(names
        .into_iter()
        .zip(values)
        .map(|(name, v)| {
            let p = value(&point, &name).unwrap_or(f64::NAN);
            MetricScore { name, boot: Bootstrapped::new(p, v) }
        })
        .collect())
}

/// The plugin's scores, or `None` where it says the metric is undefined on the set.
fn compute(
    plugin: &mut MetricPlugin,
    eval: &Evaluation,
    indices: Option<&[u32]>,
) -> Result<Option<Vec<Score>>, PluginError> {
    match plugin.compute(eval, indices) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == Some(ErrorKind::Undefined) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_parse_once_with_a_clear_error() {
        assert_eq!("auroc".parse::<Metric>(), Ok(Metric::Builtin("auroc")));
        assert_eq!("plugins/m.wasm".parse::<Metric>(), Ok(Metric::File("plugins/m.wasm".into())));
        let e = "aucroc".parse::<Metric>().unwrap_err().to_string();
        assert!(e.starts_with("unknown metric `aucroc`: the built-in metrics are auroc, accuracy"), "{e}");
        assert!("medmnist".parse::<Metric>().is_err(), "a dataset plugin is not a metric");
        assert!("dir/metric".parse::<Metric>().is_err());
        let json = serde_json::to_string(&[Metric::Builtin("auroc"), Metric::File("a/b.wasm".into())]).unwrap();
        assert_eq!(json, r#"["auroc","a/b.wasm"]"#);
        let back: Vec<Metric> = serde_json::from_str(&json).unwrap();
        assert_eq!(back[1], Metric::File("a/b.wasm".into()));
        assert!(serde_json::from_str::<Metric>("\"nope\"").is_err());
    }
}
