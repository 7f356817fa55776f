//! `mvb run` and `mvb report` end to end on the demo models and BreastMNIST (156 test images):
//! the output folder's files, byte-identical `results.json` across runs, `--resume` after a
//! run killed mid-unit, `mvb report` regenerating everything from `predictions.jsonl`, and
//! one-line errors naming the line of a malformed config or predictions file.

use std::path::{Path, PathBuf};

use mvb::data::Split;
use mvb::eval::run::predictions::Writer;
use mvb::eval::run::{
    self, BootstrapOverride, Progress, RunConfig, RunError, RunHeader, RunOptions, Stage, Strategy, Unit, UnitKey,
};

use crate::common::{host, mvb, root};

/// Both demo models × BreastMNIST × {ZS, LP}, 50 replicates. BreastMNIST is OOD for the
/// specialist, so the only RQ gap is RQ3.
fn config_text() -> String {
    let models = root().join("data/models");
    format!(
        r#"strategies = ["zs", "lp"]
metrics = ["auroc", "accuracy"]

[bootstrap]
replicates = 50
seed = 42

[probe]
lr = 1e-3
epochs = 5

[[models]]
name = "demo-generalist"
path = "{g}"
family = "clip"
group = "generalist"

[[models]]
name = "demo-specialist"
path = "{s}"
family = "clip"
group = "specialist"
id_datasets = [] # (trained on PneumoniaMNIST and RetinaMNIST, not in this run)

[[datasets]]
name = "breastmnist"
"#,
        g = models.join("demo-generalist").display(),
        s = models.join("demo-specialist").display()
    )
}

fn config() -> RunConfig {
    RunConfig::parse(&config_text(), "test.toml", &root()).expect("the test config parses")
}

fn options(out: &Path) -> RunOptions {
    RunOptions { out: out.to_owned(), resume: false, overwrite: false, shard: None }
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn run_resume_and_report_reproduce_the_results() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let host = host();
    let config = config();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));

    // A full run.
    let mut events = Vec::new();
    let outcome = run::run(&host, &config, &options(&a), &mut |e| events.push(e)).expect("the run succeeds");
    assert_eq!((outcome.computed, outcome.reused), (4, 0));
    // Progress is reported, not printed: two stages of four units each.
    let stages: Vec<(Stage, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Progress::Begin { stage, total } => Some((*stage, *total)),
            _ => None,
        })
        .collect();
    assert_eq!(stages, [(Stage::Predict, 4), (Stage::Score, 4)]);
    assert_eq!(events.iter().filter(|e| **e == Progress::Done(4)).count(), 2, "{events:?}");
    assert_eq!(events.last(), Some(&Progress::End));
    let csv = String::from_utf8(read(a.join("results.csv"))).expect("utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "model,family,group,dataset,split,strategy,metric,n,point,mean,ci_lo,ci_hi,replicates,skipped"
    );
    assert_eq!(lines.len(), 1 + 2 * 2 * 2, "{csv}");
    assert!(lines[1].starts_with("demo-generalist,clip,generalist,breastmnist,test,zs,auroc,156,"), "{csv}");
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(',').collect();
        let (point, lo, hi): (f64, f64, f64) = (f[8].parse().unwrap(), f[10].parse().unwrap(), f[11].parse().unwrap());
        assert!((0.0..=1.0).contains(&point) && lo <= hi, "{line}");
        assert_eq!(f[12].parse::<usize>().unwrap() + f[13].parse::<usize>().unwrap(), 50, "{line}");
    }
    // The ZS AUROC is the model card's (demo-generalist on BreastMNIST: 0.5691).
    let zs =
        outcome.results.unit("demo-generalist", "breastmnist", Strategy::Zs).and_then(|u| u.score("auroc")).unwrap();
    assert!((zs.estimate.point - 0.5691).abs() < 5e-5, "{}", zs.estimate.point);
    let gaps = &outcome.results.gaps;
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].rq.as_str(), "RQ3");
    assert!(gaps[0].estimate.lo <= gaps[0].estimate.point && gaps[0].estimate.point <= gaps[0].estimate.hi);
    for svg in ["heatmap_auroc.svg", "forest_gaps.svg"] {
        let text = String::from_utf8(read(a.join(svg))).expect("utf-8");
        assert!(text.contains("<svg") && text.trim_end().ends_with("</svg>"), "{svg}");
    }
    let report = String::from_utf8(read(a.join("report.md"))).expect("utf-8");
    assert!(report.contains("## AUROC [95% CI]") && report.contains("| RQ3 | clip | breastmnist |"), "{report}");
    assert!(a.join("cache/demo-generalist--breastmnist--train.safetensors").is_file());

    // The same inputs and seed: the same bytes.
    run::run(&host, &config, &options(&b), &mut |_| {}).expect("the second run succeeds");
    assert_eq!(read(a.join("results.json")), read(b.join("results.json")));
    assert_eq!(read(a.join("predictions.jsonl")), read(b.join("predictions.jsonl")));

    // An existing run is not overwritten by accident.
    let again = run::run(&host, &config, &options(&a), &mut |_| {}).expect_err("refuses to overwrite");
    assert!(again.to_string().contains("--resume"), "{again}");

    // Killed mid-unit: the header, the first unit (156 lines and its marker), 40 lines of the
    // second and half a line.
    std::fs::create_dir_all(&c).expect("mkdir");
    let full = read(a.join("predictions.jsonl"));
    let lines: Vec<&[u8]> = full.split_inclusive(|&b| b == b'\n').collect();
    let mut cut = lines[..1 + 157 + 40].concat();
    cut.extend_from_slice(&lines[1 + 157 + 40][..25]);
    std::fs::write(c.join("predictions.jsonl"), &cut).expect("write");
    let resumed = run::run(&host, &config, &RunOptions { resume: true, ..options(&c) }, &mut |_| {})
        .expect("the resumed run succeeds");
    assert_eq!((resumed.computed, resumed.reused), (3, 1));
    assert_eq!(read(c.join("predictions.jsonl")), full);
    assert_eq!(read(c.join("results.json")), read(a.join("results.json")));

    // `mvb report` regenerates everything from predictions.jsonl alone.
    let before: Vec<(&str, Vec<u8>)> =
        ["results.json", "results.csv", "gaps.csv", "report.md", "heatmap_auroc.svg", "forest_gaps.svg"]
            .into_iter()
            .map(|f| (f, read(a.join(f))))
            .collect();
    for (f, _) in &before {
        std::fs::remove_file(a.join(f)).expect("remove");
    }
    std::fs::remove_dir_all(a.join("cache")).expect("remove the cache");
    run::report(&host, &a, BootstrapOverride::default(), &mut |_| {}).expect("the report succeeds");
    for (f, bytes) in &before {
        assert_eq!(&read(a.join(f)), bytes, "{f} differs after mvb report");
    }
    // Another seed changes the CIs, not the points.
    run::report(&host, &a, BootstrapOverride { replicates: Some(20), seed: Some(7) }, &mut |_| {}).expect("reseeded");
    let reseeded = String::from_utf8(read(a.join("results.json"))).expect("utf-8");
    assert!(reseeded.contains("\"replicates\": 20,\n    \"seed\": 7"), "{reseeded}");
}

/// A small synthetic predictions file: one header, two units of 6 samples.
fn synthetic_predictions(dir: &Path) -> PathBuf {
    let path = dir.join("predictions.jsonl");
    let mut w = Writer::create(&path).expect("create");
    w.header(&RunHeader::new(&config())).expect("header");
    for (model, flip) in [("demo-generalist", false), ("demo-specialist", true)] {
        let labels: Vec<Vec<u32>> = (0..6).map(|i| vec![u32::from(i % 3 == 0)]).collect();
        let scores = (0..6)
            .map(|i| {
                let p = i as f32 / 10.0 + 0.2;
                if flip { vec![p, 1.0 - p] } else { vec![1.0 - p, p] }
            })
            .collect();
        let key =
            UnitKey { model: model.into(), dataset: "breastmnist".into(), split: Split::Test, strategy: Strategy::Lp };
        let ids = (0..6).map(|i| format!("test-{i}")).collect();
        w.unit(&Unit { key, ids, labels, scores, answers: Vec::new(), attributes: Vec::new() }).expect("unit");
    }
    path
}

#[test]
fn a_malformed_predictions_line_is_named() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = synthetic_predictions(tmp.path());
    let host = host();
    let (results, _) = run::report(&host, tmp.path(), BootstrapOverride::default(), &mut |_| {}).expect("well-formed");
    assert_eq!(results.units.len(), 2);
    assert_eq!(results.gaps.len(), 1);
    let text = String::from_utf8(read(path.clone())).expect("utf-8");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[3] = lines[3].replace("\"scores\":[", "\"scores\":[\"x\",");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let err = run::report(&host, tmp.path(), BootstrapOverride::default(), &mut |_| {}).expect_err("malformed");
    assert!(matches!(err, RunError::Predictions { line: 4, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("predictions.jsonl, line 4: bad prediction: ") && !msg.contains('\n'), "{msg}");
    // Resuming from it is refused the same way.
    let resume = RunOptions { resume: true, ..options(tmp.path()) };
    let err = run::run(&host, &config(), &resume, &mut |_| {}).expect_err("malformed");
    assert!(err.to_string().contains("line 4"), "{err}");
}

#[test]
fn a_malformed_config_line_is_named() {
    let text = config_text().replace("epochs = 5", "epochs = \"five\"");
    let line = text.lines().position(|l| l.starts_with("epochs")).expect("present") + 1;
    let err = RunConfig::parse(&text, "bad.toml", &root()).expect_err("malformed");
    assert!(matches!(err, RunError::Config { line: Some(l), .. } if l == line), "{err}");
    let text = config_text().replace("group = \"specialist\"", "group = \"expert\"");
    let line = text.lines().position(|l| l.contains("\"expert\"")).expect("present") + 1;
    let msg = RunConfig::parse(&text, "bad.toml", &root()).expect_err("malformed").to_string();
    assert!(msg.starts_with(&format!("config bad.toml, line {line}: ")), "{msg}");
}

#[test]
fn cli_errors_are_one_line() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, config_text().replace("replicates = 50", "replicates = fifty")).expect("write");
    let (ok, _, stderr) =
        mvb(&["run", bad.to_str().expect("utf-8"), "--out", tmp.path().join("o").to_str().expect("utf-8")]);
    assert!(!ok);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: config ") && stderr.contains("bad.toml, line 5: "), "{stderr}");

    synthetic_predictions(tmp.path());
    let (ok, stdout, stderr) = mvb(&["report", tmp.path().to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("AUROC [95% CI], 50 bootstrap replicates (seed 42)"), "{stdout}");
    assert!(stdout.contains("\nRQ3  clip    breastmnist"), "{stdout}");
    // The synthetic file holds only the FT-LP units: the report names the two missing ZS ones.
    assert!(
        stderr.contains(
            "units missing: 2 (demo-generalist × breastmnist test × zs, demo-specialist × breastmnist test × zs)"
        ),
        "{stderr}"
    );
    let path = tmp.path().join("predictions.jsonl");
    let text = String::from_utf8(read(path.clone())).expect("utf-8");
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "{not json";
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let (ok, _, stderr) = mvb(&["report", tmp.path().to_str().expect("utf-8")]);
    assert!(!ok);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("predictions.jsonl, line 3: not a JSON object"), "{stderr}");
}

#[test]
fn a_missing_model_fails_before_anything_is_overwritten() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("predictions.jsonl"), "finished work\n").expect("write");
    let generalist = root().join("data/models/demo-generalist").display().to_string();
    let text = config_text().replace(&generalist, "/nonexistent/model");
    let config = RunConfig::parse(&text, "t.toml", &root()).expect("parses");
    let options = RunOptions { out: out.clone(), resume: false, overwrite: true, shard: None };
    let err = run::run(&host(), &config, &options, &mut |_| {}).expect_err("a missing model fails");
    assert!(err.to_string().starts_with("model `demo-generalist`"), "{err}");
    let kept = std::fs::read_to_string(out.join("predictions.jsonl")).expect("still there");
    assert_eq!(kept, "finished work\n", "--overwrite must delete nothing before the checks pass");
}

#[test]
fn resume_refuses_a_changed_configuration_naming_what_changed() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let small = config_text()
        .replace("strategies = [\"zs\", \"lp\"]", "strategies = [\"zs\"]")
        .replace("name = \"breastmnist\"\n", "name = \"breastmnist\"\nlimit = 24\n");
    let parse = |text: &str| RunConfig::parse(text, "t.toml", &root()).expect("parses");
    let host = host();
    run::run(&host, &parse(&small), &options(tmp.path()), &mut |_| {}).expect("the first run");
    let resume = RunOptions { resume: true, ..options(tmp.path()) };
    let changed = small.replace(
        "metrics = [\"auroc\", \"accuracy\"]",
        "metrics = [\"auroc\", \"accuracy\"]\ntemplates = [\"an image of {}\"]",
    );
    let err = run::run(&host, &parse(&changed), &resume, &mut |_| {}).expect_err("refused").to_string();
    assert!(err.contains("cannot resume") && err.contains("`templates`"), "{err}");
    let specialist = root().join("data/models/demo-specialist").display().to_string();
    let moved = small.replace(&specialist, &root().join("data/models/demo-generalist").display().to_string());
    let err = run::run(&host, &parse(&moved), &resume, &mut |_| {}).expect_err("refused").to_string();
    assert!(err.contains("model `demo-specialist`"), "{err}");
    // Bootstrap settings only change the results: accepted.
    let more = small.replace("replicates = 50", "replicates = 60");
    let outcome = run::run(&host, &parse(&more), &resume, &mut |_| {}).expect("a new bootstrap is fine");
    assert_eq!(outcome.computed, 0);
}

#[test]
fn a_damaged_feature_cache_is_recomputed_not_used() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let small = config_text()
        .replace("strategies = [\"zs\", \"lp\"]", "strategies = [\"zs\"]")
        .replace("name = \"breastmnist\"\n", "name = \"breastmnist\"\nlimit = 24\n");
    let config = RunConfig::parse(&small, "t.toml", &root()).expect("parses");
    let host = host();
    run::run(&host, &config, &options(tmp.path()), &mut |_| {}).expect("the first run");
    let before = read(tmp.path().join("results.json"));
    let cache = tmp.path().join("cache/demo-specialist--breastmnist--test.safetensors");
    let mut bytes = read(cache.clone());
    let at = bytes.len() - 17;
    bytes[at] ^= 0x40; // a bit of one feature value
    std::fs::write(&cache, &bytes).expect("damage");
    let again = RunOptions { overwrite: true, ..options(tmp.path()) };
    run::run(&host, &config, &again, &mut |_| {}).expect("the second run");
    assert_eq!(read(tmp.path().join("results.json")), before, "the damaged cache was not used");
    assert_ne!(read(cache), bytes, "the cache was rewritten");
}

#[test]
fn resume_refuses_weights_replaced_at_the_same_path_and_results_record_the_hashes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).expect("mkdir");
    let source = root().join("data/models/demo-specialist");
    for e in std::fs::read_dir(&source).expect("read dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), model.join(e.file_name())).expect("copy");
    }
    let text = config_text()
        .replace("strategies = [\"zs\", \"lp\"]", "strategies = [\"zs\"]")
        .replace("name = \"breastmnist\"\n", "name = \"breastmnist\"\nlimit = 24\n")
        .replace(&source.display().to_string(), &model.display().to_string());
    let config = RunConfig::parse(&text, "t.toml", &root()).expect("parses");
    let out = tmp.path().join("out");
    let host = host();
    run::run(&host, &config, &options(&out), &mut |_| {}).expect("the first run");
    let results: serde_json::Value =
        serde_json::from_slice(&read(out.join("results.json"))).expect("results.json is JSON");
    let recorded = results["provenance"]["models"]["demo-specialist"].as_str().expect("a hash").to_owned();
    assert_eq!(recorded.len(), 64);
    assert!(
        results["provenance"]["data"]["breastmnist"].is_string()
            && results["provenance"]["metrics"]["auroc"].is_string()
    );
    // The same path, other weights (one byte of one tensor changed), same size and same
    // modification time.
    let weights = model.join("model.safetensors");
    let mtime = std::fs::metadata(&weights).and_then(|m| m.modified()).expect("mtime");
    let mut bytes = std::fs::read(&weights).expect("weights");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).expect("write");
    std::fs::File::options().write(true).open(&weights).and_then(|f| f.set_modified(mtime)).expect("set mtime");
    let resume = RunOptions { resume: true, ..options(&out) };
    let err = run::run(&host, &config, &resume, &mut |_| {}).expect_err("refused").to_string();
    assert!(err.contains("cannot resume") && err.contains("the files of model `demo-specialist`"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    // Starting over with the new weights: the feature cache is keyed by content, so the old
    // features (same names, sizes and times) are not reused.
    let cache = out.join("cache/demo-specialist--breastmnist--test.safetensors");
    let cached = read(cache.clone());
    run::run(&host, &config, &RunOptions { overwrite: true, ..options(&out) }, &mut |_| {}).expect("overwrite");
    assert_ne!(read(cache), cached, "features of the old weights were reused from the cache");
}
