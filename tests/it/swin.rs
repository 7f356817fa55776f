//! Swin image towers (`kernel/src/model/swin/`) against transformers' `SwinModel` on the tiny
//! random fixture of `tools/make_swin_fixtures.py` (shifted windows with their mask, a stage
//! where the shift is switched off, a clipped window), on the CPU and on CUDA when a GPU
//! starts; MedCLIP's vision side (Swin + projection head + L2 norm) from its `.bin` layout;
//! a missing or misshapen tensor is an error naming it.

use std::path::{Path, PathBuf};

use mvb::backend::cuda::reference::rel_error;
use mvb::backend::{Device, Precision};
use mvb::model::medclip::MedClipVision;
use mvb::model::swin::{Swin, SwinConfig};
use mvb::model::{Config, Weights};
use serde_json::Value;

use crate::common::{Dev, on_each_device, root};

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

fn floats(v: &Value, key: &str) -> Vec<f32> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("reference has no {key}"))
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn reference(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("reference.json")).expect("JSON")
}

/// The devices and tolerances of a check: f32 on the CPU (1e-4); on the GPU f32 (1e-4) and
/// bf16 (3e-2, a whole tower rounding every activation, as tests/it/cuda.rs holds CLIP to).
fn devices(dev: &Dev) -> Vec<(Device, f32)> {
    match dev {
        Dev::Cpu => vec![(Device::cpu(), 1e-4)],
        Dev::Cuda(_) => [(Precision::F32, 1e-4), (Precision::Bf16, 3e-2)]
            .map(|(p, tol)| (Device::cuda(p).expect("the GPU started once"), tol))
            .to_vec(),
    }
}

fn check_swin(dev: &Dev) {
    let dir = fixture("tiny-swin");
    let want = reference(&dir);
    let pixels = floats(&want, "pixel_values");
    let config = SwinConfig::from_config(&Config::open(&dir).expect("config")).expect("swin config");
    let weights = Weights::open(&dir).expect("weights");
    for (device, tol) in devices(dev) {
        let swin = Swin::load(&weights, &device, "", &config).expect("loads");
        let pooled = swin.forward(&device, &pixels, 2).expect("forward").to_tensor(&device).expect("host");
        let hidden = swin.hidden_states(&device, &pixels, 2).expect("hidden").to_tensor(&device).expect("host");
        assert_eq!(hidden.shape(), [2, 4, 48]);
        let (e_pool, e_hidden) = (
            rel_error(pooled.data(), &floats(&want, "pooler_output")),
            rel_error(hidden.data(), &floats(&want, "last_hidden_state")),
        );
        eprintln!("swin {}: pooler_output max rel error {e_pool:e}, last_hidden_state {e_hidden:e}", device.tag());
        assert!(e_pool <= tol && e_hidden <= tol, "{}: {e_pool:e} / {e_hidden:e} > {tol:e}", device.tag());
    }
}

#[test]
fn swin_matches_transformers_on_each_device() {
    on_each_device("swin", check_swin);
}

fn check_medclip(dev: &Dev) {
    let dir = fixture("tiny-medclip-vision");
    let want = floats(&reference(&dir), "image_embeds");
    let pixels = floats(&reference(&fixture("tiny-swin")), "pixel_values");
    let config = SwinConfig::from_config(&Config::open(&dir).expect("config")).expect("swin config");
    let weights = Weights::open(&dir).expect("pytorch_model.bin");
    for (device, tol) in devices(dev) {
        let model = MedClipVision::load(&weights, &device, &config).expect("loads");
        let got = model.image_embeds(&device, &pixels, 2).expect("embeds");
        assert_eq!(got.shape(), [2, 16]);
        let err = rel_error(got.data(), &want);
        eprintln!("medclip swin vision {}: image_embeds max rel error {err:e}", device.tag());
        assert!(err <= tol, "{}: {err:e} > {tol:e}", device.tag());
    }
}

#[test]
fn medclip_swin_vision_matches_its_reference_on_each_device() {
    on_each_device("swin medclip", check_medclip);
}

#[test]
fn swin_names_a_missing_or_misshapen_tensor() {
    let src = fixture("tiny-swin");
    let tmp = tempfile::tempdir().expect("temp dir");
    let bytes = std::fs::read(src.join("model.safetensors")).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let gone = "encoder.layers.1.blocks.1.attention.self.relative_position_bias_table";
    let kept: Vec<_> = st.tensors().into_iter().filter(|(n, _)| n != gone).collect();
    safetensors::serialize_to_file(kept, None, &tmp.path().join("model.safetensors")).expect("write");
    let config = SwinConfig::from_config(&Config::open(&src).expect("config")).expect("swin config");
    let err =
        Swin::load(&Weights::open(tmp.path()).expect("weights"), &Device::cpu(), "", &config).expect_err("refused");
    assert!(err.to_string().contains(gone), "{err}");

    // A window of 2 needs 3x3 relative positions; the checkpoint's first table has 7x7.
    let small = SwinConfig { window_size: 2, ..config.clone() };
    let err = Swin::load(&Weights::open(&src).expect("weights"), &Device::cpu(), "", &small).expect_err("refused");
    let first = "encoder.layers.0.blocks.0.attention.self.relative_position_bias_table";
    assert!(err.to_string().contains(first) && err.to_string().contains("[49, 1]"), "{err}");

    // MedCLIP's layout without its projection head.
    let err =
        MedClipVision::load(&Weights::open(&src).expect("weights"), &Device::cpu(), &config).expect_err("refused");
    assert!(err.to_string().contains("vision_model.model.embeddings"), "{err}");
}
