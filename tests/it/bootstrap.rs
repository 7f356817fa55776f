//! The kernel's bootstrap (`mvb::eval::bootstrap`) reproduces the numpy + scikit-learn loop of
//! MedVLMBench to 1e-9: the same index sets (numpy's legacy `RandomState(42)`), the same
//! per-replicate AUROCs with ties, the same skipped single-class replicates, and numpy's mean
//! and percentiles. Fixtures: `tests/fixtures/bootstrap/`, written by
//! `python3 tools/make_bootstrap_fixtures.py`.

use mvb::eval::bootstrap::{
    AurocRanking, BootstrapConfig, Generator, Resampler, auroc, bootstrap_auroc, multiplicities, resample_indices,
};
use serde_json::Value;

use crate::common::root;

const TOLERANCE: f64 = 1e-9;
const CASES: [&str; 3] = ["n200", "n10000", "n15-skips"];

struct Case {
    scores: Vec<f64>,
    labels: Vec<bool>,
    config: BootstrapConfig,
    doc: Value,
}

fn load(name: &str) -> Case {
    let path = root().join("tests/fixtures/bootstrap").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("fixture is JSON");
    let floats = |key: &str| -> Vec<f64> {
        doc[key].as_array().expect("array").iter().map(|v| v.as_f64().expect("number")).collect()
    };
    let scores = floats("scores");
    let labels = doc["labels"].as_array().expect("labels").iter().map(|v| v.as_u64() == Some(1)).collect();
    // These fixtures were drawn with numpy's legacy RandomState (pcg64.json checks the default).
    let config = BootstrapConfig {
        replicates: doc["replicates"].as_u64().expect("replicates") as usize,
        seed: doc["seed"].as_u64().expect("seed") as u32,
        generator: Generator::RandomState,
    };
    Case { scores, labels, config, doc }
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= TOLERANCE, "{what}: mvb {got} vs reference {want}");
}

#[test]
fn index_sets_are_numpys() {
    for name in CASES {
        let case = load(name);
        let n = case.scores.len();
        let sets = resample_indices(n, &case.config).expect("index sets");
        assert_eq!(sets.len(), case.config.replicates);
        for (r, want) in case.doc["first_indices"].as_array().expect("first_indices").iter().enumerate() {
            let want: Vec<u32> =
                want.as_array().expect("set").iter().map(|v| v.as_u64().expect("index") as u32).collect();
            assert_eq!(sets[r], want, "{name}: replicate {r}");
        }
        let mut resampler = Resampler::new(n, &case.config).expect("resampler");
        for set in &sets {
            assert_eq!(resampler.next().expect("a replicate"), &set[..]);
        }
        assert!(resampler.next().is_none());
    }
}

#[test]
fn auroc_matches_sklearn_on_full_sets() {
    for name in CASES {
        let case = load(name);
        let got = auroc(&case.scores, &case.labels).expect("two classes");
        close(got, case.doc["point"].as_f64().expect("point"), &format!("{name} point"));
    }
}

#[test]
fn replicates_match_the_numpy_sklearn_loop() {
    for name in CASES {
        let case = load(name);
        let got = bootstrap_auroc(&case.scores, &case.labels, &case.config).expect("bootstrap");
        let want = case.doc["values"].as_array().expect("values");
        assert_eq!(got.values.len(), want.len(), "{name}");
        for (r, (g, w)) in got.values.iter().zip(want).enumerate() {
            match (g, w.as_f64()) {
                (Some(g), Some(w)) => close(*g, w, &format!("{name} replicate {r}")),
                (None, None) => {}
                _ => panic!("{name} replicate {r}: mvb {g:?} vs reference {w}"),
            }
        }
        let e = got.estimate;
        let skipped = case.doc["skipped"].as_u64().expect("skipped") as usize;
        assert_eq!((e.skipped, e.replicates), (skipped, case.config.replicates - skipped), "{name}");
        close(e.point, case.doc["point"].as_f64().expect("point"), &format!("{name} point"));
        close(e.mean, case.doc["mean"].as_f64().expect("mean"), &format!("{name} mean"));
        close(e.lo, case.doc["lo"].as_f64().expect("lo"), &format!("{name} 2.5th percentile"));
        close(e.hi, case.doc["hi"].as_f64().expect("hi"), &format!("{name} 97.5th percentile"));
    }
    // The case built to have single-class resamples has them.
    assert!(load("n15-skips").doc["skipped"].as_u64() > Some(50));
}

#[test]
fn multiplicity_weights_give_the_same_replicates() {
    let case = load("n200");
    let ranking = AurocRanking::new(&case.scores, &case.labels).expect("ranking");
    let want = case.doc["values"].as_array().expect("values");
    let mut counts = vec![0u32; case.scores.len()];
    for (r, idx) in resample_indices(case.scores.len(), &case.config).expect("sets").iter().enumerate() {
        multiplicities(idx, &mut counts);
        let got = ranking.auroc_counts(&counts).expect("two classes");
        close(got, want[r].as_f64().expect("value"), &format!("n200 replicate {r} from counts"));
    }
}

#[test]
fn the_same_sets_pair_two_models() {
    // Two "models" on one dataset: the gap's replicate r compares both on replicate r's set.
    let case = load("n200");
    let other: Vec<f64> = case.scores.iter().map(|s| (s * 7.0).fract()).collect();
    let a = bootstrap_auroc(&case.scores, &case.labels, &case.config).expect("a");
    let b = bootstrap_auroc(&other, &case.labels, &case.config).expect("b");
    let gap = a.minus(&b).expect("paired");
    let sets = resample_indices(case.scores.len(), &case.config).expect("sets");
    let diffs: Vec<f64> = sets
        .iter()
        .map(|idx| {
            let pick = |s: &[f64]| -> (Vec<f64>, Vec<bool>) {
                idx.iter().map(|&i| (s[i as usize], case.labels[i as usize])).unzip()
            };
            let (sa, y) = pick(&case.scores);
            let (sb, _) = pick(&other);
            auroc(&sa, &y).expect("two classes") - auroc(&sb, &y).expect("two classes")
        })
        .collect();
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    close(gap.mean, mean, "paired gap mean");
    close(gap.point, a.estimate.point - b.estimate.point, "paired gap point");
    assert_eq!(gap.replicates, 1000);
}

/// The default generator is MedVLMBench's: `rng = np.random.default_rng(seed)`, then
/// `rng.integers(0, n, n)` per replicate (`tools/make_pcg64_fixture.py`), for several seeds and
/// sizes, `n = 1` (no draw) included.
#[test]
fn default_index_sets_are_numpys_default_rng() {
    let path = root().join("tests/fixtures/bootstrap/pcg64.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON");
    let ints = |v: &Value| -> Vec<u32> {
        v.as_array().expect("array").iter().map(|x| x.as_u64().expect("int") as u32).collect()
    };
    for case in doc["cases"].as_array().expect("cases") {
        let (seed, n) = (case["seed"].as_u64().expect("seed") as u32, case["n"].as_u64().expect("n") as usize);
        let config = BootstrapConfig { replicates: 3, seed, ..BootstrapConfig::default() };
        assert_eq!(config.generator, Generator::Pcg64);
        let sets = resample_indices(n, &config).expect("index sets");
        for (r, (got, want)) in sets.iter().zip(case["replicates"].as_array().expect("replicates")).enumerate() {
            let what = format!("seed {seed} n {n} replicate {r}");
            if let Some(all) = want.get("all") {
                assert_eq!(got, &ints(all), "{what}");
            } else {
                assert_eq!(&got[..50], &ints(&want["head"])[..], "{what}: head");
                assert_eq!(&got[n - 50..], &ints(&want["tail"])[..], "{what}: tail");
                assert_eq!(
                    got.iter().map(|&i| u64::from(i)).sum::<u64>(),
                    want["sum"].as_u64().expect("sum"),
                    "{what}: sum"
                );
            }
        }
    }
}
