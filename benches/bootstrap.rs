//! The paired bootstrap of a binary AUROC, MedVLMBench's size (1,000 replicates of 10,000
//! samples with tied scores): mvb's `eval::bootstrap::bootstrap_auroc` next to the numpy +
//! scikit-learn loop it re-implements (`tools/bootstrap_reference.py`), on the same data.
//!
//! Run: `cargo bench --bench bootstrap`. After the criterion group it prints the median wall
//! time of both, measured in the same run, their ratio, and whether the two agree on the
//! mean and the 95% interval. The reference runs under `$MVB_PYTHON`, else
//! `tools/.venv-metrics/bin/python` when that exists (`python3 tools/make_metric_fixtures.py`
//! creates it), else `python3`; without numpy/scikit-learn there it is reported as skipped.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use mvb::eval::bootstrap::{BootstrapConfig, Bootstrapped, bootstrap_auroc};
use mvb::eval::rng::RandomState;

const SAMPLES: usize = 10_000;
const MVB_RUNS: usize = 21;
const REFERENCE_RUNS: usize = 5;

/// 30% positives, scores rounded to two decimals (many ties), positives shifted up.
fn data() -> (Vec<f64>, Vec<bool>) {
    let mut rng = RandomState::new(7);
    let labels: Vec<bool> = (0..SAMPLES).map(|_| rng.random_sample() < 0.3).collect();
    let scores = labels
        .iter()
        .map(|&y| {
            let s = 0.7 * rng.random_sample() + if y { 0.2 } else { 0.0 };
            (s * 100.0).round() / 100.0
        })
        .collect();
    (scores, labels)
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MVB_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/.venv-metrics/bin/python");
    if venv.exists() { venv } else { "python3".into() }
}

/// The reference's report, or why it was skipped.
fn reference(scores: &[f64], labels: &[bool], config: &BootstrapConfig) -> Result<serde_json::Value, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let input = dir.path().join("data.json");
    let doc = serde_json::json!({
        "scores": scores,
        "labels": labels.iter().map(|&y| u8::from(y)).collect::<Vec<_>>(),
        "replicates": config.replicates,
        "seed": config.seed,
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

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let (scores, labels) = data();
    let config = BootstrapConfig::default();
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    criterion.bench_function("bootstrap_auroc/10000x1000", |b| {
        b.iter(|| black_box(bootstrap_auroc(&scores, &labels, &config).expect("valid input")))
    });
    criterion.final_summary();

    let mut times = Vec::new();
    let mut result: Option<Bootstrapped> = None;
    for _ in 0..MVB_RUNS {
        let t = Instant::now();
        result = Some(black_box(bootstrap_auroc(&scores, &labels, &config).expect("valid input")));
        times.push(t.elapsed());
    }
    let mvb = median(&mut times).as_secs_f64();
    let e = result.expect("ran").estimate;
    println!("\nsame-run comparison: {} replicates of the AUROC over {SAMPLES} samples", config.replicates);
    println!("  mvb            median {:>10.2} ms ({MVB_RUNS} runs)", mvb * 1e3);
    match reference(&scores, &labels, &config) {
        Ok(r) => {
            let field = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            let py = field("median_s");
            println!(
                "  numpy+sklearn  median {:>10.2} ms ({REFERENCE_RUNS} runs; numpy {}, scikit-learn {})",
                py * 1e3,
                r["numpy"].as_str().unwrap_or("?"),
                r["sklearn"].as_str().unwrap_or("?")
            );
            println!("  ratio (numpy+sklearn / mvb): {:.1}x", py / mvb);
            let worst = [(e.mean, field("mean")), (e.lo, field("lo")), (e.hi, field("hi"))]
                .iter()
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            println!(
                "  mean {:.6} CI [{:.6}, {:.6}]; largest difference to the reference {worst:.1e}",
                e.mean, e.lo, e.hi
            );
        }
        Err(why) => println!("  numpy+sklearn  reference skipped: {why}"),
    }
}
