//! MedSigLIP-448 at its real widths: a `SiglipModel` checkpoint with random weights and
//! MedSigLIP's shapes (448 px images in 14 px patches, so 1,024 patch positions; a so400m-class
//! tower of width 1152, MLP 4304, 16 heads; the attention-pooling head; a 1152-wide text tower
//! with 64 positions), depth cut to 2 layers per tower so the test stays fast (depth repeats
//! the same layer; widths, positions and the pooling head are where shape bugs live). The first
//! user with the real checkpoint should find no shape bug.

use std::path::Path;

use mvb::backend::Device;
use mvb::data::Pixels;
use mvb::eval::zeroshot;
use mvb::model::ContrastiveModel;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use crate::common::root;

const WIDTH: usize = 1152;
const MLP: usize = 4304;
const IMAGE: usize = 448;
const PATCH: usize = 14;
const LAYERS: usize = 2;
const TEXT_POSITIONS: usize = 64;
const VOCAB: usize = 49408; // the tiny SigLIP fixture's tokenizer

fn config() -> serde_json::Value {
    let tower = |extra: serde_json::Value| {
        let mut c = serde_json::json!({
            "hidden_act": "gelu_pytorch_tanh", "hidden_size": WIDTH, "intermediate_size": MLP,
            "layer_norm_eps": 1e-6, "num_attention_heads": 16, "num_hidden_layers": LAYERS,
        });
        c.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        c
    };
    serde_json::json!({
        "architectures": ["SiglipModel"], "model_type": "siglip",
        "text_config": tower(serde_json::json!({"model_type": "siglip_text_model", "max_position_embeddings": TEXT_POSITIONS,
            "vocab_size": VOCAB, "pad_token_id": 49407, "projection_size": WIDTH})),
        "vision_config": tower(serde_json::json!({"model_type": "siglip_vision_model", "image_size": IMAGE,
            "patch_size": PATCH, "num_channels": 3})),
    })
}

/// Every tensor of the checkpoint with its shape.
fn shapes() -> Vec<(String, Vec<usize>)> {
    let (d, patches) = (WIDTH, (IMAGE / PATCH).pow(2));
    let mut t: Vec<(String, Vec<usize>)> = vec![
        ("logit_scale".into(), vec![1]),
        ("logit_bias".into(), vec![1]),
        ("vision_model.embeddings.patch_embedding.weight".into(), vec![d, 3, PATCH, PATCH]),
        ("vision_model.embeddings.patch_embedding.bias".into(), vec![d]),
        ("vision_model.embeddings.position_embedding.weight".into(), vec![patches, d]),
        ("vision_model.post_layernorm.weight".into(), vec![d]),
        ("vision_model.post_layernorm.bias".into(), vec![d]),
        ("vision_model.head.probe".into(), vec![1, 1, d]),
        ("vision_model.head.attention.in_proj_weight".into(), vec![3 * d, d]),
        ("vision_model.head.attention.in_proj_bias".into(), vec![3 * d]),
        ("vision_model.head.attention.out_proj.weight".into(), vec![d, d]),
        ("vision_model.head.attention.out_proj.bias".into(), vec![d]),
        ("vision_model.head.layernorm.weight".into(), vec![d]),
        ("vision_model.head.layernorm.bias".into(), vec![d]),
        ("vision_model.head.mlp.fc1.weight".into(), vec![MLP, d]),
        ("vision_model.head.mlp.fc1.bias".into(), vec![MLP]),
        ("vision_model.head.mlp.fc2.weight".into(), vec![d, MLP]),
        ("vision_model.head.mlp.fc2.bias".into(), vec![d]),
        ("text_model.embeddings.token_embedding.weight".into(), vec![VOCAB, d]),
        ("text_model.embeddings.position_embedding.weight".into(), vec![TEXT_POSITIONS, d]),
        ("text_model.final_layer_norm.weight".into(), vec![d]),
        ("text_model.final_layer_norm.bias".into(), vec![d]),
        ("text_model.head.weight".into(), vec![d, d]),
        ("text_model.head.bias".into(), vec![d]),
    ];
    for tower in ["vision_model", "text_model"] {
        for i in 0..LAYERS {
            let p = format!("{tower}.encoder.layers.{i}");
            for n in ["layer_norm1", "layer_norm2"] {
                t.push((format!("{p}.{n}.weight"), vec![d]));
                t.push((format!("{p}.{n}.bias"), vec![d]));
            }
            for n in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                t.push((format!("{p}.self_attn.{n}.weight"), vec![d, d]));
                t.push((format!("{p}.self_attn.{n}.bias"), vec![d]));
            }
            t.extend([
                (format!("{p}.mlp.fc1.weight"), vec![MLP, d]),
                (format!("{p}.mlp.fc1.bias"), vec![MLP]),
                (format!("{p}.mlp.fc2.weight"), vec![d, MLP]),
                (format!("{p}.mlp.fc2.bias"), vec![d]),
            ]);
        }
    }
    t
}

/// Random values (a fixed LCG): layer-norm weights near 1, everything else small.
fn values(name: &str, n: usize, state: &mut u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 4);
    for _ in 0..n {
        *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let u = ((*state >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
        let v = if name.contains("norm") && name.ends_with("weight") { 1.0 + 0.1 * u } else { 0.04 * u };
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn write_checkpoint(dir: &Path) {
    let tiny = root().join("tests/fixtures/tiny-siglip");
    for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"] {
        std::fs::copy(tiny.join(f), dir.join(f)).expect("copy the tokenizer");
    }
    let pre = std::fs::read_to_string(tiny.join("preprocessor_config.json")).expect("preprocessor");
    let pre = pre
        .replace("\"height\": 32", &format!("\"height\": {IMAGE}"))
        .replace("\"width\": 32", &format!("\"width\": {IMAGE}"));
    std::fs::write(dir.join("preprocessor_config.json"), pre).expect("write");
    std::fs::write(dir.join("config.json"), config().to_string()).expect("config");
    let mut state = 7u64;
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = shapes()
        .into_iter()
        .map(|(name, shape)| {
            let bytes = values(&name, shape.iter().product(), &mut state);
            (name, shape, bytes)
        })
        .collect();
    let views: Vec<(&str, TensorView<'_>)> =
        data.iter().map(|(n, s, b)| (n.as_str(), TensorView::new(Dtype::F32, s.clone(), b).expect("a view"))).collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).expect("weights");
}

#[test]
fn medsiglip_448_shapes_load_and_run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    write_checkpoint(tmp.path());
    let model = ContrastiveModel::load_on(&tmp.path().display().to_string(), &Device::cpu()).expect("loads");
    // A non-square RGB image: resized to 448 x 448 by the processor.
    let (w, h) = (500u32, 380u32);
    let data = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
    let image = Pixels { width: w, height: h, channels: 3, data };
    let pixels = model.preprocess(std::slice::from_ref(&image)).expect("preprocess");
    assert_eq!(pixels.len(), 3 * IMAGE * IMAGE);
    let features = model.image_features(&[image]).expect("image features");
    assert_eq!(features.shape(), [1, WIDTH]);
    let classes = ["a chest X-ray with pneumonia".to_owned(), "a normal chest X-ray".to_owned()];
    let text = model.text_features(&classes).expect("text features");
    assert_eq!(text.shape(), [2, WIDTH]);
    assert!(features.data().iter().chain(text.data()).all(|v| v.is_finite()));
    let p = zeroshot::probabilities(&model, &features, &text);
    assert_eq!(p.shape(), [1, 2]);
    assert!(p.data().iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{:?}", p.data());
}
