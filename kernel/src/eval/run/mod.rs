//! `mvb run`, the benchmark orchestrator: every model × dataset × strategy of a [`RunConfig`],
//! appended unit by unit to `predictions.jsonl`, then results, RQ gaps, report and figures
//! computed from that file alone.
//!
//! For each model (loaded once) and dataset (opened through its plugin), the strategies that
//! apply ([`Strategy::applies`]): for a contrastive model on a diagnosis set, the evaluation
//! split's image features are computed (or read from `<out>/cache/`); **ZS** scores them against
//! the class-name prompts ([`crate::eval::zeroshot`]); **LP** encodes the training split the same
//! way, trains the linear probe ([`crate::eval::probe`]) and predicts the evaluation split. For a
//! generative model on a VQA set, **OTS** answers every question ([`vqa`]).
//! Each unit's predictions are written and flushed as soon as it is computed, with a completion
//! marker, so a killed run loses at most the unit in progress and `--resume` skips what is done.
//!
//! Files written into the output folder: `predictions.jsonl` ([`predictions`]), `results.json`,
//! `results.csv`, `gaps.csv` ([`results`]), `report.md`, `heatmap_auroc.svg`,
//! `forest_gaps.svg` ([`report`](mod@report)), and `cache/*.safetensors` ([`features`]: image features
//! per model, dataset and split, keyed by a fingerprint of the checkpoint files, the data and the
//! mvb version).
//!
//! The library prints nothing: notices are `tracing` events, and progress is reported to the
//! caller's [`Progress`] callback (the CLI draws it as a progress bar).

pub mod config;
mod error;
pub mod features;
pub mod gaps;
pub mod judging;
pub mod lora;
pub mod merge;
pub mod predictions;
pub mod provenance;
pub mod report;
pub mod results;
pub mod scores;
pub mod settings;
pub mod shard;
pub mod subgroups;
pub mod vqa;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use config::{DatasetSpec, Group, ModelSpec, RunConfig, Strategy};
pub use error::RunError;
pub use features::CACHE_DIR;
pub use predictions::{Answer, Attributes, PREDICTIONS_FILE, RunHeader, Unit, UnitKey};
pub use results::{BootstrapOverride, Results};
pub use scores::{MetricScore, UnitResult};

use crate::data::{Split, Task};
use crate::eval::dataset::{PluginRef, open_dataset};
use crate::eval::probe;
use crate::eval::zeroshot::{self, Encoded};
use crate::model::{ContrastiveModel, ModelError};
use crate::plugin::{Dataset, PluginHost};
use crate::tensor::Tensor;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The output folder.
    pub out: PathBuf,
    /// Continue the run whose `predictions.jsonl` is in `out`.
    pub resume: bool,
    /// Replace an existing `predictions.jsonl` (the feature cache is kept).
    pub overwrite: bool,
    /// Run only this shard's units ([`shard`]).
    pub shard: Option<shard::Shard>,
}

/// The two stages of a run: predicting units, then scoring them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Computing the predictions of the units not yet complete (one step per unit).
    Predict,
    /// Judging the open VQA answers without a verdict (one step per distinct answer).
    Judge,
    /// Scoring every complete unit with the metrics and the bootstrap (one step per unit).
    Score,
}

/// What a run or a report is doing, for the caller to show; the library itself prints nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// A stage begins, with `total` steps.
    Begin {
        /// Which stage.
        stage: Stage,
        /// Its number of steps.
        total: u64,
    },
    /// What the current stage is doing now (a unit, a model loading, images encoded).
    Status(String),
    /// `done` steps of the current stage are complete.
    Done(u64),
    /// The current stage is over.
    End,
}

/// What a run did.
#[derive(Debug)]
pub struct RunOutcome {
    /// The results of everything in the predictions file.
    pub results: Results,
    /// Units computed by this run.
    pub computed: usize,
    /// Units found complete (resumed).
    pub reused: usize,
    /// The files written, relative to the output folder.
    pub files: Vec<String>,
}

/// Runs the benchmark of `config` into `options.out`, then writes results, report and figures,
/// reporting what it does to `progress`.
pub fn run(
    host: &PluginHost,
    config: &RunConfig,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<RunOutcome, RunError> {
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(|e| RunError::io(out, e))?;
    // What a killed earlier run left half-written (never read: the renames did not happen).
    for dir in [out.to_path_buf(), features::cache_dir(out)] {
        let removed = crate::util::remove_stale_temporaries(&dir);
        if removed > 0 {
            tracing::info!("removed {removed} temporary files a killed run left in {}", dir.display());
        }
    }
    check_named(host, config)?;
    let kinds = Kinds::of(host, config)?;
    let attributes = subgroup_attributes(host, config)?;
    let (writer, done, provenance) = open_predictions(config, options)?;
    let plan = Plan::new(config, &done, &kinds, options.shard);
    if plan.reused > 0 {
        tracing::info!("resuming: {} units already complete, {} to compute", plan.reused, plan.total);
    }
    progress(Progress::Begin { stage: Stage::Predict, total: plan.total as u64 });
    let mut predictor = Predictor {
        host,
        config,
        out,
        cache_dir: features::cache_dir(out),
        provenance,
        writer,
        progress: &mut *progress,
        computed: 0,
        attributes,
    };
    for (mi, m) in config.models.iter().enumerate() {
        let datasets: Vec<(usize, &Vec<Strategy>)> =
            (0..config.datasets.len()).filter_map(|di| plan.todo.get(&(mi, di)).map(|s| (di, s))).collect();
        if datasets.is_empty() {
            continue;
        }
        (predictor.progress)(Progress::Status(format!("loading {}", m.name)));
        let model = load_model(&m.path, config, kinds.generative[mi])
            .map_err(|error| RunError::Model { model: m.name.clone(), error })?;
        for (di, strategies) in datasets {
            let d = &config.datasets[di];
            match &model {
                Loaded::Contrastive(model) => predictor.dataset_units(model, m, d, strategies)?,
                Loaded::Generative(model) => predictor.vqa_units(model, m, d, strategies)?,
            }
        }
    }
    let computed = predictor.computed;
    drop(predictor);
    progress(Progress::End);
    judge(host, config, out, progress)?;
    let (results, files) = finish(host, out, BootstrapOverride::default(), progress)?;
    Ok(RunOutcome { results, computed, reused: plan.reused, files })
}

/// With `[report] subgroups`, the sample attributes of every dataset's evaluated split, read
/// before the first prediction so that an attribute no dataset gives is refused at once.
fn subgroup_attributes(
    host: &PluginHost,
    config: &RunConfig,
) -> Result<HashMap<String, HashMap<String, Attributes>>, RunError> {
    let mut out = HashMap::new();
    if config.report.subgroups.is_empty() {
        return Ok(out);
    }
    for d in &config.datasets {
        out.insert(d.name.clone(), subgroups::read(&mut open(host, d)?, &d.name, (d.split, d.limit))?);
    }
    subgroups::check(&config.report, out.values())?;
    Ok(out)
}

/// Judges the open answers of the run's complete VQA units that have no verdict yet.
fn judge(
    host: &PluginHost,
    config: &RunConfig,
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), RunError> {
    if config.judge.is_none() {
        return Ok(());
    }
    let contents = predictions::read(&out.join(PREDICTIONS_FILE))?;
    let made = judging::judge_run(host, config, out, &contents, progress)?;
    if made > 0 {
        tracing::info!("judge: {made} verdicts made");
    }
    Ok(())
}

/// Checks before the first prediction that every metric plugin loads and every model path
/// exists (the datasets are opened when the run is planned), so that a typo does not surface
/// after hours of predictions.
fn check_named(host: &PluginHost, config: &RunConfig) -> Result<(), RunError> {
    crate::eval::metrics::Scorer::new(host, &config.metrics)
        .map_err(|error| RunError::Metric { context: "loading the metrics".into(), error: Box::new(error) })?;
    for m in &config.models {
        let path = Path::new(&m.path);
        let found = if vqa::is_gguf(path) {
            if path.is_file() {
                Ok(())
            } else {
                Err(ModelError::Io { path: path.to_owned(), source: std::io::ErrorKind::NotFound.into() })
            }
        } else {
            crate::model::resolve(&m.path).map(drop)
        };
        found.map_err(|error| RunError::Model { model: m.name.clone(), error })?;
    }
    if let Some(j) = &config.judge {
        let judge_err = |error| RunError::Judge { context: format!("judge `{}`", j.plugin), error };
        host.judge(&j.source()?, None).map_err(judge_err)?;
        let model = Path::new(&j.model);
        let found = if vqa::is_gguf(model) { model.is_file() } else { model.join("config.json").is_file() };
        if !found {
            return Err(RunError::Usage(format!(
                "[judge] model {}: not found (a .gguf file or a Hugging Face folder with config.json)",
                j.model
            )));
        }
    }
    Ok(())
}

/// Opens the predictions file of a run: resumed (its complete units returned), created, or
/// refused when it exists and neither resuming nor overwriting was asked for; with the content
/// hashes of the run's inputs.
fn open_predictions(
    config: &RunConfig,
    options: &RunOptions,
) -> Result<(predictions::Writer, HashSet<UnitKey>, provenance::Provenance), RunError> {
    let path = options.out.join(PREDICTIONS_FILE);
    let provenance = provenance::Provenance::of(config)?;
    let header = RunHeader { provenance: Some(provenance.clone()), shard: options.shard, ..RunHeader::new(config) };
    let exists = std::fs::metadata(&path).map(|m| m.len() > 0).unwrap_or(false);
    if exists && !options.resume && !options.overwrite {
        return Err(RunError::Usage(format!(
            "{} exists: pass --resume to continue that run, or --overwrite to start it over",
            path.display()
        )));
    }
    if !(exists && options.resume) {
        let judgements = options.out.join(judging::JUDGEMENTS_FILE);
        if judgements.exists() {
            std::fs::remove_file(&judgements).map_err(|e| RunError::io(&judgements, e))?;
        }
        let mut writer = predictions::Writer::create(&path)?;
        writer.header(&header)?;
        return Ok((writer, HashSet::new(), provenance));
    }
    let contents = predictions::read(&path)?;
    for w in contents.dropped.warnings(&path) {
        tracing::warn!("{w}; recomputing");
    }
    let mut writer = predictions::Writer::resume(&path, contents.complete_len)?;
    let same = |h: &RunHeader| serde_json::to_value(h).ok() == serde_json::to_value(&header).ok();
    if !contents.last_header().is_some_and(same) {
        // Bootstrap and metric settings only change the results, not the units: a new header
        // records them. Anything else would mix units computed two ways: refused.
        if let Some(h) = contents.last_header().filter(|_| !contents.units.is_empty()) {
            let mut old = h.config.clone();
            old.bootstrap = config.bootstrap;
            old.metrics.clone_from(&config.metrics);
            old.report.clone_from(&config.report);
            let mut changed = changed_settings(&old, config);
            if let Some(recorded) = &h.provenance {
                changed.extend(provenance.changes(recorded));
            }
            if !changed.is_empty() {
                return Err(RunError::Usage(format!(
                    "{}: cannot resume: the configuration or its inputs changed ({}); its finished units were computed \
                     with the old ones (use --overwrite to start over, or --out for a new folder)",
                    path.display(),
                    changed.join(", ")
                )));
            }
        }
        writer.header(&header)?;
    }
    Ok((writer, contents.units.iter().map(|u| u.key.clone()).collect(), provenance))
}

/// The settings that differ between two configurations: top-level keys, and models and
/// datasets by name.
fn changed_settings(old: &RunConfig, new: &RunConfig) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return vec!["the configuration".into()];
    };
    let mut out = Vec::new();
    for (key, value) in &a {
        if b.get(key) == Some(value) {
            continue;
        }
        match key.as_str() {
            "models" | "datasets" => {
                let named = |v: Option<&serde_json::Value>| -> Vec<(String, serde_json::Value)> {
                    v.and_then(serde_json::Value::as_array)
                        .map(|l| l.iter().map(|x| (x["name"].as_str().unwrap_or("?").to_owned(), x.clone())).collect())
                        .unwrap_or_default()
                };
                let (olds, news) = (named(Some(value)), named(b.get(key)));
                for (name, v) in &olds {
                    match news.iter().find(|(n, _)| n == name) {
                        Some((_, w)) if w == v => {}
                        Some(_) => out.push(format!("{} `{name}`", &key[..key.len() - 1])),
                        None => {}
                    }
                }
            }
            other => out.push(format!("`{other}`")),
        }
    }
    out
}

/// The units still to compute, by (model, dataset) index.
struct Plan {
    todo: HashMap<(usize, usize), Vec<Strategy>>,
    total: usize,
    reused: usize,
}

impl Plan {
    /// The units of `config` that apply, belong to `shard` (all without one) and are not `done`.
    fn new(config: &RunConfig, done: &HashSet<UnitKey>, kinds: &Kinds, shard: Option<shard::Shard>) -> Plan {
        let mut plan = Plan { todo: HashMap::new(), total: 0, reused: 0 };
        let units = kinds.units(config).enumerate().filter(|(i, _)| shard.is_none_or(|s| s.owns(*i)));
        for (_, (mi, di, s)) in units {
            if done.contains(&unit_key(&config.models[mi], &config.datasets[di], s)) {
                plan.reused += 1;
            } else {
                plan.todo.entry((mi, di)).or_default().push(s);
                plan.total += 1;
            }
        }
        plan
    }
}

/// What decides which strategies apply: each dataset's task and whether each model generates.
struct Kinds {
    tasks: Vec<Task>,
    generative: Vec<bool>,
}

impl Kinds {
    /// Opens each dataset of `config` for its task and inspects each model's checkpoint.
    fn of(host: &PluginHost, config: &RunConfig) -> Result<Kinds, RunError> {
        let tasks = config.datasets.iter().map(|d| open(host, d).map(|ds| ds.info().task)).collect::<Result<_, _>>()?;
        let generative = config.models.iter().map(|m| vqa::is_generative(&m.path)).collect();
        Ok(Kinds { tasks, generative })
    }

    /// The (model, dataset, strategy) units of `config` that apply ([`Strategy::applies`]), in
    /// configuration order.
    fn units<'a>(&'a self, config: &'a RunConfig) -> impl Iterator<Item = (usize, usize, Strategy)> + 'a {
        (0..config.models.len()).flat_map(move |mi| {
            (0..config.datasets.len()).flat_map(move |di| {
                config
                    .strategies
                    .iter()
                    .filter(move |s| s.applies(self.tasks[di], self.generative[mi]))
                    .map(move |&s| (mi, di, s))
            })
        })
    }
}

fn unit_key(m: &ModelSpec, d: &DatasetSpec, s: Strategy) -> UnitKey {
    UnitKey { model: m.name.clone(), dataset: d.name.clone(), split: d.split, strategy: s }
}

/// Computes units and appends them to the predictions file.
struct Predictor<'a> {
    host: &'a PluginHost,
    config: &'a RunConfig,
    out: &'a Path,
    cache_dir: PathBuf,
    /// The content hashes of the run's inputs (the feature cache's key).
    provenance: provenance::Provenance,
    writer: predictions::Writer,
    progress: &'a mut dyn FnMut(Progress),
    computed: usize,
    /// The sample attributes of each dataset's evaluated split, by dataset name and sample id.
    attributes: HashMap<String, HashMap<String, Attributes>>,
}

impl Predictor<'_> {
    /// Computes and writes the units of model `m` on dataset `d` with `strategies`.
    fn dataset_units(
        &mut self,
        model: &ContrastiveModel,
        m: &ModelSpec,
        d: &DatasetSpec,
        strategies: &[Strategy],
    ) -> Result<(), RunError> {
        let mut dataset = open(self.host, d)?;
        let classes = class_names(&dataset, d)?;
        let eval = self.features(model, m, &mut dataset, d, (d.split, d.limit))?;
        let attributes = self.attributes(&mut dataset, d, &eval.ids)?;
        let mut train: Option<Encoded> = None;
        for &s in strategies {
            let k = unit_key(m, d, s);
            (self.progress)(Progress::Status(k.to_string()));
            let probs = match s {
                Strategy::Zs => {
                    let zs = |error| RunError::ZeroShot { context: k.to_string(), error };
                    let emb = zeroshot::class_embeddings(model, &classes, &self.config.templates).map_err(zs)?;
                    zeroshot::probabilities(model, &eval.features, &emb)
                }
                Strategy::Lp => {
                    if train.is_none() {
                        train = Some(self.features(model, m, &mut dataset, d, (d.train_split, d.train_limit))?);
                    }
                    let context = format!("{k}: linear probe on {} {}", d.name, d.train_split);
                    let t =
                        train.as_ref().ok_or_else(|| RunError::Usage(format!("{context}: no training features")))?;
                    linear_probe(model, (t, &eval), classes.len(), &self.config.probe_config(), &context)?
                }
                Strategy::Lora => {
                    let job = lora::Job {
                        model: (&m.name, &m.path),
                        dataset: d,
                        classes: classes.len(),
                        out: self.out,
                        settings: self.config.lora,
                    };
                    let progress = &mut *self.progress;
                    lora::probabilities(model, &mut dataset, &job, &eval, &mut |s| progress(Progress::Status(s)))?
                }
                Strategy::Ots => return Err(RunError::Usage(format!("{k}: OTS needs a generative model"))),
            };
            let named: Vec<String> = eval.ids.iter().map(|id| format!("sample `{id}`")).collect();
            zeroshot::check_finite(&probs, &named, "class probability")
                .map_err(|error| RunError::ZeroShot { context: k.to_string(), error })?;
            self.writer.unit(&Unit {
                key: k,
                ids: eval.ids.clone(),
                labels: eval.labels.clone(),
                scores: rows(&probs),
                answers: Vec::new(),
                attributes: attributes.clone(),
            })?;
            self.computed += 1;
            (self.progress)(Progress::Done(self.computed as u64));
        }
        Ok(())
    }

    /// Computes and writes the VQA units (OTS) of generative model `m` on dataset `d`.
    fn vqa_units(
        &mut self,
        model: &vqa::Generator,
        m: &ModelSpec,
        d: &DatasetSpec,
        strategies: &[Strategy],
    ) -> Result<(), RunError> {
        let mut dataset = open(self.host, d)?;
        for &s in strategies {
            let k = unit_key(m, d, s);
            let progress = &mut *self.progress;
            progress(Progress::Status(k.to_string()));
            let (ids, answers) =
                vqa::answers(model, &mut dataset, (d.split, d.limit), &self.config.generation, &mut |done, total| {
                    progress(Progress::Status(format!("{k}: {done}/{total} questions answered")));
                })?;
            let attributes = self.attributes(&mut dataset, d, &ids)?;
            self.writer.unit(&Unit { key: k, ids, labels: Vec::new(), scores: Vec::new(), answers, attributes })?;
            self.computed += 1;
            (self.progress)(Progress::Done(self.computed as u64));
        }
        Ok(())
    }

    /// The attributes of the samples `ids` of `d`'s evaluated split (read once per dataset).
    fn attributes(
        &mut self,
        dataset: &mut Dataset,
        d: &DatasetSpec,
        ids: &[String],
    ) -> Result<Vec<Attributes>, RunError> {
        if !self.attributes.contains_key(&d.name) {
            let read = subgroups::read(dataset, &d.name, (d.split, d.limit))?;
            self.attributes.insert(d.name.clone(), read);
        }
        Ok(self.attributes.get(&d.name).map(|by_id| subgroups::of_ids(ids, by_id)).unwrap_or_default())
    }

    /// The features of one split of `d` (cached).
    fn features(
        &mut self,
        model: &ContrastiveModel,
        m: &ModelSpec,
        dataset: &mut Dataset,
        d: &DatasetSpec,
        (split, limit): (Split, Option<u64>),
    ) -> Result<Encoded, RunError> {
        let hash = |map: &std::collections::BTreeMap<String, String>, name: &str| map.get(name).cloned();
        let inputs = features::Inputs {
            model: hash(&self.provenance.models, &m.name),
            data: hash(&self.provenance.data, &d.name),
            plugin: hash(&self.provenance.dataset_plugins, &d.name),
        };
        let request = features::Request { model: &m.name, dataset: d, split, limit, inputs };
        let progress = &mut *self.progress;
        features::features(&self.cache_dir, model, dataset, request, &mut |s| progress(Progress::Status(s)))
    }
}

/// Opens a dataset of the configuration through its plugin (the built-in `medmnist` unless
/// the configuration names another plugin or a plugin file).
fn open(host: &PluginHost, spec: &DatasetSpec) -> Result<Dataset, RunError> {
    let plugin = match (&spec.plugin_file, &spec.plugin) {
        (Some(file), _) => PluginRef::File(file),
        (None, Some(name)) => PluginRef::Builtin(name),
        (None, None) => PluginRef::Builtin(config::DEFAULT_DATASET_PLUGIN),
    };
    open_dataset(host, spec.catalog_name(), plugin, spec.data.as_deref())
        .map_err(|error| RunError::Dataset { dataset: spec.name.clone(), error })
}

/// The class names of the zero-shot prompts: the configuration's, else the dataset's. Only
/// diagnosis datasets are scored.
fn class_names(dataset: &Dataset, d: &DatasetSpec) -> Result<Vec<String>, RunError> {
    let info = dataset.info();
    if info.task != Task::Diagnosis {
        return Err(RunError::Usage(format!(
            "dataset `{}` is a {} dataset; mvb run scores diagnosis datasets",
            d.name, info.task
        )));
    }
    let classes = d.classes.clone().unwrap_or_else(|| info.class_names.clone());
    if classes.len() != info.class_names.len() {
        return Err(RunError::Usage(format!(
            "dataset `{}`: `classes` names {} classes, the dataset has {}",
            d.name,
            classes.len(),
            info.class_names.len()
        )));
    }
    Ok(classes)
}

/// FT-LP: a linear head trained on `train`, its class probabilities on `eval`.
fn linear_probe(
    model: &ContrastiveModel,
    (train, eval): (&Encoded, &Encoded),
    classes: usize,
    config: &probe::ProbeConfig,
    context: &str,
) -> Result<Tensor, RunError> {
    let labels = single_labels(&train.ids, &train.labels).map_err(|m| RunError::Usage(format!("{context}: {m}")))?;
    let eval_err = |error| RunError::Eval { context: context.to_owned(), error };
    // The probe's part of the features (BLIP-2: the vision tower's class token).
    let (train_part, eval_part) = (model.probe_features(&train.features), model.probe_features(&eval.features));
    let head =
        probe::train(train_part.as_ref().unwrap_or(&train.features), &labels, classes, config).map_err(eval_err)?;
    head.predict_proba(eval_part.as_ref().unwrap_or(&eval.features)).map_err(eval_err)
}

/// Recomputes results, report and figures from `dir/predictions.jsonl`, with `bootstrap`
/// overriding the settings recorded in the file, reporting the scoring to `progress`.
pub fn report(
    host: &PluginHost,
    dir: &Path,
    bootstrap: BootstrapOverride,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Results, Vec<String>), RunError> {
    let path = dir.join(PREDICTIONS_FILE);
    if !path.is_file() {
        return Err(RunError::Usage(format!("no {PREDICTIONS_FILE} in {}", dir.display())));
    }
    let contents = predictions::read(&path)?;
    if let Some(header) = contents.last_header() {
        let missing = missing_units(host, header, &contents);
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(5).map(ToString::to_string).collect();
            let more = if missing.len() > 5 { format!(" and {} more", missing.len() - 5) } else { String::new() };
            tracing::warn!(
                "the run is unfinished, units missing: {} ({}{more}); `mvb run CONFIG --out {} --resume` computes them",
                missing.len(),
                shown.join(", "),
                dir.display()
            );
        }
    }
    finish(host, dir, bootstrap, progress)
}

/// The units `header`'s run (its shard's, if it is one) plans that `contents` does not hold
/// complete (empty when a dataset cannot be opened to tell which strategies apply to it).
fn missing_units(host: &PluginHost, header: &RunHeader, contents: &predictions::Contents) -> Vec<UnitKey> {
    let config = &header.config;
    let Ok(kinds) = Kinds::of(host, config) else {
        return Vec::new();
    };
    let done: HashSet<UnitKey> = contents.units.iter().map(|u| u.key.clone()).collect();
    kinds
        .units(config)
        .enumerate()
        .filter(|(i, _)| header.shard.is_none_or(|s| s.owns(*i)))
        .map(|(_, (mi, di, s))| unit_key(&config.models[mi], &config.datasets[di], s))
        .filter(|k| !done.contains(k))
        .collect()
}

fn finish(
    host: &PluginHost,
    dir: &Path,
    bootstrap: BootstrapOverride,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Results, Vec<String>), RunError> {
    let path = dir.join(PREDICTIONS_FILE);
    let contents = predictions::read(&path)?;
    for w in contents.dropped.warnings(&path) {
        tracing::warn!("{w}");
    }
    let judgements = judging::Judgements::read(dir)?;
    progress(Progress::Begin { stage: Stage::Score, total: contents.units.len() as u64 });
    let results =
        results::evaluate(host, &contents, &judgements, bootstrap, |done, _| progress(Progress::Done(done as u64)))?;
    progress(Progress::End);
    results::write(dir, &results)?;
    report::write(dir, &results)?;
    let mut files = vec![
        PREDICTIONS_FILE.to_owned(),
        results::RESULTS_JSON.to_owned(),
        results::RESULTS_CSV.to_owned(),
        results::GAPS_CSV.to_owned(),
        report::REPORT_MD.to_owned(),
    ];
    for metric in results.primary.iter().chain(&results.vqa_primary) {
        files.push(report::heatmap_file(metric));
    }
    files.push(report::FOREST_SVG.to_owned());
    Ok((results, files))
}

/// The single label of each sample (the probe is single-label).
fn single_labels(ids: &[String], labels: &[Vec<u32>]) -> Result<Vec<u32>, String> {
    ids.iter()
        .zip(labels)
        .map(|(id, l)| match l.as_slice() {
            [one] => Ok(*one),
            _ => Err(format!("sample `{id}` has {} labels; the linear probe needs exactly one", l.len())),
        })
        .collect()
}

/// A `[n, c]` tensor as rows.
fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    (0..t.rows()).map(|i| t.row(i).to_vec()).collect()
}

/// A model of a run, loaded.
enum Loaded {
    /// CLIP, SigLIP: diagnosis by ZS and FT-LP.
    Contrastive(Box<ContrastiveModel>),
    /// LLaVA or a decoder: VQA by OTS.
    Generative(Box<vqa::Generator>),
}

/// Loads a model on the configured device and precision (the CPU, after a one-line notice,
/// when CUDA cannot start).
fn load_model(path: &str, config: &RunConfig, generative: bool) -> Result<Loaded, ModelError> {
    let device = config.device.resolve(config.precision()).map_err(ModelError::from)?;
    Ok(if generative {
        Loaded::Generative(Box::new(vqa::Generator::load(path, &device)?))
    } else {
        Loaded::Contrastive(Box::new(ContrastiveModel::load_on(path, &device)?))
    })
}
