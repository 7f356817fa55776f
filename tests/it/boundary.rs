//! The host side of the plugin boundary (issue 12, section 3): everything a dataset plugin
//! returns is bounded, checked against the contract and made safe to print before the host
//! uses it; image paths never block; batches stay under the data cap and the decode budget.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use mvb::data::{ImageRef, MAX_BATCH_DECODED_BYTES, Split, declared_bytes, load_image};
use mvb::plugin::{Dataset, DatasetPlugin, Limits, MAX_BATCH_BYTES, PluginError, PluginHost};

use crate::common::{host_with, hostile, hostile_wasm, mvb_output, tight_limits};

/// A data folder whose `mode` file selects the hostile plugin's behaviour.
fn scene(mode: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("mode"), mode).expect("mode");
    dir
}

fn start(host: &PluginHost, data: &Path) -> DatasetPlugin {
    host.dataset(&hostile(), Some(data)).expect("the hostile plugin starts")
}

fn open(host: &PluginHost, data: &Path) -> Dataset {
    start(host, data).into_dataset("hostile").expect("opens")
}

/// Fails if `text` holds a character that could move the cursor or reorder a line.
fn assert_printable(text: &str) {
    let bad = text.chars().find(|&c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c));
    assert!(bad.is_none(), "{bad:?} in {}", &text[..text.len().min(300)]);
}

/// The error `open("hostile")` gives in `mode`, checked to be one short printable line.
fn open_error(mode: &str) -> String {
    let host = host_with(tight_limits());
    let dir = scene(mode);
    let err = start(&host, dir.path()).open("hostile").expect_err(mode);
    assert!(matches!(err, PluginError::Malformed { .. }), "{mode}: {err}");
    let text = err.to_string();
    assert_printable(&text);
    assert!(text.len() < 600, "{mode}: a {}-byte message", text.len());
    text
}

#[test]
fn a_catalog_is_bounded_and_its_names_checked() {
    let host = host_with(tight_limits());
    for (mode, expected) in
        [("huge-catalog", "100000 datasets, more than the limit of 10000"), ("bad-catalog-name", "U+001B")]
    {
        let dir = scene(mode);
        let err = start(&host, dir.path()).catalog().expect_err(mode).to_string();
        assert!(err.contains(expected), "{mode}: {err}");
        assert_printable(&err);
    }
}

#[test]
fn class_names_are_bounded_non_empty_and_distinct() {
    assert!(open_error("many-classes").contains("100000 class names, more than the limit of 10000"));
    let long = open_error("long-class");
    assert!(long.contains("1048576 bytes long, more than the limit of 256"), "{long}");
    assert!(open_error("dup-classes").contains("class name `a` appears twice"));
    assert!(open_error("empty-class").contains("class 1: a class name is empty"));
}

#[test]
fn the_splits_are_train_validation_test_once_each_in_order() {
    for (mode, got) in [("splits-unordered", "[test, train, validation]"), ("splits-twice", "[test, validation, test]")]
    {
        let err = open_error(mode);
        assert!(err.contains("train, validation and test once each, in that order") && err.contains(got), "{err}");
    }
}

#[test]
fn the_info_names_the_dataset_it_was_opened_as() {
    let err = open_error("wrong-name");
    assert!(err.contains("opened as `hostile`, the dataset calls itself `impostor`"), "{err}");
}

#[test]
fn free_text_is_escaped_and_cut() {
    let host = host_with(tight_limits());
    let dir = scene("control-text");
    let info = open(&host, dir.path()).info().clone();
    assert_printable(&info.description);
    assert_printable(&info.license);
    assert!(info.description.starts_with("\\u{1b}[2J\\u{202e}cleared"), "{}", &info.description[..40]);
    assert!(info.description.len() < 5000 && info.description.contains("more bytes cut by the host"));
    assert_eq!(info.license, "CC0\\u{a}{\"forged\": true}\\u{d}\\u{9b}31m");
}

#[test]
fn a_long_error_message_is_cut_and_escaped() {
    let host = host_with(tight_limits());
    let dir = scene("long-error");
    let err = open(&host, dir.path()).samples(Split::Test, 0, 2).expect_err("fails");
    assert!(matches!(err, PluginError::Failed { .. }), "{err}");
    let text = err.to_string();
    assert_printable(&text);
    assert!(text.len() < 5000 && text.contains("\\u{1b}[2Jcleared"), "{}", &text[..200]);
    assert!(text.ends_with("more bytes cut by the host]"), "{}", &text[text.len() - 80..]);
}

#[test]
fn an_id_with_a_line_feed_cannot_forge_a_line() {
    let host = host_with(tight_limits());
    let dir = scene("id-newline");
    let err = open(&host, dir.path()).samples(Split::Test, 0, 2).expect_err("refused");
    let text = err.to_string();
    assert!(matches!(err, PluginError::Malformed { .. }) && text.contains("U+000A"), "{text}");
    assert_printable(&text);
}

#[test]
fn sample_ids_are_unique_within_and_across_calls() {
    let host = host_with(tight_limits());
    let dir = scene("dup-ids");
    let err = open(&host, dir.path()).samples(Split::Test, 0, 8).expect_err("within a call").to_string();
    assert!(err.contains("sample id `s0` is given to both test sample 0 and test sample 4"), "{err}");
    let mut ds = open(&host, dir.path());
    assert_eq!(ds.samples(Split::Test, 0, 2).expect("first two").len(), 2);
    assert_eq!(ds.samples(Split::Test, 0, 2).expect("the same two again").len(), 2);
    let err = ds.samples(Split::Test, 4, 2).expect_err("across calls").to_string();
    assert!(err.contains("`s0` is given to both test sample 0 and test sample 4"), "{err}");
}

/// Runs `f` on another thread; fails if it has not finished within 20 s (a hang).
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("{what} hung"))
}

#[test]
fn a_fifo_in_the_data_folder_does_not_hang_the_host() {
    let dir = scene("path:pipe");
    let status = std::process::Command::new("mkfifo").arg(dir.path().join("pipe")).status().expect("mkfifo runs");
    assert!(status.success());
    let data = dir.path().to_owned();
    let err = within_deadline("reading a FIFO image", move || {
        let host = host_with(tight_limits());
        open(&host, &data).samples(Split::Test, 0, 2).expect_err("a FIFO is no image").to_string()
    });
    assert!(err.contains("sample `test/0`") && err.contains("is a FIFO, not a regular file"), "{err}");
    let data = dir.path().to_owned();
    let err = within_deadline("loading a FIFO image", move || {
        load_image(&ImageRef::Path("pipe".into()), &data).expect_err("a FIFO is no image").to_string()
    });
    assert!(err.contains("FIFO"), "{err}");
}

#[test]
fn a_folder_named_as_an_image_is_refused() {
    let dir = scene("path:sub");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    let host = host_with(tight_limits());
    let err = open(&host, dir.path()).samples(Split::Test, 0, 1).expect_err("a folder").to_string();
    assert!(err.contains("is a folder, not a regular file"), "{err}");
}

/// A PNG whose header declares `width` x `height` 16-bit RGB pixels and whose one `IDAT`
/// chunk is empty: only the header is ever read.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::from(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([16, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", &ihdr[..]), (b"IDAT", &[]), (b"IEND", &[])] {
        let mut body = kind.to_vec();
        body.extend(data);
        let mut crc = !0u32;
        for &b in &body {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(body);
        out.extend((!crc).to_be_bytes());
    }
    out
}

#[test]
fn an_image_declaring_too_many_pixels_is_refused_before_decoding() {
    let dir = scene("path:bomb.png");
    std::fs::write(dir.path().join("bomb.png"), png_header(8192, 8192)).expect("write");
    let host = host_with(tight_limits());
    let err = open(&host, dir.path()).samples(Split::Test, 0, 2).expect_err("refused").to_string();
    assert!(err.contains("8192x8192 at 6 bytes a pixel, 402653184 bytes decoded"), "{err}");
    let err = load_image(&ImageRef::Encoded(png_header(8192, 8192)), dir.path()).expect_err("refused").to_string();
    assert!(err.contains("more than the limit of 134217728"), "{err}");
}

#[test]
fn a_batch_stays_under_the_decode_budget() {
    // 4096x4096 16-bit RGB: 96 MiB each, under the per-image limit; five fit in 512 MiB.
    let dir = scene("path:big.png");
    std::fs::write(dir.path().join("big.png"), png_header(4096, 4096)).expect("write");
    let host = host_with(tight_limits());
    let mut ds = open(&host, dir.path());
    let first = ds.samples(Split::Test, 0, 8).expect("a shortened batch");
    let each = declared_bytes(first[0].image.as_ref().expect("image"), dir.path()).expect("header");
    assert_eq!(each, 96 << 20);
    assert_eq!(first.len() as u64, MAX_BATCH_DECODED_BYTES / each, "the batch is cut to what the budget allows");
    let rest = ds.samples(Split::Test, first.len() as u64, 8).expect("the rest");
    assert_eq!(first.len() + rest.len(), 8);
    assert_eq!(rest.last().expect("last").id, "test/7");
}

#[test]
fn a_batch_stays_under_the_data_cap() {
    // 64 raw 1024x1024 RGB images are 192 MiB: more than one batch may carry.
    let host = host_with(Limits { memory_bytes: 1 << 30, ..tight_limits() });
    let dir = scene("raw-large");
    let mut ds = open(&host, dir.path());
    let mut read = 0u64;
    let mut batches = 0;
    while read < 64 {
        let batch = ds.samples(Split::Test, read, 64).expect("a batch");
        let bytes: usize = batch
            .iter()
            .map(|s| match &s.image {
                Some(ImageRef::Raw(px)) => px.data.len(),
                _ => 0,
            })
            .sum();
        assert!(bytes as u64 <= MAX_BATCH_BYTES, "a batch of {} samples carries {bytes} bytes", batch.len());
        assert_eq!(batch[0].id, format!("test/{read}"));
        read += batch.len() as u64;
        batches += 1;
    }
    assert_eq!((read, batches), (64, 2), "42 then 22 samples");
}

#[test]
fn dataset_show_prints_no_control_characters() {
    let dir = scene("control-text");
    let wasm = hostile_wasm();
    let args = ["dataset", "show", "hostile", "--plugin", wasm.to_str().expect("utf-8"), "--data"];
    let out = mvb_output(&[&args[..], &[dir.path().to_str().expect("utf-8"), "--limit", "2"]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\\u{1b}[2J\\u{202e}cleared"), "{}", &stdout[..stdout.len().min(300)]);
    assert!(!stdout.contains(['\u{1b}', '\u{202e}', '\u{9b}', '\r']), "raw control characters on stdout");
    let dir = scene("id-newline");
    let out = mvb_output(&[&args[..], &[dir.path().to_str().expect("utf-8"), "--limit", "2"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.lines().count() == 1 && stderr.contains("U+000A"), "{stderr}");
}
