//! Fuzz targets of mvb's input readers (issue 12 §4), shared by the bounded-time command
//! `cargo bench --bench fuzz` and the regression test `tests/it/fuzz.rs`: each target takes bytes
//! and must return (an error is fine) without panicking. Inputs are seeds (valid files of the
//! repository) mutated by a seeded xorshift (byte flips, overwrites, insertions, deletions,
//! duplicated and truncated runs). A panic is a crash; the input is kept under
//! `tests/fixtures/fuzz/<target>/` and replayed by the regression test for ever after.

#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use mvb::eval::dataset::{PluginRef, open_dataset};
use mvb::eval::run::judging::Judgements;
use mvb::eval::run::{RunConfig, predictions};
use mvb::model::ContrastiveModel;
use mvb::plugin::PluginHost;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where crashes are kept.
pub fn crash_dir(target: &str) -> PathBuf {
    root().join("tests/fixtures/fuzz").join(target)
}

/// A fuzz target: its name, its seeds, and the code under test (bytes in a scratch folder).
pub struct Target {
    /// Name (a folder under `tests/fixtures/fuzz/`).
    pub name: &'static str,
    /// Valid inputs to mutate.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Runs the code under test on `bytes`; `scratch` is a private folder.
    pub run: fn(&[u8], &Path, &PluginHost),
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn run_config(bytes: &[u8], _: &Path, _: &PluginHost) {
    let _ = RunConfig::parse(&String::from_utf8_lossy(bytes), "fuzz.toml", Path::new("/nonexistent"));
}

fn predictions_file(bytes: &[u8], _: &Path, _: &PluginHost) {
    let _ = predictions::parse(bytes, Path::new("fuzz.jsonl"));
}

fn judgements_file(bytes: &[u8], scratch: &Path, _: &PluginHost) {
    let _ = std::fs::write(scratch.join("judgements.jsonl"), bytes);
    let _ = Judgements::read(scratch);
}

/// The tiny CLIP checkpoint with `file` replaced by `bytes`, loaded.
fn checkpoint(file: &str, bytes: &[u8], scratch: &Path) {
    let src = root().join("tests/fixtures/tiny-clip");
    for name in
        ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"]
    {
        if !scratch.join(name).exists() {
            let _ = std::fs::copy(src.join(name), scratch.join(name));
        }
    }
    let _ = std::fs::write(scratch.join(file), bytes);
    let _ = ContrastiveModel::load_on(&scratch.display().to_string(), &mvb::backend::Device::cpu());
    let _ = std::fs::copy(src.join(file), scratch.join(file));
}

fn safetensors_file(bytes: &[u8], scratch: &Path, _: &PluginHost) {
    checkpoint("model.safetensors", bytes, scratch);
}

fn config_json(bytes: &[u8], scratch: &Path, _: &PluginHost) {
    checkpoint("config.json", bytes, scratch);
}

/// A MedMNIST `.npz` read through the sandboxed plugin and the host's checks of its returns.
fn npz_file(bytes: &[u8], scratch: &Path, host: &PluginHost) {
    let _ = std::fs::write(scratch.join("breastmnist.npz"), bytes);
    if let Ok(mut d) = open_dataset(host, "breastmnist", PluginRef::Builtin("medmnist"), Some(scratch)) {
        let _ = d.samples(mvb::data::Split::Test, 0, 16);
    }
}

/// Every target.
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "run-config",
            seeds: || vec![mvb::eval::run::config::DEFAULT_CONFIG.as_bytes().to_vec()],
            run: run_config,
        },
        Target {
            name: "predictions",
            seeds: || vec![read("tests/fixtures/fuzz-seeds/predictions.jsonl")],
            run: predictions_file,
        },
        Target {
            name: "judgements",
            seeds: || vec![read("tests/fixtures/fuzz-seeds/judgements.jsonl")],
            run: judgements_file,
        },
        Target {
            name: "safetensors",
            seeds: || vec![read("tests/fixtures/tiny-clip/model.safetensors")],
            run: safetensors_file,
        },
        Target { name: "config-json", seeds: || vec![read("tests/fixtures/tiny-clip/config.json")], run: config_json },
        Target { name: "npz", seeds: || vec![read("data/medmnist/breastmnist.npz")], run: npz_file },
    ]
}

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `seed`: 1 to 8 edits.
pub fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(b.len());
        match rng.below(7) {
            0 if !b.is_empty() => b[at] ^= 1 << rng.below(8),
            1 if !b.is_empty() => b[at] = [0, 0xff, b'"', b'\n', b'9', b'-', b'{'][rng.below(7)],
            2 => b.insert(at.min(b.len()), rng.next() as u8),
            3 if !b.is_empty() => {
                let n = rng.below(64).min(b.len() - at);
                b.drain(at..at + n);
            }
            4 if !b.is_empty() => {
                let n = rng.below(64).min(b.len() - at);
                let run: Vec<u8> = b[at..at + n].to_vec();
                let to = rng.below(b.len());
                b.splice(to..to, run);
            }
            5 => b.truncate(rng.below(b.len() + 1)),
            _ if b.len() >= 8 => {
                // A little-endian integer field set to an extreme.
                let v: u64 = [0, 1, u64::MAX, u64::MAX / 2, 1 << 40][rng.below(5)];
                let at = at.min(b.len() - 8);
                b[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
    }
    b
}

/// Runs `target` on `bytes`; `Err` with the panic message when it panicked.
pub fn check(target: &Target, bytes: &[u8], scratch: &Path, host: &PluginHost) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| (target.run)(bytes, scratch, host))).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    })
}
