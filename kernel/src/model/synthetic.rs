//! Random-weight CLIP checkpoints in Hugging Face layout, for benchmarks: the same loader and
//! code path as a real checkpoint, at real ViT shapes (ViT-B/32, ViT-B/16, ...), without
//! shipping hundreds of megabytes of weights.

use std::collections::HashMap;
use std::path::Path;

use super::ModelError;

/// The shape of a ViT image tower.
#[derive(Debug, Clone, Copy)]
pub struct VitShape {
    /// Input side.
    pub image: usize,
    /// Patch side.
    pub patch: usize,
    /// Hidden width.
    pub width: usize,
    /// Layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
}

impl VitShape {
    /// CLIP ViT-B/32 at 224 px.
    pub const B32: VitShape = VitShape { image: 224, patch: 32, width: 768, layers: 12, heads: 12 };
    /// CLIP ViT-B/16 at 224 px.
    pub const B16: VitShape = VitShape { image: 224, patch: 16, width: 768, layers: 12, heads: 12 };

    /// Forward FLOPs of the image tower for one image (multiply-add = 2 FLOPs).
    pub fn flops_per_image(&self) -> f64 {
        let t = ((self.image / self.patch).pow(2) + 1) as f64;
        let d = self.width as f64;
        let patch = 2.0 * t * (3 * self.patch * self.patch) as f64 * d;
        let per_layer = 2.0 * t * d * d * 4.0 + 2.0 * t * d * 4.0 * d * 2.0 + 2.0 * 2.0 * t * t * d;
        patch + per_layer * self.layers as f64
    }
}

/// Writes a CLIP checkpoint with a `shape` image tower and a tiny text tower, random weights
/// (a fixed LCG; scaled like a trained model's), stored as `dtype` (`F32` or `BF16`).
pub fn write_random_clip(dir: &Path, shape: VitShape, bf16: bool) -> Result<(), ModelError> {
    let io = |e: std::io::Error| ModelError::Io { path: dir.to_owned(), source: e };
    std::fs::create_dir_all(dir).map_err(io)?;
    let (d, text) = (shape.width, 64usize);
    let tokens = (shape.image / shape.patch).pow(2) + 1;
    let mut tensors: Vec<(String, Vec<usize>)> = vec![
        ("vision_model.embeddings.class_embedding".into(), vec![d]),
        ("vision_model.embeddings.patch_embedding.weight".into(), vec![d, 3, shape.patch, shape.patch]),
        ("vision_model.embeddings.position_embedding.weight".into(), vec![tokens, d]),
        ("vision_model.pre_layrnorm.weight".into(), vec![d]),
        ("vision_model.pre_layrnorm.bias".into(), vec![d]),
        ("vision_model.post_layernorm.weight".into(), vec![d]),
        ("vision_model.post_layernorm.bias".into(), vec![d]),
        ("visual_projection.weight".into(), vec![512, d]),
        ("text_projection.weight".into(), vec![512, text]),
        ("logit_scale".into(), vec![]),
        ("text_model.embeddings.token_embedding.weight".into(), vec![16, text]),
        ("text_model.embeddings.position_embedding.weight".into(), vec![8, text]),
        ("text_model.final_layer_norm.weight".into(), vec![text]),
        ("text_model.final_layer_norm.bias".into(), vec![text]),
    ];
    let layer = |p: String, w: usize| {
        let mut v = Vec::new();
        for n in ["layer_norm1", "layer_norm2"] {
            v.push((format!("{p}.{n}.weight"), vec![w]));
            v.push((format!("{p}.{n}.bias"), vec![w]));
        }
        for n in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            v.push((format!("{p}.self_attn.{n}.weight"), vec![w, w]));
            v.push((format!("{p}.self_attn.{n}.bias"), vec![w]));
        }
        v.push((format!("{p}.mlp.fc1.weight"), vec![4 * w, w]));
        v.push((format!("{p}.mlp.fc1.bias"), vec![4 * w]));
        v.push((format!("{p}.mlp.fc2.weight"), vec![w, 4 * w]));
        v.push((format!("{p}.mlp.fc2.bias"), vec![w]));
        v
    };
    for i in 0..shape.layers {
        tensors.extend(layer(format!("vision_model.encoder.layers.{i}"), d));
    }
    tensors.extend(layer("text_model.encoder.layers.0".into(), text));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, dims) in tensors {
        let n: usize = dims.iter().product();
        let fan_in = *dims.last().unwrap_or(&1) as f32;
        let norm = name.contains("layer_norm") || name.contains("layrnorm") || name.contains("layernorm");
        let values = (0..n).map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            if norm && name.ends_with("weight") { 1.0 + 0.1 * u } else { u * 2.0 / fan_in.sqrt() }
        });
        let bytes: Vec<u8> = if bf16 {
            values.flat_map(|v| half::bf16::from_f32(v).to_le_bytes()).collect()
        } else {
            values.flat_map(f32::to_le_bytes).collect()
        };
        data.push((name, dims, bytes));
    }
    let dtype = if bf16 { safetensors::Dtype::BF16 } else { safetensors::Dtype::F32 };
    let views = data
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(dtype, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| ModelError::Format { path: dir.to_owned(), message: e.to_string() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize_to_file(views, None::<HashMap<String, String>>, &dir.join("model.safetensors"))
        .map_err(|e| ModelError::Format { path: dir.join("model.safetensors"), message: e.to_string() })?;
    let config = serde_json::json!({
        "model_type": "clip",
        "vision_config": {"hidden_size": d, "num_attention_heads": shape.heads, "image_size": shape.image,
                          "patch_size": shape.patch, "hidden_act": "quick_gelu", "num_hidden_layers": shape.layers},
        "text_config": {"hidden_size": text, "num_attention_heads": 4, "hidden_act": "quick_gelu", "eos_token_id": 2,
                        "num_hidden_layers": 1},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).map_err(io)?;
    let pre = serde_json::json!({
        "do_resize": true, "size": {"shortest_edge": shape.image}, "resample": 3,
        "do_center_crop": true, "crop_size": {"height": shape.image, "width": shape.image},
        "do_rescale": true, "rescale_factor": 1.0 / 255.0, "do_normalize": true,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    });
    std::fs::write(dir.join("preprocessor_config.json"), pre.to_string()).map_err(io)?;
    write_word_tokenizer(dir, 16).map_err(io)
}

/// A whitespace word-level `tokenizer.json` over `vocab` ids (`<pad>`, `<bos>`, `<eos>`, then
/// `w3`, `w4`, ...; unknown words are `<pad>`), so a random checkpoint is a whole model folder.
fn write_word_tokenizer(dir: &Path, vocab: usize) -> std::io::Result<()> {
    let mut words = serde_json::Map::new();
    for id in 0..vocab {
        let word = match id {
            0 => "<pad>".to_owned(),
            1 => "<bos>".to_owned(),
            2 => "<eos>".to_owned(),
            _ => format!("w{id}"),
        };
        words.insert(word, id.into());
    }
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": words, "unk_token": "<pad>"},
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string())?;
    std::fs::write(dir.join("tokenizer_config.json"), r#"{"pad_token": "<pad>"}"#)
}
