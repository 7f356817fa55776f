//! FT-LoRA, MedVLMBench's third diagnosis strategy, trained for real (arXiv 2506.17337;
//! `model/clip_base.py` in github.com/ubc-tea/MedVLMBench, whose features were computed under
//! `no_grad`, so that its LoRA never trained): PEFT LoRA (`r = 8`, `alpha = 32`, dropout 0.05,
//! `bias = "none"`) on every linear layer and embedding of the image tower ([`lora`]), a linear
//! head on the image features (`get_image_features`), class-weighted cross-entropy, AdamW
//! ([`adamw`]) with FT-LP's settings (lr 5e-5, 10 epochs, batch 8, seed 42), the base frozen.
//!
//! The forward is the model's own, run through its hooks ([`vision`]); the backward passes are
//! hand-written operations of the compute layer (`backend/grad.rs`), on the CPU (f32) or the GPU
//! (`backend/cuda/backward.rs`, the device's precision), with no change here; the head, its loss
//! and AdamW run on the host (f32) from the small tensors the device hands back.
//! `tests/it/lora_train.rs` checks gradients and short training runs against PyTorch + PEFT
//! (`tools/make_lora_reference.py`), and PEFT adapters both ways ([`peft`]).
//!
//! Randomness, all documented streams: the head's initial weights and each epoch's order are
//! FT-LP's (`RandomState(seed)`: `W` then `b` `U(±1/√dim)`, then `permutation(N)` per epoch),
//! so that FT-LoRA and FT-LP see the same batches from the same head; the LoRA pairs come from
//! `RandomState(seed + 1)` ([`lora`]); dropout masks from `default_rng(seed)` ([`dropout`]).

pub mod adamw;
pub mod dropout;
pub mod lora;
pub mod peft;
mod vision;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::backend::ComputeError;
use crate::data::Pixels;
use crate::model::{ContrastiveModel, ModelError, Tower};
use crate::random::RandomState;
use crate::tensor::Tensor;
use adamw::AdamW;
use dropout::Dropout;
use lora::{Adapter, LoraShape, Part, Target};

pub use vision::PairGrad;

/// Why training (or an adapter) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An operation failed (or has no backward pass on this device yet).
    #[error(transparent)]
    Compute(#[from] ComputeError),
    /// Bad training input or settings.
    #[error("LoRA training: {0}")]
    Input(String),
    /// An adapter folder that cannot be read or written.
    #[error("{}: {message}", path.display())]
    Adapter {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A bug in mvb.
    #[error("internal error in training: {0}")]
    Internal(String),
}

/// FT-LoRA's settings; [`Default`] is MedVLMBench's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoraConfig {
    /// Rank, alpha, dropout.
    pub lora: LoraShape,
    /// AdamW learning rate (5e-5).
    pub lr: f64,
    /// Passes over the training set (10).
    pub epochs: usize,
    /// Samples per step (8).
    pub batch_size: usize,
    /// AdamW's decoupled weight decay (0).
    pub weight_decay: f64,
    /// The seed of every stream (42).
    pub seed: u32,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig { lora: LoraShape::default(), lr: 5e-5, epochs: 10, batch_size: 8, weight_decay: 0.0, seed: 42 }
    }
}

/// The linear head in f32 (`nn.Linear(dim, classes)`), `W` row-major `[classes, dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// Classes.
    pub classes: usize,
    /// Feature width.
    pub dim: usize,
    /// `W`.
    pub weight: Vec<f32>,
    /// `b`.
    pub bias: Vec<f32>,
}

impl Head {
    /// FT-LP's initial head: `W` then `b` drawn `U(-1/√dim, 1/√dim)` from `rng`.
    pub fn init(classes: usize, dim: usize, rng: &mut RandomState) -> Head {
        let bound = 1.0 / (dim as f64).sqrt();
        let weight = (0..classes * dim).map(|_| rng.uniform(-bound, bound) as f32).collect();
        let bias = (0..classes).map(|_| rng.uniform(-bound, bound) as f32).collect();
        Head { classes, dim, weight, bias }
    }

    /// The class-weighted cross-entropy of features `f` (`[n, dim]`) and its gradients:
    /// `(loss, dF, dW, db)`, as `nn.CrossEntropyLoss(weight=w)` (mean `Σ w_y·ℓ / Σ w_y`).
    fn loss(&self, f: &[f32], labels: &[u32], weights: &[f32]) -> (f32, Vec<f32>, Vec<f32>, Vec<f32>) {
        let (c, d) = (self.classes, self.dim);
        let total: f32 = labels.iter().map(|&y| weights[y as usize]).sum();
        let (mut loss, mut df) = (0f32, vec![0f32; f.len()]);
        let (mut dw, mut db) = (vec![0f32; c * d], vec![0f32; c]);
        for (i, &y) in labels.iter().enumerate() {
            let x = &f[i * d..(i + 1) * d];
            let z: Vec<f32> = (0..c)
                .map(|k| self.weight[k * d..(k + 1) * d].iter().zip(x).map(|(w, x)| w * x).sum::<f32>() + self.bias[k])
                .collect();
            let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = z.iter().map(|v| (v - max).exp()).sum();
            let w = weights[y as usize] / total;
            loss += w * (sum.ln() + max - z[y as usize]);
            for k in 0..c {
                let dz = w * ((z[k] - max).exp() / sum - if k == y as usize { 1.0 } else { 0.0 });
                let row = &self.weight[k * d..(k + 1) * d];
                df[i * d..(i + 1) * d].iter_mut().zip(row).for_each(|(g, w)| *g += dz * w);
                dw[k * d..(k + 1) * d].iter_mut().zip(x).for_each(|(g, x)| *g += dz * x);
                db[k] += dz;
            }
        }
        (loss, df, dw, db)
    }
}

/// One batch's loss and every gradient.
#[derive(Debug, Clone)]
pub struct Gradients {
    /// The batch's class-weighted cross-entropy.
    pub loss: f32,
    /// `dW` of the head.
    pub head_weight: Vec<f32>,
    /// `db` of the head.
    pub head_bias: Vec<f32>,
    /// `(dA, dB)` of each LoRA pair the forward uses.
    pub lora: BTreeMap<Target, PairGrad>,
}

/// An optimiser slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    HeadWeight,
    HeadBias,
    A(Target),
    B(Target),
}

/// FT-LoRA's state between steps: the adapter, the head, AdamW's moments, the dropout stream.
#[derive(Debug)]
pub struct Trainer<'m> {
    model: &'m ContrastiveModel,
    /// The adapter being trained.
    pub adapter: Adapter,
    /// The head being trained.
    pub head: Head,
    config: LoraConfig,
    class_weights: Vec<f32>,
    dropout: Dropout,
    opt: BTreeMap<Slot, AdamW>,
}

impl<'m> Trainer<'m> {
    /// A trainer of `adapter` and `head` on `model` (on its device), the loss weighted by
    /// `class_weights` (one per class).
    pub fn new(
        model: &'m ContrastiveModel,
        adapter: Adapter,
        head: Head,
        class_weights: Vec<f32>,
        config: LoraConfig,
    ) -> Result<Self, TrainError> {
        model.check_trainable()?;
        if class_weights.len() != head.classes {
            return Err(TrainError::Input(format!(
                "{} class weights for {} classes",
                class_weights.len(),
                head.classes
            )));
        }
        if config.batch_size == 0 || !(config.lr.is_finite() && config.lr >= 0.0) {
            return Err(TrainError::Input(format!(
                "batch size {} and lr {} are not usable",
                config.batch_size, config.lr
            )));
        }
        let dropout = Dropout::new(config.seed);
        Ok(Trainer { model, adapter, head, config, class_weights, dropout, opt: BTreeMap::new() })
    }

    /// The loss of one batch (`pixels` preprocessed, `labels`) and every gradient; `train`
    /// draws dropout masks (else the branches run without dropout, as PEFT in `eval()`).
    pub fn gradients(&mut self, pixels: &[f32], labels: &[u32], train: bool) -> Result<Gradients, TrainError> {
        let dev = self.model.device();
        if let Some(&bad) = labels.iter().find(|&&y| y as usize >= self.head.classes) {
            return Err(TrainError::Input(format!("label {bad} is not one of {} classes", self.head.classes)));
        }
        let tower = self.model.tower()?;
        let width = tower_width(&tower);
        let dropout = if train { Some(&mut self.dropout) } else { None };
        let mut rec = vision::Recorder::new(dev, &self.adapter, dropout, width)?;
        let feats = vision::features(&tower, dev, pixels, labels.len(), &mut rec)?;
        let f = feats.to_tensor(dev)?;
        if f.cols() != self.head.dim {
            return Err(TrainError::Input(format!("features of {} for a head on {}", f.cols(), self.head.dim)));
        }
        let (loss, df, head_weight, head_bias) = self.head.loss(f.data(), labels, &self.class_weights);
        let dfeat = dev.upload(Tensor::new(f.shape().to_vec(), df))?;
        let lora = vision::backward(&tower, dev, &rec, &dfeat)?;
        Ok(Gradients { loss, head_weight, head_bias, lora })
    }

    /// One AdamW step on a batch (dropout as configured); the batch's loss.
    pub fn step(&mut self, pixels: &[f32], labels: &[u32]) -> Result<f32, TrainError> {
        // One sequence of many parallel operations (forward and backward through the tower).
        let dev = self.model.device();
        let g = dev.run_steps(|| self.gradients(pixels, labels, true))?;
        let (lr, wd) = (self.config.lr, self.config.weight_decay);
        self.opt.entry(Slot::HeadWeight).or_default().step(&mut self.head.weight, &g.head_weight, lr, wd);
        self.opt.entry(Slot::HeadBias).or_default().step(&mut self.head.bias, &g.head_bias, lr, wd);
        for (target, (da, db)) in &g.lora {
            let pair = self.adapter.pairs.get_mut(target).ok_or_else(|| TrainError::Internal(format!("{target:?}")))?;
            self.opt.entry(Slot::A(*target)).or_default().step(&mut pair.a, da, lr, wd);
            self.opt.entry(Slot::B(*target)).or_default().step(&mut pair.b, db, lr, wd);
        }
        Ok(g.loss)
    }
}

/// The hidden width of the tower.
fn tower_width(tower: &Tower<'_>) -> usize {
    match tower {
        Tower::Clip(m) => m.vision.width(),
        Tower::Siglip(m) => m.vision.width(),
    }
}

/// The LoRA targets of `model`'s image tower with their input and output sizes, in PEFT's
/// module order (`named_modules`: the position embedding, then per layer q, k, v, out, fc1,
/// fc2; then SigLIP's pooling out_proj, fc1, fc2).
pub fn targets(model: &ContrastiveModel) -> Vec<(Target, usize, usize)> {
    // A family FT-LoRA does not train has no targets (`fit_lora` and `attach` refuse it first).
    let Ok(tower) = model.tower() else { return Vec::new() };
    let (encoder, positions, pool) = match &tower {
        Tower::Clip(m) => (&m.vision.encoder, &m.vision.positions, None),
        Tower::Siglip(m) => (&m.vision.encoder, &m.vision.positions, Some(&m.vision.head.mlp)),
    };
    let w = tower_width(&tower);
    let mut out = vec![(Target::Position, positions.len() / w, w)];
    for (i, layer) in encoder.layers.iter().enumerate() {
        let hidden = layer.mlp.fc1.outputs();
        for (part, inp, outp) in [
            (Part::Q, w, w),
            (Part::K, w, w),
            (Part::V, w, w),
            (Part::Out, w, w),
            (Part::Fc1, w, hidden),
            (Part::Fc2, hidden, w),
        ] {
            out.push((Target::Layer(i, part), inp, outp));
        }
    }
    if let Some(mlp) = pool {
        let hidden = mlp.fc1.outputs();
        out.extend([
            (Target::Pool(Part::Out), w, w),
            (Target::Pool(Part::Fc1), w, hidden),
            (Target::Pool(Part::Fc2), hidden, w),
        ]);
    }
    out
}

/// The image-feature width of `model` (what the head reads).
fn feature_dim(model: &ContrastiveModel) -> usize {
    match model.tower() {
        Ok(Tower::Clip(m)) => m.visual_projection.outputs(),
        Ok(Tower::Siglip(m)) => m.vision.width(),
        Err(_) => 0,
    }
}

/// FT-LoRA on `images` with `labels` in `0..classes`: the trained adapter and head. Runs on
/// the model's device (the CPU in f32, or the GPU); one `debug` event per epoch gives the mean
/// loss.
pub fn fit_lora(
    model: &ContrastiveModel,
    images: &[Pixels],
    labels: &[u32],
    classes: usize,
    config: &LoraConfig,
) -> Result<(Adapter, Head), TrainError> {
    model.check_trainable()?;
    if images.len() != labels.len() || images.is_empty() {
        return Err(TrainError::Input(format!("{} images for {} labels", images.len(), labels.len())));
    }
    let weights: Vec<f32> = class_weights(labels, classes).iter().map(|&w| w as f32).collect();
    let mut rng = RandomState::new(config.seed);
    let head = Head::init(classes, feature_dim(model), &mut rng);
    let adapter = Adapter::init(config.lora, &targets(model), config.seed.wrapping_add(1));
    let mut trainer = Trainer::new(model, adapter, head, weights, *config)?;
    for epoch in 0..config.epochs {
        let order = rng.permutation(labels.len());
        let mut total = 0f64;
        for batch in order.chunks(config.batch_size) {
            let imgs: Vec<Pixels> = batch.iter().map(|&i| images[i].clone()).collect();
            let ys: Vec<u32> = batch.iter().map(|&i| labels[i]).collect();
            let pixels = model.preprocess(&imgs)?;
            total += f64::from(trainer.step(&pixels, &ys)?) * batch.len() as f64;
        }
        tracing::debug!("FT-LoRA epoch {}/{}: mean loss {:.6}", epoch + 1, config.epochs, total / labels.len() as f64);
    }
    Ok((trainer.adapter, trainer.head))
}

/// scikit-learn's `compute_class_weight("balanced", classes=np.unique(y), y=y)`, indexed by
/// class: `N / (C · n_c)` with `C` the number of classes present; 0 for an absent class.
pub fn class_weights(labels: &[u32], classes: usize) -> Vec<f64> {
    let mut counts = vec![0usize; classes];
    labels.iter().filter(|&&l| (l as usize) < classes).for_each(|&l| counts[l as usize] += 1);
    let present = counts.iter().filter(|&&c| c > 0).count();
    let n = labels.len() as f64;
    counts.iter().map(|&c| if c == 0 { 0.0 } else { n / (present as f64 * c as f64) }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_weights_are_sklearn_balanced() {
        // compute_class_weight("balanced", classes=[0, 1, 2], y=[0, 0, 0, 0, 1, 1, 2]) = [7/12, 7/6, 7/3]
        let w = class_weights(&[0, 0, 0, 0, 1, 1, 2], 3);
        assert_eq!(w, vec![7.0 / 12.0, 7.0 / 6.0, 7.0 / 3.0]);
        // An absent class: C counts the present classes only (np.unique(y)).
        assert_eq!(class_weights(&[0, 0, 2], 3), vec![0.75, 0.0, 1.5]);
    }
}
