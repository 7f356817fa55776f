//! `torch.optim.AdamW` in f32, as its single-tensor implementation (`torch/optim/adamw.py`,
//! `_single_tensor_adam` with decoupled weight decay; what PyTorch runs for CPU tensors)
//! computes it, operation for operation: the scalars (`lr / (1 − β₁ᵗ)`, `√(1 − β₂ᵗ)`) in f64
//! as Python computes them, the tensor arithmetic in f32. FT-LP's probe (`eval/probe.rs`)
//! does the same sums in f64.

/// First-moment decay (torch default).
const BETA1: f64 = 0.9;
/// Second-moment decay (torch default).
const BETA2: f64 = 0.999;
/// Epsilon (torch default).
const EPS: f64 = 1e-8;

/// AdamW's state for one parameter tensor (created at its first step, as torch's).
#[derive(Debug, Clone, Default)]
pub struct AdamW {
    m: Vec<f32>,
    v: Vec<f32>,
    steps: u32,
}

impl AdamW {
    /// One step of `params` with `grads` (`lr`, decoupled `weight_decay`).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f64, weight_decay: f64) {
        if self.m.len() != params.len() {
            self.m = vec![0.0; params.len()];
            self.v = vec![0.0; params.len()];
        }
        self.steps += 1;
        let step = f64::from(self.steps);
        let step_size = (lr / (1.0 - BETA1.powf(step))) as f32;
        let bias_correction2_sqrt = (1.0 - BETA2.powf(step)).sqrt() as f32;
        let decay = (1.0 - lr * weight_decay) as f32;
        let (w1, b2, w2, eps) = ((1.0 - BETA1) as f32, BETA2 as f32, (1.0 - BETA2) as f32, EPS as f32);
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(&mut self.m).zip(&mut self.v) {
            if weight_decay != 0.0 {
                *p *= decay;
            }
            // exp_avg.lerp_(grad, 1 - beta1)
            *m += w1 * (g - *m);
            // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            *v = *v * b2 + w2 * g * g;
            // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
            let denom = v.sqrt() / bias_correction2_sqrt + eps;
            // param.addcdiv_(exp_avg, denom, value=-step_size)
            *p += -step_size * *m / denom;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_parameter_by_lr() {
        let mut opt = AdamW::default();
        let mut p = vec![1.0f32, -2.0];
        opt.step(&mut p, &[0.5, -3.0], 1e-3, 0.0);
        assert!((p[0] - 0.999).abs() < 1e-6 && (p[1] + 1.999).abs() < 1e-6, "{p:?}");
    }
}
