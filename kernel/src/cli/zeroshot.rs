//! `mvb zeroshot` and `mvb embed`: run a contrastive model over a dataset split.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mvb::backend::{DeviceRequest, Precision};
use mvb::data::Split;
use mvb::eval::metrics::{Metric, Scorer};
use mvb::eval::zeroshot::{self, DEFAULT_TEMPLATE, Encoded};
use mvb::model::ContrastiveModel;
use mvb::plugin::PluginHost;

use super::resolve::open_dataset;

/// Which model and data.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// A model folder in Hugging Face layout, or a model id in the local HF cache.
    #[arg(long)]
    model: String,
    /// The dataset: `NAME` or `PLUGIN/NAME`.
    #[arg(long)]
    dataset: String,
    /// Read the dataset with this plugin file instead of the built-ins.
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// The dataset's data folder (default: the plugin's vendored data).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Which split.
    #[arg(long, default_value = "test")]
    split: Split,
    /// Use only the first N samples.
    #[arg(long)]
    limit: Option<u64>,
    /// A PEFT LoRA adapter folder (`adapter_config.json`, `adapter_model.safetensors`) to put on
    /// the image tower.
    #[arg(long, value_name = "DIR")]
    adapter: Option<PathBuf>,
    /// Merge the adapter into the weights instead of running it unmerged.
    #[arg(long, requires = "adapter")]
    merge: bool,
    #[command(flatten)]
    placement: Placement,
}

/// Where the model runs.
#[derive(Debug, Args)]
pub(crate) struct Placement {
    /// Where the model runs: `cpu`, `cuda`, or `auto` (CUDA where a GPU starts). Without a usable
    /// GPU, `cuda` and `auto` run on the CPU after a one-line notice.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub(crate) device: DeviceRequest,
    /// Arithmetic of the matrix products: f32, bf16 (AVX-512 BF16 on the CPU where present) or
    /// f16 (GPU only). Default: f32 on the CPU, bf16 on the GPU.
    #[arg(long, value_name = "TYPE")]
    pub(crate) precision: Option<Precision>,
}

impl Placement {
    /// Loads `spec` on the requested device and precision (each fallback, no usable GPU or f16
    /// asked of the CPU, is one notice).
    pub(crate) fn load(&self, spec: &str) -> anyhow::Result<ContrastiveModel> {
        let device = self.device.resolve(self.precision)?;
        ContrastiveModel::load_on(spec, &device).with_context(|| format!("loading model `{spec}`"))
    }
}

#[derive(Debug, Args)]
pub(crate) struct ZeroShotArgs {
    #[command(flatten)]
    target: Target,
    /// Prompt template(s); `{}` is replaced by the class name. Several are ensembled.
    #[arg(long = "template", default_value = DEFAULT_TEMPLATE)]
    templates: Vec<String>,
    /// Class names to use in prompts instead of the dataset's, comma-separated in label order.
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<String>>,
}

#[derive(Debug, Args)]
pub(crate) struct EmbedArgs {
    #[command(flatten)]
    target: Target,
    /// Where to write the features and labels (safetensors).
    #[arg(long)]
    out: PathBuf,
}

fn encode(host: &PluginHost, t: &Target) -> anyhow::Result<(ContrastiveModel, mvb::data::DatasetInfo, Encoded)> {
    let mut model = t.placement.load(&t.model)?;
    if let Some(dir) = &t.adapter {
        let adapter = mvb::train::peft::load(dir)?;
        mvb::train::peft::attach(&mut model, &adapter, t.merge)
            .with_context(|| format!("attaching the adapter in {}", dir.display()))?;
    }
    let mut dataset = open_dataset(host, &t.dataset, t.plugin.as_deref(), t.data.as_deref())?;
    let info = dataset.info().clone();
    let bar = ProgressBar::new(info.splits.get(t.split).min(t.limit.unwrap_or(u64::MAX)));
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} images, {per_sec}, eta {eta}")
            .expect("valid template"),
    );
    bar.set_message(format!("encoding {} {}", info.name, t.split));
    let encoded = super::notices::with_bar(&bar, || {
        zeroshot::encode_split(&model, &mut dataset, t.split, t.limit, |done, _| bar.set_position(done))
    })?;
    bar.finish_and_clear();
    if encoded.ids.is_empty() {
        bail!("the {} split of `{}` is empty", t.split, info.name);
    }
    Ok((model, info, encoded))
}

pub(crate) fn run(host: &PluginHost, args: &ZeroShotArgs) -> anyhow::Result<()> {
    let (model, info, encoded) = encode(host, &args.target)?;
    let classes = args.classes.clone().unwrap_or_else(|| info.class_names.clone());
    if classes.len() != info.class_names.len() {
        bail!("--classes names {} classes; `{}` has {}", classes.len(), info.name, info.class_names.len());
    }
    let class_emb = zeroshot::class_embeddings(&model, &classes, &args.templates)?;
    let probs = zeroshot::probabilities(&model, &encoded.features, &class_emb);
    let rows: Vec<String> = encoded.ids.iter().map(|id| format!("sample `{id}`")).collect();
    zeroshot::check_finite(&probs, &rows, "class probability")?;
    // The metric plugins `mvb run` scores with, so that the two commands cannot disagree.
    let mut scorer = Scorer::new(host, &[Metric::Builtin("accuracy"), Metric::Builtin("auroc")])?;
    let samples = encoded.labels.iter().enumerate().map(|(i, labels)| (probs.row(i), labels.as_slice()));
    let scores = scorer.score(samples, &[])?;
    let point = |name: &str| scores.iter().find(|s| s.name == name).map_or(f64::NAN, |s| s.boot.estimate.point);
    println!(
        "{} ({}, {} weights, computed on {}) on {} {} ({} samples)",
        args.target.model,
        model.family(),
        model.dtype(),
        model.compute_tag(),
        info.name,
        args.target.split,
        encoded.ids.len()
    );
    for t in &args.templates {
        println!(
            "  prompts: {}",
            zeroshot::prompts(t, &classes).iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ")
        );
    }
    println!("  accuracy {:.4}", point("accuracy"));
    let auroc = point("auroc");
    let c = classes.len();
    if auroc.is_nan() {
        println!("  AUROC    undefined (a class is absent from the set)");
    } else if c == 2 {
        println!("  AUROC    {auroc:.4} (score = p[{}])", classes[1]);
    } else {
        println!("  AUROC    {auroc:.4} (one-vs-rest macro over {c} classes)");
    }
    Ok(())
}

pub(crate) fn embed(host: &PluginHost, args: &EmbedArgs) -> anyhow::Result<()> {
    let (model, info, encoded) = encode(host, &args.target)?;
    let n = encoded.ids.len();
    let dim = encoded.features.cols();
    let features: Vec<u8> = encoded.features.data().iter().flat_map(|v| v.to_le_bytes()).collect();
    let c = info.class_names.len();
    // Multi-hot labels `[n, classes]` (one 1 per row for single-label data).
    let mut labels = vec![0u8; n * c];
    for (i, l) in encoded.labels.iter().enumerate() {
        for &k in l {
            labels[i * c + k as usize] = 1;
        }
    }
    let views = vec![
        ("features", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![n, dim], &features)?),
        ("labels", safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![n, c], &labels)?),
    ];
    let metadata = HashMap::from([
        ("model".to_owned(), args.target.model.clone()),
        ("dataset".to_owned(), info.name.clone()),
        ("split".to_owned(), args.target.split.to_string()),
        ("classes".to_owned(), serde_json::to_string(&info.class_names)?),
        ("ids".to_owned(), serde_json::to_string(&encoded.ids)?),
    ]);
    safetensors::serialize_to_file(views, Some(metadata), &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} ({n} x {dim} features of {} {}, {} model)",
        args.out.display(),
        info.name,
        args.target.split,
        model.family()
    );
    Ok(())
}
