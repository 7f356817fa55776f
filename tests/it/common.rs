//! Shared helpers: a plugin host with a private cache, building the test-only plugins, the
//! vendored data folder, and the device-parameterised checks of the compute layer and the CUDA
//! kernels (fresh random inputs with a printed seed, CPU always and CUDA when a GPU starts).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mvb::backend::cuda::reference::rel_error;
use mvb::backend::cuda::{DType, Gpu, GpuBuf};
use mvb::plugin::{Builtin, HostConfig, Limits, PluginHost, PluginSource};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The vendored MedMNIST files.
pub fn medmnist_dir() -> PathBuf {
    root().join("data/medmnist")
}

/// A host with the given limits and a component cache under `target/`.
pub fn host_with(limits: Limits) -> PluginHost {
    let config = HostConfig { limits, cache_dir: Some(root().join("target/test-cache/components")) };
    PluginHost::new(config).expect("the plugin host starts")
}

/// A host with default limits.
pub fn host() -> PluginHost {
    host_with(Limits::default())
}

/// Limits small enough for hostile-plugin tests to finish fast.
pub fn tight_limits() -> Limits {
    Limits { memory_bytes: 64 << 20, call_budget: Duration::from_secs(2), max_batch: 4096 }
}

/// The built-in MedMNIST plugin.
pub fn medmnist() -> PluginSource {
    Builtin::find("medmnist").expect("medmnist is built in").source()
}

/// Builds a wasm32-wasip2 plugin crate with cargo (once per test process) and returns its
/// component. Uses the same target folder as the kernel's build script, so dependencies
/// shared with the first-party plugins are compiled once.
pub fn build_plugin(manifest: &Path, package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(p, _)| p == package) {
        return path.clone();
    }
    let target_dir = root().join("target/plugins");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet", "-p", package])
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {package} from {} failed", manifest.display());
    let path = target_dir.join("wasm32-wasip2/release").join(format!("{}.wasm", package.replace('-', "_")));
    assert!(path.is_file(), "{} was not produced", path.display());
    built.push((package.to_owned(), path.clone()));
    path
}

/// The hostile test plugin's component file.
pub fn hostile_wasm() -> PathBuf {
    build_plugin(&root().join("tests/plugins/Cargo.toml"), "mvb-test-hostile")
}

/// The hostile test plugin.
pub fn hostile() -> PluginSource {
    PluginSource::from_file(&hostile_wasm()).expect("the hostile plugin is readable")
}

/// The metric-only test plugin.
pub fn metric_only() -> PathBuf {
    build_plugin(&root().join("tests/plugins/Cargo.toml"), "mvb-test-metric-only")
}

/// Runs the `mvb` binary from the repository root with a test-private component cache.
pub fn mvb_output(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mvb"))
        .args(args)
        .current_dir(root())
        .env("MVB_CACHE_DIR", root().join("target/test-cache"))
        .output()
        .expect("mvb runs")
}

/// Runs `mvb`: (success, stdout, stderr).
pub fn mvb(args: &[&str]) -> (bool, String, String) {
    let out = mvb_output(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `data` of a reference tensor (`{"shape": [...], "data": [...]}`).
pub fn floats(v: &serde_json::Value) -> Vec<f64> {
    v["data"].as_array().expect("data").iter().map(|x| x.as_f64().expect("number")).collect()
}

/// A JSON list of strings.
pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array().expect("list").iter().map(|s| s.as_str().expect("string").to_owned()).collect()
}

/// A JSON list of token-id lists.
pub fn want_ids(v: &serde_json::Value) -> Vec<Vec<u32>> {
    v.as_array()
        .expect("ids")
        .iter()
        .map(|r| r.as_array().expect("row").iter().map(|i| i.as_u64().expect("id") as u32).collect())
        .collect()
}

/// Runs `mvb run` on the configuration `toml` in `dir` (output in `dir/out`), asserting that
/// it succeeds, and returns its `results.json`.
pub fn run_results(dir: &Path, toml: &str) -> serde_json::Value {
    let file = dir.join("run.toml");
    std::fs::write(&file, toml).expect("write the configuration");
    let out = dir.join("out");
    let (ok, _, stderr) = mvb(&["run", file.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results.json")).expect("JSON")
}

/// A small xorshift generator seeded from the clock: fresh inputs on every run.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from the clock.
    pub fn fresh() -> Rng {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos());
        Rng((nanos as u64) | 1)
    }
    /// The current state (print it to reproduce a failure).
    pub fn seed(&self) -> u64 {
        self.0
    }
    /// A value in [-1, 1).
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    /// `n` values in [-scale, scale).
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
    /// An integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next() + 1.0) * 0.5 * n as f32) as usize).min(n.saturating_sub(1))
    }
}

/// Where a check runs.
#[derive(Clone)]
pub enum Dev {
    /// The CPU backend.
    Cpu,
    /// The GPU.
    Cuda(Arc<Gpu>),
}

impl Dev {
    /// The compute device in f32 (the CPU, or the GPU in f32, the parity mode).
    pub fn f32_device(&self) -> mvb::backend::Device {
        match self {
            Dev::Cpu => mvb::backend::Device::cpu(),
            Dev::Cuda(_) => mvb::backend::Device::cuda(mvb::backend::Precision::F32).expect("the GPU started once"),
        }
    }
}

/// Runs `check` on the CPU, then on CUDA when a GPU starts (else prints why it is skipped).
pub fn on_each_device(name: &str, check: impl Fn(&Dev)) {
    check(&Dev::Cpu);
    match Gpu::get() {
        Ok(gpu) => check(&Dev::Cuda(gpu)),
        Err(e) => eprintln!("SKIP cuda {name}: {e}"),
    }
}

/// Fails unless `got` is within relative error `tol` of `want` (largest difference over the
/// largest magnitude; a NaN never passes), naming `seed`.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32, seed: u64) {
    let err = rel_error(got, want);
    assert!(err <= tol, "{what}: relative error {err:e} > {tol:e} (seed {seed})");
}

/// `v` on the GPU in `dtype`.
pub fn upload(gpu: &Gpu, dtype: DType, v: &[f32]) -> GpuBuf {
    GpuBuf::from_host(gpu, dtype, v).expect("upload")
}

/// `n` elements of `dtype` on the GPU, every one NaN.
pub fn poisoned(gpu: &Gpu, dtype: DType, n: usize) -> GpuBuf {
    let mut b = GpuBuf::alloc(gpu, dtype, n).expect("alloc");
    mvb::backend::cuda::elementwise::poison(gpu, &mut b).expect("poison");
    b
}
