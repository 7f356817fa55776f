//! open_clip's own towers (`open_clip/transformer.py`: `VisionTransformer`, `TextTransformer`;
//! the `ViT-B-32` family) mapped onto mvb's CLIP towers: `conv1` (no bias), `class_embedding`,
//! `positional_embedding`, `ln_pre`, `transformer.resblocks.{i}`, `ln_post`, `proj` (`x @ proj`);
//! `token_embedding`, `positional_embedding`, causal `transformer.resblocks.{i}`, `ln_final`,
//! pooling at the highest token id (`argmax`), `text_projection`.

use super::config::OpenClipConfig;
use super::layers::{self, OPEN_CLIP, Shape};
use crate::backend::cpu::Activation;
use crate::backend::{Device, Linear};
use crate::model::clip::{ClipText, ClipVision, ProjectedText};
use crate::model::nn::{LayerNorm, TextEmbeddings};
use crate::model::patch::PatchEmbedding;
use crate::model::{ModelError, Weights};

/// `quick_gelu` → QuickGELU, else exact GELU (`nn.GELU`).
fn activation(config: &OpenClipConfig) -> Result<Activation, ModelError> {
    Ok(if config.quick_gelu()? { Activation::QuickGelu } else { Activation::Gelu })
}

/// Checks that the checkpoint holds exactly `layers` blocks under `prefix`.
fn check_layers(
    w: &Weights,
    config: &OpenClipConfig,
    prefix: &str,
    layers: usize,
    key: &str,
) -> Result<(), ModelError> {
    let found = layers::count(w, prefix, OPEN_CLIP);
    if found != layers {
        return Err(config.format(format!(
            "`{key}` is {layers} but {} holds {found} blocks under `{prefix}`",
            w.origin().display()
        )));
    }
    Ok(())
}

/// The image tower under `visual.` and its projection `visual.proj`.
pub fn vision(w: &Weights, dev: &Device, config: &OpenClipConfig) -> Result<(ClipVision, Linear), ModelError> {
    let v = config.vision();
    if v.get("layers").is_some_and(|l| l.is_array()) {
        return Err(config.unsupported("a ResNet image tower (`vision_cfg.layers` a list) is not implemented".into()));
    }
    v.require_off(&["ls_init_value", "attentional_pool", "act_kwargs", "qk_norm", "scaled_cosine_attn"])?;
    v.require_off(&["scale_heads", "scale_attn_inner", "scale_attn", "scale_fc", "output_tokens"])?;
    v.require_str("pos_embed_type", &["learnable"])?;
    v.require_str("pool_type", &["tok"])?;
    v.require_str("block_type", &["default"])?;
    let (width, layers) = (v.uint("width", 768)?, v.uint("layers", 12)?);
    let heads = width / v.uint("head_width", 64)?.max(1);
    let (patch, image) = (v.uint("patch_size", 16)?, v.side("image_size", 224)?);
    let s = Shape { width, heads, act: activation(config)?, eps: v.eps(1e-5)? };
    check_layers(w, config, "visual.transformer.resblocks", layers, "vision_cfg.layers")?;
    layers::only_known(
        w,
        "visual.",
        &["class_embedding", "positional_embedding", "proj", "conv1.weight"]
            .into_iter()
            .chain(["ln_pre.weight", "ln_pre.bias", "ln_post.weight", "ln_post.bias"])
            .collect::<Vec<_>>(),
        ("transformer.resblocks", OPEN_CLIP),
    )?;
    let patch = PatchEmbedding::load(w, dev, "visual.conv1", width, (patch, image), false)?;
    let tokens = patch.grid() * patch.grid() + 1;
    let class = w.vector("visual.class_embedding", width)?;
    let positions = w.tensor("visual.positional_embedding", &[tokens, width])?.into_data();
    let pre =
        if v.flag("no_ln_pre", false)? { None } else { Some(LayerNorm::load(w, dev, "visual.ln_pre", width, s.eps)?) };
    let encoder = layers::encoder(w, dev, "visual.transformer.resblocks", layers, s, OPEN_CLIP)?;
    let post = LayerNorm::load(w, dev, "visual.ln_post", width, s.eps)?;
    let tower = ClipVision::from_parts(dev, patch, (class, positions), (pre, encoder, post))?;
    let proj = layers::transposed_projection(w, dev, "visual.proj", width)?;
    Ok((tower, proj))
}

/// The text tower under `prefix` (empty for `CLIP`, `text.` for `CustomTextCLIP`) with its
/// projection, and its context length.
pub fn text(
    w: &Weights,
    dev: &Device,
    config: &OpenClipConfig,
    prefix: &str,
) -> Result<(ProjectedText, usize), ModelError> {
    let t = config.text();
    t.require_off(&["ls_init_value", "embed_cls", "no_causal_mask", "proj_bias", "act_kwargs", "qk_norm"])?;
    t.require_off(&["scaled_cosine_attn", "scale_heads", "scale_attn_inner", "scale_attn", "scale_fc"])?;
    t.require_off(&["output_tokens", "tokenizer_mode"])?;
    t.require_str("pool_type", &["argmax"])?;
    t.require_str("proj_type", &["linear"])?;
    t.require_str("block_type", &["default"])?;
    let (width, heads, layers) = (t.uint("width", 512)?, t.uint("heads", 8)?, t.uint("layers", 12)?);
    let context = t.uint("context_length", 77)?;
    let s = Shape { width, heads, act: activation(config)?, eps: t.eps(1e-5)? };
    let blocks = format!("{prefix}transformer.resblocks");
    check_layers(w, config, &blocks, layers, "text_cfg.layers")?;
    let embeddings = TextEmbeddings::from_names(
        w,
        dev,
        &format!("{prefix}token_embedding.weight"),
        &format!("{prefix}positional_embedding"),
    )?;
    if embeddings.max_len() != context || embeddings.width() != width {
        return Err(config.format(format!(
            "`text_cfg.context_length` {context} / `width` {width} disagree with `{prefix}positional_embedding` \
             ({} x {})",
            embeddings.max_len(),
            embeddings.width()
        )));
    }
    let encoder = layers::encoder(w, dev, &blocks, layers, s, OPEN_CLIP)?;
    let norm = LayerNorm::load(w, dev, &format!("{prefix}ln_final"), width, s.eps)?;
    // eos 2: the highest token id marks the pooled position, as open_clip's `argmax`.
    let tower = ClipText::from_parts(embeddings, encoder, norm, 2);
    let proj = layers::transposed_projection(w, dev, &format!("{prefix}text_projection"), width)?;
    if proj.outputs() != config.embed_dim()? {
        return Err(config.format(format!(
            "`model_cfg.embed_dim` {} disagrees with `{prefix}text_projection`'s {} columns",
            config.embed_dim()?,
            proj.outputs()
        )));
    }
    Ok((ProjectedText::new(tower, proj), context))
}
