//! `mvb run`, the benchmark orchestrator: every model × dataset × strategy of a [`RunConfig`],
//! appended unit by unit to `predictions.jsonl`, then results, RQ gaps, report and figures
//! computed from that file alone.
//!
//! For each model (loaded once) and dataset (opened through its plugin): the evaluation split's
//! image features are computed (or read from `<out>/cache/`); **ZS** scores them against the
//! class-name prompts ([`crate::eval::zeroshot`]); **LP** encodes the training split the same
//! way, trains the linear probe ([`crate::eval::probe`]) and predicts the evaluation split.
//! Each unit's predictions are written and flushed as soon as it is computed, with a completion
//! marker, so a killed run loses at most the unit in progress and `--resume` skips what is done.
//!
//! Files written into the output folder: `predictions.jsonl` ([`predictions`]), `results.json`,
//! `results.csv`, `gaps.csv` ([`results`]), `report.md`, `heatmap_auroc.svg`,
//! `forest_gaps.svg` ([`report`](mod@report)), and `cache/*.safetensors` (image features per model, dataset
//! and split, keyed by a fingerprint of the checkpoint files, the data and the mvb version).

pub mod config;
pub mod gaps;
pub mod predictions;
pub mod report;
pub mod results;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

pub use config::{DatasetSpec, Group, ModelSpec, RunConfig, Strategy};
pub use predictions::{PREDICTIONS_FILE, RunHeader, Unit, UnitKey};
pub use results::{BootstrapOverride, Results};

use crate::data::{Split, Task};
use crate::eval::EvalError;
use crate::eval::probe;
use crate::eval::zeroshot::{self, Encoded, ZeroShotError};
use crate::model::{ContrastiveModel, ModelError};
use crate::plugin::{Builtin, Dataset, PluginError, PluginHost, PluginSource, World};
use crate::tensor::Tensor;

/// The folder of the feature cache inside the output folder.
pub const CACHE_DIR: &str = "cache";

/// Why a run or a report failed. Every message is one line naming the file, line, unit or
/// plugin at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The configuration does not parse or is unusable.
    #[error("config {file}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Config {
        /// The config file (or `<embedded default>`).
        file: String,
        /// The 1-based line at fault, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A predictions file line is malformed.
    #[error("{}, line {line}: {message}", file.display())]
    Predictions {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file cannot be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// A plugin failed.
    #[error("{context}: {error}")]
    Plugin {
        /// What was being done.
        context: String,
        /// The plugin error.
        error: PluginError,
    },
    /// A model failed to load or run.
    #[error("model `{model}`: {error}")]
    Model {
        /// The model's name.
        model: String,
        /// The model error.
        error: ModelError,
    },
    /// Zero-shot scoring or encoding failed.
    #[error("{context}: {error}")]
    ZeroShot {
        /// The unit or split.
        context: String,
        /// The error.
        error: ZeroShotError,
    },
    /// The probe or the bootstrap refused its input.
    #[error("{context}: {error}")]
    Eval {
        /// What was being done.
        context: String,
        /// The error.
        error: EvalError,
    },
    /// Units that must be paired score different samples.
    #[error("{0}")]
    Mismatch(String),
    /// A request that cannot be carried out (an existing output, an unknown plugin, ...).
    #[error("{0}")]
    Usage(String),
    /// A figure could not be drawn.
    #[error("cannot draw a figure: {0}")]
    Plot(String),
}

impl RunError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        RunError::Io { path: path.to_owned(), error: source }
    }
}

/// Writes `text` to `path` through a temporary file and a rename, so readers never see half.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), RunError> {
    write_bytes(path, text.as_bytes())
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| RunError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| RunError::io(path, e))
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The output folder.
    pub out: PathBuf,
    /// Continue the run whose `predictions.jsonl` is in `out`.
    pub resume: bool,
    /// Replace an existing `predictions.jsonl` (the feature cache is kept).
    pub overwrite: bool,
    /// Show progress bars on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
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

fn warn(bar: &ProgressBar, message: &str) {
    bar.suspend(|| eprintln!("warning: {message}"));
}

fn bar(len: u64, show: bool, template: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Runs the benchmark of `config` into `options.out`, then writes results, report and figures.
pub fn run(host: &PluginHost, config: &RunConfig, options: &RunOptions) -> Result<RunOutcome, RunError> {
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(|e| RunError::io(out, e))?;
    let path = out.join(PREDICTIONS_FILE);
    let header = RunHeader::new(config);
    let exists = std::fs::metadata(&path).map(|m| m.len() > 0).unwrap_or(false);
    let quiet = ProgressBar::hidden();
    let (mut writer, done) = if exists && options.resume {
        let contents = predictions::read(&path)?;
        for w in contents.dropped.warnings(&path) {
            warn(&quiet, &format!("{w}; recomputing"));
        }
        let mut writer = predictions::Writer::resume(&path, contents.complete_len)?;
        let same = |h: &RunHeader| serde_json::to_value(h).ok() == serde_json::to_value(&header).ok();
        if !contents.last_header().is_some_and(same) {
            // Bootstrap and metric settings only change the results, not the units.
            let units_differ = contents.last_header().is_some_and(|h| {
                let mut old = h.config.clone();
                old.bootstrap = config.bootstrap;
                old.metrics.clone_from(&config.metrics);
                serde_json::to_value(&old).ok() != serde_json::to_value(config).ok()
            });
            if units_differ && !contents.units.is_empty() {
                warn(
                    &quiet,
                    "the configuration differs from the run being resumed; its complete units are kept as they \
                     are (use --overwrite to recompute everything)",
                );
            }
            writer.header(&header)?;
        }
        let done: HashSet<UnitKey> = contents.units.iter().map(|u| u.key.clone()).collect();
        (writer, done)
    } else if exists && !options.overwrite {
        return Err(RunError::Usage(format!(
            "{} exists: pass --resume to continue that run, or --overwrite to start it over",
            path.display()
        )));
    } else {
        let mut writer = predictions::Writer::create(&path)?;
        writer.header(&header)?;
        (writer, HashSet::new())
    };

    let key = |m: &ModelSpec, d: &DatasetSpec, s: Strategy| UnitKey {
        model: m.name.clone(),
        dataset: d.name.clone(),
        split: d.split,
        strategy: s,
    };
    let mut todo: HashMap<(usize, usize), Vec<Strategy>> = HashMap::new();
    let mut total = 0usize;
    let mut reused = 0usize;
    for (mi, m) in config.models.iter().enumerate() {
        for (di, d) in config.datasets.iter().enumerate() {
            for &s in &config.strategies {
                if done.contains(&key(m, d, s)) {
                    reused += 1;
                } else {
                    todo.entry((mi, di)).or_default().push(s);
                    total += 1;
                }
            }
        }
    }
    let progress = bar(total as u64, options.progress, "{elapsed_precise} [{bar:30}] {pos}/{len} units  {msg}");
    if reused > 0 {
        progress.suspend(|| eprintln!("resuming: {reused} units already complete, {total} to compute"));
    }
    let cache_dir = out.join(CACHE_DIR);
    let mut computed = 0usize;
    for (mi, m) in config.models.iter().enumerate() {
        if !(0..config.datasets.len()).any(|di| todo.contains_key(&(mi, di))) {
            continue;
        }
        progress.set_message(format!("loading {}", m.name));
        let model =
            load_model(&m.path, config, &progress).map_err(|error| RunError::Model { model: m.name.clone(), error })?;
        for (di, d) in config.datasets.iter().enumerate() {
            let Some(strategies) = todo.get(&(mi, di)) else {
                continue;
            };
            let mut dataset = open_dataset(host, d)?;
            let info = dataset.info().clone();
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
            let mut features = |split: Split, limit: Option<u64>| {
                cached_features(&model, m, &mut dataset, d, split, limit, &cache_dir, &progress)
            };
            let eval = features(d.split, d.limit)?;
            let mut train: Option<Encoded> = None;
            for &s in strategies {
                let k = key(m, d, s);
                progress.set_message(format!("{k}"));
                let probs = match s {
                    Strategy::Zs => {
                        let zs = |error| RunError::ZeroShot { context: format!("{k}"), error };
                        let emb = zeroshot::class_embeddings(&model, &classes, &config.templates).map_err(zs)?;
                        zeroshot::probabilities(&model, &eval.features, &emb)
                    }
                    Strategy::Lp => {
                        if train.is_none() {
                            train = Some(features(d.train_split, d.train_limit)?);
                        }
                        let t = train.as_ref().expect("just set");
                        let context = format!("{k}: linear probe on {} {}", d.name, d.train_split);
                        let labels =
                            single_labels(&t.ids, &t.labels).map_err(|m| RunError::Usage(format!("{context}: {m}")))?;
                        let head = probe::train(&t.features, &labels, info.class_names.len(), &config.probe_config())
                            .map_err(|error| RunError::Eval { context: context.clone(), error })?;
                        head.predict_proba(&eval.features).map_err(|error| RunError::Eval { context, error })?
                    }
                };
                let unit = Unit { key: k, ids: eval.ids.clone(), labels: eval.labels.clone(), scores: rows(&probs) };
                writer.unit(&unit)?;
                computed += 1;
                progress.inc(1);
            }
        }
    }
    progress.finish_and_clear();
    drop(writer);
    let (results, files) = finish(host, out, BootstrapOverride::default(), options.progress)?;
    Ok(RunOutcome { results, computed, reused, files })
}

/// Recomputes results, report and figures from `dir/predictions.jsonl`, with `bootstrap`
/// overriding the settings recorded in the file.
pub fn report(
    host: &PluginHost,
    dir: &Path,
    bootstrap: BootstrapOverride,
    progress: bool,
) -> Result<(Results, Vec<String>), RunError> {
    let path = dir.join(PREDICTIONS_FILE);
    if !path.is_file() {
        return Err(RunError::Usage(format!("no {PREDICTIONS_FILE} in {}", dir.display())));
    }
    finish(host, dir, bootstrap, progress)
}

fn finish(
    host: &PluginHost,
    dir: &Path,
    bootstrap: BootstrapOverride,
    show: bool,
) -> Result<(Results, Vec<String>), RunError> {
    let path = dir.join(PREDICTIONS_FILE);
    let contents = predictions::read(&path)?;
    let progress =
        bar(contents.units.len() as u64, show, "{elapsed_precise} [{bar:30}] {pos}/{len} units bootstrapped");
    for w in contents.dropped.warnings(&path) {
        warn(&progress, &w);
    }
    let results = results::evaluate(host, &contents, bootstrap, |done, _| progress.set_position(done as u64))?;
    progress.finish_and_clear();
    results::write(dir, &results)?;
    report::write(dir, &results)?;
    let mut files = vec![
        PREDICTIONS_FILE.to_owned(),
        results::RESULTS_JSON.to_owned(),
        results::RESULTS_CSV.to_owned(),
        results::GAPS_CSV.to_owned(),
        report::REPORT_MD.to_owned(),
    ];
    if let Some(metric) = results.primary.as_deref() {
        files.push(report::heatmap_file(metric));
    }
    files.push(report::FOREST_SVG.to_owned());
    Ok((results, files))
}

/// Opens a dataset through its plugin.
fn open_dataset(host: &PluginHost, spec: &DatasetSpec) -> Result<Dataset, RunError> {
    let plugin_err = |error| RunError::Plugin { context: format!("dataset `{}`", spec.name), error };
    if let Some(file) = &spec.plugin_file {
        let source = PluginSource::from_file(file).map_err(plugin_err)?;
        return host
            .dataset(&source, spec.data.as_deref())
            .and_then(|p| p.into_dataset(spec.catalog_name()))
            .map_err(plugin_err);
    }
    let name = spec.plugin.as_deref().unwrap_or(config::DEFAULT_DATASET_PLUGIN);
    let builtin = Builtin::find(name).filter(|b| b.world == World::Dataset).ok_or_else(|| {
        RunError::Usage(format!(
            "dataset `{}`: no built-in dataset plugin `{name}` (use plugin_file for others)",
            spec.name
        ))
    })?;
    let dir = spec.data.clone().or_else(|| builtin.default_data_dir()).ok_or_else(|| {
        RunError::Usage(format!(
            "dataset `{}`: no data folder for plugin `{name}`: set `data` in the config or MVB_DATA_DIR",
            spec.name
        ))
    })?;
    host.dataset(&builtin.source(), Some(&dir)).and_then(|p| p.into_dataset(spec.catalog_name())).map_err(plugin_err)
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

/// A file-name-safe form of `name`.
fn file_safe(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    if safe == name { safe } else { format!("{safe}-{}", &hex(&Sha256::digest(name.as_bytes()))[..8]) }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Name, size and modification time of each entry of `dir` (not recursive), sorted.
fn listing(dir: &Path) -> String {
    let mut entries: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let meta = e.metadata().ok();
            let mtime = meta
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{}:{mtime}", e.file_name().to_string_lossy(), meta.map_or(0, |m| m.len()))
        })
        .collect();
    entries.sort();
    entries.join("|")
}

/// Loads a model on the configured device and precision (the CPU, after a one-line notice,
/// when CUDA cannot start).
fn load_model(path: &str, config: &RunConfig, _progress: &ProgressBar) -> Result<ContrastiveModel, ModelError> {
    let device = config.device.resolve(config.precision()).map_err(ModelError::from)?;
    ContrastiveModel::load_on(path, &device)
}

/// What the features of one split depend on.
fn fingerprint(
    model: &ContrastiveModel,
    dataset: &Dataset,
    spec: &DatasetSpec,
    split: Split,
    limit: Option<u64>,
) -> String {
    let mut h = Sha256::new();
    let mut part = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    part("mvb image features v1");
    part(env!("CARGO_PKG_VERSION"));
    part(&model.dir().display().to_string());
    part(&listing(model.dir()));
    part(dataset.plugin());
    part(&dataset.info().name);
    if let Some(file) = &spec.plugin_file {
        part(&file.display().to_string());
        part(&std::fs::metadata(file).map(|m| m.len()).unwrap_or(0).to_string());
    }
    let data = dataset.data_dir().map(Path::to_path_buf).unwrap_or_default();
    part(&data.display().to_string());
    part(&listing(&data));
    part(split.as_str());
    part(&limit.map_or("all".to_owned(), |l| l.to_string()));
    if model.compute_tag() != "cpu" {
        part(&model.compute_tag());
    }
    hex(&h.finalize())
}

/// The features of `split`, from the cache when its fingerprint matches, else encoded (and
/// cached).
#[allow(clippy::too_many_arguments)]
fn cached_features(
    model: &ContrastiveModel,
    spec: &ModelSpec,
    dataset: &mut Dataset,
    dspec: &DatasetSpec,
    split: Split,
    limit: Option<u64>,
    cache_dir: &Path,
    progress: &ProgressBar,
) -> Result<Encoded, RunError> {
    let file = cache_dir.join(format!("{}--{}--{split}.safetensors", file_safe(&spec.name), file_safe(&dspec.name)));
    let fp = fingerprint(model, dataset, dspec, split, limit);
    if let Some(encoded) = read_cache(&file, &fp) {
        return Ok(encoded);
    }
    let context = format!("{} on {} {split}", spec.name, dspec.name);
    let encoded = zeroshot::encode_split(model, dataset, split, limit, |done, total| {
        progress.set_message(format!("{context}: encoding {done}/{total} images"));
    })
    .map_err(|error| RunError::ZeroShot { context: context.clone(), error })?;
    if encoded.ids.is_empty() {
        return Err(RunError::Usage(format!("{context}: the split is empty")));
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| RunError::io(cache_dir, e))?;
    if let Err(e) = write_cache(&file, &fp, &encoded) {
        warn(progress, &format!("cannot cache features: {e}"));
    }
    Ok(encoded)
}

/// Reads cached features; `None` when absent, stale or unreadable.
fn read_cache(file: &Path, fingerprint: &str) -> Option<Encoded> {
    let bytes = std::fs::read(file).ok()?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).ok()?;
    let meta = meta.metadata().as_ref()?;
    if meta.get("fingerprint").map(String::as_str) != Some(fingerprint) {
        return None;
    }
    let ids: Vec<String> = serde_json::from_str(meta.get("ids")?).ok()?;
    let labels: Vec<Vec<u32>> = serde_json::from_str(meta.get("labels")?).ok()?;
    let st = safetensors::SafeTensors::deserialize(&bytes).ok()?;
    let view = st.tensor("features").ok()?;
    let shape = view.shape().to_vec();
    if view.dtype() != safetensors::Dtype::F32 || shape.len() != 2 || shape[0] != ids.len() || labels.len() != ids.len()
    {
        return None;
    }
    let data: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Some(Encoded { ids, labels, features: Tensor::new(shape, data) })
}

fn write_cache(file: &Path, fingerprint: &str, encoded: &Encoded) -> Result<(), RunError> {
    let bytes: Vec<u8> = encoded.features.data().iter().flat_map(|v| v.to_le_bytes()).collect();
    let shape = encoded.features.shape().to_vec();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, &bytes)
        .map_err(|e| RunError::Usage(format!("{}: {e}", file.display())))?;
    let encode = |e: serde_json::Error| RunError::Usage(format!("{}: {e}", file.display()));
    let metadata = HashMap::from([
        ("fingerprint".to_owned(), fingerprint.to_owned()),
        ("ids".to_owned(), serde_json::to_string(&encoded.ids).map_err(encode)?),
        ("labels".to_owned(), serde_json::to_string(&encoded.labels).map_err(encode)?),
    ]);
    let out = safetensors::serialize(vec![("features", view)], Some(metadata))
        .map_err(|e| RunError::Usage(format!("{}: {e}", file.display())))?;
    write_bytes(file, &out)
}
