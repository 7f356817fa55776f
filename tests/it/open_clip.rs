//! open_clip checkpoints against open_clip 3.3.0 itself, on the tiny random checkpoints and
//! reference outputs of `tools/make_open_clip_fixtures.py` (`tests/fixtures/open-clip-biomed`:
//! BiomedCLIP's layout, a timm ViT and a BERT text tower, `.bin`; `open-clip-vit`: open_clip's own
//! ViT-B-32-family CLIP, safetensors): pixels, token ids (awkward prompts, truncation to the
//! context), image and text features and zero-shot probabilities within 1e-4 (f32); clear
//! errors for a bad configuration key or a missing tensor; `mvb zeroshot` and `mvb run` on them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mvb::backend::Device;
use mvb::data::{ImageRef, load_image};
use mvb::model::{ContrastiveModel, ModelError};
use serde_json::Value;

use crate::common::{floats, mvb, root, strings, want_ids};

const FIXTURES: [&str; 2] = ["open-clip-biomed", "open-clip-vit"];

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

fn reference(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name).join("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("JSON")
}

/// `max |got - want| / max |want|`.
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "sizes differ");
    let diff = got.iter().zip(want).map(|(g, w)| (f64::from(*g) - w).abs()).fold(0.0, f64::max);
    diff / want.iter().map(|w| w.abs()).fold(0.0, f64::max).max(1e-12)
}

/// The ids of each text tokenized alone (no padding).
fn ids(model: &ContrastiveModel, texts: &[String]) -> Vec<Vec<u32>> {
    texts.iter().map(|t| model.tokenize(std::slice::from_ref(t)).expect("tokenize").ids).collect()
}

#[test]
fn features_and_probabilities_match_open_clip() {
    for name in FIXTURES {
        let r = reference(name);
        let model = ContrastiveModel::load_dir(&fixture(name), &Device::cpu()).expect("load");
        let images: Vec<_> = strings(&r["images"])
            .iter()
            .map(|f| load_image(&ImageRef::Path(f.into()), &fixture(name)).expect("png"))
            .collect();
        let pixels = model.preprocess(&images).expect("preprocess");
        let px_err = rel_err(&pixels, &floats(&r["pixel_values"]));
        let prompts = strings(&r["prompts"]);
        assert_eq!(ids(&model, &prompts), want_ids(&r["token_ids"]), "{name}: prompt ids");
        let img = model.image_features(&images).expect("image features");
        let txt = model.text_features(&prompts).expect("text features");
        let logits = model.logits(&img, &txt);
        let probs: Vec<f32> = logits
            .data()
            .chunks(prompts.len())
            .flat_map(|row| {
                let max = row.iter().copied().fold(f32::MIN, f32::max);
                let e: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
                let s: f32 = e.iter().sum();
                e.into_iter().map(move |v| v / s)
            })
            .collect();
        let errs = [
            ("pixels", px_err),
            ("image features", rel_err(img.data(), &floats(&r["image_features"]))),
            ("text features", rel_err(txt.data(), &floats(&r["text_features"]))),
            ("logits", rel_err(logits.data(), &floats(&r["logits"]))),
            ("probabilities", rel_err(&probs, &floats(&r["probs"]))),
        ];
        eprintln!("{name} ({}): max relative error {errs:?}", model.family());
        for (what, err) in errs {
            assert!(err <= 1e-4, "{name}: {what} relative error {err:e}");
        }
    }
}

#[test]
fn token_ids_equal_open_clip_on_awkward_prompts() {
    for name in FIXTURES {
        let r = reference(name);
        let model = ContrastiveModel::load_dir(&fixture(name), &Device::cpu()).expect("load");
        let texts = strings(&r["awkward"]);
        let got = ids(&model, &texts);
        for ((text, got), want) in texts.iter().zip(&got).zip(want_ids(&r["awkward_ids"])) {
            assert_eq!(got, &want, "{name}: {text:?}");
        }
    }
}

/// The real 49,408-token CLIP BPE (demo-specialist's tokenizer.json) in an open_clip folder
/// gives open_clip's `SimpleTokenizer` ids, truncation to 77 included.
#[test]
fn clip_bpe_ids_equal_open_clips_simple_tokenizer() {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_fixture("open-clip-vit", dir.path());
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(root().join("data/models/demo-specialist").join(f), dir.path().join(f)).expect("copy");
    }
    let text = std::fs::read_to_string(fixture("open-clip-vit").join("clip_bpe_tokens.json")).expect("tokens");
    let want: Value = serde_json::from_str(&text).expect("JSON");
    let model = ContrastiveModel::load_dir(dir.path(), &Device::cpu()).expect("load");
    let texts = strings(&want["prompts"]);
    for ((text, got), want) in texts.iter().zip(ids(&model, &texts)).zip(want_ids(&want["ids"])) {
        assert_eq!(got, want, "{text:?}");
    }
}

fn copy_fixture(name: &str, to: &Path) {
    for entry in std::fs::read_dir(fixture(name)).expect("fixture") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// A copy of the ViT fixture with `edit` applied to `open_clip_config.json`.
fn with_config(edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_fixture("open-clip-vit", dir.path());
    let path = dir.path().join("open_clip_config.json");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("config")).expect("JSON");
    edit(&mut json);
    std::fs::write(&path, json.to_string()).expect("write");
    dir
}

fn load_err(dir: &Path) -> String {
    ContrastiveModel::load_dir(dir, &Device::cpu()).expect_err("must not load").to_string()
}

/// An edit of a configuration.
type Edit = Box<dyn FnOnce(&mut Value)>;

#[test]
fn a_bad_or_missing_config_key_is_named() {
    let cases: [(&str, Edit, &str); 4] = [
        ("missing", Box::new(|j| drop(j["model_cfg"].as_object_mut().map(|m| m.remove("embed_dim")))), "embed_dim"),
        ("wrong type", Box::new(|j| j["model_cfg"]["vision_cfg"]["layers"] = "two".into()), "vision_cfg.layers"),
        ("variant", Box::new(|j| j["model_cfg"]["text_cfg"]["ls_init_value"] = 0.1.into()), "text_cfg.ls_init_value"),
        ("disagrees", Box::new(|j| j["model_cfg"]["vision_cfg"]["layers"] = 3.into()), "vision_cfg.layers"),
    ];
    for (what, edit, key) in cases {
        let dir = with_config(edit);
        let err = load_err(dir.path());
        assert!(err.contains("open_clip_config.json") && err.contains(key), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn a_missing_tensor_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_fixture("open-clip-vit", dir.path());
    let path = dir.path().join("open_clip_model.safetensors");
    let bytes = std::fs::read(&path).expect("weights");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let victim = "visual.transformer.resblocks.1.mlp.c_fc.weight";
    let kept: HashMap<String, safetensors::tensor::TensorView<'_>> =
        st.tensors().into_iter().filter(|(n, _)| n != victim).collect();
    safetensors::serialize_to_file(kept, None, &path).expect("write");
    let err = ContrastiveModel::load_dir(dir.path(), &Device::cpu()).expect_err("must not load");
    assert!(matches!(err, ModelError::MissingTensor { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(victim) && msg.contains("open_clip_model.safetensors"), "{msg}");
}

#[test]
fn zeroshot_runs_through_the_cli() {
    for name in FIXTURES {
        let model = fixture(name);
        let args = ["zeroshot", "--model", model.to_str().expect("utf-8"), "--dataset", "pneumoniamnist"];
        let (ok, stdout, stderr) = mvb(&[&args[..], &["--limit", "24"]].concat());
        assert!(ok, "{name}: {stderr}");
        assert!(stdout.contains("accuracy") && stdout.contains("AUROC"), "{name}: {stdout}");
    }
}

#[test]
fn run_takes_biomedclip_and_open_clip_families() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = format!(
        r#"strategies = ["zs", "lp"]
metrics = ["auroc"]

[bootstrap]
replicates = 2

[[models]]
name = "tiny-biomedclip"
path = "{}"
family = "biomedclip"
group = "specialist"

[[models]]
name = "tiny-open-clip"
path = "{}"
family = "open_clip"
group = "generalist"

[[datasets]]
name = "breastmnist"
"#,
        fixture("open-clip-biomed").display(),
        fixture("open-clip-vit").display()
    );
    let file = tmp.path().join("run.toml");
    std::fs::write(&file, config).expect("write");
    let out = tmp.path().join("out");
    let (ok, _, stderr) = mvb(&["run", file.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let results: Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results.json")).expect("JSON");
    let rows = results["results"].as_array().expect("rows");
    for (model, family) in [("tiny-biomedclip", "biomedclip"), ("tiny-open-clip", "open_clip")] {
        for strategy in ["zs", "lp"] {
            let row = rows.iter().find(|r| r["model"] == model && r["strategy"] == strategy);
            let row = row.unwrap_or_else(|| panic!("no {model} {strategy} row in {results}"));
            assert_eq!(row["family"], family, "{row}");
            assert!(row["point"].as_f64().is_some(), "{row}");
        }
    }
}
