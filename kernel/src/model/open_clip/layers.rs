//! Loading open_clip's and timm's transformer layers into mvb's pre-norm encoder layer
//! ([`crate::model::nn::Encoder`]: the same computation as open_clip's `ResidualAttentionBlock`
//! and timm's ViT `Block`, under other tensor names), and refusing checkpoint tensors of
//! variants mvb does not implement (layer scale, register tokens, q/k norms, ...).

use crate::backend::cpu::Activation;
use crate::backend::{Device, Linear};
use crate::model::nn::{Encoder, EncoderLayer, LayerNorm, Mlp, SelfAttention, linear};
use crate::model::{ModelError, Weights};
use crate::tensor::Tensor;

/// How a layer's tensors are named, relative to the layer's prefix.
#[derive(Debug, Clone, Copy)]
pub struct LayerNames {
    /// First norm.
    pub ln1: &'static str,
    /// The fused QKV weight and bias (full names).
    pub qkv: (&'static str, &'static str),
    /// The attention output projection.
    pub out: &'static str,
    /// Second norm.
    pub ln2: &'static str,
    /// The MLP's first and second layers.
    pub fc: (&'static str, &'static str),
}

/// open_clip's `ResidualAttentionBlock` (`nn.MultiheadAttention`).
pub const OPEN_CLIP: LayerNames = LayerNames::new([
    "ln_1",
    "attn.in_proj_weight",
    "attn.in_proj_bias",
    "attn.out_proj",
    "ln_2",
    "mlp.c_fc",
    "mlp.c_proj",
]);

/// timm's ViT `Block`.
pub const TIMM: LayerNames =
    LayerNames::new(["norm1", "attn.qkv.weight", "attn.qkv.bias", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"]);

impl LayerNames {
    /// `[ln1, qkv weight, qkv bias, out, ln2, fc1, fc2]`.
    const fn new([ln1, qkv_w, qkv_b, out, ln2, fc1, fc2]: [&'static str; 7]) -> Self {
        LayerNames { ln1, qkv: (qkv_w, qkv_b), out, ln2, fc: (fc1, fc2) }
    }

    /// Every tensor name of a layer, relative to its prefix.
    fn all(&self) -> Vec<String> {
        let mut v = vec![self.qkv.0.to_owned(), self.qkv.1.to_owned()];
        for m in [self.ln1, self.out, self.ln2, self.fc.0, self.fc.1] {
            v.extend([format!("{m}.weight"), format!("{m}.bias")]);
        }
        v
    }
}

/// The shape of an encoder.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Width.
    pub width: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP activation.
    pub act: Activation,
    /// Layer-norm epsilon.
    pub eps: f32,
}

/// Layers `{prefix}.{i}` for `i < count`, named by `names`.
pub fn encoder(
    w: &Weights,
    dev: &Device,
    prefix: &str,
    count: usize,
    s: Shape,
    names: LayerNames,
) -> Result<Encoder, ModelError> {
    if s.heads == 0 || !s.width.is_multiple_of(s.heads) {
        return Err(ModelError::Input(format!("{prefix}: width {} is not divisible by {} heads", s.width, s.heads)));
    }
    let d = s.width;
    let layers = (0..count)
        .map(|i| {
            let p = format!("{prefix}.{i}");
            let fc1 = format!("{p}.{}", names.fc.0);
            let hidden = match w.shape(&format!("{fc1}.weight")) {
                Some(&[h, _]) => h,
                _ => return Err(w.missing(&format!("{fc1}.weight"))),
            };
            let qkv_w = w.tensor(&format!("{p}.{}", names.qkv.0), &[3 * d, d])?;
            let qkv_b = w.vector(&format!("{p}.{}", names.qkv.1), 3 * d)?;
            Ok(EncoderLayer {
                ln1: LayerNorm::load(w, dev, &format!("{p}.{}", names.ln1), d, s.eps)?,
                attn: SelfAttention {
                    qkv: Linear::new(dev, qkv_w, Some(qkv_b))?,
                    out: linear(w, dev, &format!("{p}.{}", names.out), d, d, true)?,
                    heads: s.heads,
                },
                ln2: LayerNorm::load(w, dev, &format!("{p}.{}", names.ln2), d, s.eps)?,
                mlp: Mlp {
                    fc1: linear(w, dev, &fc1, d, hidden, true)?,
                    fc2: linear(w, dev, &format!("{p}.{}", names.fc.1), hidden, d, true)?,
                    act: s.act,
                },
            })
        })
        .collect::<Result<Vec<_>, ModelError>>()?;
    Ok(Encoder { layers })
}

/// The number of layers `{prefix}.{i}` the checkpoint holds.
pub fn count(w: &Weights, prefix: &str, names: LayerNames) -> usize {
    (0..).take_while(|i| w.contains(&format!("{prefix}.{i}.{}.weight", names.ln1))).count()
}

/// Refuses a tensor under `prefix` that is neither one of `top` (relative names) nor a tensor
/// of a layer `{blocks}.{i}` named by `names`: the checkpoint is a variant mvb does not
/// implement, and computing without that tensor would give other features.
pub fn only_known(
    w: &Weights,
    prefix: &str,
    top: &[&str],
    (blocks, names): (&str, LayerNames),
) -> Result<(), ModelError> {
    let layer = names.all();
    let known = |rest: &str| {
        top.contains(&rest)
            || rest.strip_prefix(blocks).and_then(|r| r.strip_prefix('.')).is_some_and(|r| {
                r.split_once('.')
                    .is_some_and(|(i, t)| i.parse::<usize>().is_ok() && layer.iter().any(|l| l.as_str() == t))
            })
    };
    let mut unknown: Vec<&str> =
        w.names().filter(|n| n.strip_prefix(prefix).is_some_and(|rest| !known(rest))).collect();
    unknown.sort_unstable();
    match unknown.first() {
        None => Ok(()),
        Some(name) => Err(ModelError::Input(format!(
            "{}: tensor `{name}` belongs to an architecture variant mvb does not implement{}",
            w.origin().display(),
            if unknown.len() > 1 { format!(" (and {} more)", unknown.len() - 1) } else { String::new() }
        ))),
    }
}

/// `[out, inp]` from a `[inp, out]` matrix stored for `x @ proj` (open_clip's `proj`,
/// `text_projection`).
pub fn transposed_projection(w: &Weights, dev: &Device, name: &str, inp: usize) -> Result<Linear, ModelError> {
    let out = match w.shape(name) {
        Some(&[i, o]) if i == inp => o,
        Some(s) => {
            return Err(ModelError::Input(format!(
                "{}: tensor `{name}` has shape {s:?}, expected [{inp}, embed_dim]",
                w.origin().display()
            )));
        }
        None => return Err(w.missing(name)),
    };
    let t = w.tensor(name, &[inp, out])?;
    let mut data = vec![0f32; inp * out];
    for (i, row) in t.data().chunks_exact(out).enumerate() {
        for (o, v) in row.iter().enumerate() {
            data[o * inp + i] = *v;
        }
    }
    Ok(Linear::new(dev, Tensor::new([out, inp], data), None)?)
}
