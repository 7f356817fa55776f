//! LoRA adapter state for a ViT image tower, as PEFT builds it (`peft/tuners/lora/layer.py`,
//! `LoraConfig(r, lora_alpha, lora_dropout, bias="none")`) for MedVLMBench's FT-LoRA: one
//! adapter on every `nn.Linear` and `nn.Embedding` of the vision model (`model/clip_base.py`'s
//! `find_target_linear_names`): the position embedding, each layer's `q_proj`, `k_proj`,
//! `v_proj`, `out_proj`, `mlp.fc1`, `mlp.fc2`, and for SigLIP the pooling head's
//! `attention.out_proj`, `mlp.fc1` and `mlp.fc2`.
//!
//! - Linear: `y = x·Wᵀ + b + s·(dropout(x)·Aᵀ)·Bᵀ`, `A` `[r, in]`, `B` `[out, r]`, `s = alpha/r`.
//! - Embedding (the position table `P`, `[positions, width]`): `P + s·Aᵀ·Bᵀ` with `A`
//!   `[r, positions]`, `B` `[width, r]`; PEFT applies no dropout to embeddings.
//! - SigLIP's pooling `attention.out_proj` sits inside `nn.MultiheadAttention`, whose forward
//!   reads `out_proj.weight` directly: PEFT wraps it, but its LoRA never takes part in the
//!   forward and gets no gradient (checked with PEFT 0.21.2). mvb keeps it in the adapter (so the
//!   files match PEFT's) and, like PEFT's forward, never applies it.
//!
//! Initialisation follows PEFT's distributions (not torch's random stream): Linear `A`
//! `U(-1/√in, 1/√in)` (`kaiming_uniform_(a=√5)`), `B = 0`; Embedding `A = 0`, `B ~ N(0, 1)`;
//! drawn from numpy's `RandomState(seed)` (`uniform`, and the legacy polar `standard_normal`) in
//! [`Adapter::targets`] order, `A` before `B`.

use std::collections::BTreeMap;

use crate::random::RandomState;

/// A projection of an encoder layer (or of SigLIP's pooling head).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// `self_attn.q_proj`.
    Q,
    /// `self_attn.k_proj`.
    K,
    /// `self_attn.v_proj`.
    V,
    /// `self_attn.out_proj` (pooling head: `attention.out_proj`).
    Out,
    /// `mlp.fc1`.
    Fc1,
    /// `mlp.fc2`.
    Fc2,
}

/// A module of the vision model that carries a LoRA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// `embeddings.position_embedding` (an `nn.Embedding`).
    Position,
    /// A projection of encoder layer `i`.
    Layer(usize, Part),
    /// A projection of SigLIP's attention-pooling head.
    Pool(Part),
}

impl Target {
    /// The module's name inside the vision model, as PEFT keys it.
    pub fn module_name(self) -> String {
        let part = |p: Part| match p {
            Part::Q => "self_attn.q_proj",
            Part::K => "self_attn.k_proj",
            Part::V => "self_attn.v_proj",
            Part::Out => "self_attn.out_proj",
            Part::Fc1 => "mlp.fc1",
            Part::Fc2 => "mlp.fc2",
        };
        match self {
            Target::Position => "embeddings.position_embedding".into(),
            Target::Layer(i, p) => format!("encoder.layers.{i}.{}", part(p)),
            Target::Pool(Part::Out) => "head.attention.out_proj".into(),
            Target::Pool(p) => format!("head.{}", part(p)),
        }
    }

    /// Whether the forward pass uses it (all but SigLIP's pooling `out_proj`, see the module docs).
    pub fn is_effective(self) -> bool {
        self != Target::Pool(Part::Out)
    }

    /// Whether it is an embedding (no dropout; PEFT's `lora_embedding_A`/`_B` names).
    pub fn is_embedding(self) -> bool {
        self == Target::Position
    }
}

/// One module's low-rank pair, row-major: `A` `[r, inputs]`, `B` `[outputs, r]` (for the
/// embedding, inputs = positions and outputs = width).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraPair {
    /// `A`.
    pub a: Vec<f32>,
    /// `B`.
    pub b: Vec<f32>,
    /// The module's input size (`A`'s columns).
    pub inputs: usize,
    /// The module's output size (`B`'s rows).
    pub outputs: usize,
}

/// The LoRA hyper-parameters (PEFT's `LoraConfig`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoraShape {
    /// Rank `r` (8 in MedVLMBench).
    pub r: usize,
    /// `lora_alpha` (32).
    pub alpha: f32,
    /// `lora_dropout` on the input of each linear layer's LoRA branch (0.05).
    pub dropout: f32,
}

impl Default for LoraShape {
    fn default() -> Self {
        LoraShape { r: 8, alpha: 32.0, dropout: 0.05 }
    }
}

impl LoraShape {
    /// `alpha / r`, PEFT's `scaling`.
    pub fn scale(&self) -> f32 {
        self.alpha / self.r as f32
    }
}

/// A LoRA adapter of an image tower: every target's pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Adapter {
    /// Rank, alpha, dropout.
    pub shape: LoraShape,
    /// The pairs by target.
    pub pairs: BTreeMap<Target, LoraPair>,
}

impl Adapter {
    /// An adapter on `targets` (target, inputs, outputs), initialised as PEFT does, drawn from
    /// `RandomState(seed)`.
    pub fn init(shape: LoraShape, targets: &[(Target, usize, usize)], seed: u32) -> Adapter {
        let mut rng = RandomState::new(seed);
        let mut normal = Normal::default();
        let r = shape.r;
        let pairs = targets
            .iter()
            .map(|&(t, inputs, outputs)| {
                let (a, b) = if t.is_embedding() {
                    (vec![0.0; r * inputs], (0..outputs * r).map(|_| normal.draw(&mut rng) as f32).collect())
                } else {
                    let bound = 1.0 / (inputs as f64).sqrt();
                    ((0..r * inputs).map(|_| rng.uniform(-bound, bound) as f32).collect(), vec![0.0; outputs * r])
                };
                (t, LoraPair { a, b, inputs, outputs })
            })
            .collect();
        Adapter { shape, pairs }
    }

    /// The pair of `target`, if the adapter has one.
    pub fn pair(&self, target: Target) -> Option<&LoraPair> {
        self.pairs.get(&target)
    }

    /// The number of trainable values.
    pub fn parameters(&self) -> usize {
        self.pairs.values().map(|p| p.a.len() + p.b.len()).sum()
    }
}

/// numpy's legacy `standard_normal` (`legacy_gauss`: the polar method, caching the second value).
#[derive(Debug, Default)]
struct Normal {
    cached: Option<f64>,
}

impl Normal {
    fn draw(&mut self, rng: &mut RandomState) -> f64 {
        if let Some(v) = self.cached.take() {
            return v;
        }
        loop {
            let x1 = 2.0 * rng.random_sample() - 1.0;
            let x2 = 2.0 * rng.random_sample() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.cached = Some(f * x1);
                return f * x2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_follow_peft() {
        assert_eq!(Target::Layer(3, Part::K).module_name(), "encoder.layers.3.self_attn.k_proj");
        assert_eq!(Target::Pool(Part::Out).module_name(), "head.attention.out_proj");
        assert_eq!(Target::Pool(Part::Fc2).module_name(), "head.mlp.fc2");
        assert_eq!(Target::Position.module_name(), "embeddings.position_embedding");
    }

    #[test]
    fn legacy_normal_matches_numpy() {
        // np.random.RandomState(42).standard_normal(3)
        let mut rng = RandomState::new(42);
        let mut n = Normal::default();
        let got: Vec<f64> = (0..3).map(|_| n.draw(&mut rng)).collect();
        let want = [0.496_714_153_011_232_7, -0.138_264_301_171_184_66, 0.647_688_538_100_692_5];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{g} vs {w}");
        }
    }
}
