//! The paired bootstrap of a binary AUROC at MedVLMBench's size (1,000 replicates of 10,000
//! samples with tied scores), timed along the path `mvb run` takes: the index sets drawn by
//! `eval::bootstrap::resample_indices`, then the sandboxed built-in `auroc` metric plugin scoring
//! the full set and every resample by index through `eval::metrics::Scorer` (what
//! `eval::run::results::evaluate` calls per unit). In the same run, on the same data, the numpy +
//! scikit-learn loop it re-implements (`tools/bootstrap_reference.py`), and the kernel-side
//! reference `eval::bootstrap::bootstrap_auroc` (not used by any command; shown for scale).
//!
//! Run: `cargo bench --bench bootstrap`. After the criterion group it prints the median wall
//! time of each, their ratio, and whether they agree on the mean and the 95% interval. The
//! reference runs under `$MVB_PYTHON`, else `tools/.venv-metrics/bin/python` when that exists
//! (`python3 tools/make_metric_fixtures.py` creates it), else `python3`; without numpy and
//! scikit-learn there it is reported as skipped.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use mvb::eval::bootstrap::{BootstrapConfig, Estimate, bootstrap_auroc, resample_indices};
use mvb::eval::metrics::{Metric, Scorer};
use mvb::plugin::{HostConfig, PluginHost};
use mvb::random::RandomState;

// The allocator of the `mvb` binary, so that the host's side of each call costs what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SAMPLES: usize = 10_000;
const MVB_RUNS: usize = 21;
const REFERENCE_RUNS: usize = 5;

/// 30% positives, scores rounded to two decimals (many ties), positives shifted up; as the two
/// class probabilities `[1 - s, s]` that `mvb run` stores.
fn data() -> (Vec<[f32; 2]>, Vec<u32>) {
    let mut rng = RandomState::new(7);
    let labels: Vec<u32> = (0..SAMPLES).map(|_| u32::from(rng.random_sample() < 0.3)).collect();
    let scores = labels
        .iter()
        .map(|&y| {
            let s = 0.7 * rng.random_sample() + if y == 1 { 0.2 } else { 0.0 };
            let s = ((s * 100.0).round() / 100.0) as f32;
            [1.0 - s, s]
        })
        .collect();
    (scores, labels)
}

/// What `mvb run` does for one unit's AUROC: draw the index sets, score the full set and each
/// resample in the sandboxed plugin.
fn run_path(scorer: &mut Scorer, scores: &[[f32; 2]], labels: &[u32], config: &BootstrapConfig) -> Estimate {
    let sets = resample_indices(scores.len(), config).expect("valid size");
    let samples = scores.iter().zip(labels).map(|(s, y)| (s.as_slice(), std::slice::from_ref(y)));
    let scored = scorer.score(samples, &sets).expect("the auroc plugin scores the set");
    scored[0].boot.estimate
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MVB_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/.venv-metrics/bin/python");
    if venv.exists() { venv } else { "python3".into() }
}

/// The reference's report, or why it was skipped. It gets the scores as `mvb run`'s plugin
/// sees them (`f64` of the stored `f32`).
fn reference(scores: &[f64], labels: &[u32], config: &BootstrapConfig) -> Result<serde_json::Value, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let input = dir.path().join("data.json");
    let doc = serde_json::json!({
        "scores": scores,
        "labels": labels,
        "replicates": config.replicates,
        "seed": config.seed,
        "generator": config.generator,
    });
    std::fs::write(&input, doc.to_string()).map_err(|e| e.to_string())?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/bootstrap_reference.py");
    let python = python();
    let out = Command::new(&python)
        .arg(&script)
        .arg("--input")
        .arg(&input)
        .arg("--repeats")
        .arg(REFERENCE_RUNS.to_string())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", python.display(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("unreadable reference output: {e}"))
}

/// The median of `runs` timings of `f`, and its last result.
fn median_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(black_box(f()));
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2].as_secs_f64(), last.expect("at least one run"))
}

fn main() {
    let (scores, labels) = data();
    let config = BootstrapConfig::default();
    let host = PluginHost::new(HostConfig::with_default_cache()).expect("the plugin host starts");
    let mut scorer = Scorer::new(&host, &[Metric::Builtin("auroc")]).expect("the auroc plugin loads");
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    criterion.bench_function("run_path_auroc_plugin/10000x1000", |b| {
        b.iter(|| run_path(&mut scorer, &scores, &labels, &config))
    });
    criterion.final_summary();

    let (mvb, e) = median_of(MVB_RUNS, || run_path(&mut scorer, &scores, &labels, &config));
    let wide: Vec<f64> = scores.iter().map(|s| f64::from(s[1])).collect();
    let positive: Vec<bool> = labels.iter().map(|&y| y == 1).collect();
    let (kernel, k) = median_of(MVB_RUNS, || bootstrap_auroc(&wide, &positive, &config).expect("valid input").estimate);
    println!("\nsame-run comparison: {} replicates of the AUROC over {SAMPLES} samples", config.replicates);
    println!("  mvb run path (sandboxed auroc plugin)  median {:>9.2} ms ({MVB_RUNS} runs)", mvb * 1e3);
    println!("  kernel reference (bootstrap_auroc)     median {:>9.2} ms ({MVB_RUNS} runs)", kernel * 1e3);
    match reference(&wide, &labels, &config) {
        Ok(r) => {
            let field = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            let py = field("median_s");
            println!(
                "  numpy + scikit-learn                   median {:>9.2} ms ({REFERENCE_RUNS} runs; numpy {}, \
                 scikit-learn {})",
                py * 1e3,
                r["numpy"].as_str().unwrap_or("?"),
                r["sklearn"].as_str().unwrap_or("?")
            );
            println!("  ratio numpy+sklearn / mvb run path: {:.1}x", py / mvb);
            let worst = [(e.mean, field("mean")), (e.lo, field("lo")), (e.hi, field("hi"))]
                .iter()
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            println!(
                "  mean {:.6} CI [{:.6}, {:.6}]; largest difference to numpy+sklearn {worst:.1e}",
                e.mean, e.lo, e.hi
            );
        }
        Err(why) => println!("  numpy + scikit-learn reference skipped: {why}"),
    }
    let same = [(e.mean, k.mean), (e.lo, k.lo), (e.hi, k.hi)].iter().map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    println!("  largest difference between the plugin and the kernel reference {same:.1e}");
}
