//! BLIP-2 image-text retrieval (`Blip2ForImageTextRetrieval`, Salesforce/blip2-itm-vit-g's
//! class) against transformers 5.23 on the tiny random checkpoint and reference outputs of
//! `tools/make_blip2_fixtures.py` (`tests/fixtures/tiny-blip2`): pixels, token ids (awkward
//! prompts too), the vision tower's class token, the projected query and text features, the
//! contrastive logits (max over queries of the cosine) and MedVLMBench's zero-shot
//! probabilities within 1e-4 (f32); clear errors for another BLIP-2 architecture, a too-long
//! prompt and FT-LoRA; `mvb zeroshot` and `mvb run` (zs, lp) on it.

use std::path::{Path, PathBuf};

use mvb::backend::Device;
use mvb::data::{ImageRef, Pixels, load_image};
use mvb::eval::zeroshot;
use mvb::model::{ContrastiveModel, ModelError};
use mvb::tensor::Tensor;
use serde_json::Value;

use crate::common::{Dev, floats, mvb, on_each_device, root, run_results, strings, want_ids};

fn fixture() -> PathBuf {
    root().join("tests/fixtures/tiny-blip2")
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixture().join("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("JSON")
}

/// The ids of each text tokenized alone (no padding).
fn ids(model: &ContrastiveModel, texts: &[String]) -> Vec<Vec<u32>> {
    texts.iter().map(|t| model.tokenize(std::slice::from_ref(t)).expect("tokenize").ids).collect()
}

/// `max |got - want|`.
fn max_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "sizes differ");
    got.iter().zip(want).map(|(g, w)| (f64::from(*g) - w).abs()).fold(0.0, f64::max)
}

fn load() -> ContrastiveModel {
    ContrastiveModel::load_dir(&fixture(), &Device::cpu()).expect("load")
}

fn images(r: &Value) -> Vec<Pixels> {
    strings(&r["images"]).iter().map(|f| load_image(&ImageRef::Path(f.into()), &fixture()).expect("png")).collect()
}

/// Columns `from..from + n` of every row.
fn columns(t: &Tensor, from: usize, n: usize) -> Vec<f32> {
    (0..t.rows()).flat_map(|i| t.row(i)[from..from + n].to_vec()).collect()
}

/// Each `dim`-wide block scaled to unit length.
fn normalized_blocks(v: &[f32], dim: usize) -> Vec<f32> {
    v.chunks(dim)
        .flat_map(|b| {
            let n = b.iter().map(|x| x * x).sum::<f32>().sqrt();
            b.iter().map(move |x| x / n)
        })
        .collect()
}

#[test]
fn features_logits_and_probabilities_match_transformers_on_each_device() {
    on_each_device("blip2", check_features);
}

/// The parity check on `dev` (the GPU in f32: the same bound as the CPU).
fn check_features(dev: &Dev) {
    let r = reference();
    let device = dev.f32_device();
    let model = ContrastiveModel::load_dir(&fixture(), &device).expect("load");
    assert_eq!(model.family(), "blip2");
    let imgs = images(&r);
    let pixels = model.preprocess(&imgs).expect("preprocess");
    let prompts = strings(&r["prompts"]);
    assert_eq!(ids(&model, &prompts), want_ids(&r["token_ids"]), "prompt ids");
    let img = model.image_features(&imgs).expect("image features");
    let txt = model.text_features(&prompts).expect("text features");
    let (cls, query) = (r["vision_cls"]["shape"][1].as_u64().expect("cls") as usize, floats(&r["query_features"]));
    let dim = r["text_features"]["shape"][1].as_u64().expect("dim") as usize;
    assert_eq!(img.cols(), cls + query.len() / imgs.len(), "feature row: class token then the queries");
    let queries = columns(&img, cls, img.cols() - cls);
    let probe = model.probe_features(&img).expect("BLIP-2 probes the class token");
    let logits = model.logits(&img, &txt);
    let emb = zeroshot::class_embeddings(&model, &prompts, &["{}".to_owned()]).expect("class embeddings");
    let probs = zeroshot::probabilities(&model, &img, &emb);
    let errs = [
        ("pixels", max_err(&pixels, &floats(&r["pixel_values"]))),
        ("vision class token", max_err(&columns(&img, 0, cls), &floats(&r["vision_cls"]))),
        ("probe features", max_err(probe.data(), &floats(&r["vision_cls"]))),
        ("query features", max_err(&queries, &query)),
        ("image_embeds", max_err(&normalized_blocks(&queries, dim), &floats(&r["image_embeds"]))),
        ("text features", max_err(txt.data(), &floats(&r["text_features"]))),
        ("text_embeds", max_err(&normalized_blocks(txt.data(), dim), &floats(&r["text_embeds"]))),
        ("logits", max_err(logits.data(), &floats(&r["logits"]))),
        ("probabilities", max_err(probs.data(), &floats(&r["probs"]))),
    ];
    eprintln!("tiny-blip2 {}: max absolute error {errs:?}", device.tag());
    for (what, err) in errs {
        assert!(err <= 1e-4, "{} {what}: max absolute error {err:e}", device.tag());
    }
}

#[test]
fn token_ids_equal_transformers_on_awkward_prompts() {
    let r = reference();
    let model = load();
    let texts = strings(&r["awkward"]);
    for ((text, got), want) in texts.iter().zip(ids(&model, &texts)).zip(want_ids(&r["awkward_ids"])) {
        assert_eq!(got, want, "{text:?}");
    }
}

/// A copy of the fixture as transformers 4.x's slow `BertTokenizer` saves it (no
/// tokenizer.json: `vocab.txt` and `added_tokens.json` with `[DEC]`) gives the same ids.
#[test]
fn a_vocab_txt_tokenizer_gives_the_same_ids() {
    let r = reference();
    let dir = tempfile::tempdir().expect("temp dir");
    copy_fixture(dir.path());
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("tokenizer.json")).expect("tokenizer"))
            .expect("JSON");
    std::fs::remove_file(dir.path().join("tokenizer.json")).expect("remove");
    // `[DEC]`, added after the vocabulary, goes to added_tokens.json as the slow tokenizer saves it.
    let mut vocab: Vec<(u64, &str)> = json["model"]["vocab"]
        .as_object()
        .expect("vocab")
        .iter()
        .filter(|(t, _)| t.as_str() != "[DEC]")
        .map(|(t, i)| (i.as_u64().expect("id"), t.as_str()))
        .collect();
    vocab.sort();
    assert!(vocab.iter().enumerate().all(|(i, (id, _))| i as u64 == *id), "the vocabulary has gaps");
    let lines: Vec<&str> = vocab.iter().map(|(_, t)| *t).collect();
    std::fs::write(dir.path().join("vocab.txt"), lines.join("\n") + "\n").expect("vocab.txt");
    let added: serde_json::Map<String, Value> = json["added_tokens"]
        .as_array()
        .expect("added")
        .iter()
        .filter(|t| t["id"].as_u64().expect("id") as usize >= lines.len())
        .map(|t| (t["content"].as_str().expect("content").to_owned(), t["id"].clone()))
        .collect();
    assert!(added.contains_key("[DEC]"), "{added:?}");
    std::fs::write(dir.path().join("added_tokens.json"), Value::Object(added).to_string()).expect("added");
    let model = ContrastiveModel::load_dir(dir.path(), &Device::cpu()).expect("load");
    let texts = [strings(&r["awkward"]), strings(&r["prompts"])].concat();
    let want = [want_ids(&r["awkward_ids"]), want_ids(&r["token_ids"])].concat();
    for ((text, got), want) in texts.iter().zip(ids(&model, &texts)).zip(want) {
        assert_eq!(got, want, "{text:?}");
    }
}

#[test]
fn a_prompt_longer_than_the_position_table_is_refused() {
    let model = load();
    let err = model.text_features(&[["lung"; 80].join(" ")]).expect_err("must not encode").to_string();
    assert!(err.contains("at most 64"), "{err}");
}

fn copy_fixture(to: &Path) {
    for entry in std::fs::read_dir(fixture()).expect("fixture") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn another_blip2_architecture_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_fixture(dir.path());
    let path = dir.path().join("config.json");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("config")).expect("JSON");
    json["architectures"] = serde_json::json!(["Blip2ForConditionalGeneration"]);
    std::fs::write(&path, json.to_string()).expect("write");
    let err = ContrastiveModel::load_dir(dir.path(), &Device::cpu()).expect_err("must not load");
    assert!(matches!(err, ModelError::Unsupported { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("Blip2ForConditionalGeneration") && msg.contains("config.json"), "{msg}");
}

#[test]
fn ft_lora_names_the_model_it_does_not_train() {
    let r = reference();
    let model = load();
    let imgs = images(&r);
    let config = mvb::train::LoraConfig::default();
    let err = mvb::train::fit_lora(&model, &imgs, &[0, 1, 0], 2, &config).expect_err("no LoRA for BLIP-2");
    let msg = err.to_string();
    assert!(msg.contains("tiny-blip2") && msg.contains("blip2") && msg.contains("FT-LoRA"), "{msg}");
}

#[test]
fn zeroshot_runs_through_the_cli() {
    let model = fixture();
    let args = ["zeroshot", "--model", model.to_str().expect("utf-8"), "--dataset", "pneumoniamnist", "--limit", "24"];
    let (ok, stdout, stderr) = mvb(&args);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("accuracy") && stdout.contains("AUROC") && stdout.contains("blip2"), "{stdout}");
}

/// A run configuration of the fixture (family `blip2`) on BreastMNIST with `strategies`.
fn run_config(strategies: &str) -> String {
    format!(
        "strategies = [{strategies}]\nmetrics = [\"auroc\"]\nbootstrap = {{ replicates = 2 }}\n\n[[models]]\n\
         name = \"tiny-blip2\"\npath = \"{}\"\nfamily = \"blip2\"\ngroup = \"generalist\"\n\n\
         [[datasets]]\nname = \"breastmnist\"\n",
        fixture().display()
    )
}

#[test]
fn run_takes_the_blip2_family_for_zs_and_lp() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let results = run_results(tmp.path(), &run_config("\"zs\", \"lp\""));
    let rows = results["results"].as_array().expect("rows");
    for strategy in ["zs", "lp"] {
        let row = rows.iter().find(|r| r["model"] == "tiny-blip2" && r["strategy"] == strategy);
        let row = row.unwrap_or_else(|| panic!("no {strategy} row in {results}"));
        assert_eq!(row["family"], "blip2", "{row}");
        assert!(row["point"].as_f64().is_some(), "{row}");
    }
}

#[test]
fn run_refuses_ft_lora_naming_the_model() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("run.toml");
    std::fs::write(&file, run_config("\"lora\"")).expect("write");
    let out = tmp.path().join("out");
    let (ok, _, stderr) = mvb(&["run", file.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    assert!(!ok, "FT-LoRA must be refused");
    assert!(stderr.contains("tiny-blip2") && stderr.contains("FT-LoRA") && stderr.contains("blip2 family"), "{stderr}");
}
