//! PEFT adapters on disk (<https://huggingface.co/docs/peft>, `PeftModel.save_pretrained` /
//! `from_pretrained` of a LoRA on the vision model): `adapter_config.json` and
//! `adapter_model.safetensors` with PEFT's key names, `base_model.model.{module}.lora_A.weight`
//! / `lora_B.weight` for linear layers and `…position_embedding.lora_embedding_A` / `_B` for
//! the embedding. [`save`] writes them; [`load`] reads an adapter written by PEFT (keys may also
//! carry a `vision_model.` prefix, when PEFT wrapped the whole model); [`attach`] puts one on a
//! loaded model, unmerged through the compute layer's LoRA path (fused on the GPU) or merged
//! into the weights.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use serde_json::{Value, json};

use super::TrainError;
use super::lora::{Adapter, LoraPair, LoraShape, Part, Target};
use crate::backend::{Linear, LoraDelta, Vector};
use crate::model::nn::SelfAttention;
use crate::model::{ContrastiveModel, TowerMut};
use crate::tensor::Tensor;

/// The configuration file.
pub const CONFIG: &str = "adapter_config.json";
/// The weights file.
pub const WEIGHTS: &str = "adapter_model.safetensors";

fn adapter_error(path: &Path, message: impl Into<String>) -> TrainError {
    TrainError::Adapter { path: path.to_owned(), message: message.into() }
}

/// PEFT's key of `target`'s `A` (`which = "A"`) or `B`.
pub fn key(target: Target, which: &str) -> String {
    let name = target.module_name();
    if target.is_embedding() {
        format!("base_model.model.{name}.lora_embedding_{which}")
    } else {
        format!("base_model.model.{name}.lora_{which}.weight")
    }
}

/// Writes `adapter` into `dir` (created if absent) as PEFT does; `base` names the checkpoint.
pub fn save(adapter: &Adapter, dir: &Path, base: &str) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(|e| adapter_error(dir, format!("cannot create: {e}")))?;
    let s = adapter.shape;
    let modules: Vec<String> = adapter.pairs.keys().map(|t| t.module_name()).collect();
    let config = json!({
        "peft_type": "LORA", "task_type": null, "base_model_name_or_path": base, "revision": null,
        "r": s.r, "lora_alpha": s.alpha, "lora_dropout": s.dropout, "bias": "none",
        "target_modules": modules, "fan_in_fan_out": false, "init_lora_weights": true,
        "inference_mode": true, "modules_to_save": null, "use_rslora": false, "use_dora": false,
        "layers_to_transform": null, "layers_pattern": null, "rank_pattern": {}, "alpha_pattern": {},
    });
    let path = dir.join(CONFIG);
    let text = serde_json::to_string_pretty(&config).map_err(|e| adapter_error(&path, e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(|e| adapter_error(&path, format!("cannot write: {e}")))?;
    let mut bytes: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for (&t, p) in &adapter.pairs {
        let le = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        bytes.insert(key(t, "A"), (vec![s.r, p.inputs], le(&p.a)));
        bytes.insert(key(t, "B"), (vec![p.outputs, s.r], le(&p.b)));
    }
    let path = dir.join(WEIGHTS);
    let views = bytes
        .iter()
        .map(|(k, (shape, b))| Ok((k.clone(), safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), b)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| adapter_error(&path, e.to_string()))?;
    let metadata = HashMap::from([("format".to_owned(), "pt".to_owned())]);
    safetensors::serialize_to_file(views, Some(metadata), &path).map_err(|e| adapter_error(&path, e.to_string()))
}

/// The target a PEFT module name (after `base_model.model.`) denotes.
fn parse_module(name: &str) -> Option<Target> {
    let name = name.strip_prefix("vision_model.").unwrap_or(name);
    let part = |s: &str| match s {
        "self_attn.q_proj" => Some(Part::Q),
        "self_attn.k_proj" => Some(Part::K),
        "self_attn.v_proj" => Some(Part::V),
        "self_attn.out_proj" => Some(Part::Out),
        "mlp.fc1" => Some(Part::Fc1),
        "mlp.fc2" => Some(Part::Fc2),
        _ => None,
    };
    if name == "embeddings.position_embedding" {
        return Some(Target::Position);
    }
    if name == "head.attention.out_proj" {
        return Some(Target::Pool(Part::Out));
    }
    if let Some(rest) = name.strip_prefix("head.") {
        return part(rest).filter(|p| matches!(p, Part::Fc1 | Part::Fc2)).map(Target::Pool);
    }
    let rest = name.strip_prefix("encoder.layers.")?;
    let (i, rest) = rest.split_once('.')?;
    Some(Target::Layer(i.parse().ok()?, part(rest)?))
}

/// Little-endian f32, f16 or bf16 values as f32.
fn decode(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    let pairs = || bytes.chunks_exact(2).map(|b| [b[0], b[1]]);
    match dtype {
        Dtype::F32 => Some(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
        Dtype::BF16 => Some(pairs().map(|b| half::bf16::from_le_bytes(b).to_f32()).collect()),
        Dtype::F16 => Some(pairs().map(|b| half::f16::from_le_bytes(b).to_f32()).collect()),
        _ => None,
    }
}

/// The LoRA settings of an `adapter_config.json`.
fn read_config(path: &Path) -> Result<LoraShape, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| adapter_error(path, format!("cannot read: {e}")))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| adapter_error(path, format!("invalid JSON: {e}")))?;
    if v.get("peft_type").and_then(Value::as_str) != Some("LORA") {
        return Err(adapter_error(path, "not a LoRA adapter (`peft_type` is not \"LORA\")"));
    }
    for flag in ["use_dora", "use_rslora", "fan_in_fan_out"] {
        if v.get(flag).and_then(Value::as_bool) == Some(true) {
            return Err(adapter_error(path, format!("`{flag}` adapters are not supported")));
        }
    }
    for pattern in ["rank_pattern", "alpha_pattern"] {
        if v.get(pattern).and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
            return Err(adapter_error(path, format!("per-module `{pattern}` is not supported")));
        }
    }
    let r = v.get("r").and_then(Value::as_u64).filter(|&r| r > 0).ok_or_else(|| adapter_error(path, "no rank `r`"))?;
    let alpha = v.get("lora_alpha").and_then(Value::as_f64).ok_or_else(|| adapter_error(path, "no `lora_alpha`"))?;
    let dropout = v.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0);
    Ok(LoraShape { r: r as usize, alpha: alpha as f32, dropout: dropout as f32 })
}

/// Reads the adapter in `dir` (written by PEFT or by [`save`]).
pub fn load(dir: &Path) -> Result<Adapter, TrainError> {
    let shape = read_config(&dir.join(CONFIG))?;
    let path = dir.join(WEIGHTS);
    let bytes = std::fs::read(&path).map_err(|e| adapter_error(&path, format!("cannot read: {e}")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| adapter_error(&path, format!("invalid safetensors: {e}")))?;
    let mut halves: BTreeMap<Target, [Option<Tensor>; 2]> = BTreeMap::new();
    for (name, view) in st.tensors() {
        let bad = |m: &str| adapter_error(&path, format!("`{name}`: {m}"));
        let stem = name.strip_prefix("base_model.model.").ok_or_else(|| bad("not a PEFT key"))?;
        let (module, which) = [".lora_A.weight", ".lora_B.weight", ".lora_embedding_A", ".lora_embedding_B"]
            .iter()
            .find_map(|suffix| stem.strip_suffix(suffix).map(|m| (m, usize::from(suffix.contains('B')))))
            .ok_or_else(|| bad("not a LoRA weight"))?;
        let target = parse_module(module).ok_or_else(|| bad("not a module of a CLIP or SigLIP vision tower"))?;
        let values = decode(view.dtype(), view.data()).ok_or_else(|| bad("unsupported dtype"))?;
        halves.entry(target).or_default()[which] = Some(Tensor::new(view.shape().to_vec(), values));
    }
    let mut pairs = BTreeMap::new();
    for (target, [a, b]) in halves {
        let missing = || adapter_error(&path, format!("`{}` lacks its A or B", target.module_name()));
        let (a, b) = (a.ok_or_else(missing)?, b.ok_or_else(missing)?);
        match (a.shape(), b.shape()) {
            (&[ra, inputs], &[outputs, rb]) if ra == shape.r && rb == shape.r => {
                pairs.insert(target, LoraPair { a: a.into_data(), b: b.into_data(), inputs, outputs });
            }
            (sa, sb) => {
                return Err(adapter_error(
                    &path,
                    format!("`{}`: A {sa:?}, B {sb:?} for rank {}", target.module_name(), shape.r),
                ));
            }
        }
    }
    Ok(Adapter { shape, pairs })
}

/// `s·B·A` of a pair, `[outputs, inputs]`.
fn delta(p: &LoraPair, r: usize, scale: f32) -> Tensor {
    let d = crate::backend::cpu::grad::product(&p.b, false, &p.a, false, p.outputs, r, p.inputs, scale);
    Tensor::new([p.outputs, p.inputs], d)
}

/// Puts `adapter` on `model`'s image tower: each linear layer's pair as an unmerged LoRA
/// delta (Q, K and V stacked into one delta of rank `3r` on the fused projection), or merged
/// into the weights when `merge`; the position embedding's pair always merged into the table
/// (exact either way). SigLIP's pooling `out_proj` pair is skipped, as PEFT's forward skips it.
pub fn attach(model: &mut ContrastiveModel, adapter: &Adapter, merge: bool) -> Result<(), TrainError> {
    model.check_trainable()?;
    let expected: HashMap<Target, (usize, usize)> =
        super::targets(model).into_iter().map(|(t, i, o)| (t, (i, o))).collect();
    for (t, p) in &adapter.pairs {
        if expected.get(t) != Some(&(p.inputs, p.outputs)) {
            return Err(TrainError::Input(format!(
                "the adapter's `{}` ({}→{}) does not fit this model",
                t.module_name(),
                p.inputs,
                p.outputs
            )));
        }
    }
    let dev = model.device().clone();
    let (r, scale) = (adapter.shape.r, adapter.shape.scale());
    let on_linear = |l: &mut Linear, t: Target| -> Result<(), TrainError> {
        let Some(p) = adapter.pair(t) else { return Ok(()) };
        if merge {
            return Ok(l.merge(&dev, &delta(p, r, scale))?);
        }
        let a = Tensor::new([r, p.inputs], p.a.clone());
        Ok(l.set_lora(Some(LoraDelta::new(&dev, a, Tensor::new([p.outputs, r], p.b.clone()), scale)?))?)
    };
    let (encoder, positions) = match model.tower_mut()? {
        TowerMut::Clip(m) => (&mut m.vision.encoder, &mut m.vision.positions),
        TowerMut::Siglip(m) => {
            on_linear(&mut m.vision.head.mlp.fc1, Target::Pool(Part::Fc1))?;
            on_linear(&mut m.vision.head.mlp.fc2, Target::Pool(Part::Fc2))?;
            if adapter.pair(Target::Pool(Part::Out)).is_some_and(|p| p.b.iter().any(|&v| v != 0.0)) {
                tracing::warn!("the adapter's head.attention.out_proj is not applied (PEFT's forward ignores it too)");
            }
            (&mut m.vision.encoder, &mut m.vision.positions)
        }
    };
    if let Some(p) = adapter.pair(Target::Position) {
        let d = crate::backend::cpu::grad::product(&p.a, true, &p.b, true, p.inputs, r, p.outputs, scale);
        let mut values = positions.values().to_vec();
        crate::backend::cpu::add_assign_slice(&mut values, &d);
        *positions = Vector::activation(&dev, values)?;
    }
    for (i, layer) in encoder.layers.iter_mut().enumerate() {
        attach_qkv(&mut layer.attn, adapter, i, merge, &dev)?;
        on_linear(&mut layer.attn.out, Target::Layer(i, Part::Out))?;
        on_linear(&mut layer.mlp.fc1, Target::Layer(i, Part::Fc1))?;
        on_linear(&mut layer.mlp.fc2, Target::Layer(i, Part::Fc2))?;
    }
    Ok(())
}

/// Q, K and V's pairs on the fused projection: stacked `A` (`[3r, in]`) and block-diagonal `B`
/// (`[3·width, 3r]`), or merged row blocks.
fn attach_qkv(
    attn: &mut SelfAttention,
    adapter: &Adapter,
    i: usize,
    merge: bool,
    dev: &crate::backend::Device,
) -> Result<(), TrainError> {
    let parts = [Part::Q, Part::K, Part::V].map(|p| adapter.pair(Target::Layer(i, p)));
    if parts.iter().all(Option::is_none) {
        return Ok(());
    }
    let (r, scale) = (adapter.shape.r, adapter.shape.scale());
    let (w, inp) = (attn.out.outputs(), attn.qkv.inputs());
    if merge {
        let mut d = vec![0f32; 3 * w * inp];
        for (k, p) in parts.iter().enumerate() {
            if let Some(p) = p {
                d[k * w * inp..(k + 1) * w * inp].copy_from_slice(delta(p, r, scale).data());
            }
        }
        return Ok(attn.qkv.merge(dev, &Tensor::new([3 * w, inp], d))?);
    }
    let (mut a, mut b) = (vec![0f32; 3 * r * inp], vec![0f32; 3 * w * 3 * r]);
    for (k, p) in parts.iter().enumerate() {
        let Some(p) = p else { continue };
        a[k * r * inp..(k + 1) * r * inp].copy_from_slice(&p.a);
        for row in 0..w {
            let dst = (k * w + row) * 3 * r + k * r;
            b[dst..dst + r].copy_from_slice(&p.b[row * r..(row + 1) * r]);
        }
    }
    let lora = LoraDelta::new(dev, Tensor::new([3 * r, inp], a), Tensor::new([3 * w, 3 * r], b), scale)?;
    Ok(attn.qkv.set_lora(Some(lora))?)
}
