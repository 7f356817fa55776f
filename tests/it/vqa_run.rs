//! `mvb run` on VQA: a generative model (the tiny LLaVA fixture, as a generalist and as a
//! specialist) answers the BreastMNIST VQA view next to a contrastive model on the diagnosis
//! set, in one run: answers in `predictions.jsonl` with MedVLMBench's prompts, VQA scores and an
//! RQ1 gap from the `vqa` metric, the report's VQA table and heatmap, and `--resume` reusing
//! every unit to a byte-identical `results.json`.

use std::path::Path;

use mvb::eval::run::{self, RunConfig, RunOptions, vqa};

use crate::common::{host, root};

fn config() -> RunConfig {
    let llava = root().join("tests/fixtures/decoder/tiny-llava");
    let clip = root().join("data/models/demo-specialist");
    let text = format!(
        r#"strategies = ["zs", "ots"]
metrics = ["auroc", "vqa"]

[bootstrap]
replicates = 20
seed = 42

[generation]
max_new_tokens = 6
batch_size = 5

[[models]]
name = "llava-g"
path = "{l}"
family = "llava"
group = "generalist"

[[models]]
name = "llava-s"
path = "{l}"
family = "llava"
group = "specialist"
id_datasets = ["breast-vqa"]

[[models]]
name = "clip-s"
path = "{c}"
family = "clip"
group = "specialist"

[[datasets]]
name = "breast-vqa"
dataset = "breastmnist-vqa"
limit = 12

[[datasets]]
name = "breastmnist"
limit = 40
"#,
        l = llava.display(),
        c = clip.display()
    );
    RunConfig::parse(&text, "vqa.toml", &root()).expect("the config parses")
}

fn lines_of(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("predictions");
    text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[test]
fn vqa_and_diagnosis_units_run_side_by_side_and_resume() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("out");
    let host = host();
    let config = config();
    let options = RunOptions { out: out.clone(), resume: false, overwrite: false, shard: None };
    let outcome = run::run(&host, &config, &options, &mut |_| {}).expect("the run succeeds");
    // llava-g, llava-s on breast-vqa (OTS); clip-s on breastmnist (ZS). Nothing else applies.
    assert_eq!((outcome.computed, outcome.reused), (3, 0));

    let lines = lines_of(&out.join("predictions.jsonl"));
    let answers: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("text").is_some()).collect();
    assert_eq!(answers.len(), 24, "12 questions × 2 models");
    for a in &answers {
        let qa = &a["qa"];
        let gold = qa["answer"].as_str().expect("answer").to_lowercase();
        let want = if gold == "yes" || gold == "no" {
            format!("{}{}", vqa::YES_NO_PREFIX, qa["question"].as_str().expect("question"))
        } else {
            qa["question"].as_str().expect("question").to_owned()
        };
        assert_eq!(a["prompt"].as_str(), Some(want.as_str()), "{a}");
        assert_eq!(a["strategy"], "ots");
    }
    assert!(answers.iter().any(|a| a["qa"]["kind"] == "open") && answers.iter().any(|a| a["qa"]["kind"] == "closed"));
    // Same weights, greedy: both models give the same answers.
    let texts = |model: &str| -> Vec<&serde_json::Value> {
        answers.iter().filter(|a| a["model"] == model).map(|a| &a["text"]).collect()
    };
    assert_eq!(texts("llava-g"), texts("llava-s"));

    let r = &outcome.results;
    assert_eq!(r.primary.as_deref(), Some("auroc"));
    assert_eq!(r.vqa_primary.as_deref(), Some("f1"));
    let unit = r.unit("llava-g", "breast-vqa", run::Strategy::Ots).expect("the VQA unit");
    for score in ["f1", "closed-accuracy", "open-accuracy", "bleu-1"] {
        assert!(unit.score(score).is_some(), "missing {score}");
    }
    assert!(unit.score("auroc").is_none(), "a VQA unit has no AUROC");
    assert!(r.unit("clip-s", "breastmnist", run::Strategy::Zs).and_then(|u| u.score("auroc")).is_some());
    let rq1: Vec<_> = r.gaps.iter().filter(|g| g.dataset == "breast-vqa").collect();
    assert_eq!(rq1.len(), 1, "{:?}", r.gaps);
    assert_eq!((rq1[0].metric.as_str(), rq1[0].estimate.point), ("f1", 0.0));

    let report = std::fs::read_to_string(out.join("report.md")).expect("report");
    assert!(report.contains("## F1 [95% CI]") && report.contains("heatmap_f1.svg"), "{report}");
    assert!(out.join("heatmap_f1.svg").is_file() && out.join("heatmap_auroc.svg").is_file());

    let before = std::fs::read(out.join("results.json")).expect("results");
    let options = RunOptions { out: out.clone(), resume: true, overwrite: false, shard: None };
    let again = run::run(&host, &config, &options, &mut |_| {}).expect("resumes");
    assert_eq!((again.computed, again.reused), (0, 3));
    assert_eq!(std::fs::read(out.join("results.json")).expect("results"), before, "byte-identical results");
}
