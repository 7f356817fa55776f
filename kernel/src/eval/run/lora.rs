//! FT-LoRA units of `mvb run`: MedVLMBench's third diagnosis strategy (`model/clip_base.py` of
//! github.com/ubc-tea/MedVLMBench: PEFT LoRA r 8, alpha 32, dropout 0.05 on the vision tower,
//! a linear head, AdamW lr 5e-5, 10 epochs, batch 8, seed 42), trained for real by
//! [`crate::train::fit_lora`] (the original computed the image features under `no_grad`, so its
//! LoRA never trained). The adapter is written in PEFT's layout with the head beside it into
//! `<out>/adapters/<model>--<dataset>/`; the evaluation split is then encoded by the checkpoint
//! with the adapter attached (unmerged) and classified by the head.

use std::path::{Path, PathBuf};

use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::config::DatasetSpec;
use super::error::RunError;
use super::settings::LoraSettings;
use crate::data::{Pixels, Sample, Split, load_image};
use crate::eval::EvalError;
use crate::eval::probe::LinearHead;
use crate::eval::zeroshot::{self, Encoded};
use crate::model::ContrastiveModel;
use crate::plugin::Dataset;
use crate::tensor::Tensor;
use crate::train::{self, Head, LoraConfig, TrainError};

/// The folder of the adapters inside the output folder.
pub const ADAPTERS_DIR: &str = "adapters";

/// Samples read from the dataset plugin at a time.
const READ_BATCH: u32 = 256;

/// One FT-LoRA unit's inputs.
pub(super) struct Job<'a> {
    /// The model's name and checkpoint path in the configuration.
    pub model: (&'a str, &'a str),
    /// The dataset.
    pub dataset: &'a DatasetSpec,
    /// Its number of classes.
    pub classes: usize,
    /// The run's output folder.
    pub out: &'a Path,
    /// The settings.
    pub settings: LoraSettings,
}

/// Trains FT-LoRA on the training split and returns the class probabilities of `eval`'s
/// samples (in `eval`'s order), writing the adapter and head on the way.
pub(super) fn probabilities(
    model: &ContrastiveModel,
    data: &mut Dataset,
    job: &Job<'_>,
    eval: &Encoded,
    status: &mut dyn FnMut(String),
) -> Result<Tensor, RunError> {
    let d = job.dataset;
    model.check_trainable().map_err(|error| RunError::Model { model: job.model.0.to_owned(), error })?;
    let context = format!("{} × {}: FT-LoRA", job.model.0, d.name);
    status(format!("{context}: reading {} {}", d.name, d.train_split));
    let (images, labels) = training_images(data, d.train_split, d.train_limit, &context)?;
    status(format!("{context}: training on {} images", images.len()));
    let train_err = |error: TrainError| RunError::Usage(format!("{context}: {error}"));
    let config = LoraConfig::from(job.settings);
    let (adapter, head) = train::fit_lora(model, &images, &labels, job.classes, &config).map_err(train_err)?;
    let dir = adapter_dir(job.out, job.model.0, &d.name);
    train::peft::save(&adapter, &dir, job.model.1).map_err(train_err)?;
    save_head(&head, &dir.join("head.safetensors"))?;
    status(format!("{context}: encoding {} {} with the adapter", d.name, d.split));
    let mut tuned = ContrastiveModel::load_on(job.model.1, model.device())
        .map_err(|error| RunError::Model { model: job.model.0.to_owned(), error })?;
    train::peft::attach(&mut tuned, &adapter, false).map_err(train_err)?;
    let encoded = zeroshot::encode_split(&tuned, data, d.split, d.limit, |_, _| {})
        .map_err(|error| RunError::ZeroShot { context: context.clone(), error })?;
    if encoded.ids != eval.ids {
        return Err(RunError::Mismatch(format!("{context}: the evaluation split changed while training")));
    }
    let head = linear_head(&head).map_err(|error| RunError::Eval { context: context.clone(), error })?;
    head.predict_proba(&encoded.features).map_err(|error| RunError::Eval { context, error })
}

/// A trained head as FT-LP's [`LinearHead`] (for prediction and reports).
fn linear_head(head: &Head) -> Result<LinearHead, EvalError> {
    let w = head.weight.iter().map(|&v| f64::from(v)).collect();
    LinearHead::new(head.classes, head.dim, w, head.bias.iter().map(|&v| f64::from(v)).collect())
}

/// Where the adapter of `model` on `dataset` goes.
pub fn adapter_dir(out: &Path, model: &str, dataset: &str) -> PathBuf {
    let safe = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
    };
    out.join(ADAPTERS_DIR).join(format!("{}--{}", safe(model), safe(dataset)))
}

/// The decoded images and single labels of `split` (its first `limit` samples).
fn training_images(
    data: &mut Dataset,
    split: Split,
    limit: Option<u64>,
    context: &str,
) -> Result<(Vec<Pixels>, Vec<u32>), RunError> {
    let root = data.data_dir().map(Path::to_path_buf).unwrap_or_default();
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for samples in data.batches(split, limit, READ_BATCH) {
        let samples: Vec<Sample> =
            samples.map_err(|e| RunError::Usage(format!("{context}: reading {split} samples: {e}")))?;
        for s in samples {
            let bad = |m: String| RunError::Usage(format!("{context}: sample `{}`: {m}", s.id));
            let [label] = s.labels.as_slice() else {
                return Err(bad(format!("has {} labels; FT-LoRA needs exactly one", s.labels.len())));
            };
            let image = s.image.as_ref().ok_or_else(|| bad("has no image".into()))?;
            images.push(load_image(image, &root).map_err(|e| bad(e.to_string()))?);
            labels.push(*label);
        }
    }
    if images.is_empty() {
        return Err(RunError::Usage(format!("{context}: the {split} split is empty")));
    }
    Ok((images, labels))
}

/// Writes the head as `weight` `[classes, dim]` and `bias` `[classes]` (f32, `nn.Linear`'s names).
fn save_head(head: &Head, path: &Path) -> Result<(), RunError> {
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (w, b) = (bytes(&head.weight), bytes(&head.bias));
    let fail = |e: safetensors::SafeTensorError| RunError::Usage(format!("{}: {e}", path.display()));
    let weight = TensorView::new(Dtype::F32, vec![head.classes, head.dim], &w).map_err(fail)?;
    let bias = TensorView::new(Dtype::F32, vec![head.classes], &b).map_err(fail)?;
    let tensors = [("weight", weight), ("bias", bias)];
    let data =
        safetensors::serialize(tensors, None).map_err(|e| RunError::Usage(format!("{}: {e}", path.display())))?;
    crate::util::write_atomic(path, &data).map_err(|e| RunError::io(path, e))
}
