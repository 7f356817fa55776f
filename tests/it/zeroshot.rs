//! `mvb zeroshot` on the demo models and vendored MedMNIST data reproduces, to the printed
//! precision, the accuracy and AUROC that transformers computed for the model cards
//! (`data/models/*/MODEL_CARD.md`), and exactly what `mvb run` reports for the same model,
//! dataset and template (both score through the metric plugins); `mvb embed` writes features
//! and labels.

use crate::common::{mvb, root};

fn metric(stdout: &str, name: &str) -> f64 {
    let line =
        stdout.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("no {name} in {stdout}"));
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("bad line {line}"))
}

/// (model, dataset, accuracy, AUROC) from the model cards (transformers 4.57.6).
const CARDS: &[(&str, &str, f64, f64)] = &[
    ("demo-specialist", "pneumoniamnist", 0.8990, 0.9620),
    ("demo-specialist", "breastmnist", 0.4551, 0.6036),
    ("demo-specialist", "retinamnist", 0.5075, 0.7459),
    ("demo-generalist", "pneumoniamnist", 0.5417, 0.1967),
    ("demo-generalist", "breastmnist", 0.7244, 0.5691),
];

#[test]
fn zero_shot_matches_the_model_cards() {
    for (model, dataset, acc, auc) in CARDS {
        let (ok, stdout, stderr) = mvb(&["zeroshot", "--model", &format!("data/models/{model}"), "--dataset", dataset]);
        assert!(ok, "{stderr}");
        let tol = 5e-5;
        assert!((metric(&stdout, "accuracy") - acc).abs() <= tol, "{model} {dataset}: {stdout}");
        assert!((metric(&stdout, "AUROC") - auc).abs() <= tol, "{model} {dataset}: {stdout}");
    }
}

/// `mvb zeroshot` and `mvb run` compute accuracy and AUROC through the same metric plugins, so
/// they report the same values: demo-specialist with "a photo of {}" on PneumoniaMNIST (binary)
/// and RetinaMNIST (five classes, one-vs-rest macro AUROC).
#[test]
fn zeroshot_and_run_report_the_same_scores() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let model = root().join("data/models/demo-specialist");
    let config = format!(
        r#"strategies = ["zs"]
metrics = ["auroc", "accuracy"]
templates = ["a photo of {{}}"]

[bootstrap]
replicates = 2

[[models]]
name = "demo-specialist"
path = "{}"
family = "clip"
group = "specialist"

[[datasets]]
name = "pneumoniamnist"

[[datasets]]
name = "retinamnist"
"#,
        model.display()
    );
    let file = tmp.path().join("zs.toml");
    std::fs::write(&file, config).expect("write the config");
    let out = tmp.path().join("out");
    let (ok, _, stderr) = mvb(&["run", file.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results.json")).expect("JSON");
    let point = |dataset: &str, metric: &str| {
        let rows = results["results"].as_array().expect("rows");
        let row = rows.iter().find(|r| r["dataset"] == dataset && r["metric"] == metric).expect("a row");
        row["point"].as_f64().expect("a defined point")
    };
    for dataset in ["pneumoniamnist", "retinamnist"] {
        let args = ["zeroshot", "--model", "data/models/demo-specialist", "--dataset", dataset];
        let (ok, stdout, stderr) = mvb(&[&args[..], &["--template", "a photo of {}"]].concat());
        assert!(ok, "{stderr}");
        for (printed, metric) in [("accuracy", "accuracy"), ("AUROC", "auroc")] {
            let line = stdout.lines().find(|l| l.trim_start().starts_with(printed)).expect("printed");
            let value = line.split_whitespace().nth(1).expect("a value");
            assert_eq!(value, format!("{:.4}", point(dataset, metric)), "{dataset} {metric}: {stdout}");
        }
    }
}

#[test]
fn bf16_products_stay_near_the_model_cards() {
    // bf16 operands (8-bit mantissa) with f32 accumulation: the metrics move, but little.
    for (model, dataset, acc, auc) in &CARDS[..2] {
        let args =
            ["zeroshot", "--model", &format!("data/models/{model}"), "--dataset", dataset, "--precision", "bf16"];
        let (ok, stdout, stderr) = mvb(&args);
        assert!(ok, "{stderr}");
        assert!((metric(&stdout, "accuracy") - acc).abs() <= 0.02, "{model} {dataset}: {stdout}");
        assert!((metric(&stdout, "AUROC") - auc).abs() <= 0.02, "{model} {dataset}: {stdout}");
    }
}

#[test]
fn embed_writes_features_and_labels() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("f.safetensors");
    let (ok, _, stderr) = mvb(&[
        "embed",
        "--model",
        "data/models/demo-generalist",
        "--dataset",
        "breastmnist",
        "--limit",
        "20",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{stderr}");
    let bytes = std::fs::read(&out).expect("written");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
    assert_eq!(st.tensor("features").expect("features").shape()[0], 20);
    assert_eq!(st.tensor("labels").expect("labels").shape(), [20, 2]);
}

#[test]
fn a_missing_model_is_one_line() {
    let (ok, _, stderr) = mvb(&["zeroshot", "--model", "no/such-model", "--dataset", "breastmnist"]);
    assert!(!ok && stderr.lines().count() == 1 && stderr.contains("never downloads"), "{stderr}");
}

/// A copy of the demo specialist whose tensor `name` has its first value set to `value`.
fn poisoned_copy(dir: &std::path::Path, name: &str, value: f32) {
    let src = root().join("data/models/demo-specialist");
    for entry in std::fs::read_dir(&src).expect("model folder") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
    }
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).expect("weights");
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).expect("header");
    assert_eq!(header[name]["dtype"], "F32");
    let start = 8 + header_len + header[name]["data_offsets"][0].as_u64().expect("offset") as usize;
    bytes[start..start + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(&path, bytes).expect("write");
}

/// NaN or Inf in the weights is an error naming the sample or class and the stage, never
/// probabilities written as zeros and an AUROC of 0.5.
#[test]
fn non_finite_weights_are_an_error_not_a_number() {
    for (tensor, value, stage) in [
        ("logit_scale", f32::INFINITY, "non-finite class probability"),
        ("vision_model.encoder.layers.0.mlp.fc1.weight", f32::NAN, "non-finite image feature"),
        ("text_projection.weight", f32::NAN, "non-finite text feature"),
    ] {
        let tmp = tempfile::tempdir().expect("temp dir");
        poisoned_copy(tmp.path(), tensor, value);
        let model = tmp.path().to_str().expect("utf-8");
        let (ok, _, stderr) = mvb(&["zeroshot", "--model", model, "--dataset", "breastmnist", "--limit", "8"]);
        assert!(!ok, "{tensor}: poisoned weights must not give a result");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(stage) && (stderr.contains("sample `") || stderr.contains("class `")),
            "{tensor}: {stderr}"
        );
    }
}
