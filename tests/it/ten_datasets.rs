//! `mvb run` on the fixture copies of MedVLMBench's ten datasets (`tests/fixtures/datasets/`,
//! read by their built-in plugins): the tiny CLIP fixture scores the six diagnosis sets zero-shot
//! and the tiny LLaVA fixture answers the four VQA sets, and every dataset gets results. The
//! run is then resumed with `[report] subgroups`: nothing is recomputed (the attributes travel
//! in `predictions.jsonl`), and per-subgroup rows with paired bootstrap CIs and best-worst
//! gaps appear in `results.json`, `subgroups.csv` and `report.md`. An attribute no dataset
//! gives is refused before any prediction, naming the config line.

use mvb::eval::run::{self, RunConfig, RunOptions, Strategy};

use crate::common::{host, root};

/// (run name, plugin, catalog name, split evaluated): HAM10000 and PAPILA have no official
/// split, so their fixtures are all train.
const DATASETS: [(&str, &str, &str, &str); 10] = [
    ("chexpert", "chexpert", "chexpert", "test"),
    ("camelyon17", "camelyon17", "camelyon17", "test"),
    ("ham10000", "ham10000", "ham10000", "train"),
    ("papila", "papila", "papila", "train"),
    ("gf3300", "gf3300", "gf3300", "test"),
    ("fairvlmed10k", "fairvlmed10k", "fairvlmed10k", "test"),
    ("vqa-rad", "vqa-rad", "vqa-rad", "test"),
    ("slake", "slake", "slake", "test"),
    ("pathvqa", "pathvqa", "pathvqa", "test"),
    ("fairvlmed10k-vqa", "fairvlmed10k", "fairvlmed10k-vqa", "test"),
];

fn config_text(report: &str) -> String {
    let fixtures = root().join("tests/fixtures");
    let mut text = format!(
        r#"strategies = ["zs", "ots"]
metrics = ["auroc", "accuracy", "vqa"]
{report}
[bootstrap]
replicates = 20
seed = 42

[generation]
max_new_tokens = 4
batch_size = 4

[[models]]
name = "tiny-clip"
path = "{clip}"
family = "clip"
group = "generalist"

[[models]]
name = "tiny-llava"
path = "{llava}"
family = "llava"
group = "generalist"
"#,
        clip = fixtures.join("tiny-clip").display(),
        llava = fixtures.join("decoder/tiny-llava").display(),
    );
    for (name, plugin, dataset, split) in DATASETS {
        let data = fixtures.join("datasets").join(plugin);
        text += &format!(
            "\n[[datasets]]\nname = \"{name}\"\nplugin = \"{plugin}\"\ndataset = \"{dataset}\"\ndata = \"{}\"\nsplit = \"{split}\"\n",
            data.display()
        );
    }
    text
}

fn config(report: &str) -> RunConfig {
    RunConfig::parse(&config_text(report), "ten.toml", &root()).expect("the config parses")
}

#[test]
fn the_ten_datasets_run_and_report_subgroups_on_resume() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("out");
    let host = host();
    let options = RunOptions { out: out.clone(), resume: false, overwrite: false, shard: None };
    let outcome = run::run(&host, &config(""), &options, &mut |_| {}).expect("the run succeeds");
    assert_eq!((outcome.computed, outcome.reused), (10, 0), "one unit per dataset");
    let r = &outcome.results;
    for (name, _, _, _) in DATASETS[..6].iter() {
        let unit = r.unit("tiny-clip", name, Strategy::Zs).unwrap_or_else(|| panic!("no result for {name}"));
        assert!(unit.score("accuracy").is_some_and(|b| b.estimate.point.is_finite()), "{name}");
    }
    for (name, _, _, _) in DATASETS[6..].iter() {
        let unit = r.unit("tiny-llava", name, Strategy::Ots).unwrap_or_else(|| panic!("no result for {name}"));
        assert!(unit.score("f1").is_some_and(|b| b.estimate.point.is_finite()), "{name}");
    }
    assert!(r.subgroups.is_empty() && !out.join("subgroups.csv").exists());
    let predictions = std::fs::read_to_string(out.join("predictions.jsonl")).expect("predictions");
    assert!(predictions.contains(r#""attributes":{"age":"73","projection":"AP","sex":"Male","view":"Frontal"}"#));

    // Resumed with subgroups: every unit reused, the attributes read back from the file.
    let report = "[report]\nsubgroups = [\"sex\", \"age_group\"]\n";
    let options = RunOptions { resume: true, ..options };
    let again = run::run(&host, &config(report), &options, &mut |_| {}).expect("resumes");
    assert_eq!((again.computed, again.reused), (0, 10));
    let r = &again.results;
    let chexpert_sex =
        r.subgroups.iter().find(|s| s.key.dataset == "chexpert" && s.attribute == "sex").expect("CheXpert by sex");
    let values: Vec<(&str, usize)> = chexpert_sex.values.iter().map(|v| (v.value.as_str(), v.n)).collect();
    assert_eq!(values, [("Female", 1), ("Male", 2)]);
    let male = &chexpert_sex.values[1];
    let accuracy = male.scores.iter().find(|s| s.score.name == "accuracy").expect("accuracy");
    let e = &accuracy.score.boot.estimate;
    assert!(e.point.is_finite() && e.lo <= e.hi && e.replicates > 0, "{e:?}");
    // One sample per class at most: AUROC of the one Female sample is not computable, with why.
    let auroc = chexpert_sex.values[0].scores.iter().find(|s| s.score.name == "auroc").expect("auroc");
    let note = auroc.note.as_deref().expect("a reason");
    assert!(note.starts_with("not computable: `auroc` is undefined on this subgroup"), "{note}");
    let gap = chexpert_sex.gaps.iter().find(|g| g.metric == "accuracy").expect("accuracy gap");
    assert!(gap.best_worst.is_some() || gap.note.is_some());
    assert!(r.subgroups.iter().any(|s| s.key.dataset == "gf3300" && s.attribute == "age_group"));
    assert!(r.subgroups.iter().any(|s| s.key.dataset == "fairvlmed10k-vqa" && s.attribute == "sex"));
    assert!(!r.subgroups.iter().any(|s| s.key.dataset == "vqa-rad"), "VQA-RAD gives no sex or age");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).expect("json")).expect("parses");
    let rows = json["subgroups"].as_array().expect("subgroup rows");
    assert!(rows.iter().any(|row| row["dataset"] == "chexpert" && row["value"] == "Male" && row["ci_lo"].is_f64()));
    assert!(rows.iter().all(|row| !row["point"].is_null() || row["note"].is_string()), "no bare null");
    assert!(json["subgroup_gaps"].as_array().is_some_and(|g| !g.is_empty()));
    let csv = std::fs::read_to_string(out.join("subgroups.csv")).expect("subgroups.csv");
    assert!(
        csv.starts_with("model,family,group,dataset,split,strategy,metric,attribute,value,best,worst,n,note,point")
    );
    let md = std::fs::read_to_string(out.join("report.md")).expect("report");
    assert!(md.contains("## Subgroups") && md.contains("| tiny-clip | chexpert | ZS | sex | AUROC |"), "{md}");

    let before = std::fs::read(out.join("results.json")).expect("results");
    run::run(&host, &config(report), &options, &mut |_| {}).expect("resumes again");
    assert_eq!(std::fs::read(out.join("results.json")).expect("results"), before, "byte-identical results");

    // A typo is refused before any prediction, at its line.
    let report = "[report]\nsubgroups = [\"sex\", \"gender\"]\n";
    let options = RunOptions { out: tmp.path().join("typo"), resume: false, overwrite: false, shard: None };
    let err = run::run(&host, &config(report), &options, &mut |_| {}).expect_err("no dataset gives `gender`");
    let msg = err.to_string();
    assert!(msg.starts_with("config ten.toml, line 4: `subgroups` names `gender`, which no dataset"), "{msg}");
    assert!(msg.contains("`sex`") && !tmp.path().join("typo/predictions.jsonl").exists(), "{msg}");
}
