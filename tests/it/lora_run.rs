//! FT-LoRA in `mvb run`: the `lora` strategy next to `zs` and `lp` on the demo CLIP models and
//! BreastMNIST: a unit of class probabilities per model, a PEFT adapter folder (with the head)
//! per model and dataset whose LoRA weights moved off their initialisation, "fine-tuned" in the
//! RQ gaps taken as the better of FT-LP and FT-LoRA, and `--resume` reusing every unit to a
//! byte-identical `results.json`.

use mvb::eval::run::lora::adapter_dir;
use mvb::eval::run::{self, RunConfig, RunOptions, Strategy};
use mvb::train::peft;

use crate::common::{host, root};

fn config() -> RunConfig {
    let text = format!(
        r#"strategies = ["zs", "lp", "lora"]
metrics = ["auroc"]

[bootstrap]
replicates = 50

[probe]
epochs = 2

[lora]
epochs = 2
lr = 1e-3

[[models]]
name = "generalist"
path = "{g}"
family = "clip"
group = "generalist"

[[models]]
name = "specialist"
path = "{s}"
family = "clip"
group = "specialist"

[[datasets]]
name = "breastmnist"
limit = 60
train_limit = 48
"#,
        g = root().join("data/models/demo-generalist").display(),
        s = root().join("data/models/demo-specialist").display(),
    );
    RunConfig::parse(&text, "lora.toml", &root()).expect("the config parses")
}

#[test]
fn lora_units_train_write_peft_adapters_and_join_the_gaps() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("out");
    let options = RunOptions { out: out.clone(), resume: false, overwrite: false, shard: None };
    let outcome = run::run(&host(), &config(), &options, &mut |_| {}).expect("the run completes");
    assert_eq!(outcome.computed, 6, "zs, lp and lora for two models");
    for model in ["generalist", "specialist"] {
        let unit = outcome.results.unit(model, "breastmnist", Strategy::Lora).expect("a lora unit");
        let auroc = unit.score("auroc").expect("auroc").estimate.point;
        assert!((0.0..=1.0).contains(&auroc), "{model}: {auroc}");
        let dir = adapter_dir(&out, model, "breastmnist");
        for file in ["adapter_config.json", "adapter_model.safetensors", "head.safetensors"] {
            assert!(dir.join(file).is_file(), "{}", dir.join(file).display());
        }
        let adapter = peft::load(&dir).expect("the adapter loads back");
        let moved = adapter.pairs.values().filter(|p| p.b.iter().any(|&v| v != 0.0)).count();
        assert!(moved > adapter.pairs.len() / 2, "{model}: only {moved} LoRA B matrices left zero-init");
    }
    // RQ3 (BreastMNIST is OOD for every specialist): the better fine-tuning strategy of each side.
    let rq3 = outcome.results.gaps.iter().find(|g| g.rq.as_str() == "RQ3").expect("an RQ3 gap");
    for (side, model) in [(&rq3.generalist, "generalist"), (&rq3.specialist, "specialist")] {
        let best = [Strategy::Lp, Strategy::Lora]
            .into_iter()
            .map(|s| (s, outcome.results.unit(model, "breastmnist", s).and_then(|u| u.score("auroc"))))
            .filter_map(|(s, b)| b.map(|b| (s, b.estimate.point)))
            .fold(None, |acc: Option<(Strategy, f64)>, x| if acc.is_none_or(|a| x.1 > a.1) { Some(x) } else { acc });
        assert_eq!(Some(side.strategy), best.map(|b| b.0), "{model}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).expect("report");
    assert!(report.contains("FT-LoRA") && report.contains("adapters in PEFT's layout"), "{report}");
    let before = std::fs::read(out.join("results.json")).expect("results");
    let again = RunOptions { out: out.clone(), resume: true, overwrite: false, shard: None };
    let resumed = run::run(&host(), &config(), &again, &mut |_| {}).expect("resumes");
    assert_eq!((resumed.computed, resumed.reused), (0, 6));
    assert_eq!(std::fs::read(out.join("results.json")).expect("results"), before);
}
