//! Results recomputed from `predictions.jsonl` alone: every complete unit scored by the metric
//! plugins on the full set (the point estimate) and on the paired bootstrap's index sets, then
//! the RQ gaps; written as `results.json` and `results.csv` (and `gaps.csv`).
//!
//! - Paired: the index sets depend only on the dataset's size and the bootstrap settings
//!   (numpy's `RandomState(seed)`, `randint(0, n, n)` per replicate), and every unit of a
//!   dataset split is first put in the same sample order (the first unit's), so replicate `r`
//!   resamples the same samples for every model and strategy.
//! - A replicate on which a metric is undefined (the plugin answers `undefined`, such as AUROC
//!   on one class) is skipped and counted.
//! - Deterministic: units are ordered by the configuration (models, then datasets, split,
//!   strategy), metrics by the configuration, JSON keys by declaration, and floats printed in
//!   their shortest round-trip form (NaN as `null` in JSON, empty in CSV): identical predictions
//!   and settings give byte-identical files.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::config::{BootstrapSettings, Group, ModelSpec, RunConfig, Strategy, is_plugin_file};
use super::gaps::{self, Gap};
use super::predictions::{Contents, Unit, UnitKey};
use super::{RunError, write_file};
use crate::data::Split;
use crate::eval::bootstrap::{BootstrapConfig, Bootstrapped, Estimate, resample_indices};
use crate::plugin::{
    Builtin, ErrorKind, MetricPlugin, PluginError, PluginHost, PluginSource, Prediction, Reference, World,
};

/// `results.json`.
pub const RESULTS_JSON: &str = "results.json";
/// `results.csv`.
pub const RESULTS_CSV: &str = "results.csv";
/// `gaps.csv`.
pub const GAPS_CSV: &str = "gaps.csv";

/// One score of one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricScore {
    /// The score's name (as the metric plugin declares it).
    pub name: String,
    /// Point estimate and replicate values.
    pub boot: Bootstrapped,
}

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
}

impl UnitResult {
    /// A score by name.
    pub fn score(&self, name: &str) -> Option<&Bootstrapped> {
        self.scores.iter().find(|s| s.name == name).map(|s| &s.boot)
    }
}

/// Everything computed from a predictions file.
#[derive(Debug, Clone)]
pub struct Results {
    /// The version of mvb that computed these results.
    pub computed_by: String,
    /// The versions of mvb that wrote the predictions.
    pub predicted_by: Vec<String>,
    /// The configuration of the last run header.
    pub config: RunConfig,
    /// Every model any header describes (the later description wins), in order.
    pub models: Vec<ModelSpec>,
    /// Dataset names in report order.
    pub datasets: Vec<String>,
    /// The bootstrap used.
    pub bootstrap: BootstrapConfig,
    /// Every score name, in metric order.
    pub metrics: Vec<String>,
    /// Each metric entry of the configuration with its plugin's one-line definition.
    pub metric_info: Vec<(String, String)>,
    /// The score the RQ gaps, the heatmap and the console table use (`auroc` when present).
    pub primary: Option<String>,
    /// Per unit, in report order.
    pub units: Vec<UnitResult>,
    /// The RQ gaps of the primary score.
    pub gaps: Vec<Gap>,
}

impl Results {
    /// A unit's result.
    pub fn unit(&self, model: &str, dataset: &str, strategy: Strategy) -> Option<&UnitResult> {
        self.units.iter().find(|u| u.key.model == model && u.key.dataset == dataset && u.key.strategy == strategy)
    }
}

/// Bootstrap settings that replace those recorded in the predictions file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BootstrapOverride {
    /// Replicates.
    pub replicates: Option<usize>,
    /// Seed.
    pub seed: Option<u32>,
}

/// Loads a metric entry: a built-in metric by name, or a plugin file.
fn load_metric(host: &PluginHost, entry: &str) -> Result<MetricPlugin, RunError> {
    let plugin = |error: PluginError| RunError::Plugin { context: format!("metric `{entry}`"), error };
    let source = if is_plugin_file(entry) {
        PluginSource::from_file(Path::new(entry)).map_err(plugin)?
    } else {
        let builtin = Builtin::find(entry).filter(|b| b.world == World::Metric).ok_or_else(|| {
            let known: Vec<&str> =
                crate::plugin::BUILTINS.iter().filter(|b| b.world == World::Metric).map(|b| b.name).collect();
            RunError::Usage(format!(
                "no built-in metric `{entry}` (built in: {}; or give a .wasm file)",
                known.join(", ")
            ))
        })?;
        builtin.source()
    };
    host.metric(&source).map_err(plugin)
}

/// Whether a plugin error says the metric is undefined on the set (the bootstrap skips those).
fn is_undefined(e: &PluginError) -> bool {
    e.kind() == Some(ErrorKind::Undefined)
}

/// Scores by name, or `None` for all of them where the metric is undefined.
fn compute(
    plugin: &mut MetricPlugin,
    eval: &crate::plugin::Evaluation,
    indices: Option<&[u32]>,
    context: &str,
) -> Result<Option<Vec<crate::plugin::Score>>, RunError> {
    match plugin.compute(eval, indices) {
        Ok(s) => Ok(Some(s)),
        Err(e) if is_undefined(&e) => Ok(None),
        Err(error) => Err(RunError::Plugin { context: context.to_owned(), error }),
    }
}

/// Scores every complete unit of `contents` and computes the RQ gaps. `bootstrap` overrides the
/// last header's settings; `progress(done, total)` is called after each unit.
pub fn evaluate(
    host: &PluginHost,
    contents: &Contents,
    bootstrap: BootstrapOverride,
    mut progress: impl FnMut(usize, usize),
) -> Result<Results, RunError> {
    let header =
        contents.last_header().ok_or_else(|| RunError::Usage("the predictions file has no run header".into()))?;
    let config = header.config.clone();
    let recorded = config.bootstrap_config();
    let bootstrap = BootstrapConfig {
        replicates: bootstrap.replicates.unwrap_or(recorded.replicates),
        seed: bootstrap.seed.unwrap_or(recorded.seed),
    };
    let mut predicted_by: Vec<String> = Vec::new();
    let mut models: Vec<ModelSpec> = Vec::new();
    let mut datasets: Vec<String> = Vec::new();
    for h in &contents.headers {
        if !predicted_by.contains(&h.mvb_version) {
            predicted_by.push(h.mvb_version.clone());
        }
        for m in &h.config.models {
            match models.iter_mut().find(|o| o.name == m.name) {
                Some(o) => *o = m.clone(),
                None => models.push(m.clone()),
            }
        }
        for d in &h.config.datasets {
            if !datasets.contains(&d.name) {
                datasets.push(d.name.clone());
            }
        }
    }
    // Units of models or datasets no header names (hand-edited files) go last.
    let mut model_order: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
    for u in &contents.units {
        if !model_order.contains(&u.key.model) {
            model_order.push(u.key.model.clone());
        }
        if !datasets.contains(&u.key.dataset) {
            datasets.push(u.key.dataset.clone());
        }
    }
    let rank = |list: &[String], name: &str| list.iter().position(|n| n == name).unwrap_or(usize::MAX);
    let mut order: Vec<&Unit> = contents.units.iter().collect();
    order.sort_by_key(|u| {
        (rank(&model_order, &u.key.model), rank(&datasets, &u.key.dataset), u.key.split, u.key.strategy)
    });

    // The paired sample order of each dataset split: the first unit's.
    let mut canonical: HashMap<(&str, Split), &Unit> = HashMap::new();
    for u in &order {
        canonical.entry((u.key.dataset.as_str(), u.key.split)).or_insert(u);
    }
    let mut index_sets: HashMap<(&str, Split), Vec<Vec<u32>>> = HashMap::new();

    let mut plugins: Vec<(String, MetricPlugin)> =
        config.metrics.iter().map(|m| Ok((m.clone(), load_metric(host, m)?))).collect::<Result<_, RunError>>()?;
    let mut metrics: Vec<String> = Vec::new();
    for (entry, p) in &plugins {
        for s in &p.info().scores {
            if metrics.contains(s) {
                return Err(RunError::Usage(format!(
                    "two metrics report a score named `{s}` (the second is `{entry}`)"
                )));
            }
            metrics.push(s.clone());
        }
    }

    let mut units = Vec::with_capacity(order.len());
    for (done, unit) in order.iter().enumerate() {
        let group_key = (unit.key.dataset.as_str(), unit.key.split);
        let reference = canonical[&group_key];
        let permutation = align(unit, reference)?;
        let n = unit.len();
        let sets: &[Vec<u32>] = match index_sets.entry(group_key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(
                resample_indices(n, &bootstrap)
                    .map_err(|error| RunError::Eval { context: format!("bootstrap of {}", unit.key.dataset), error })?,
            ),
        };
        let predictions: Vec<Prediction> = permutation
            .iter()
            .map(|&i| Prediction::ClassScores(unit.scores[i].iter().map(|&v| f64::from(v)).collect()))
            .collect();
        let references: Vec<Reference> =
            permutation.iter().map(|&i| Reference { labels: unit.labels[i].clone(), ..Reference::default() }).collect();
        let mut scores = Vec::new();
        for (entry, plugin) in &mut plugins {
            let context = format!("metric `{entry}` on {}", unit.key);
            let names = plugin.info().scores.clone();
            let eval = plugin
                .prepare(&predictions, &references)
                .map_err(|error| RunError::Plugin { context: context.clone(), error })?;
            let point = compute(plugin, &eval, None, &context)?;
            let mut values: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(sets.len()); names.len()];
            for idx in sets {
                let r = compute(plugin, &eval, Some(idx), &context)?;
                for (name, v) in names.iter().zip(&mut values) {
                    v.push(
                        r.as_ref()
                            .and_then(|r| r.iter().find(|s| &s.name == name))
                            .map(|s| s.value)
                            .filter(|x| !x.is_nan()),
                    );
                }
            }
            plugin.release(eval).map_err(|error| RunError::Plugin { context: context.clone(), error })?;
            for (name, v) in names.into_iter().zip(values) {
                let p = point.as_ref().and_then(|p| p.iter().find(|s| s.name == name)).map_or(f64::NAN, |s| s.value);
                scores.push(MetricScore { name, boot: Bootstrapped::new(p, v) });
            }
        }
        let spec = models.iter().find(|m| m.name == unit.key.model);
        units.push(UnitResult {
            key: unit.key.clone(),
            family: spec.map(|m| m.family.clone()),
            group: spec.map(|m| m.group),
            n,
            scores,
        });
        progress(done + 1, order.len());
    }
    let metric_info = plugins.iter().map(|(e, p)| (e.clone(), p.info().description.clone())).collect();
    let primary = metrics.iter().find(|m| *m == "auroc").or_else(|| metrics.first()).cloned();
    let gaps = match &primary {
        Some(metric) => gaps::compute(&models, &datasets, &units, metric)
            .map_err(|error| RunError::Eval { context: "RQ gaps".into(), error })?,
        None => Vec::new(),
    };
    Ok(Results {
        computed_by: env!("CARGO_PKG_VERSION").to_owned(),
        predicted_by,
        config,
        models,
        datasets,
        bootstrap,
        metrics,
        metric_info,
        primary,
        units,
        gaps,
    })
}

/// The positions in `unit` of `reference`'s samples, in `reference`'s order.
fn align(unit: &Unit, reference: &Unit) -> Result<Vec<usize>, RunError> {
    if unit.ids == reference.ids {
        return Ok((0..unit.len()).collect());
    }
    let mismatch = |what: String| {
        RunError::Mismatch(format!(
            "{} and {} must score the same samples for the paired bootstrap: {what}",
            reference.key, unit.key
        ))
    };
    if unit.len() != reference.len() {
        return Err(mismatch(format!("{} vs {} samples", reference.len(), unit.len())));
    }
    let at: HashMap<&str, usize> = unit.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    if at.len() != unit.len() {
        return Err(mismatch(format!("{} repeats a sample id", unit.key)));
    }
    reference
        .ids
        .iter()
        .map(|id| {
            at.get(id.as_str()).copied().ok_or_else(|| mismatch(format!("sample `{id}` is missing from the second")))
        })
        .collect()
}

/// `f64` as JSON: NaN as `null`.
fn json_f64(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// `f64` for CSV and Markdown: shortest round-trip form, NaN as empty.
pub(crate) fn csv_f64(v: f64) -> String {
    if v.is_nan() { String::new() } else { format!("{v}") }
}

#[derive(Serialize)]
struct ResultRow<'a> {
    model: &'a str,
    family: Option<&'a str>,
    group: Option<Group>,
    dataset: &'a str,
    split: Split,
    strategy: Strategy,
    metric: &'a str,
    n: usize,
    point: Option<f64>,
    mean: Option<f64>,
    ci_lo: Option<f64>,
    ci_hi: Option<f64>,
    replicates: usize,
    skipped: usize,
}

#[derive(Serialize)]
struct SystemRow<'a> {
    model: &'a str,
    strategy: Strategy,
    point: Option<f64>,
}

#[derive(Serialize)]
struct GapRow<'a> {
    rq: &'a str,
    family: &'a str,
    dataset: &'a str,
    split: Split,
    metric: &'a str,
    generalist: SystemRow<'a>,
    specialist: SystemRow<'a>,
    point: Option<f64>,
    mean: Option<f64>,
    ci_lo: Option<f64>,
    ci_hi: Option<f64>,
    replicates: usize,
    skipped: usize,
}

#[derive(Serialize)]
struct ResultsJson<'a> {
    computed_by: &'a str,
    predicted_by: &'a [String],
    bootstrap: BootstrapSettings,
    metrics: &'a [String],
    gap_metric: Option<&'a str>,
    config: &'a RunConfig,
    results: Vec<ResultRow<'a>>,
    gaps: Vec<GapRow<'a>>,
}

fn result_rows(results: &Results) -> Vec<(&UnitResult, &MetricScore)> {
    results.units.iter().flat_map(|u| u.scores.iter().map(move |s| (u, s))).collect()
}

/// `results.json`'s text.
pub fn results_json(results: &Results) -> Result<String, RunError> {
    let est = |e: &Estimate| (json_f64(e.point), json_f64(e.mean), json_f64(e.lo), json_f64(e.hi));
    let rows = result_rows(results)
        .into_iter()
        .map(|(u, s)| {
            let (point, mean, ci_lo, ci_hi) = est(&s.boot.estimate);
            ResultRow {
                model: &u.key.model,
                family: u.family.as_deref(),
                group: u.group,
                dataset: &u.key.dataset,
                split: u.key.split,
                strategy: u.key.strategy,
                metric: &s.name,
                n: u.n,
                point,
                mean,
                ci_lo,
                ci_hi,
                replicates: s.boot.estimate.replicates,
                skipped: s.boot.estimate.skipped,
            }
        })
        .collect();
    let gaps = results
        .gaps
        .iter()
        .map(|g| {
            let (point, mean, ci_lo, ci_hi) = est(&g.estimate);
            GapRow {
                rq: g.rq.as_str(),
                family: &g.family,
                dataset: &g.dataset,
                split: g.split,
                metric: &g.metric,
                generalist: SystemRow {
                    model: &g.generalist.model,
                    strategy: g.generalist.strategy,
                    point: json_f64(g.generalist.point),
                },
                specialist: SystemRow {
                    model: &g.specialist.model,
                    strategy: g.specialist.strategy,
                    point: json_f64(g.specialist.point),
                },
                point,
                mean,
                ci_lo,
                ci_hi,
                replicates: g.estimate.replicates,
                skipped: g.estimate.skipped,
            }
        })
        .collect();
    let doc = ResultsJson {
        computed_by: &results.computed_by,
        predicted_by: &results.predicted_by,
        bootstrap: BootstrapSettings { replicates: results.bootstrap.replicates, seed: results.bootstrap.seed },
        metrics: &results.metrics,
        gap_metric: results.primary.as_deref(),
        config: &results.config,
        results: rows,
        gaps,
    };
    let mut text =
        serde_json::to_string_pretty(&doc).map_err(|e| RunError::Usage(format!("cannot encode results: {e}")))?;
    text.push('\n');
    Ok(text)
}

/// A CSV field, quoted when needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// `results.csv`'s text: one row per model × dataset × strategy × metric.
pub fn results_csv(results: &Results) -> String {
    let mut out =
        String::from("model,family,group,dataset,split,strategy,metric,n,point,mean,ci_lo,ci_hi,replicates,skipped\n");
    for (u, s) in result_rows(results) {
        let e = &s.boot.estimate;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&u.key.model),
            csv_field(u.family.as_deref().unwrap_or("")),
            u.group.map_or("", Group::as_str),
            csv_field(&u.key.dataset),
            u.key.split,
            u.key.strategy,
            csv_field(&s.name),
            u.n,
            csv_f64(e.point),
            csv_f64(e.mean),
            csv_f64(e.lo),
            csv_f64(e.hi),
            e.replicates,
            e.skipped
        );
    }
    out
}

/// `gaps.csv`'s text: one row per RQ gap.
pub fn gaps_csv(results: &Results) -> String {
    let mut out = String::from(
        "rq,family,dataset,split,metric,generalist,generalist_strategy,specialist,specialist_strategy,point,mean,ci_lo,ci_hi,replicates,skipped\n",
    );
    for g in &results.gaps {
        let e = &g.estimate;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            g.rq.as_str(),
            csv_field(&g.family),
            csv_field(&g.dataset),
            g.split,
            csv_field(&g.metric),
            csv_field(&g.generalist.model),
            g.generalist.strategy,
            csv_field(&g.specialist.model),
            g.specialist.strategy,
            csv_f64(e.point),
            csv_f64(e.mean),
            csv_f64(e.lo),
            csv_f64(e.hi),
            e.replicates,
            e.skipped
        );
    }
    out
}

/// Writes `results.json`, `results.csv` and `gaps.csv` into `dir`.
pub fn write(dir: &Path, results: &Results) -> Result<(), RunError> {
    write_file(&dir.join(RESULTS_JSON), &results_json(results)?)?;
    write_file(&dir.join(RESULTS_CSV), &results_csv(results))?;
    write_file(&dir.join(GAPS_CSV), &gaps_csv(results))
}
