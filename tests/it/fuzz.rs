//! Fuzz regressions (issue 12 §4): every input a fuzz run found crashing
//! (`tests/fixtures/fuzz/<target>/`, kept by `cargo bench --bench fuzz`) and 100 fresh seeded
//! mutations of each target's seeds are read without a panic (errors are fine).

#[path = "../../benches/fuzz_targets.rs"]
mod fuzz_targets;

use fuzz_targets::{Rng, check, crash_dir, mutate, targets};

use crate::common::host;

#[test]
fn no_reader_panics_on_kept_crashes_or_fresh_mutations() {
    let host = host();
    for target in targets() {
        let scratch = tempfile::tempdir().expect("scratch folder");
        let kept: Vec<Vec<u8>> = std::fs::read_dir(crash_dir(target.name))
            .map(|d| d.filter_map(|e| std::fs::read(e.ok()?.path()).ok()).collect())
            .unwrap_or_default();
        let seeds = (target.seeds)();
        let mut rng = Rng(42 + target.name.len() as u64);
        let fresh = (0..100).map(|_| mutate(&seeds[rng.below(seeds.len())], &mut rng));
        for (i, input) in kept.into_iter().chain(seeds.clone()).chain(fresh).enumerate() {
            if let Err(message) = check(&target, &input, scratch.path(), &host) {
                panic!("{}: input {i} ({} bytes) panicked: {message}", target.name, input.len());
            }
        }
    }
}
