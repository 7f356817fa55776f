//! BLIP-2's EVA ViT image tower (transformers' `Blip2VisionModel`, `modeling_blip_2.py`): a
//! patch convolution with bias, a class token and learned positions, no layer norm before the
//! encoder, pre-norm layers whose attention has one fused `qkv` projection (its bias
//! `q_bias ‖ 0 ‖ v_bias`, as the checkpoints store it) and a `projection` output, a GELU MLP, and
//! `post_layernorm` over every token. Loaded into mvb's ViT ([`ClipVision`]), whose encoder
//! layer has exactly this structure.

use super::config::VisionSettings;
use crate::backend::{Array, Device, Linear};
use crate::model::clip::ClipVision;
use crate::model::nn::{Encoder, EncoderLayer, LayerNorm, Mlp, SelfAttention, linear};
use crate::model::patch::PatchEmbedding;
use crate::model::{ModelError, Weights};

/// The image tower.
#[derive(Debug)]
pub struct Blip2Vision {
    tower: ClipVision,
}

const P: &str = "vision_model";

impl Blip2Vision {
    /// Loads `vision_model.*`; the width comes from the class embedding.
    pub fn load(w: &Weights, dev: &Device, s: &VisionSettings) -> Result<Self, ModelError> {
        let class_name = format!("{P}.embeddings.class_embedding");
        let width = match w.shape(&class_name) {
            Some(&[1, 1, d]) => d,
            _ => return Err(w.missing(&class_name)),
        };
        if s.heads == 0 || !width.is_multiple_of(s.heads) {
            return Err(ModelError::Input(format!("{P}: width {width} is not divisible by {} heads", s.heads)));
        }
        let patch = PatchEmbedding::load(
            w,
            dev,
            &format!("{P}.embeddings.patch_embedding"),
            width,
            (s.patch_size, s.image_size),
            true,
        )?;
        let tokens = patch.grid() * patch.grid() + 1;
        let class = w.tensor(&class_name, &[1, 1, width])?.into_data();
        let positions = w.tensor(&format!("{P}.embeddings.position_embedding"), &[1, tokens, width])?.into_data();
        let extra = format!("{P}.encoder.layers.{}.layer_norm1.weight", s.layers);
        if w.contains(&extra) {
            return Err(ModelError::Input(format!(
                "the checkpoint holds `{extra}`, more layers than vision_config.num_hidden_layers ({})",
                s.layers
            )));
        }
        let layers = (0..s.layers).map(|i| layer(w, dev, i, width, s)).collect::<Result<Vec<_>, _>>()?;
        let post = LayerNorm::load(w, dev, &format!("{P}.post_layernorm"), width, s.eps)?;
        let tower = ClipVision::from_parts(dev, patch, (class, positions), (None, Encoder { layers }, post))?;
        Ok(Blip2Vision { tower })
    }

    /// Hidden width.
    pub fn width(&self) -> usize {
        self.tower.width()
    }

    /// The square input side.
    pub fn image_size(&self) -> usize {
        self.tower.image_size()
    }

    /// `last_hidden_state`: every token after `post_layernorm`, `[batch, 1 + grid², width]`
    /// (what the Q-Former cross-attends to; its class token is MedVLMBench's FT-LP feature).
    pub fn forward(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        let h = self.tower.hidden_states(dev, pixels, batch, self.tower.depth())?;
        self.tower.post.forward(dev, &h)
    }
}

/// Encoder layer `i`: `layer_norm1`, `self_attn.qkv` (+ bias), `self_attn.projection`,
/// `layer_norm2`, `mlp.fc1`/`fc2`.
fn layer(w: &Weights, dev: &Device, i: usize, width: usize, s: &VisionSettings) -> Result<EncoderLayer, ModelError> {
    let p = format!("{P}.encoder.layers.{i}");
    let qkv_weight = w.tensor(&format!("{p}.self_attn.qkv.weight"), &[3 * width, width])?;
    let qkv_bias = if s.qkv_bias { Some(w.vector(&format!("{p}.self_attn.qkv.bias"), 3 * width)?) } else { None };
    Ok(EncoderLayer {
        ln1: LayerNorm::load(w, dev, &format!("{p}.layer_norm1"), width, s.eps)?,
        attn: SelfAttention {
            qkv: Linear::new(dev, qkv_weight, qkv_bias)?,
            out: linear(w, dev, &format!("{p}.self_attn.projection"), width, width, true)?,
            heads: s.heads,
        },
        ln2: LayerNorm::load(w, dev, &format!("{p}.layer_norm2"), width, s.eps)?,
        mlp: Mlp::load(w, dev, &format!("{p}.mlp"), width, s.act)?,
    })
}
