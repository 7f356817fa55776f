//! Shards: a run split three ways (`--shard i/3`, each into its own folder) and joined by
//! `mvb merge` gives the byte-identical `results.json` of the unsharded run; a merge refuses a
//! shard that ran another configuration, a unit present twice and a missing shard; the Slurm and
//! Kubernetes scripts render for a sample config.

use std::path::{Path, PathBuf};

use mvb::eval::run::merge;
use mvb::eval::run::shard::Shard;
use mvb::eval::run::{self, RunConfig, RunOptions};

use crate::common::{host, mvb, root};

fn config_text() -> String {
    format!(
        r#"strategies = ["zs", "lp"]
metrics = ["auroc", "accuracy"]

[bootstrap]
replicates = 40

[probe]
epochs = 2

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
id_datasets = ["retinamnist"]

[[datasets]]
name = "breastmnist"
limit = 30
train_limit = 40

[[datasets]]
name = "retinamnist"
limit = 30
train_limit = 40
"#,
        g = root().join("data/models/demo-generalist").display(),
        s = root().join("data/models/demo-specialist").display(),
    )
}

fn run_into(config: &RunConfig, out: &Path, shard: Option<Shard>) -> run::RunOutcome {
    let options = RunOptions { out: out.to_owned(), resume: false, overwrite: false, shard };
    run::run(&host(), config, &options, &mut |_| {}).expect("the run completes")
}

#[test]
fn three_shards_merge_into_the_unsharded_results() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = RunConfig::parse(&config_text(), "shards.toml", &root()).expect("parses");
    let whole = tmp.path().join("whole");
    assert_eq!(run_into(&config, &whole, None).computed, 8);
    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| {
            let s: Shard = format!("{i}/3").parse().expect("a shard");
            let dir = s.folder(tmp.path());
            let outcome = run_into(&config, &dir, Some(s));
            assert_eq!(outcome.computed, [3, 3, 2][i], "shard {i}");
            dir
        })
        .collect();
    let merged = tmp.path().join("merged");
    merge::merge(&host(), &merged, &dirs, &mut |_| {}).expect("merges");
    let read = |d: &Path| std::fs::read(d.join("results.json")).expect("results.json");
    assert_eq!(read(&merged), read(&whole), "byte-identical results");
    // Refusals, each one line.
    let again = tmp.path().join("again");
    let err = merge::merge(&host(), &again, &dirs[..2], &mut |_| {}).expect_err("a shard missing").to_string();
    assert!(err.contains("units missing") && !err.contains('\n'), "{err}");
    let twice = [dirs[0].clone(), dirs[0].clone(), dirs[1].clone(), dirs[2].clone()];
    let err = merge::merge(&host(), &again, &twice, &mut |_| {}).expect_err("a unit twice").to_string();
    assert!(err.contains("is in both"), "{err}");
    let other =
        RunConfig::parse(&config_text().replace("replicates = 40", "replicates = 40\nseed = 7"), "o.toml", &root())
            .expect("parses");
    let odd = tmp.path().join("odd");
    run_into(&other, &odd, Some("2/3".parse().expect("a shard")));
    let mixed = [dirs[0].clone(), dirs[1].clone(), odd];
    let err = merge::merge(&host(), &again, &mixed, &mut |_| {}).expect_err("another config").to_string();
    assert!(err.contains("ran another configuration"), "{err}");
}

#[test]
fn shard_numbers_parse_and_the_cluster_scripts_render() {
    assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
    for bad in ["4/4", "1", "a/b", "0/0", "-1/3"] {
        assert!(bad.parse::<Shard>().is_err(), "{bad}");
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = tmp.path().join("bench.toml");
    std::fs::write(&config, config_text()).expect("config");
    let out = tmp.path().join("out");
    let (c, o) = (config.display().to_string(), out.display().to_string());
    let (ok, slurm, err) = mvb(&["shards", "--slurm", &c, "--shards", "3", "--out", &o]);
    assert!(ok, "{err}");
    assert!(!slurm.contains("{{"), "every placeholder filled: {slurm}");
    assert!(slurm.contains("--array=0-$((SHARDS - 1))") && slurm.contains("SHARDS=3"), "{slurm}");
    assert!(slurm.contains(&format!("CONFIG=\"{c}\"")) && slurm.contains("mvb merge"), "{slurm}");
    let script = tmp.path().join("array.sh");
    std::fs::write(&script, &slurm).expect("script");
    let syntax = std::process::Command::new("bash").arg("-n").arg(&script).status().expect("bash runs");
    assert!(syntax.success(), "bash -n accepts the script");
    let (ok, k8s, err) = mvb(&["shards", "--k8s", &c, "--shards", "3", "--out", &o]);
    assert!(ok, "{err}");
    assert!(!k8s.contains("{{") && k8s.contains("completionMode: Indexed") && k8s.contains("completions: 3"), "{k8s}");
    assert!(k8s.contains(&format!("\"{c}\"")) && k8s.contains("value: \"3\""), "{k8s}");
}
