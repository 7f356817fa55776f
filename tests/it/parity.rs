//! Numeric parity with Hugging Face transformers on the tiny checkpoints and reference outputs
//! made by `tools/make_fixtures.py`: preprocessing, image and text features, logits and
//! probabilities, at f32 (relative error ≤ 1e-4), for bf16 weights and for bf16 compute; and clear errors for a
//! checkpoint with a missing tensor, a wrong shape or a wrong dtype.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mvb::backend::{Device, Precision};
use mvb::data::{ImageRef, load_image};
use mvb::model::{ContrastiveModel, ModelError};
use mvb::tensor::Tensor;
use serde_json::Value;

use crate::common::root;

fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// A reference file: its tensors by name, and the images and prompt sets it used.
struct Reference {
    json: Value,
}

impl Reference {
    fn open(name: &str) -> Reference {
        let text =
            std::fs::read_to_string(fixtures().join("reference").join(format!("{name}.json"))).expect("reference");
        Reference { json: serde_json::from_str(&text).expect("json") }
    }

    fn tensor_in(&self, section: &str, name: &str) -> (Vec<usize>, Vec<f64>) {
        let t = &self.json[section][name];
        let shape = t["shape"].as_array().expect("shape").iter().map(|v| v.as_u64().expect("dim") as usize).collect();
        let data = t["data"]
            .as_array()
            .unwrap_or_else(|| panic!("no tensor {name}"))
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        (shape, data)
    }

    fn tensor(&self, name: &str) -> (Vec<usize>, Vec<f64>) {
        self.tensor_in("tensors", name)
    }

    fn images(&self) -> Vec<mvb::data::Pixels> {
        self.json["images"]
            .as_array()
            .expect("images")
            .iter()
            .map(|i| load_image(&ImageRef::Path(i["file"].as_str().expect("file").into()), &fixtures()).expect("png"))
            .collect()
    }

    fn prompts(&self, set: &str) -> Vec<String> {
        self.json["zero_shot_sets"][set]["prompts"]
            .as_array()
            .expect("prompts")
            .iter()
            .map(|p| p.as_str().expect("str").to_owned())
            .collect()
    }

    fn sets(&self) -> Vec<String> {
        self.json["zero_shot_sets"].as_object().expect("sets").keys().cloned().collect()
    }
}

/// max |got − want| / max |want|: the relative error of the whole tensor.
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
    let diff = got.iter().zip(want).fold(0f64, |m, (g, w)| {
        assert!(g.is_finite(), "non-finite output");
        m.max((f64::from(*g) - w).abs())
    });
    diff / scale
}

fn check(what: &str, got: &Tensor, want: &(Vec<usize>, Vec<f64>), bound: f64) {
    assert_eq!(got.shape(), want.0.as_slice(), "{what}: shape");
    let e = rel_err(got.data(), &want.1);
    assert!(e <= bound, "{what}: relative error {e:.3e} > {bound:.0e}");
}

fn softmax_rows(t: &Tensor) -> Tensor {
    let mut data = t.data().to_vec();
    for row in data.chunks_mut(t.cols()) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
        row.iter_mut().for_each(|v| *v = (*v - max).exp() / sum);
    }
    Tensor::new(t.shape().to_vec(), data)
}

/// Runs the full comparison of one checkpoint against its reference tensors.
fn parity(model_dir: &str, reference: &str, section: &str, bound: f64) {
    parity_at(model_dir, reference, section, bound, Precision::F32);
}

/// [`parity`] with the model's products computed in `precision`.
fn parity_at(model_dir: &str, reference: &str, section: &str, bound: f64, precision: Precision) {
    let reference = Reference::open(reference);
    let device = Device::cpu_with(precision).expect("a CPU precision");
    let model = ContrastiveModel::load_dir(&fixtures().join(model_dir), &device).expect("loads");
    let images = reference.images();
    let pixels = model.preprocess(&images).expect("preprocess");
    let px = Tensor::new([images.len(), 3, model.image_size(), model.image_size()], pixels.clone());
    check("pixel_values", &px, &reference.tensor("pixel_values"), 1e-6);
    let image = model.image_features_from_pixels(&pixels, images.len()).expect("image features");
    check("image_embeds", &image, &reference.tensor_in(section, "image_embeds"), bound);
    for set in reference.sets() {
        let prompts = reference.prompts(&set);
        let tokens = model.tokenize(&prompts).expect("tokenize");
        let ids = reference.tensor(&format!("{set}/input_ids"));
        assert_eq!(tokens.ids.iter().map(|&i| f64::from(i)).collect::<Vec<_>>(), ids.1, "{set}: input ids");
        let text = model.text_features(&prompts).expect("text");
        check(
            &format!("{set}/text_embeds"),
            &text,
            &reference.tensor_in(section, &format!("{set}/text_embeds")),
            bound,
        );
        let logits = model.logits(&image, &text);
        check(
            &format!("{set}/logits_per_image"),
            &logits,
            &reference.tensor_in(section, &format!("{set}/logits_per_image")),
            bound,
        );
        let probs = softmax_rows(&logits);
        check(
            &format!("{set}/probs_softmax"),
            &probs,
            &reference.tensor_in(section, &format!("{set}/probs_softmax")),
            bound,
        );
    }
}

#[test]
fn clip_f32_matches_transformers() {
    parity("tiny-clip", "tiny-clip", "tensors", 1e-4);
}

#[test]
fn siglip_f32_matches_transformers() {
    parity("tiny-siglip", "tiny-siglip", "tensors", 1e-4);
}

#[test]
fn clip_bf16_weights_match_f32_compute_tightly() {
    // mvb upcasts bf16 weights on load and computes in f32: it matches transformers running
    // the same bf16 weights in f32 at the f32 bound.
    parity("tiny-clip-bf16", "tiny-clip-bf16", "tensors_f32_compute", 1e-4);
}

#[test]
fn clip_bf16_weights_match_bf16_compute_loosely() {
    // Against transformers computing in bf16 (8 bits of mantissa), the stated bound is 5e-2.
    parity("tiny-clip-bf16", "tiny-clip-bf16", "tensors", 5e-2);
}

#[test]
fn clip_bf16_compute_matches_transformers_bf16() {
    // mvb's bf16 path rounds the operands of every matrix product to bf16 and accumulates in
    // f32 (layer norms, softmax and the residual stream stay f32); transformers in bf16 rounds
    // everything. Both are within the bf16 bound of each other.
    parity_at("tiny-clip-bf16", "tiny-clip-bf16", "tensors", 5e-2, Precision::Bf16);
}

#[test]
fn bf16_compute_stays_near_f32() {
    // Against the f32 reference, bf16 products keep features, logits and probabilities within
    // 2e-2 relative error.
    parity_at("tiny-clip", "tiny-clip", "tensors", 2e-2, Precision::Bf16);
    parity_at("tiny-siglip", "tiny-siglip", "tensors", 2e-2, Precision::Bf16);
}

/// Copies `tiny-clip` into a temp folder with `edit` applied to its tensors.
fn broken_clip(
    edit: impl FnOnce(&mut HashMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) -> tempfile::TempDir {
    let src = fixtures().join("tiny-clip");
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(&src).expect("fixture") {
        let entry = entry.expect("entry");
        if entry.file_name() != "model.safetensors" {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
        }
    }
    let bytes = std::fs::read(src.join("model.safetensors")).expect("weights");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut tensors: HashMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)> =
        st.tensors().into_iter().map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec()))).collect();
    edit(&mut tensors);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).expect("view")))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).expect("write");
    dir
}

fn load_err(dir: &Path) -> ModelError {
    ContrastiveModel::load_dir(dir, &Device::cpu()).expect_err("a broken checkpoint must not load")
}

const VICTIM: &str = "vision_model.encoder.layers.1.mlp.fc1.weight";

#[test]
fn a_missing_tensor_is_named() {
    let dir = broken_clip(|t| {
        t.remove(VICTIM);
    });
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::MissingTensor { .. }) && err.to_string().contains(VICTIM), "{err}");
}

/// The configuration is the contract: a checkpoint missing a whole layer (which would run with
/// one layer fewer) and one holding a layer the configuration does not have are refused.
#[test]
fn layers_must_match_the_configuration() {
    let dir = broken_clip(|t| t.retain(|name, _| !name.starts_with("vision_model.encoder.layers.1.")));
    let err = load_err(dir.path());
    assert!(err.to_string().contains("vision_model.encoder.layers.1."), "{err}");
    let dir = broken_clip(|_| {});
    let config = std::fs::read_to_string(dir.path().join("config.json")).expect("config");
    let mut json: Value = serde_json::from_str(&config).expect("JSON");
    json["vision_config"]["num_hidden_layers"] = 1.into();
    std::fs::write(dir.path().join("config.json"), json.to_string()).expect("write");
    let err = load_err(dir.path()).to_string();
    assert!(
        err.contains("vision_model.encoder.layers.1.layer_norm1.weight") && err.contains("num_hidden_layers"),
        "{err}"
    );
}

#[test]
fn a_wrong_shape_is_named() {
    let dir = broken_clip(|t| {
        let (_, shape, bytes) = t.get_mut("vision_model.encoder.layers.0.self_attn.k_proj.weight").expect("tensor");
        *shape = vec![shape[1], shape[0] / 2];
        bytes.truncate(bytes.len() / 2);
    });
    let err = load_err(dir.path());
    assert!(
        matches!(err, ModelError::Shape { .. }) && err.to_string().contains("layers.0.self_attn.k_proj.weight"),
        "{err}"
    );
}

#[test]
fn a_wrong_dtype_is_named() {
    let dir = broken_clip(|t| {
        let (dtype, _, _) = t.get_mut("text_model.final_layer_norm.weight").expect("tensor");
        *dtype = safetensors::Dtype::I32;
    });
    let err = load_err(dir.path());
    assert!(
        matches!(err, ModelError::Dtype { .. }) && err.to_string().contains("text_model.final_layer_norm.weight"),
        "{err}"
    );
}

#[test]
fn a_missing_model_is_not_downloaded() {
    let err = ContrastiveModel::load("nobody/no-such-model-xyz").expect_err("absent");
    assert!(err.to_string().contains("never downloads") || err.to_string().contains("no such folder"), "{err}");
}
