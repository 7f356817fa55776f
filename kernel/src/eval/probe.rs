//! The FT-LP linear probe of MedVLMBench (arXiv 2506.17337; code: github.com/ubc-tea/MedVLMBench):
//! a linear head on frozen image features, trained as the original trains it in PyTorch —
//! class-weighted softmax cross-entropy (`nn.CrossEntropyLoss(weight=w)`, `w_c = N / (n_c · C)` as
//! scikit-learn's `compute_class_weight("balanced")`), `torch.optim.AdamW` (betas 0.9/0.999,
//! eps 1e-8, decoupled weight decay), lr 5e-5, 10 epochs, batch 8, reshuffled every epoch, no
//! warmup or schedule, seed 42.
//!
//! Determinism and what matches torch:
//! - The arithmetic is torch's, operation for operation, in f64 on one thread: the same inputs
//!   give bit-identical weights. The tests compare whole training runs with torch (float64, the
//!   same initial weights and batch order, `tools/make_probe_reference.py`): the final weights
//!   are identical or within 2e-16 (they are held to 1e-12). Features arrive as f32 and are
//!   widened; torch in the original trains in f32, so real runs differ from it by f32 rounding.
//! - Initialisation and shuffling follow torch's *distributions*, not torch's random stream:
//!   `W` (row-major) then `b` are drawn `U(-1/√dim, 1/√dim)` (what `nn.Linear`'s
//!   `kaiming_uniform_(a=√5)` and bias init amount to) by numpy's `RandomState(seed).uniform`,
//!   and each epoch's order is the same stream's `permutation(N)` ([`RandomState`]); the last
//!   batch of an epoch may be short (`drop_last=False`).
//! - Each batch's loss is the weighted mean `Σ w_{y_i}·ℓ_i / Σ w_{y_i}` over the batch, as
//!   `CrossEntropyLoss(weight=…, reduction="mean")`; weight decay applies to `W` and `b` (one
//!   parameter group), `p ← p·(1 − lr·wd)` before the Adam update.
//! - Class weights use the classes present in the training labels (`np.unique(y)`), as the
//!   original passes them; an absent class gets weight 0, which no sample uses.

use serde::{Deserialize, Serialize};

use super::EvalError;
use crate::random::RandomState;
use crate::tensor::Tensor;
use crate::train::class_weights;

/// AdamW's first-moment decay (torch default).
const BETA1: f64 = 0.9;
/// AdamW's second-moment decay (torch default).
const BETA2: f64 = 0.999;
/// AdamW's epsilon (torch default).
const EPS: f64 = 1e-8;

/// The probe's training settings; [`Default`] is MedVLMBench's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbeConfig {
    /// AdamW learning rate (5e-5).
    pub lr: f64,
    /// Passes over the training set (10).
    pub epochs: usize,
    /// Samples per optimiser step (8).
    pub batch_size: usize,
    /// AdamW's decoupled weight decay (0 in MedVLMBench).
    pub weight_decay: f64,
    /// Seed of the stream that initialises the head and shuffles the batches (42).
    pub seed: u32,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig { lr: 5e-5, epochs: 10, batch_size: 8, weight_decay: 0.0, seed: 42 }
    }
}

impl ProbeConfig {
    fn validate(&self) -> Result<(), EvalError> {
        if self.batch_size == 0 {
            return Err(EvalError::Config("batch_size must be at least 1".into()));
        }
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(EvalError::Config(format!("lr must be finite and >= 0, got {}", self.lr)));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(EvalError::Config(format!("weight_decay must be finite and >= 0, got {}", self.weight_decay)));
        }
        Ok(())
    }
}

/// A trained linear head: `logits = W·x + b`, `W` of shape `classes × dim`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearHead {
    classes: usize,
    dim: usize,
    weight: Vec<f64>,
    bias: Vec<f64>,
}

impl LinearHead {
    /// A head from its parameters: `weight` row-major `classes × dim`, `bias` of `classes`.
    pub fn new(classes: usize, dim: usize, weight: Vec<f64>, bias: Vec<f64>) -> Result<Self, EvalError> {
        if classes == 0 || dim == 0 {
            return Err(EvalError::Config(format!("a head needs classes and dim >= 1, got {classes} × {dim}")));
        }
        if weight.len() != classes * dim {
            return Err(EvalError::LengthMismatch {
                what: "weight vs classes × dim",
                left: weight.len(),
                right: classes * dim,
            });
        }
        if bias.len() != classes {
            return Err(EvalError::LengthMismatch { what: "bias vs classes", left: bias.len(), right: classes });
        }
        Ok(LinearHead { classes, dim, weight, bias })
    }

    /// `nn.Linear(dim, classes)`'s initial distribution, `U(-1/√dim, 1/√dim)` for `W` then `b`,
    /// drawn from `rng`.
    fn init(classes: usize, dim: usize, rng: &mut RandomState) -> Self {
        let bound = 1.0 / (dim as f64).sqrt();
        let weight = (0..classes * dim).map(|_| rng.uniform(-bound, bound)).collect();
        let bias = (0..classes).map(|_| rng.uniform(-bound, bound)).collect();
        LinearHead { classes, dim, weight, bias }
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The feature dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `W`, row-major `classes × dim`.
    pub fn weight(&self) -> &[f64] {
        &self.weight
    }

    /// `b`.
    pub fn bias(&self) -> &[f64] {
        &self.bias
    }

    /// Logits of one feature row into `out` (`classes` values).
    fn logits_into(&self, x: &[f64], out: &mut [f64]) {
        for ((o, w), b) in out.iter_mut().zip(self.weight.chunks_exact(self.dim)).zip(&self.bias) {
            *o = w.iter().zip(x).fold(0.0, |s, (w, x)| s + w * x) + b;
        }
    }

    /// Logits `[n, classes]` of features `[n, dim]`.
    pub fn logits(&self, features: &Tensor) -> Result<Tensor, EvalError> {
        let x = to_f64(features, self.dim)?;
        let n = x.len() / self.dim;
        let mut out = vec![0.0; n * self.classes];
        let mut row = vec![0.0; self.classes];
        for (i, o) in out.chunks_exact_mut(self.classes).enumerate() {
            self.logits_into(&x[i * self.dim..(i + 1) * self.dim], &mut row);
            o.iter_mut().zip(&row).for_each(|(o, v)| *o = *v as f32);
        }
        Ok(Tensor::new([n, self.classes], out))
    }

    /// Class probabilities `[n, classes]` (softmax of the logits) of features `[n, dim]`.
    pub fn predict_proba(&self, features: &Tensor) -> Result<Tensor, EvalError> {
        let x = to_f64(features, self.dim)?;
        let n = x.len() / self.dim;
        let mut out = vec![0.0; n * self.classes];
        let mut row = vec![0.0; self.classes];
        for (i, o) in out.chunks_exact_mut(self.classes).enumerate() {
            self.logits_into(&x[i * self.dim..(i + 1) * self.dim], &mut row);
            softmax_in_place(&mut row);
            o.iter_mut().zip(&row).for_each(|(o, v)| *o = *v as f32);
        }
        Ok(Tensor::new([n, self.classes], out))
    }

    /// The most probable class of each row (the lowest index among equal logits).
    pub fn predict(&self, features: &Tensor) -> Result<Vec<u32>, EvalError> {
        let x = to_f64(features, self.dim)?;
        let mut row = vec![0.0; self.classes];
        Ok(x.chunks_exact(self.dim)
            .map(|xi| {
                self.logits_into(xi, &mut row);
                argmax(&row)
            })
            .collect())
    }
}

/// The first index of the largest value.
fn argmax(v: &[f64]) -> u32 {
    v.iter().enumerate().fold(0, |best, (j, x)| if *x > v[best] { j } else { best }) as u32
}

/// Softmax of `v` in place, max-shifted.
fn softmax_in_place(v: &mut [f64]) {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    v.iter_mut().for_each(|x| {
        *x = (*x - max).exp();
        sum += *x;
    });
    v.iter_mut().for_each(|x| *x /= sum);
}

/// The features of a `[n, dim]` tensor as f64, checked finite.
fn to_f64(features: &Tensor, dim: usize) -> Result<Vec<f64>, EvalError> {
    let shape = features.shape();
    if shape.len() != 2 || shape[1] != dim {
        return Err(EvalError::Shape { what: "features", expected: format!("[samples, {dim}]"), got: shape.to_vec() });
    }
    features
        .data()
        .iter()
        .enumerate()
        .map(|(index, &v)| {
            if v.is_finite() {
                Ok(f64::from(v))
            } else {
                Err(EvalError::NotFinite { what: "feature", index, value: f64::from(v) })
            }
        })
        .collect()
}

/// Checks `labels` against `features` `[n, dim]` and `classes`.
fn check_labels(features: &Tensor, labels: &[u32], classes: usize, what: &'static str) -> Result<(), EvalError> {
    let shape = features.shape();
    if shape.len() != 2 || shape[1] == 0 {
        return Err(EvalError::Shape { what: "features", expected: "[samples, dim > 0]".into(), got: shape.to_vec() });
    }
    if shape[0] != labels.len() {
        return Err(EvalError::LengthMismatch { what: "feature rows vs labels", left: shape[0], right: labels.len() });
    }
    if labels.is_empty() {
        return Err(EvalError::Empty(what));
    }
    if classes == 0 {
        return Err(EvalError::Config("at least one class is needed".into()));
    }
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| **l as usize >= classes) {
        return Err(EvalError::Label { label, index, classes });
    }
    Ok(())
}

/// AdamW's state for one flat parameter vector.
struct AdamW {
    m: Vec<f64>,
    v: Vec<f64>,
}

impl AdamW {
    fn new(len: usize) -> Self {
        AdamW { m: vec![0.0; len], v: vec![0.0; len] }
    }

    /// One step (`step` counts from 1), as torch's single-tensor AdamW does it, operation for
    /// operation.
    fn step(&mut self, params: &mut [f64], grads: &[f64], step: u32, lr: f64, weight_decay: f64) {
        let bias_correction1 = 1.0 - BETA1.powf(f64::from(step));
        let bias_correction2 = 1.0 - BETA2.powf(f64::from(step));
        let step_size = lr / bias_correction1;
        let bias_correction2_sqrt = bias_correction2.powf(0.5);
        let decay = 1.0 - lr * weight_decay;
        let (w1, w2) = (1.0 - BETA1, 1.0 - BETA2);
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(&mut self.m).zip(&mut self.v) {
            if weight_decay != 0.0 {
                *p *= decay;
            }
            // exp_avg.lerp_(grad, 1 - beta1): weight < 0.5, so `m + w·(g − m)`.
            *m += w1 * (g - *m);
            // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            *v = *v * BETA2 + w2 * g * g;
            let denom = v.sqrt() / bias_correction2_sqrt + EPS;
            // param.addcdiv_(exp_avg, denom, value=-step_size)
            *p += -step_size * *m / denom;
        }
    }
}

/// The gradient of one batch's loss `Σ w_{y_i}·ℓ_i / Σ w_{y_i}` (samples `batch` of `x`) with
/// respect to `W` and `b`, written into `grad_w` / `grad_b`; `scratch` holds `classes` values.
/// `d/dz_i = w_{y_i}·(softmax(z_i) − onehot(y_i)) / Σ w`.
#[allow(clippy::too_many_arguments)]
fn batch_gradient(
    head: &LinearHead,
    x: &[f64],
    labels: &[u32],
    batch: &[usize],
    class_weight: &[f64],
    grad_w: &mut [f64],
    grad_b: &mut [f64],
    scratch: &mut [f64],
) {
    let dim = head.dim;
    grad_w.fill(0.0);
    grad_b.fill(0.0);
    let total_weight: f64 = batch.iter().map(|&i| class_weight[labels[i] as usize]).sum();
    for &i in batch {
        let xi = &x[i * dim..(i + 1) * dim];
        head.logits_into(xi, scratch);
        softmax_in_place(scratch);
        let y = labels[i] as usize;
        let scale = class_weight[y] / total_weight;
        for (c, (gw, gb)) in grad_w.chunks_exact_mut(dim).zip(grad_b.iter_mut()).enumerate() {
            let dz = scale * (scratch[c] - if c == y { 1.0 } else { 0.0 });
            gw.iter_mut().zip(xi).for_each(|(g, x)| *g += dz * x);
            *gb += dz;
        }
    }
}

/// Trains the probe on `features` `[n, dim]` with `labels` in `0..classes`.
pub fn train(features: &Tensor, labels: &[u32], classes: usize, config: &ProbeConfig) -> Result<LinearHead, EvalError> {
    config.validate()?;
    check_labels(features, labels, classes, "training set")?;
    let dim = features.cols();
    let x = to_f64(features, dim)?;
    let n = labels.len();
    let class_weight = class_weights(labels, classes);
    let mut rng = RandomState::new(config.seed);
    let mut head = LinearHead::init(classes, dim, &mut rng);
    let (mut opt_w, mut opt_b) = (AdamW::new(classes * dim), AdamW::new(classes));
    let (mut grad_w, mut grad_b) = (vec![0.0; classes * dim], vec![0.0; classes]);
    let mut scratch = vec![0.0; classes];
    let mut step = 0u32;
    for _ in 0..config.epochs {
        let order = rng.permutation(n);
        for batch in order.chunks(config.batch_size) {
            batch_gradient(&head, &x, labels, batch, &class_weight, &mut grad_w, &mut grad_b, &mut scratch);
            step += 1;
            opt_w.step(&mut head.weight, &grad_w, step, config.lr, config.weight_decay);
            opt_b.step(&mut head.bias, &grad_b, step, config.lr, config.weight_decay);
        }
    }
    Ok(head)
}

/// The class-weighted mean cross-entropy of `head` on a set, weights from `weights`
/// (`Σ w_{y_i}·ℓ_i / Σ w_{y_i}`, as `CrossEntropyLoss(weight=w)` over the whole set).
pub fn weighted_cross_entropy(
    head: &LinearHead,
    features: &Tensor,
    labels: &[u32],
    weights: &[f64],
) -> Result<f64, EvalError> {
    check_labels(features, labels, head.classes, "evaluation set")?;
    let x = to_f64(features, head.dim)?;
    let mut z = vec![0.0; head.classes];
    let (mut num, mut den) = (0.0, 0.0);
    for (xi, &y) in x.chunks_exact(head.dim).zip(labels) {
        head.logits_into(xi, &mut z);
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_sum = z.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
        let w = weights.get(y as usize).copied().unwrap_or(0.0);
        num += w * (log_sum - z[y as usize]);
        den += w;
    }
    Ok(num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problem of `tools/make_probe_reference.py`: features `((7i + 3d) mod 11 − 5) / 4`
    /// (exact in f32), labels `i mod classes` except samples 0..5, all class 0 (imbalanced).
    fn reference_problem(n: usize, dim: usize, classes: usize) -> (Tensor, Vec<u32>) {
        let data = (0..n * dim).map(|k| (((7 * (k / dim) + 3 * (k % dim)) % 11) as f32 - 5.0) / 4.0).collect();
        let labels = (0..n).map(|i| if i < 5 { 0 } else { (i % classes) as u32 }).collect();
        (Tensor::new([n, dim], data), labels)
    }

    /// A whole training run in torch (float64): `nn.Linear` given this module's initial
    /// weights, `CrossEntropyLoss(weight=balanced)`, `torch.optim.AdamW`, this module's batch
    /// order; the parameters after the last step.
    struct TorchCase {
        name: &'static str,
        n: usize,
        dim: usize,
        classes: usize,
        lr: f64,
        epochs: usize,
        batch_size: usize,
        weight_decay: f64,
        seed: u32,
        weight: &'static [f64],
        bias: &'static [f64],
    }

    // BEGIN GENERATED by tools/make_probe_reference.py
    // torch 2.9.1+cu128, numpy 2.3.5
    const TORCH_CASES: &[TorchCase] = &[
        TorchCase {
            name: "three-steps",
            n: 24,
            dim: 4,
            classes: 2,
            lr: 0.001,
            epochs: 1,
            batch_size: 8,
            weight_decay: 0.01,
            seed: 42,
            weight: &[
                -0.12376373995768045,
                0.44859292974335657,
                0.2305762512875351,
                0.10079360220813152,
                -0.3456634176561312,
                -0.3418873042300276,
                -0.4404923996975264,
                0.3640270828643911,
            ],
            bias: &[0.10282014628811219, 0.2063581677162119],
        },
        TorchCase {
            name: "paper-defaults",
            n: 20,
            dim: 4,
            classes: 3,
            lr: 5e-05,
            epochs: 10,
            batch_size: 8,
            weight_decay: 0.0,
            seed: 42,
            weight: &[
                -0.1241192550354259,
                0.45099252952759566,
                0.23059646609621537,
                0.09949864463320143,
                -0.34512124916263853,
                -0.3426340563803266,
                -0.44083501667619013,
                0.3649022341362365,
                0.10043324535519955,
                0.20671578755275707,
                -0.47820028912668877,
                0.4707595437039734,
            ],
            bias: &[0.33148168488081753, -0.2872414843702773, -0.31730914323383297],
        },
        TorchCase {
            name: "large-lr-decay-short-batches",
            n: 21,
            dim: 5,
            classes: 3,
            lr: 0.05,
            epochs: 3,
            batch_size: 8,
            weight_decay: 0.1,
            seed: 7,
            weight: &[
                -0.05220314538337437,
                0.41236929669994865,
                -0.353531222271911,
                0.0706240243574544,
                0.6438119361157636,
                -0.3324767430984693,
                0.2281595833346701,
                -0.03888740794277231,
                -0.40781678091886914,
                -0.15895366691518728,
                0.24120908126237847,
                -0.12272495042953817,
                -0.09190888644171973,
                -0.12678598333070923,
                -0.24365512601552844,
            ],
            bias: &[0.10561645632280098, -0.0013309715897540202, -0.024279633689103988],
        },
        TorchCase {
            name: "binary-batch-3",
            n: 13,
            dim: 3,
            classes: 2,
            lr: 0.01,
            epochs: 4,
            batch_size: 3,
            weight_decay: 0.0,
            seed: 4294967295,
            weight: &[
                -0.34657987960442044,
                0.44601475302816607,
                0.3844663293826652,
                0.20528567234698997,
                -0.5264713775176441,
                0.49142164197666016,
            ],
            bias: &[0.08389742530382747, -0.38493650974152055],
        },
    ];
    // END GENERATED

    fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol, "{what}[{k}]: mvb {g} vs torch {w}");
        }
    }

    #[test]
    fn training_matches_torch_adamw() {
        for case in TORCH_CASES {
            let (features, labels) = reference_problem(case.n, case.dim, case.classes);
            let config = ProbeConfig {
                lr: case.lr,
                epochs: case.epochs,
                batch_size: case.batch_size,
                weight_decay: case.weight_decay,
                seed: case.seed,
            };
            let head = train(&features, &labels, case.classes, &config).unwrap();
            assert_close(head.weight(), case.weight, 1e-12, case.name);
            assert_close(head.bias(), case.bias, 1e-12, case.name);
        }
    }

    #[test]
    fn init_is_numpy_uniform() {
        // Zero epochs: the head is its initialisation, W row-major then b.
        let (features, labels) = reference_problem(6, 3, 2);
        let config = ProbeConfig { epochs: 0, ..ProbeConfig::default() };
        let head = train(&features, &labels, 2, &config).unwrap();
        let mut rng = RandomState::new(42);
        let bound = 1.0 / 3f64.sqrt();
        let want: Vec<f64> = (0..8).map(|_| rng.uniform(-bound, bound)).collect();
        assert_eq!(head.weight(), &want[..6]);
        assert_eq!(head.bias(), &want[6..]);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let (features, labels) = reference_problem(40, 5, 3);
        let config = ProbeConfig { lr: 1e-2, epochs: 3, ..ProbeConfig::default() };
        let a = train(&features, &labels, 3, &config).unwrap();
        let b = train(&features, &labels, 3, &config).unwrap();
        assert!(a.weight().iter().zip(b.weight()).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert!(a.bias().iter().zip(b.bias()).all(|(x, y)| x.to_bits() == y.to_bits()));
        let c = train(&features, &labels, 3, &ProbeConfig { seed: 43, ..config }).unwrap();
        assert_ne!(a, c);
    }

    /// The batch loss `Σ w_y·ℓ / Σ w_y` at `head`, in f64.
    fn batch_loss(head: &LinearHead, x: &[f64], labels: &[u32], w: &[f64]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        let mut z = vec![0.0; head.classes];
        for (xi, &y) in x.chunks_exact(head.dim).zip(labels) {
            head.logits_into(xi, &mut z);
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = z.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
            num += w[y as usize] * (lse - z[y as usize]);
            den += w[y as usize];
        }
        num / den
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (features, labels) = reference_problem(9, 4, 3);
        let x = to_f64(&features, 4).unwrap();
        let w = class_weights(&labels, 3);
        let head = LinearHead::init(3, 4, &mut RandomState::new(5));
        let batch = [0, 2, 3, 5, 8, 8];
        let (mut gw, mut gb, mut scratch) = (vec![0.0; 12], vec![0.0; 3], vec![0.0; 3]);
        batch_gradient(&head, &x, &labels, &batch, &w, &mut gw, &mut gb, &mut scratch);
        let bx: Vec<f64> = batch.iter().flat_map(|&i| x[i * 4..(i + 1) * 4].iter().copied()).collect();
        let by: Vec<u32> = batch.iter().map(|&i| labels[i]).collect();
        let h = 1e-6;
        for k in 0..15 {
            let bump = |delta: f64| {
                let mut hd = head.clone();
                if k < 12 {
                    hd.weight[k] += delta
                } else {
                    hd.bias[k - 12] += delta
                }
                batch_loss(&hd, &bx, &by, &w)
            };
            let numeric = (bump(h) - bump(-h)) / (2.0 * h);
            let analytic = if k < 12 { gw[k] } else { gb[k - 12] };
            assert!((numeric - analytic).abs() < 1e-8, "param {k}: {numeric} vs {analytic}");
        }
    }

    #[test]
    fn learns_a_separable_problem() {
        // Two Gaussian-ish blobs in 6-D, imbalanced 3:1.
        let mut rng = RandomState::new(11);
        let n = 200;
        let labels: Vec<u32> = (0..n).map(|i| u32::from(i % 4 == 0)).collect();
        let data: Vec<f32> = labels
            .iter()
            .flat_map(|&y| {
                let centre = if y == 1 { 1.0 } else { -1.0 };
                (0..6).map(|_| (centre + 0.5 * (rng.random_sample() - 0.5)) as f32).collect::<Vec<_>>()
            })
            .collect();
        let features = Tensor::new([n, 6], data);
        let config = ProbeConfig { lr: 1e-2, epochs: 5, ..ProbeConfig::default() };
        let head = train(&features, &labels, 2, &config).unwrap();
        assert_eq!(head.predict(&features).unwrap(), labels);
        let proba = head.predict_proba(&features).unwrap();
        assert_eq!(proba.shape(), &[n, 2]);
        for i in 0..n {
            let row = proba.row(i);
            assert!((row[0] + row[1] - 1.0).abs() < 1e-6);
            assert!(row[labels[i] as usize] > 0.9, "sample {i}: {row:?}");
        }
        let logits = head.logits(&features).unwrap();
        assert_eq!(logits.shape(), &[n, 2]);
        // The paper's tiny learning rate still moves the head the right way: the loss falls
        // from the initialisation's.
        let w = class_weights(&labels, 2);
        let init = train(&features, &labels, 2, &ProbeConfig { epochs: 0, ..ProbeConfig::default() }).unwrap();
        let slow = train(&features, &labels, 2, &ProbeConfig::default()).unwrap();
        let (before, after) = (
            weighted_cross_entropy(&init, &features, &labels, &w).unwrap(),
            weighted_cross_entropy(&slow, &features, &labels, &w).unwrap(),
        );
        assert!(after < before - 1e-3, "{before} -> {after}");
    }

    #[test]
    fn rejects_bad_input() {
        let (features, labels) = reference_problem(6, 3, 3);
        let cfg = ProbeConfig::default();
        assert!(matches!(train(&features, &labels[..5], 3, &cfg), Err(EvalError::LengthMismatch { .. })));
        assert!(matches!(train(&features, &labels, 2, &cfg), Err(EvalError::Label { label: 2, .. })));
        let flat = Tensor::new([18], features.data().to_vec());
        assert!(matches!(train(&flat, &labels, 3, &cfg), Err(EvalError::Shape { .. })));
        assert!(matches!(train(&Tensor::zeros([0, 3]), &[], 3, &cfg), Err(EvalError::Empty(_))));
        let bad = ProbeConfig { batch_size: 0, ..cfg };
        assert!(matches!(train(&features, &labels, 3, &bad), Err(EvalError::Config(_))));
        let bad = ProbeConfig { weight_decay: -1.0, ..cfg };
        assert!(matches!(train(&features, &labels, 3, &bad), Err(EvalError::Config(_))));
        let mut nan = features.clone();
        nan.data_mut()[4] = f32::NAN;
        assert!(matches!(train(&nan, &labels, 3, &cfg), Err(EvalError::NotFinite { index: 4, .. })));
        let head = train(&features, &labels, 3, &cfg).unwrap();
        assert!(matches!(head.predict_proba(&Tensor::zeros([2, 4])), Err(EvalError::Shape { .. })));
        assert!(LinearHead::new(2, 3, vec![0.0; 5], vec![0.0; 2]).is_err());
        assert!(LinearHead::new(2, 3, vec![0.0; 6], vec![0.0; 3]).is_err());
        assert!(LinearHead::new(2, 0, vec![], vec![0.0; 2]).is_err());
        let head = LinearHead::new(2, 3, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0], vec![0.0, 0.5]).unwrap();
        assert_eq!(head.predict(&Tensor::new([2, 3], vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0])).unwrap(), vec![0, 1]);
    }
}
