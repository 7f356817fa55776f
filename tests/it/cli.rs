//! The `mvb` binary: commands work on the vendored data, and user errors are one line on
//! stderr with a non-zero exit, never a panic.

use std::process::Output;

use crate::common::{medmnist_dir, metric_only, mvb_output as mvb};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a failed run printed exactly one `error:` line mentioning `needle`.
fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected, got: {stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains(needle), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn plugins_lists_the_builtin_datasets() {
    let out = mvb(&["plugins"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for name in ["medmnist", "pneumoniamnist", "breastmnist", "retinamnist", "train 4708, validation 524, test 624"] {
        assert!(stdout.contains(name), "missing {name:?} in:\n{stdout}");
    }
}

#[test]
fn dataset_show_prints_shapes_and_labels() {
    let out = mvb(&["dataset", "show", "retinamnist", "--split", "validation", "--limit", "2"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("image 28x28x3"), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.trim_start().starts_with("val-")).count(), 2, "{stdout}");
}

#[test]
fn an_unknown_dataset_is_one_line() {
    assert_one_line_error(&mvb(&["dataset", "show", "nosuchset"]), "no dataset `nosuchset`");
}

#[test]
fn a_missing_plugin_file_is_one_line() {
    assert_one_line_error(&mvb(&["plugin", "check", "/nonexistent/x.wasm"]), "/nonexistent/x.wasm");
}

#[test]
fn a_wrong_world_is_one_line() {
    let wasm = metric_only();
    let out = mvb(&["plugin", "check", wasm.to_str().expect("utf-8 path"), "--world", "dataset"]);
    assert_one_line_error(&out, "missing export `mvb:plugin/dataset-api@0.1.0`");
}

#[test]
fn plugin_check_accepts_a_metric() {
    let wasm = metric_only();
    let out = mvb(&["plugin", "check", wasm.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("implements the `metric` world"));
}

#[test]
fn a_truncated_npz_is_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = std::fs::read(medmnist_dir().join("breastmnist.npz")).expect("read");
    std::fs::write(dir.path().join("broken.npz"), &good[..good.len() - 1000]).expect("write");
    let out = mvb(&["dataset", "show", "medmnist/broken", "--data", dir.path().to_str().expect("utf-8")]);
    assert_one_line_error(&out, "broken.npz");
}

#[test]
fn generate_answers_about_an_image_with_llava() {
    let root = crate::common::root();
    let model = root.join("tests/fixtures/decoder/tiny-llava");
    let image = root.join("tests/fixtures/decoder/images/test-40x30.png");
    let (model, image) = (model.to_str().expect("utf-8"), image.to_str().expect("utf-8"));
    let out = mvb(&["generate", "--model", model, "--image", image, "--prompt", "What is shown?", "--max-tokens", "8"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).trim().is_empty(), "no text generated");
    let out = mvb(&["generate", "--model", model, "--prompt", "What is shown?"]);
    assert_one_line_error(&out, "--image");
    let tiny_llama = root.join("tests/fixtures/decoder/tiny-llama");
    let out = mvb(&["generate", "--model", tiny_llama.to_str().expect("utf-8"), "--image", image, "--prompt", "x"]);
    assert_one_line_error(&out, "text-only");
}
