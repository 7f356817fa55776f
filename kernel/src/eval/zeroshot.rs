//! Zero-shot classification as MedVLMBench does it (arXiv 2506.17337): one prompt
//! per class from a template ("a photo of {}") and the dataset's class names, prompts padded
//! to the longest, `logits = exp(logit_scale)·cos(image, text) (+ logit_bias)`, softmax over
//! classes. With several templates, each class's text embedding is the renormalised mean of
//! its normalised per-template embeddings (open_clip's `build_zero_shot_classifier`).

use crate::data::{Pixels, Sample, load_image};
use crate::model::{ContrastiveModel, ModelError};
use crate::plugin::{Dataset, PluginError};
use crate::tensor::Tensor;

/// The template of MedVLMBench's zero-shot prompts.
pub const DEFAULT_TEMPLATE: &str = "a photo of {}";

/// Samples read from a dataset plugin per call.
const READ_BATCH: u32 = 64;
/// Images encoded per forward pass.
const ENCODE_BATCH: usize = 32;

/// Why zero-shot evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum ZeroShotError {
    /// The dataset plugin failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A sample cannot be used.
    #[error("sample `{id}`: {message}")]
    Sample {
        /// The sample.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// A model output holds NaN or Inf (the weights or the input do).
    #[error("{what}: non-finite {stage} (the model's weights or its input hold NaN or Inf)")]
    NonFinite {
        /// The sample or class.
        what: String,
        /// Which output.
        stage: String,
    },
}

/// The prompts for each class: `templates × classes`, with `{}` replaced by the class name.
pub fn prompts(template: &str, class_names: &[String]) -> Vec<String> {
    class_names.iter().map(|c| template.replace("{}", c)).collect()
}

/// Normalised class embeddings `[classes, dim]` from one or several templates.
pub fn class_embeddings(
    model: &ContrastiveModel,
    class_names: &[String],
    templates: &[String],
) -> Result<Tensor, ZeroShotError> {
    if templates.is_empty() || class_names.is_empty() {
        return Err(ZeroShotError::Config("zero-shot needs at least one template and one class".into()));
    }
    if let Some(bad) = templates.iter().find(|t| !t.contains("{}")) {
        return Err(ZeroShotError::Config(format!("template {bad:?} has no `{{}}` for the class name")));
    }
    let mut sum: Option<Tensor> = None;
    for template in templates {
        let feats = model.text_features(&prompts(template, class_names))?;
        let names: Vec<String> = class_names.iter().map(|c| format!("class `{c}`")).collect();
        check_finite(&feats, &names, "text feature")?;
        let feats = feats.l2_normalized();
        match &mut sum {
            None => sum = Some(feats),
            Some(s) => s.data_mut().iter_mut().zip(feats.data()).for_each(|(a, b)| *a += b),
        }
    }
    let sum = sum.expect("at least one template");
    // One template: already normalised; several: the mean, renormalised (scale-free).
    Ok(if templates.len() == 1 { sum } else { sum.l2_normalized() })
}

/// Fails, naming the row (`rows[i]` says what row `i` is) and the `stage`, when `t` holds a
/// NaN or an infinity: a number computed from one is worse than an error.
pub fn check_finite(t: &Tensor, rows: &[String], stage: &str) -> Result<(), ZeroShotError> {
    let cols = t.cols().max(1);
    match t.first_non_finite() {
        None => Ok(()),
        Some(at) => Err(ZeroShotError::NonFinite {
            what: rows.get(at / cols).cloned().unwrap_or_else(|| format!("row {}", at / cols)),
            stage: stage.to_owned(),
        }),
    }
}

/// Class probabilities `[images, classes]` for unnormalised image features.
pub fn probabilities(model: &ContrastiveModel, image_features: &Tensor, class_embeddings: &Tensor) -> Tensor {
    // `logits` normalises both sides; the class embeddings already are, which it leaves as they are.
    let mut logits = model.logits(image_features, class_embeddings);
    let classes = logits.cols();
    crate::backend::cpu::softmax_rows(logits.data_mut(), classes);
    logits
}

/// What one sample's image features were computed from.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Sample ids, in split order.
    pub ids: Vec<String>,
    /// Their labels.
    pub labels: Vec<Vec<u32>>,
    /// Unnormalised image features `[n, dim]`.
    pub features: Tensor,
}

/// Encodes every image of `split` (or the first `limit`), calling `progress(done, total)`.
pub fn encode_split(
    model: &ContrastiveModel,
    dataset: &mut Dataset,
    split: crate::data::Split,
    limit: Option<u64>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Encoded, ZeroShotError> {
    let root = dataset.data_dir().map(std::path::Path::to_path_buf).unwrap_or_default();
    let (mut ids, mut labels, mut features) = (Vec::new(), Vec::new(), Vec::new());
    let mut dim = 0;
    let mut batches = dataset.batches(split, limit, READ_BATCH);
    while let Some(samples) = batches.next() {
        let samples: Vec<Sample> = samples?;
        for chunk in samples.chunks(ENCODE_BATCH) {
            let images = chunk
                .iter()
                .map(|s| {
                    let image = s
                        .image
                        .as_ref()
                        .ok_or_else(|| ZeroShotError::Sample { id: s.id.clone(), message: "has no image".into() })?;
                    load_image(image, &root)
                        .map_err(|e| ZeroShotError::Sample { id: s.id.clone(), message: e.to_string() })
                })
                .collect::<Result<Vec<Pixels>, _>>()?;
            let f = model.image_features(&images)?;
            let named: Vec<String> = chunk.iter().map(|s| format!("sample `{}`", s.id)).collect();
            check_finite(&f, &named, "image feature")?;
            dim = f.cols();
            features.extend_from_slice(f.data());
            for s in chunk {
                ids.push(s.id.clone());
                labels.push(s.labels.clone());
            }
        }
        progress(batches.done(), batches.total());
    }
    let n = ids.len();
    Ok(Encoded { ids, labels, features: Tensor::new([n, dim], features) })
}
