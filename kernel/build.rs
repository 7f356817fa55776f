//! Builds the first-party plugins in `plugins/` for `wasm32-wasip2` and places them in
//! `OUT_DIR` so that `kernel/src/plugin/builtin.rs` can embed them (the pattern of substrate's
//! wasm-builder: a nested cargo with its own target directory).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first-party plugins: (package name, artifact stem).
const PLUGINS: &[(&str, &str)] = &[
    ("mvb-plugin-medmnist", "mvb_plugin_medmnist"),
    ("mvb-plugin-auroc", "mvb_plugin_auroc"),
    ("mvb-plugin-accuracy", "mvb_plugin_accuracy"),
    ("mvb-plugin-balanced-accuracy", "mvb_plugin_balanced_accuracy"),
    ("mvb-plugin-vqa", "mvb_plugin_vqa"),
    ("mvb-plugin-gpt-score", "mvb_plugin_gpt_score"),
    ("mvb-plugin-vqa-rad", "mvb_plugin_vqa_rad"),
    ("mvb-plugin-slake", "mvb_plugin_slake"),
    ("mvb-plugin-pathvqa", "mvb_plugin_pathvqa"),
    ("mvb-plugin-imagefolder", "mvb_plugin_imagefolder"),
    ("mvb-plugin-csv", "mvb_plugin_csv"),
    ("mvb-plugin-vqa-jsonl", "mvb_plugin_vqa_jsonl"),
    ("mvb-plugin-chexpert", "mvb_plugin_chexpert"),
    ("mvb-plugin-ham10000", "mvb_plugin_ham10000"),
    ("mvb-plugin-camelyon17", "mvb_plugin_camelyon17"),
    ("mvb-plugin-papila", "mvb_plugin_papila"),
    ("mvb-plugin-gf3300", "mvb_plugin_gf3300"),
    ("mvb-plugin-fairvlmed10k", "mvb_plugin_fairvlmed10k"),
];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for watched in ["plugins", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=MVB_PLUGINS_PREBUILT");

    // A packager may hand over plugins built elsewhere.
    if let Some(dir) = env::var_os("MVB_PLUGINS_PREBUILT") {
        copy_plugins(Path::new(&dir), &out);
        return;
    }

    ensure_target();
    let target_dir = plugin_target_dir(&root, &out);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(root.join("plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for (package, _) in PLUGINS {
        cmd.arg("-p").arg(package);
    }
    // The outer build's flags are for the host, not for wasm.
    for var in
        ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "RUSTC_WORKSPACE_WRAPPER"]
    {
        cmd.env_remove(var);
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run cargo to build the plugins: {e}"));
    if !status.success() {
        panic!("building the first-party plugins in plugins/ for {TARGET} failed (see the cargo output above)");
    }
    copy_plugins(&target_dir.join(TARGET).join("release"), &out);
}

fn copy_plugins(from: &Path, out: &Path) {
    for (_, stem) in PLUGINS {
        let src = from.join(format!("{stem}.wasm"));
        let dst = out.join(format!("{stem}.wasm"));
        std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("cannot copy {}: {e}", src.display()));
    }
}

/// `target/plugins`, next to the host's own profiles, so that debug and release builds of the
/// kernel share one plugin build. OUT_DIR is `target/<profile>/build/<pkg>/out` (or
/// `target/<triple>/<profile>/...` when cross-compiling): walk up to the directory holding
/// the profile directories.
fn plugin_target_dir(root: &Path, out: &Path) -> PathBuf {
    out.ancestors()
        .find(|p| p.join("CACHEDIR.TAG").exists())
        .map(|target| target.join("plugins"))
        .unwrap_or_else(|| root.join("target").join("plugins"))
}

/// rustup installs the targets that rust-toolchain.toml lists only for a toolchain it installs
/// itself; on a machine where the toolchain was already there, add the target now.
fn ensure_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let Some(sysroot) = sysroot else { return };
    if sysroot.join("lib/rustlib").join(TARGET).exists() {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (needed to build the plugins)");
    let toolchain = sysroot.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", TARGET]);
    if let Some(toolchain) = toolchain {
        cmd.args(["--toolchain", &toolchain]);
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        _ => panic!("the {TARGET} target is missing; install it with `rustup target add {TARGET}`"),
    }
}
