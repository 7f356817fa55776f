//! open_clip's timm image tower (`open_clip/timm_model.py` `TimmModel` over timm's
//! `VisionTransformer`, <https://github.com/huggingface/pytorch-image-models/blob/main/timm/models/vision_transformer.py>;
//! BiomedCLIP's `vit_base_patch16_224`) mapped onto mvb's CLIP image tower: `patch_embed.proj`
//! (with bias), `cls_token`, `pos_embed`, optional `norm_pre`, `blocks.{i}` (pre-norm, fused
//! qkv), `norm`, the class token pooled (timm's `token` pool), then `head.proj`. Sizes come from
//! the tensors; the head count from the timm model name.

use super::config::OpenClipConfig;
use super::layers::{self, Shape, TIMM};
use crate::backend::cpu::Activation;
use crate::backend::{Device, Linear};
use crate::model::clip::ClipVision;
use crate::model::nn::{LayerNorm, linear};
use crate::model::patch::PatchEmbedding;
use crate::model::{ModelError, Weights};

const TRUNK: &str = "visual.trunk";

/// Attention heads of timm's ViT sizes; other names use timm's 64-wide heads.
fn heads(name: &str, width: usize) -> usize {
    let size = name.split('_').nth(1).unwrap_or_default();
    match size {
        "tiny" => 3,
        "small" => 6,
        "medium" => 8,
        "base" => 12,
        "large" | "huge" | "giant" => 16,
        _ => {
            tracing::warn!("timm model `{name}`: unknown size `{size}`; assuming 64-wide attention heads");
            (width / 64).max(1)
        }
    }
}

/// `[a, b, c]` of a 3-D tensor.
fn dims3(w: &Weights, name: &str) -> Result<[usize; 3], ModelError> {
    match w.shape(name) {
        Some(&[a, b, c]) => Ok([a, b, c]),
        _ => Err(w.missing(name)),
    }
}

/// The image tower under `visual.trunk.` and its projection `visual.head.proj`.
pub fn vision(w: &Weights, dev: &Device, config: &OpenClipConfig) -> Result<(ClipVision, Linear), ModelError> {
    let v = config.vision();
    let name = v.string("timm_model_name", "")?;
    if !name.starts_with("vit_") {
        return Err(config.unsupported(format!("timm model `{name}`: only timm ViTs (`vit_*`) are implemented")));
    }
    let pool = v.string("timm_pool", "avg")?;
    if !(pool.is_empty() || pool == "token") {
        return Err(config.unsupported(format!("`vision_cfg.timm_pool` `{pool}` is not implemented (\"\" or token)")));
    }
    if v.string("timm_proj", "linear")? != "linear" {
        return Err(config.unsupported("`vision_cfg.timm_proj` other than `linear` is not implemented".into()));
    }
    let [_, _, width] = dims3(w, &format!("{TRUNK}.cls_token"))?;
    let [_, tokens, _] = dims3(w, &format!("{TRUNK}.pos_embed"))?;
    let patch = match w.shape(&format!("{TRUNK}.patch_embed.proj.weight")) {
        Some(&[_, _, p, _]) => p,
        _ => return Err(w.missing(&format!("{TRUNK}.patch_embed.proj.weight"))),
    };
    let grid = (1..=tokens).find(|g| g * g + 1 >= tokens).unwrap_or(0);
    if grid * grid + 1 != tokens {
        return Err(ModelError::Input(format!("{TRUNK}.pos_embed: {tokens} positions are not a square grid + 1")));
    }
    let image = v.side("image_size", 224)?;
    if grid * patch != image {
        return Err(config.format(format!(
            "`vision_cfg.image_size` {image} disagrees with the timm tower's {grid}x{grid} patches of {patch}"
        )));
    }
    let clip_like = name.contains("_clip_");
    let act = if name.contains("quickgelu") { Activation::QuickGelu } else { Activation::Gelu };
    let s = Shape { width, heads: heads(&name, width), act, eps: if clip_like { 1e-5 } else { 1e-6 } };
    let top = ["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"];
    let norms = ["norm_pre.weight", "norm_pre.bias", "norm.weight", "norm.bias"];
    let top: Vec<&str> = top.into_iter().chain(norms).collect();
    layers::only_known(w, &format!("{TRUNK}."), &top, ("blocks", TIMM))?;
    let patch = PatchEmbedding::load(w, dev, &format!("{TRUNK}.patch_embed.proj"), width, (patch, image), true)?;
    let class = w.tensor(&format!("{TRUNK}.cls_token"), &[1, 1, width])?.into_data();
    let positions = w.tensor(&format!("{TRUNK}.pos_embed"), &[1, tokens, width])?.into_data();
    let pre = if w.contains(&format!("{TRUNK}.norm_pre.weight")) {
        Some(LayerNorm::load(w, dev, &format!("{TRUNK}.norm_pre"), width, s.eps)?)
    } else {
        None
    };
    let blocks = format!("{TRUNK}.blocks");
    let depth = layers::count(w, &blocks, TIMM);
    if depth == 0 {
        return Err(w.missing(&format!("{blocks}.0.norm1.weight")));
    }
    let encoder = layers::encoder(w, dev, &blocks, depth, s, TIMM)?;
    let post = LayerNorm::load(w, dev, &format!("{TRUNK}.norm"), width, s.eps)?;
    let tower = ClipVision::from_parts(dev, patch, (class, positions), (pre, encoder, post))?;
    let embed = config.embed_dim()?;
    let proj = linear(w, dev, "visual.head.proj", width, embed, v.flag("timm_proj_bias", false)?)?;
    Ok((tower, proj))
}
