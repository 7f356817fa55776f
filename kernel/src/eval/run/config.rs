//! The `mvb run` configuration (TOML): models with their family, group and in-distribution
//! datasets, datasets with their plugin, strategies, metrics, bootstrap and probe settings, and
//! the embedded default (the demo models × the vendored MedMNIST sets × {ZS, FT-LP}).
//!
//! Relative paths (model folders, data folders, plugin files) are resolved against the config
//! file's folder; those of the embedded default against the repository (the current folder when
//! it holds `data/models`, else the source tree the binary was built from). A model `path` that
//! is not an existing folder is kept as given: a Hugging Face id for the local HF cache.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::RunError;
use super::settings::{JudgeSettings, LoraSettings};
use crate::backend::DeviceRequest;
use crate::backend::Precision;
use crate::data::{Split, Task};
use crate::eval::bootstrap::{BootstrapConfig, DEFAULT_REPLICATES, DEFAULT_SEED, Generator};
use crate::eval::metrics::Metric;
use crate::eval::probe::ProbeConfig;

/// The embedded default configuration of `mvb run` without arguments.
pub const DEFAULT_CONFIG: &str = r#"# mvb run's embedded default, both halves of MedVLMBench on the vendored MedMNIST test sets:
# diagnosis with the demo generalist and specialist CLIP models (zero-shot, linear-probed and
# LoRA-fine-tuned),
# and VQA (the sets' VQA views, off the shelf) with the demo generalist and specialist LLaVA
# models, all shipped in data/models. Each strategy runs where it applies.
strategies = ["zs", "lp", "lora", "ots"]
metrics = ["auroc", "accuracy", "balanced-accuracy", "vqa"]
templates = ["a photo of {}"]

[bootstrap]
replicates = 1000
seed = 42
generator = "pcg64"   # numpy default_rng, as MedVLMBench; "randomstate" for the legacy stream

# Greedy answers; the demo VLMs have a 128-position context and answer in a few tokens.
[generation]
max_new_tokens = 32
batch_size = 16

# MedVLMBench's GPT score on open questions, judged by SmolLM2-135M-Instruct when
# `bash tools/fetch_smollm2.sh` has put it here (without it the run says so and reports F1).
# A 135M judge only shows the pipeline working: its scores say little about the answers. Its
# replies are constrained to start with a score (free-form, it almost never writes one); point
# `model` at a bigger local GGUF or Hugging Face folder for scores worth reading.
[judge]
model = "target/models/SmolLM2-135M-Instruct.Q4_1.gguf"
plugin = "gpt-score"
constrained = true
optional = true

# MedVLMBench's FT-LP settings. The demo models are tiny: this learning rate moves their
# heads only a little in 10 epochs; raise lr or epochs to see a fitted probe.
[probe]
lr = 5e-5
epochs = 10
batch_size = 8
weight_decay = 0.0
seed = 42

# MedVLMBench's FT-LoRA settings (PEFT LoRA on the image tower and a linear head), trained for
# real: the original's LoRA never trained (its features were computed under no_grad).
[lora]
r = 8
alpha = 32.0
dropout = 0.05
lr = 5e-5
epochs = 10
batch_size = 8
weight_decay = 0.0
seed = 42

[[models]]
name = "demo-generalist"
path = "data/models/demo-generalist"
family = "clip"
group = "generalist"
id_datasets = []

[[models]]
name = "demo-specialist"
path = "data/models/demo-specialist"
family = "clip"
group = "specialist"
id_datasets = ["pneumoniamnist", "retinamnist"]

[[models]]
name = "demo-vlm-generalist"
path = "data/models/demo-vlm-generalist"
family = "llava"
group = "generalist"
id_datasets = []

[[models]]
name = "demo-vlm-specialist"
path = "data/models/demo-vlm-specialist"
family = "llava"
group = "specialist"
id_datasets = ["pneumoniamnist-vqa", "retinamnist-vqa"]

[[datasets]]
name = "pneumoniamnist"
plugin = "medmnist"

[[datasets]]
name = "breastmnist"
plugin = "medmnist"

[[datasets]]
name = "retinamnist"
plugin = "medmnist"

[[datasets]]
name = "pneumoniamnist-vqa"
plugin = "medmnist"

[[datasets]]
name = "breastmnist-vqa"
plugin = "medmnist"

[[datasets]]
name = "retinamnist-vqa"
plugin = "medmnist"
"#;

/// The built-in dataset plugin used when a dataset names none.
pub const DEFAULT_DATASET_PLUGIN: &str = "medmnist";
/// The most bootstrap replicates a run may ask for (the index sets of a dataset are held in
/// memory: replicates × samples × 4 bytes).
pub const MAX_REPLICATES: usize = 100_000;
/// The output folder used when neither the config nor the command line names one.
pub const DEFAULT_OUT: &str = "mvb-out";

/// How a model is adapted to a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Zero-shot ("off the shelf"): prompts from the class names.
    Zs,
    /// FT-LP: a linear probe on frozen image features.
    Lp,
    /// Off the shelf (VQA): a generative model answers each question as it is, greedy.
    Ots,
    /// FT-LoRA: LoRA on the image tower and a linear head, trained on the training split.
    Lora,
}

impl Strategy {
    /// The name used in files (`zs`, `lp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Zs => "zs",
            Strategy::Lp => "lp",
            Strategy::Ots => "ots",
            Strategy::Lora => "lora",
        }
    }

    /// The paper's name (`ZS`, `FT-LP`).
    pub fn label(self) -> &'static str {
        match self {
            Strategy::Zs => "ZS",
            Strategy::Lp => "FT-LP",
            Strategy::Ots => "OTS",
            Strategy::Lora => "FT-LoRA",
        }
    }

    /// Whether the strategy trains on the dataset (counts as "fine-tuned" in the RQ gaps).
    pub fn is_fine_tuned(self) -> bool {
        matches!(self, Strategy::Lp | Strategy::Lora)
    }

    /// Whether the strategy applies to a `task` dataset with a generative (else contrastive)
    /// model: ZS and FT-LP score diagnosis sets with contrastive models, OTS answers VQA sets
    /// with generative ones. Other pairs are not units of a run.
    pub fn applies(self, task: Task, generative: bool) -> bool {
        match self {
            Strategy::Zs | Strategy::Lp | Strategy::Lora => task == Task::Diagnosis && !generative,
            Strategy::Ots => task == Task::Vqa && generative,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Generalist or specialist (medical) model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// A general-domain model.
    Generalist,
    /// A medical model.
    Specialist,
}

impl Group {
    /// `generalist` or `specialist`.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Generalist => "generalist",
            Group::Specialist => "specialist",
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One model of the benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The name used in predictions, results and reports.
    pub name: String,
    /// A folder in Hugging Face layout, or a model id in the local HF cache.
    pub path: String,
    /// The family label the RQ gaps are computed within (e.g. `clip`).
    pub family: String,
    /// Generalist or specialist.
    pub group: Group,
    /// The datasets this model saw in training (in-distribution); the others are OOD.
    #[serde(default)]
    pub id_datasets: Vec<String>,
}

/// One dataset of the benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// The name used in predictions, results and reports.
    pub name: String,
    /// The name in the plugin's catalog, when it differs from `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// A built-in dataset plugin (default `medmnist`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// A third-party dataset plugin file (`.wasm`), instead of `plugin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_file: Option<PathBuf>,
    /// The data folder (default: the built-in plugin's vendored data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    /// The split evaluated (default `test`).
    #[serde(default = "default_split")]
    pub split: Split,
    /// The split the probe is trained on (default `train`).
    #[serde(default = "default_train_split")]
    pub train_split: Split,
    /// Class names for the zero-shot prompts, in label order, instead of the dataset's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// Evaluate only the first N samples of `split`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Train the probe on only the first N samples of `train_split`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<u64>,
}

impl DatasetSpec {
    /// The name to open in the plugin's catalog.
    pub fn catalog_name(&self) -> &str {
        self.dataset.as_deref().unwrap_or(&self.name)
    }
}

fn default_split() -> Split {
    Split::Test
}

fn default_train_split() -> Split {
    Split::Train
}

/// Bootstrap settings (MedVLMBench: 1,000 replicates, seed 42).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapSettings {
    /// Number of replicates.
    pub replicates: usize,
    /// Seed of the generator the index sets are drawn from.
    pub seed: u32,
    /// `pcg64` (numpy's `default_rng`, MedVLMBench's; the default) or `randomstate` (numpy's
    /// legacy `RandomState`).
    pub generator: Generator,
}

impl Default for BootstrapSettings {
    fn default() -> Self {
        BootstrapSettings { replicates: DEFAULT_REPLICATES, seed: DEFAULT_SEED, generator: Generator::default() }
    }
}

impl From<BootstrapSettings> for BootstrapConfig {
    fn from(s: BootstrapSettings) -> Self {
        BootstrapConfig { replicates: s.replicates, seed: s.seed, generator: s.generator }
    }
}

/// How generative models answer (MedVLMBench: greedy decoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerationSettings {
    /// New tokens per answer at most.
    pub max_new_tokens: usize,
    /// Questions answered together (left-padded; greedy results equal one at a time).
    pub batch_size: usize,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        GenerationSettings { max_new_tokens: 64, batch_size: 16 }
    }
}

/// Linear-probe settings; the defaults are MedVLMBench's FT-LP.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSettings {
    /// AdamW learning rate.
    pub lr: f64,
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Seed of the initialisation and shuffling.
    pub seed: u32,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        let p = ProbeConfig::default();
        ProbeSettings {
            lr: p.lr,
            epochs: p.epochs,
            batch_size: p.batch_size,
            weight_decay: p.weight_decay,
            seed: p.seed,
        }
    }
}

impl From<ProbeSettings> for ProbeConfig {
    fn from(s: ProbeSettings) -> Self {
        ProbeConfig { lr: s.lr, epochs: s.epochs, batch_size: s.batch_size, weight_decay: s.weight_decay, seed: s.seed }
    }
}

fn default_strategies() -> Vec<Strategy> {
    vec![Strategy::Zs, Strategy::Lp, Strategy::Ots]
}

fn default_metrics() -> Vec<Metric> {
    vec![Metric::Builtin("auroc")]
}

fn default_templates() -> Vec<String> {
    vec![crate::eval::zeroshot::DEFAULT_TEMPLATE.to_owned()]
}

/// What the report adds to the main results.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Sample attributes whose every value gets its own rows and the gap between its best and
    /// worst value (`["sex", "age_group"]`; `age_group` is derived from a whole-number `age`).
    #[serde(default)]
    pub subgroups: Vec<String>,
    /// The config file and the line of `subgroups`, for errors found once the datasets are open.
    #[serde(skip)]
    pub at: Option<(String, Option<usize>)>,
}

impl ReportSettings {
    /// Whether nothing is asked for (then `[report]` is not recorded).
    pub fn is_empty(&self) -> bool {
        self.subgroups.is_empty()
    }

    /// An error about `subgroups`, at its line.
    pub fn error(&self, message: String) -> RunError {
        let (file, line) = self.at.clone().unwrap_or_else(|| ("recorded in the predictions file".to_owned(), None));
        RunError::Config { file, line, message }
    }
}

impl PartialEq for ReportSettings {
    /// Where the settings were read is no part of them.
    fn eq(&self, other: &Self) -> bool {
        self.subgroups == other.subgroups
    }
}

/// A whole benchmark run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The models, in report order.
    pub models: Vec<ModelSpec>,
    /// The datasets, in report order.
    pub datasets: Vec<DatasetSpec>,
    /// The strategies (default `["zs", "lp", "ots"]`); each applies where it can
    /// ([`Strategy::applies`]).
    #[serde(default = "default_strategies")]
    pub strategies: Vec<Strategy>,
    /// Metric plugins: built-in names or `.wasm` files (default `["auroc"]`). The first score
    /// named `auroc`, else the first score of the first metric, is the one the RQ gaps use.
    #[serde(default = "default_metrics")]
    pub metrics: Vec<Metric>,
    /// Zero-shot prompt templates; several are ensembled (default `["a photo of {}"]`).
    #[serde(default = "default_templates")]
    pub templates: Vec<String>,
    /// Bootstrap settings.
    #[serde(default)]
    pub bootstrap: BootstrapSettings,
    /// Linear-probe settings.
    #[serde(default)]
    pub probe: ProbeSettings,
    /// FT-LoRA settings (used by the `lora` strategy).
    #[serde(default)]
    pub lora: LoraSettings,
    /// Generation settings of VQA units.
    #[serde(default)]
    pub generation: GenerationSettings,
    /// Subgroup results (`[report] subgroups = ["sex"]`); recorded only when asked for.
    #[serde(default, skip_serializing_if = "ReportSettings::is_empty")]
    pub report: ReportSettings,
    /// The judge of open VQA answers (MedVLMBench's GPT score); none: no judge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeSettings>,
    /// The output folder (default `mvb-out`; the command line's `--out` wins). Not recorded in
    /// the predictions file, so that results do not depend on where they were written.
    #[serde(default, skip_serializing)]
    pub out: Option<PathBuf>,
    /// Where the models run: `cpu` (default), `cuda` or `auto` (the command line's `--device`
    /// wins). Not recorded in the predictions file; the feature cache is keyed by it.
    #[serde(default, skip_serializing)]
    pub device: DeviceRequest,
    /// Arithmetic of the matrix products: `f32`, `bf16` or `f16` (GPU only); unset: f32 on the
    /// CPU, bf16 on the GPU (the command line's `--precision` wins).
    #[serde(default, skip_serializing)]
    pub precision: Option<Precision>,
}

impl RunConfig {
    /// Parses a config from `text`, `origin` naming it in errors; relative paths are resolved
    /// against `base`.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<RunConfig, RunError> {
        let mut config: RunConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of_offset(text, s.start));
            RunError::Config { file: origin.to_owned(), line, message: one_line(e.message()) }
        })?;
        config.validate(text, origin)?;
        config.report.at = Some((origin.to_owned(), find_line(text, "subgroups", 0)));
        config.resolve_paths(base);
        Ok(config)
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<RunConfig, RunError> {
        let text = std::fs::read_to_string(path).map_err(|e| RunError::io(path, e))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
        Self::parse(&text, &path.display().to_string(), &base)
    }

    /// The embedded default, its paths resolved against the repository.
    pub fn default_config() -> Result<RunConfig, RunError> {
        Self::parse(DEFAULT_CONFIG, "<embedded default>", &repository_root())
    }

    /// The bootstrap settings as the bootstrap takes them.
    pub fn bootstrap_config(&self) -> BootstrapConfig {
        self.bootstrap.into()
    }

    /// The precision named by `precision`, if any.
    pub fn precision(&self) -> Option<Precision> {
        self.precision
    }

    /// The probe settings as the probe takes them.
    pub fn probe_config(&self) -> ProbeConfig {
        self.probe.into()
    }

    /// A model by name.
    pub fn model(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Checks what serde cannot: non-empty lists, unique names, usable settings.
    fn validate(&self, text: &str, origin: &str) -> Result<(), RunError> {
        let at = Locator { text, origin };
        if self.models.is_empty() {
            return Err(at.err(None, 0, "no models: add at least one [[models]] table".into()));
        }
        if self.datasets.is_empty() {
            return Err(at.err(None, 0, "no datasets: add at least one [[datasets]] table".into()));
        }
        if self.strategies.is_empty() {
            return Err(at.err(Some("strategies"), 0, "`strategies` is empty".into()));
        }
        if self.metrics.is_empty() {
            return Err(at.err(Some("metrics"), 0, "`metrics` is empty".into()));
        }
        for (i, s) in self.strategies.iter().enumerate() {
            if self.strategies[..i].contains(s) {
                return Err(at.err(Some("strategies"), 0, format!("strategy `{s}` is listed twice")));
            }
        }
        for (i, m) in self.metrics.iter().enumerate() {
            if self.metrics[..i].contains(m) {
                return Err(at.err(Some("metrics"), 0, format!("metric `{m}` is listed twice")));
            }
        }
        for (i, a) in self.report.subgroups.iter().enumerate() {
            let message = if a.trim().is_empty() {
                "`subgroups` names an empty attribute".to_owned()
            } else if self.report.subgroups[..i].contains(a) {
                format!("`subgroups` names `{a}` twice")
            } else {
                continue;
            };
            return Err(at.err(Some("subgroups"), 0, message));
        }
        self.validate_models(&at)?;
        self.validate_datasets(&at)?;
        self.validate_settings(&at)
    }

    /// Names present, unique; family and path present.
    fn validate_models(&self, at: &Locator<'_>) -> Result<(), RunError> {
        for (i, m) in self.models.iter().enumerate() {
            let quoted = format!("\"{}\"", m.name);
            if m.name.trim().is_empty() {
                return Err(at.err(None, 0, format!("model {} has an empty name", i + 1)));
            }
            if self.models[..i].iter().any(|o| o.name == m.name) {
                return Err(at.err(Some(&quoted), 1, format!("model `{}` is listed twice", m.name)));
            }
            if m.family.trim().is_empty() {
                return Err(at.err(Some(&quoted), 0, format!("model `{}` has an empty family", m.name)));
            }
            if m.path.trim().is_empty() {
                return Err(at.err(Some(&quoted), 0, format!("model `{}` has an empty path", m.name)));
            }
            if let Some(d) = m.id_datasets.iter().find(|d| !self.datasets.iter().any(|x| &x.name == *d)) {
                let message =
                    format!("model `{}`: `id_datasets` names `{d}`, which is not a dataset of this run", m.name);
                return Err(at.err(Some(&format!("\"{d}\"")), 0, message));
            }
        }
        Ok(())
    }

    /// Names present, unique; one plugin; a data folder for a plugin file; usable limits and
    /// class names.
    fn validate_datasets(&self, at: &Locator<'_>) -> Result<(), RunError> {
        for (i, d) in self.datasets.iter().enumerate() {
            let quoted = format!("\"{}\"", d.name);
            let err = |message: String| at.err(Some(&quoted), 0, format!("dataset `{}`{message}", d.name));
            if d.name.trim().is_empty() {
                return Err(at.err(None, 0, format!("dataset {} has an empty name", i + 1)));
            }
            if self.datasets[..i].iter().any(|o| o.name == d.name) {
                return Err(at.err(Some(&quoted), 1, format!("dataset `{}` is listed twice", d.name)));
            }
            if d.plugin.is_some() && d.plugin_file.is_some() {
                return Err(err(" names both `plugin` and `plugin_file`".into()));
            }
            if d.plugin_file.is_some() && d.data.is_none() {
                return Err(err(": `plugin_file` needs `data`, the folder the plugin reads".into()));
            }
            if d.limit == Some(0) || d.train_limit == Some(0) {
                return Err(err(": a limit must be at least 1".into()));
            }
            if d.classes.as_ref().is_some_and(Vec::is_empty) {
                return Err(err(": `classes` is empty".into()));
            }
            let trains = self.strategies.iter().any(|s| s.is_fine_tuned());
            if trains && d.train_split == d.split {
                return Err(err(format!(
                    ": `train_split` is `{}`, the split evaluated: FT-LP or FT-LoRA would train on the test data",
                    d.split
                )));
            }
        }
        Ok(())
    }

    /// Templates with a `{}`, at least one replicate, a usable probe.
    fn validate_settings(&self, at: &Locator<'_>) -> Result<(), RunError> {
        if self.templates.is_empty() {
            return Err(at.err(Some("templates"), 0, "`templates` is empty".into()));
        }
        if let Some(t) = self.templates.iter().find(|t| !t.contains("{}")) {
            return Err(at.err(Some("templates"), 0, format!("template {t:?} has no `{{}}` for the class name")));
        }
        if self.bootstrap.replicates == 0 || self.bootstrap.replicates > MAX_REPLICATES {
            let message = format!("bootstrap `replicates` must be between 1 and {MAX_REPLICATES}");
            return Err(at.err(Some("replicates"), 0, message));
        }
        let p = &self.probe;
        if p.batch_size == 0 {
            return Err(at.err(Some("batch_size"), 0, "probe `batch_size` must be at least 1".into()));
        }
        if p.epochs == 0 {
            return Err(at.err(
                Some("epochs"),
                0,
                "probe `epochs` must be at least 1 (0 would report an untrained head)".into(),
            ));
        }
        let g = &self.generation;
        if g.max_new_tokens == 0 {
            return Err(at.err(Some("max_new_tokens"), 0, "generation `max_new_tokens` must be at least 1".into()));
        }
        if g.batch_size == 0 {
            return Err(at.err(Some("[generation]"), 0, "generation `batch_size` must be at least 1".into()));
        }
        if let Some(problem) = self.lora.problem() {
            return Err(at.err(Some("[lora]"), 0, problem));
        }
        if !(p.lr.is_finite() && p.lr >= 0.0) {
            return Err(at.err(Some("lr"), 0, format!("probe `lr` must be finite and >= 0, got {}", p.lr)));
        }
        if !(p.weight_decay.is_finite() && p.weight_decay >= 0.0) {
            let message = format!("probe `weight_decay` must be finite and >= 0, got {}", p.weight_decay);
            return Err(at.err(Some("weight_decay"), 0, message));
        }
        Ok(())
    }

    /// Makes relative folders and files absolute against `base`.
    fn resolve_paths(&mut self, base: &Path) {
        for m in &mut self.models {
            let p = Path::new(&m.path);
            if p.is_relative() && base.join(p).is_dir() {
                m.path = absolute(&base.join(p)).display().to_string();
            }
        }
        for d in &mut self.datasets {
            for p in [&mut d.data, &mut d.plugin_file].into_iter().flatten() {
                if p.is_relative() {
                    *p = absolute(&base.join(&*p));
                }
            }
        }
        for m in &mut self.metrics {
            if let Metric::File(p) = m
                && p.is_relative()
            {
                *p = absolute(&base.join(&*p));
            }
        }
        if let Some(out) = &mut self.out
            && out.is_relative()
        {
            *out = base.join(&*out);
        }
        if let Some(judge) = &mut self.judge {
            judge.resolve_paths(base);
            if judge.optional && !Path::new(&judge.model).exists() {
                tracing::warn!(
                    "no judge: {} is not there (`bash tools/fetch_smollm2.sh` fetches SmolLM2-135M-Instruct, the \
                     judge of the GPT-score columns)",
                    judge.model
                );
                self.judge = None;
            }
        }
    }
}

/// Where the embedded default's relative paths point: the current folder when it holds the
/// demo models, else the source tree this binary was built from.
pub fn repository_root() -> PathBuf {
    let here = PathBuf::from(".");
    if here.join("data/models").is_dir() {
        return absolute(&here);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `path` made absolute (against the current folder), `.` components removed.
fn absolute(path: &Path) -> PathBuf {
    let p = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()
}

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The 1-based line of the `nth` (0-based) occurrence of `needle`, if any.
fn find_line(text: &str, needle: &str, nth: usize) -> Option<usize> {
    text.match_indices(needle).nth(nth).map(|(at, _)| line_of_offset(text, at))
}

/// Where a config's text is, for errors that name a line.
struct Locator<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Locator<'_> {
    /// An error at the line of the `nth` (0-based) occurrence of `needle`, when given and found.
    fn err(&self, needle: Option<&str>, nth: usize, message: String) -> RunError {
        let line = needle.and_then(|n| find_line(self.text, n, nth));
        RunError::Config { file: self.origin.to_owned(), line, message }
    }
}

/// A message on one line.
fn one_line(message: &str) -> String {
    message.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_parses() {
        let c = RunConfig::default_config().unwrap();
        assert_eq!(c.models.len(), 4);
        assert_eq!(c.datasets.len(), 6);
        assert_eq!(c.strategies, vec![Strategy::Zs, Strategy::Lp, Strategy::Lora, Strategy::Ots]);
        assert_eq!(crate::train::LoraConfig::from(c.lora), crate::train::LoraConfig::default());
        assert_eq!(c.probe_config(), ProbeConfig::default());
        assert_eq!(c.bootstrap_config(), BootstrapConfig::default());
        assert!(Path::new(&c.models[0].path).join("config.json").is_file(), "{}", c.models[0].path);
        assert_eq!(c.datasets[0].split, Split::Test);
        assert_eq!(c.datasets[0].train_split, Split::Train);
    }

    #[test]
    fn errors_name_the_line() {
        let text = "strategies = [\"zs\"]\n\n[[models]]\nname = \"a\"\npath = 3\n";
        let e = RunConfig::parse(text, "x.toml", Path::new(".")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("config x.toml, line 5: "), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        let text = "strategies = [\"zs\", \"ft\"]\n";
        let msg = RunConfig::parse(text, "y.toml", Path::new(".")).unwrap_err().to_string();
        assert!(msg.starts_with("config y.toml, line 1: "), "{msg}");
    }

    #[test]
    fn semantic_errors_point_at_the_item() {
        let base = "[[models]]\nname = \"m\"\npath = \"p\"\nfamily = \"clip\"\ngroup = \"generalist\"\n";
        let text = format!("{base}{base}[[datasets]]\nname = \"d\"\n");
        let msg = RunConfig::parse(&text, "z.toml", Path::new(".")).unwrap_err().to_string();
        assert_eq!(msg, "config z.toml, line 7: model `m` is listed twice");
    }

    #[test]
    fn meaningless_settings_are_refused_with_their_line() {
        let base = "[[models]]\nname = \"m\"\npath = \"p\"\nfamily = \"f\"\ngroup = \"specialist\"\n";
        let text = format!("{base}id_datasets = [\"nope\"]\n[[datasets]]\nname = \"d\"\n");
        let msg = RunConfig::parse(&text, "c.toml", Path::new(".")).unwrap_err().to_string();
        assert!(msg.starts_with("config c.toml, line 6: model `m`: `id_datasets` names `nope`"), "{msg}");
        let text = format!("{base}[[datasets]]\nname = \"d\"\ntrain_split = \"test\"\n");
        let msg = RunConfig::parse(&text, "c.toml", Path::new(".")).unwrap_err().to_string();
        assert!(msg.contains("line 7: dataset `d`: `train_split` is `test`"), "{msg}");
        let text = format!("strategies = [\"zs\"]\n{base}[[datasets]]\nname = \"d\"\ntrain_split = \"test\"\n");
        assert!(RunConfig::parse(&text, "c.toml", Path::new(".")).is_ok(), "no probe, no training split");
        let text = format!("[probe]\nepochs = 0\n{base}[[datasets]]\nname = \"d\"\n");
        let msg = RunConfig::parse(&text, "c.toml", Path::new(".")).unwrap_err().to_string();
        assert!(msg.starts_with("config c.toml, line 2: probe `epochs` must be at least 1"), "{msg}");
        let text = format!("[bootstrap]\nreplicates = 10000000\n{base}[[datasets]]\nname = \"d\"\n");
        let msg = RunConfig::parse(&text, "c.toml", Path::new(".")).unwrap_err().to_string();
        assert!(msg.starts_with("config c.toml, line 2: bootstrap `replicates` must be between 1 and 100000"), "{msg}");
    }

    #[test]
    fn an_optional_judge_without_its_model_is_left_out_and_a_required_one_kept() {
        let base = "[[models]]\nname = \"m\"\npath = \"p\"\nfamily = \"f\"\ngroup = \"generalist\"\n";
        let judge = |optional: bool| {
            format!("[judge]\nmodel = \"no/such.gguf\"\noptional = {optional}\n{base}[[datasets]]\nname = \"d\"\n")
        };
        let c = RunConfig::parse(&judge(true), "j.toml", Path::new("/base")).unwrap();
        assert_eq!(c.judge, None);
        let c = RunConfig::parse(&judge(false), "j.toml", Path::new("/base")).unwrap();
        let j = c.judge.expect("a required judge stays (and fails its check before the first prediction)");
        assert_eq!((j.model.as_str(), j.plugin.as_str(), j.mode()), ("/base/no/such.gguf", "gpt-score", "free-form"));
        let text = format!("[lora]\nr = 0\n{base}[[datasets]]\nname = \"d\"\n");
        let msg = RunConfig::parse(&text, "l.toml", Path::new(".")).unwrap_err().to_string();
        assert!(msg.starts_with("config l.toml, line 1: lora `r`"), "{msg}");
    }

    #[test]
    fn metrics_are_parsed_once_with_their_line() {
        let text = "strategies = [\"zs\"]\nmetrics = [\"auroc\", \"aucroc\"]\n";
        let msg = RunConfig::parse(text, "m.toml", Path::new(".")).unwrap_err().to_string();
        assert!(msg.starts_with("config m.toml, line 2: unknown metric `aucroc`: the built-in metrics are"), "{msg}");
        let c = RunConfig::default_config().unwrap();
        assert_eq!(c.metrics, ["auroc", "accuracy", "balanced-accuracy", "vqa"].map(Metric::Builtin));
        let base = "[[models]]\nname = \"m\"\npath = \"p\"\nfamily = \"f\"\ngroup = \"generalist\"\n";
        let text = format!("metrics = [\"x/m.wasm\"]\n{base}[[datasets]]\nname = \"d\"\n");
        let c = RunConfig::parse(&text, "m.toml", Path::new("/base")).unwrap();
        assert_eq!(c.metrics, [Metric::File("/base/x/m.wasm".into())]);
    }
}
