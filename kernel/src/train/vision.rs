//! The training forward and backward passes of a CLIP or SigLIP image tower with LoRA. The
//! forward IS the model's own (`Clip::image_features_with`, `SiglipVision::forward_with`): a
//! [`Recorder`] rides its hooks (`model::nn::Pass`), adds each LoRA branch (dropout on its
//! input, as PEFT) and keeps the activations the backward needs: each LoRA layer's input, the
//! fused QKV and pooling K/V outputs (attention is recomputed from them), the MLPs'
//! pre-activations and every layer norm's input. The backward walks the same layers in
//! reverse with the compute layer's backward operations (`backend/grad.rs`), through the frozen
//! weights, into the LoRA pairs. Gradients stop at the tokens: the patch convolution has no
//! LoRA and the pixels need none.

use std::collections::{BTreeMap, HashMap};

use super::TrainError;
use super::dropout::Dropout;
use super::lora::{Adapter, Part, Target};
use crate::backend::{Array, Device, Linear, Vector};
use crate::model::clip::Clip;
use crate::model::nn::{EncoderLayer, LayerNorm, Mlp, Pass, Site};
use crate::model::siglip::Siglip;
use crate::model::{ModelError, Tower};
use crate::tensor::Tensor;

/// Gradients of one LoRA pair: `(dA, dB)`, row-major as the pair.
pub type PairGrad = (Vec<f32>, Vec<f32>);

/// What a kept activation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    Input,
    Output,
}

/// The LoRA targets whose branches add into the output of the layer at `site`, with the first
/// output column of each.
fn targets_at(site: Site, width: usize) -> Vec<(Target, usize)> {
    match site {
        Site::Qkv(i) => vec![
            (Target::Layer(i, Part::Q), 0),
            (Target::Layer(i, Part::K), width),
            (Target::Layer(i, Part::V), 2 * width),
        ],
        Site::Out(i) => vec![(Target::Layer(i, Part::Out), 0)],
        Site::Fc1(i) => vec![(Target::Layer(i, Part::Fc1), 0)],
        Site::Fc2(i) => vec![(Target::Layer(i, Part::Fc2), 0)],
        Site::PoolFc1 => vec![(Target::Pool(Part::Fc1), 0)],
        Site::PoolFc2 => vec![(Target::Pool(Part::Fc2), 0)],
        _ => Vec::new(),
    }
}

/// Whether the backward needs the output of the layer at `site`.
fn keeps_output(site: Site) -> bool {
    matches!(site, Site::Qkv(_) | Site::Fc1(_) | Site::PoolKv | Site::PoolFc1)
}

/// A training pass: LoRA branches on the model's hooks, and the tape for the backward.
pub(crate) struct Recorder<'a> {
    adapter: &'a Adapter,
    /// `(A, B)` of each effective target, on the device.
    weights: HashMap<Target, (Array, Array)>,
    dropout: Option<&'a mut Dropout>,
    tape: HashMap<(Site, Slot), Array>,
    masks: HashMap<Target, Array>,
    /// `dropout(x)` of each linear target whose input was dropped (kept for `dA`).
    dropped: HashMap<Target, Array>,
    /// `dropout(x)·Aᵀ` of each linear target.
    hidden: HashMap<Target, Array>,
    /// The width of the fused QKV's parts.
    width: usize,
}

impl std::fmt::Debug for Recorder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recorder({} kept)", self.tape.len())
    }
}

impl<'a> Recorder<'a> {
    /// A pass applying `adapter` (uploaded to `dev`), with `dropout` when training.
    pub(crate) fn new(
        dev: &Device,
        adapter: &'a Adapter,
        dropout: Option<&'a mut Dropout>,
        width: usize,
    ) -> Result<Self, TrainError> {
        let mut weights = HashMap::new();
        let r = adapter.shape.r;
        for (&t, p) in adapter.pairs.iter().filter(|(t, _)| t.is_effective()) {
            let a = dev.upload(Tensor::new([r, p.inputs], p.a.clone()))?;
            let b = dev.upload(Tensor::new([p.outputs, r], p.b.clone()))?;
            weights.insert(t, (a, b));
        }
        let (tape, masks, hidden, dropped) = (HashMap::new(), HashMap::new(), HashMap::new(), HashMap::new());
        Ok(Recorder { adapter, weights, dropout, tape, masks, dropped, hidden, width })
    }

    fn kept(&self, site: Site, slot: Slot) -> Result<&Array, TrainError> {
        self.tape.get(&(site, slot)).ok_or_else(|| TrainError::Internal(format!("no {slot:?} kept at {site:?}")))
    }

    /// `y[.., col..] += s·(dropout(x)·Aᵀ)·Bᵀ` of `target`.
    fn branch(&mut self, dev: &Device, x: &Array, target: Target, col: usize, y: &mut Array) -> Result<(), ModelError> {
        let Some((a, b)) = self.weights.get(&target) else { return Ok(()) };
        let p = self.adapter.shape.dropout;
        let dropped = match self.dropout.as_deref_mut() {
            Some(d) if p > 0.0 => {
                let mask = dev.upload(Tensor::new(x.shape().to_vec(), d.mask(x.len(), p)))?;
                let mut xd = dev.copy(x)?;
                dev.mul(&mut xd, &mask)?;
                self.masks.insert(target, mask);
                Some(xd)
            }
            _ => None,
        };
        let t = dev.matmul(dropped.as_ref().unwrap_or(x), false, a, true, 1.0)?;
        let d = dev.matmul(&t, false, b, true, self.adapter.shape.scale())?;
        dev.add_cols(y, col, &d)?;
        self.hidden.insert(target, t);
        if let Some(xd) = dropped {
            self.dropped.insert(target, xd);
        }
        Ok(())
    }
}

impl Pass for Recorder<'_> {
    fn linear(&mut self, dev: &Device, x: &Array, l: &Linear, site: Site) -> Result<Array, ModelError> {
        let mut y = dev.linear(x, l)?;
        let targets = targets_at(site, self.width);
        for &(target, col) in &targets {
            self.branch(dev, x, target, col, &mut y)?;
        }
        // The input itself is needed for `dA` only where a branch ran without dropout.
        let undropped = |t: &Target| self.weights.contains_key(t) && !self.dropped.contains_key(t);
        if targets.iter().any(|(t, _)| undropped(t)) {
            self.tape.insert((site, Slot::Input), dev.copy(x)?);
        }
        if keeps_output(site) {
            self.tape.insert((site, Slot::Output), dev.copy(&y)?);
        }
        Ok(y)
    }

    fn linear_add(&mut self, dev: &Device, x: &Array, l: &Linear, site: Site, y: &mut Array) -> Result<(), ModelError> {
        let p = self.linear(dev, x, l, site)?;
        Ok(dev.add(y, &p)?)
    }

    fn norm(&mut self, dev: &Device, x: &Array, ln: &LayerNorm, site: Site) -> Result<Array, ModelError> {
        self.tape.insert((site, Slot::Input), dev.copy(x)?);
        ln.forward(dev, x)
    }

    fn positions(&mut self, dev: &Device, table: &Vector) -> Result<Option<Vector>, ModelError> {
        let Some((a, b)) = self.weights.get(&Target::Position) else { return Ok(None) };
        let delta = dev.matmul(a, true, b, true, self.adapter.shape.scale())?.into_tensor(dev)?;
        let mut values = table.values().to_vec();
        crate::backend::cpu::add_assign_slice(&mut values, delta.data());
        Ok(Some(Vector::activation(dev, values)?))
    }
}

/// The backward pass over a recorded forward: accumulates each LoRA pair's gradient.
pub(crate) struct Backward<'r, 'a> {
    rec: &'r Recorder<'a>,
    dev: &'r Device,
    /// The gradients so far.
    pub(crate) grads: BTreeMap<Target, PairGrad>,
}

impl<'r, 'a> Backward<'r, 'a> {
    pub(crate) fn new(dev: &'r Device, rec: &'r Recorder<'a>) -> Self {
        Backward { rec, dev, grads: BTreeMap::new() }
    }

    /// `dx` of the LoRA branch of `target` given its output gradient `dy`; stores `dA`, `dB`.
    fn branch(&mut self, site: Site, target: Target, dy: &Array) -> Result<Option<Array>, TrainError> {
        let Some((a, b)) = self.rec.weights.get(&target) else { return Ok(None) };
        let dev = self.dev;
        let scale = self.rec.adapter.shape.scale();
        let t = self.rec.hidden.get(&target).ok_or_else(|| TrainError::Internal(format!("{target:?} not run")))?;
        let mask = self.rec.masks.get(&target);
        let input = match (self.rec.dropped.get(&target), mask) {
            (Some(xd), _) => xd,
            (None, None) => self.rec.kept(site, Slot::Input)?,
            (None, Some(_)) => return Err(TrainError::Internal(format!("{target:?}: dropped input not kept"))),
        };
        let db = dev.matmul(dy, true, t, false, scale)?;
        let dt = dev.matmul(dy, false, b, false, scale)?;
        let da = dev.matmul(&dt, true, input, false, 1.0)?;
        let mut dx = dev.matmul(&dt, false, a, false, 1.0)?;
        if let Some(m) = mask {
            dev.mul(&mut dx, m)?;
        }
        let (da, db) = (da.into_tensor(dev)?.into_data(), db.into_tensor(dev)?.into_data());
        self.grads.insert(target, (da, db));
        let mut shape = dy.shape().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = input.cols();
        }
        Ok(Some(dx.reshape(shape)?))
    }

    /// `dx` of the linear layer `l` at `site` (frozen weight plus its LoRA branch).
    fn linear(&mut self, l: &Linear, site: Site, dy: &Array) -> Result<Array, TrainError> {
        let mut dx = self.dev.linear_backward(dy, l)?;
        for (target, _) in targets_at(site, self.rec.width) {
            if let Some(d) = self.branch(site, target, dy)? {
                self.dev.add(&mut dx, &d)?;
            }
        }
        Ok(dx)
    }

    /// `dx` of the layer norm at `site` given `dy`.
    fn norm(&self, ln: &LayerNorm, site: Site, dy: &Array) -> Result<Array, TrainError> {
        Ok(self.dev.layer_norm_backward(self.rec.kept(site, Slot::Input)?, &ln.gamma, ln.eps, dy)?)
    }

    /// `x + fc2(act(fc1(ln(x))))`: adds the MLP branch's gradient into `dx`.
    fn mlp(
        &mut self,
        ln: &LayerNorm,
        mlp: &Mlp,
        [ln_site, s1, s2]: [Site; 3],
        dx: &mut Array,
    ) -> Result<(), TrainError> {
        let dact = self.linear(&mlp.fc2, s2, dx)?;
        let dm = self.dev.activate_backward(self.rec.kept(s1, Slot::Output)?, &dact, mlp.act)?;
        let dh = self.linear(&mlp.fc1, s1, &dm)?;
        let d = self.norm(ln, ln_site, &dh)?;
        Ok(self.dev.add(dx, &d)?)
    }

    /// One encoder layer backward: `dx` is the gradient of the layer's output, made the
    /// gradient of its input.
    fn layer(&mut self, layer: &EncoderLayer, i: usize, dx: &mut Array) -> Result<(), TrainError> {
        let dev = self.dev;
        self.mlp(&layer.ln2, &layer.mlp, [Site::Ln2(i), Site::Fc1(i), Site::Fc2(i)], dx)?;
        let da = self.linear(&layer.attn.out, Site::Out(i), dx)?;
        let qkv = self.rec.kept(Site::Qkv(i), Slot::Output)?;
        let attn = &layer.attn;
        let (dq, dk, dv) = dev.attention_backward(attn.view(qkv, 0), attn.view(qkv, 1), attn.view(qkv, 2), &da)?;
        dev.add(dx, &self.qkv(layer, i, [&dq, &dk, &dv])?)?;
        Ok(())
    }

    /// The gradient of layer `i`'s input through its fused q/k/v projection (frozen weight plus
    /// the three LoRA branches) and its first layer norm, from the gradients of q, k and v.
    fn qkv(&mut self, layer: &EncoderLayer, i: usize, [dq, dk, dv]: [&Array; 3]) -> Result<Array, TrainError> {
        let dev = self.dev;
        let mut dh = dev.linear_backward(&dev.concat_cols(&[dq, dk, dv])?, &layer.attn.qkv)?;
        for (part, dy) in [(Part::Q, dq), (Part::K, dk), (Part::V, dv)] {
            if let Some(d) = self.branch(Site::Qkv(i), Target::Layer(i, part), dy)? {
                dev.add(&mut dh, &d)?;
            }
        }
        self.norm(&layer.ln1, Site::Ln1(i), &dh)
    }

    /// The encoder's layers in reverse.
    fn encoder(&mut self, layers: &[EncoderLayer], dx: &mut Array) -> Result<(), TrainError> {
        for (i, layer) in layers.iter().enumerate().rev() {
            self.layer(layer, i, dx)?;
        }
        Ok(())
    }

    /// The last encoder layer as `Encoder::forward_row_with` ran it (only position `row` kept):
    /// from the kept rows' gradient `dy` (`[batch, w]`) to the layer input's, `[batch, seq, w]`.
    fn last_layer_row(&mut self, layer: &EncoderLayer, i: usize, row: usize, dy: &Array) -> Result<Array, TrainError> {
        let dev = self.dev;
        let (batch, w) = (dy.shape()[0], dy.cols());
        let mut dy = dev.copy(dy)?.reshape([batch, 1, w])?;
        self.mlp(&layer.ln2, &layer.mlp, [Site::Ln2(i), Site::Fc1(i), Site::Fc2(i)], &mut dy)?;
        let da = self.linear(&layer.attn.out, Site::Out(i), &dy)?;
        let qkv = self.rec.kept(Site::Qkv(i), Slot::Output)?;
        let seq = qkv.shape()[1];
        let rows: Vec<usize> = (0..batch).map(|b| b * seq + row).collect();
        let kept = dev.gather_rows(qkv, &rows)?.reshape([batch, 1, qkv.cols()])?;
        let attn = &layer.attn;
        let (dq, dk, dv) = dev.attention_backward(attn.view(&kept, 0), attn.view(qkv, 1), attn.view(qkv, 2), &da)?;
        let mut dq_all = dev.zeros([batch, seq, w])?;
        dev.scatter_rows(&mut dq_all, &rows, &dq)?;
        // The residual: the kept rows' input reaches the output directly.
        let mut dx = dev.zeros([batch, seq, w])?;
        dev.scatter_rows(&mut dx, &rows, &dy)?;
        dev.add(&mut dx, &self.qkv(layer, i, [&dq_all, &dk, &dv])?)?;
        Ok(dx)
    }

    /// The position embedding's LoRA gradient from the tokens' gradient `dtok` (`[b, seq, w]`).
    fn positions(&mut self, dtok: &Array) -> Result<(), TrainError> {
        let Some((a, b)) = self.rec.weights.get(&Target::Position) else { return Ok(()) };
        let dev = self.dev;
        let scale = self.rec.adapter.shape.scale();
        let g = dev.sum_batches(dtok)?;
        // delta = s·Aᵀ·Bᵀ: dA = s·Bᵀ·Gᵀ, dB = s·Gᵀ·Aᵀ.
        let da = dev.matmul(b, true, &g, true, scale)?.into_tensor(dev)?.into_data();
        let db = dev.matmul(&g, true, a, true, scale)?.into_tensor(dev)?.into_data();
        self.grads.insert(Target::Position, (da, db));
        Ok(())
    }

    /// CLIP: from the image features' gradient (`[b, projection]`) to every pair's.
    pub(crate) fn clip(&mut self, m: &Clip, dfeat: &Array) -> Result<(), TrainError> {
        let dev = self.dev;
        let v = &m.vision;
        let dpooled = dev.linear_backward(dfeat, &m.visual_projection)?;
        let dcls = self.norm(&v.post, Site::Post, &dpooled)?;
        let layers = &v.encoder.layers;
        let (last, rest) = layers.split_last().ok_or_else(|| TrainError::Internal("no encoder layers".into()))?;
        let mut dx = self.last_layer_row(last, rest.len(), 0, &dcls)?;
        self.encoder(rest, &mut dx)?;
        let dtok = match &v.pre {
            Some(pre) => self.norm(pre, Site::Pre, &dx)?,
            None => dx,
        };
        self.positions(&dtok)
    }

    /// SigLIP: from the pooled features' gradient (`[b, width]`) to every pair's.
    pub(crate) fn siglip(&mut self, m: &Siglip, dfeat: &Array) -> Result<(), TrainError> {
        let dev = self.dev;
        let (v, head) = (&m.vision, &m.vision.head);
        let batch = dfeat.shape()[0];
        let mut dp = dev.copy(dfeat)?.reshape([batch, 1, v.width()])?;
        self.mlp(&head.norm, &head.mlp, [Site::PoolNorm, Site::PoolFc1, Site::PoolFc2], &mut dp)?;
        let da = dev.linear_backward(&dp, &head.out)?;
        let q = head.queries(dev, batch)?;
        let kv = self.rec.kept(Site::PoolKv, Slot::Output)?;
        let (_, dk, dv) = dev.attention_backward(head.view(&q, 0), head.view(kv, 0), head.view(kv, 1), &da)?;
        let dpost = dev.linear_backward(&dev.concat_cols(&[&dk, &dv])?, &head.kv)?;
        let mut dx = self.norm(&v.post, Site::Post, &dpost)?;
        self.encoder(&v.encoder.layers, &mut dx)?;
        self.positions(&dx)
    }
}

/// The image features of `pixels` through `rec`'s hooks (the model's own forward).
pub(crate) fn features(
    tower: &Tower<'_>,
    dev: &Device,
    pixels: &[f32],
    batch: usize,
    rec: &mut Recorder<'_>,
) -> Result<Array, TrainError> {
    Ok(match tower {
        Tower::Clip(m) => m.image_features_with(dev, pixels, batch, rec)?,
        Tower::Siglip(m) => m.vision.forward_with(dev, pixels, batch, rec)?,
    })
}

/// The backward pass of [`features`] from the features' gradient `dfeat`.
pub(crate) fn backward(
    tower: &Tower<'_>,
    dev: &Device,
    rec: &Recorder<'_>,
    dfeat: &Array,
) -> Result<BTreeMap<Target, PairGrad>, TrainError> {
    let mut bw = Backward::new(dev, rec);
    match tower {
        Tower::Clip(m) => bw.clip(m, dfeat)?,
        Tower::Siglip(m) => bw.siglip(m, dfeat)?,
    }
    Ok(bw.grads)
}
