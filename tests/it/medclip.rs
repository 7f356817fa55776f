//! MedCLIP (`kernel/src/model/medclip/`) against MedCLIP's forward on the tiny random checkpoint
//! of `tools/make_medclip_fixtures.py` (`tests/fixtures/tiny-medclip`: MedCLIP's state-dict
//! names in a `.bin`, Bio_ClinicalBERT-style `vocab.txt`; the reference re-implements MedCLIP's
//! forward on transformers' SwinModel + BertModel and was checked against MedCLIP 0.0.3's own
//! `modeling_medclip.py`): MedCLIP's preprocessing, token ids (awkward prompts, truncation to
//! 77), image and text embeddings, logits (clamped `logit_scale`) and probabilities within 1e-4
//! (f32); the folder detected without a `config.json`; the ResNet variant and FT-LoRA refused
//! with clear errors; `mvb zeroshot` and `mvb run` (`family = "medclip"`) on it.

use std::path::{Path, PathBuf};

use mvb::backend::Device;
use mvb::data::{ImageRef, Pixels, load_image};
use mvb::model::{ContrastiveModel, ModelError};
use mvb::train::{LoraConfig, fit_lora};
use serde_json::Value;

use crate::common::{Dev, mvb, on_each_device, root};

fn fixture() -> PathBuf {
    root().join("tests/fixtures/tiny-medclip")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture().join("reference.json")).expect("reference.json"))
        .expect("JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("list").iter().map(|x| x.as_f64().expect("number")).collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().expect("list").iter().map(|s| s.as_str().expect("string").to_owned()).collect()
}

fn rows(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .expect("rows")
        .iter()
        .map(|r| r.as_array().expect("row").iter().map(|i| i.as_u64().expect("id") as u32).collect())
        .collect()
}

/// `max |got - want| / max |want|`.
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "sizes differ");
    let diff = got.iter().zip(want).map(|(g, w)| (f64::from(*g) - w).abs()).fold(0.0, f64::max);
    diff / want.iter().map(|w| w.abs()).fold(0.0, f64::max).max(1e-12)
}

fn model() -> ContrastiveModel {
    ContrastiveModel::load_dir(&fixture(), &Device::cpu()).expect("load")
}

fn images(r: &Value) -> Vec<Pixels> {
    strings(&r["images"]).iter().map(|f| load_image(&ImageRef::Path(f.into()), &fixture()).expect("png")).collect()
}

fn softmax_rows(logits: &[f32], cols: usize) -> Vec<f32> {
    logits
        .chunks(cols)
        .flat_map(|row| {
            let max = row.iter().copied().fold(f32::MIN, f32::max);
            let e: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
            let s: f32 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect()
}

#[test]
fn features_and_probabilities_match_medclip_on_each_device() {
    on_each_device("medclip", check_features);
}

/// The parity check on `dev` (the GPU in f32: the same bound as the CPU).
fn check_features(dev: &Dev) {
    let r = reference();
    let device = dev.f32_device();
    let model = ContrastiveModel::load_dir(&fixture(), &device).expect("load");
    assert_eq!(model.family(), "medclip");
    let images = images(&r);
    let pixels = model.preprocess(&images).expect("preprocess");
    let prompts = strings(&r["prompts"]);
    let tokens = model.tokenize(&prompts).expect("tokenize");
    assert_eq!(tokens.ids.chunks(tokens.len).map(<[u32]>::to_vec).collect::<Vec<_>>(), rows(&r["token_ids"]));
    assert_eq!(tokens.mask.chunks(tokens.len).map(<[u32]>::to_vec).collect::<Vec<_>>(), rows(&r["attention_mask"]));
    let img = model.image_features(&images).expect("image features");
    let txt = model.text_features(&prompts).expect("text features");
    let logits = model.logits(&img, &txt);
    let probs = softmax_rows(logits.data(), prompts.len());
    let scale = r["logit_scale_exp"].as_f64().expect("scale");
    assert!((f64::from(model.logit_params().0) - scale).abs() <= 1e-4 * scale, "the clamped scale");
    let errs = [
        ("pixels", rel_err(&pixels, &floats(&r["pixel_values"]))),
        ("image embeds", rel_err(img.data(), &floats(&r["image_embeds"]))),
        ("text embeds", rel_err(txt.data(), &floats(&r["text_embeds"]))),
        ("logits", rel_err(logits.data(), &floats(&r["logits"]))),
        ("probabilities", rel_err(&probs, &floats(&r["probs"]))),
    ];
    eprintln!("tiny-medclip {}: max relative error {errs:?}", device.tag());
    for (what, err) in errs {
        assert!(err <= 1e-4, "{} {what} relative error {err:e}", device.tag());
    }
}

#[test]
fn token_ids_equal_bio_clinicalbert_on_awkward_prompts() {
    let r = reference();
    let model = model();
    let texts = strings(&r["awkward"]);
    for (text, want) in texts.iter().zip(rows(&r["awkward_ids"])) {
        let got = model.tokenize(std::slice::from_ref(text)).expect("tokenize").ids;
        assert_eq!(got, want, "{text:?}");
    }
}

fn copy_fixture(to: &Path, skip: &[&str]) {
    for entry in std::fs::read_dir(fixture()).expect("fixture") {
        let entry = entry.expect("entry");
        if !skip.iter().any(|s| entry.file_name() == *s) {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

/// Without `config.json` the folder is still MedCLIP's (by its tensor names) and takes MedCLIP's
/// fixed Swin-T, which the tiny tower does not fit: the error names the Swin tensor.
#[test]
fn a_folder_without_config_is_detected_by_its_tensors() {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_fixture(dir.path(), &["config.json"]);
    let err = ContrastiveModel::load_dir(dir.path(), &Device::cpu()).expect_err("Swin-T does not fit").to_string();
    assert!(err.contains("vision_model.model.") && err.contains("pytorch_model.bin"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn the_resnet_variant_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let zeros = vec![0u8; 4 * 4];
    let view =
        |shape: Vec<usize>| safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, &zeros).expect("view");
    let tensors = vec![
        ("vision_model.model.conv1.weight", view(vec![2, 2])),
        ("vision_model.model.fc.weight", view(vec![2, 2])),
        ("text_model.projection_head.weight", view(vec![2, 2])),
    ];
    safetensors::serialize_to_file(tensors, None, &dir.path().join("model.safetensors")).expect("write");
    let err = ContrastiveModel::load_dir(dir.path(), &Device::cpu()).expect_err("refused");
    assert!(matches!(err, ModelError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("ResNet-50"), "{err}");
}

#[test]
fn lora_is_refused_naming_the_family() {
    let model = model();
    let images = images(&reference());
    let err = fit_lora(&model, &images, &[0, 1, 0], 2, &LoraConfig::default()).expect_err("refused").to_string();
    assert!(err.contains("FT-LoRA") && err.contains("medclip") && err.contains("tiny-medclip"), "{err}");
}

#[test]
fn zeroshot_runs_through_the_cli() {
    let model = fixture();
    let args = ["zeroshot", "--model", model.to_str().expect("utf-8"), "--dataset", "pneumoniamnist", "--limit", "24"];
    let (ok, stdout, stderr) = mvb(&args);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("accuracy") && stdout.contains("AUROC") && stdout.contains("medclip"), "{stdout}");
}

/// `mvb run` with `family = "medclip"`: zero-shot and the linear probe give results; the LoRA
/// unit after them stops the run with one line naming the model and the strategies that work.
#[test]
fn run_takes_the_medclip_family_and_refuses_lora() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let toml = format!(
        "strategies = [\"zs\", \"lp\", \"lora\"]\nmetrics = [\"auroc\"]\n\n[bootstrap]\nreplicates = 2\n\n\
         [[models]]\nname = \"tiny-medclip\"\npath = \"{}\"\nfamily = \"medclip\"\ngroup = \"specialist\"\n\n\
         [[datasets]]\nname = \"breastmnist\"\n",
        fixture().display()
    );
    std::fs::write(tmp.path().join("run.toml"), toml).expect("write");
    let (out, config) = (tmp.path().join("out"), tmp.path().join("run.toml"));
    let (ok, _, stderr) = mvb(&["run", config.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    assert!(
        !ok && stderr.contains("FT-LoRA (the `lora` strategy) is not implemented for the medclip family"),
        "{stderr}"
    );
    let (ok, _, stderr) = mvb(&["report", out.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let results: Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results.json")).expect("JSON");
    for strategy in ["zs", "lp"] {
        let found = results["results"].as_array().expect("rows").iter().any(|r| {
            r["model"] == "tiny-medclip" && r["strategy"] == strategy && r["family"] == "medclip" && r["point"].is_f64()
        });
        assert!(found, "no medclip {strategy} result in {results}");
    }
}
