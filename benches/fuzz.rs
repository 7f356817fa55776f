//! Bounded-time fuzzing of mvb's input readers (issue 12 §4): `cargo bench --bench fuzz --
//! [--seconds S] [TARGET...]` mutates each target's seeds (`fuzz_targets.rs`) for S seconds
//! (default 20) per target, prints executions and crashes, and keeps each crashing input under
//! `tests/fixtures/fuzz/<target>/` for the regression test (`tests/it/fuzz.rs`). Exit status 1
//! when anything crashed.

mod fuzz_targets;

use std::time::{Duration, Instant};

use fuzz_targets::{Rng, check, crash_dir, mutate, targets};
use mvb::plugin::{HostConfig, PluginHost};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut seconds = 20.0;
    let mut wanted = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => seconds = it.next().and_then(|s| s.parse().ok()).unwrap_or(seconds),
            other => wanted.push(other.to_owned()),
        }
    }
    std::panic::set_hook(Box::new(|_| {}));
    let host = PluginHost::new(HostConfig::with_default_cache()).expect("the plugin host starts");
    let mut crashed = 0;
    for target in targets().into_iter().filter(|t| wanted.is_empty() || wanted.iter().any(|w| w == t.name)) {
        let scratch = tempfile::tempdir().expect("scratch folder");
        let seeds = (target.seeds)();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ target.name.len() as u64);
        let (start, mut runs, mut crashes) = (Instant::now(), 0u64, 0u64);
        while start.elapsed() < Duration::from_secs_f64(seconds) {
            let input = mutate(&seeds[rng.below(seeds.len())], &mut rng);
            runs += 1;
            if let Err(message) = check(&target, &input, scratch.path(), &host) {
                crashes += 1;
                let dir = crash_dir(target.name);
                let _ = std::fs::create_dir_all(&dir);
                let file = dir.join(format!("crash-{:016x}", fnv(&input)));
                let _ = std::fs::write(&file, &input);
                eprintln!("{}: panic ({message}); input kept as {}", target.name, file.display());
            }
        }
        let rate = runs as f64 / start.elapsed().as_secs_f64();
        println!("fuzz {:<12} {runs:>8} inputs in {seconds:.0} s ({rate:.0}/s), {crashes} crashes", target.name);
        crashed += crashes;
    }
    if crashed > 0 {
        std::process::exit(1);
    }
}

/// FNV-1a, to name a crash file.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
