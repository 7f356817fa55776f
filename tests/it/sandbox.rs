//! A hostile plugin tries to escape or exhaust the sandbox; each attempt ends in one clear
//! error, and the host goes on serving well-behaved plugins.

use std::fmt;
use std::io::ErrorKind as IoKind;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mvb::data::Split;
use mvb::plugin::{Dataset, PluginError, PluginHost};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::common::{host_with, hostile, hostile_wasm, medmnist, medmnist_dir, mvb_output, tight_limits};

/// A data folder for the hostile plugin, with a secret file beside it.
fn scene(mode: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("data")).expect("data dir");
    std::fs::write(dir.path().join("secret.txt"), "TOP-SECRET-CONTENT").expect("secret");
    std::fs::write(dir.path().join("data/mode"), mode).expect("mode");
    dir
}

fn open_hostile(host: &PluginHost, data: &Path) -> Dataset {
    host.dataset(&hostile(), Some(data)).expect("hostile plugin starts").into_dataset("hostile").expect("opens")
}

/// After a hostile call, a well-behaved plugin on the same host still works.
fn host_still_serves(host: &PluginHost) {
    let mut good = host
        .dataset(&medmnist(), Some(&medmnist_dir()))
        .expect("medmnist starts")
        .into_dataset("breastmnist")
        .expect("breastmnist opens");
    let samples = good.samples(Split::Test, 0, 4).expect("samples after a hostile plugin");
    assert_eq!(samples.len(), 4);
}

fn run(mode: &str) -> (PluginError, Duration, PluginHost, tempfile::TempDir) {
    let host = host_with(tight_limits());
    let dir = scene(mode);
    let mut bad = open_hostile(&host, &dir.path().join("data"));
    let started = Instant::now();
    let err = bad.samples(Split::Test, 0, 2).expect_err("the hostile call must fail");
    let elapsed = started.elapsed();
    // A failed instance refuses further calls instead of running in a broken state, unless
    // the plugin itself returned the error (the instance is then intact).
    if !matches!(err, PluginError::Failed { .. }) {
        let again = bad.samples(Split::Test, 0, 1).expect_err("a crashed instance is retired");
        assert!(matches!(again, PluginError::Poisoned { .. }), "{again}");
    }
    (err, elapsed, host, dir)
}

#[test]
fn well_behaved_mode_works() {
    let host = host_with(tight_limits());
    let dir = scene("ok");
    let mut ok = open_hostile(&host, &dir.path().join("data"));
    let samples = ok.samples(Split::Test, 6, 10).expect("samples");
    assert_eq!(samples.len(), 2, "the split has 8 samples");
}

#[test]
fn reading_outside_the_preopen_is_refused() {
    let (err, _, host, _dir) = run("read-outside");
    let text = err.to_string();
    assert!(!text.contains("TOP-SECRET"), "the secret leaked: {text}");
    assert!(matches!(err, PluginError::Failed { .. }), "{text}");
    assert!(text.contains("hostile") && text.contains("samples") && text.contains("refused"), "{text}");
    host_still_serves(&host);
}

#[test]
fn sockets_are_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let (err, _, host, _dir) = run(&format!("socket:{port}"));
    let text = err.to_string();
    assert!(matches!(err, PluginError::Failed { .. }), "{text}");
    assert!(text.contains("socket refused"), "{text}");
    match listener.accept() {
        Err(e) if e.kind() == IoKind::WouldBlock => {}
        other => panic!("the plugin reached the network: {other:?}"),
    }
    host_still_serves(&host);
}

#[test]
fn memory_past_the_cap_is_stopped() {
    let (err, _, host, _dir) = run("memory");
    let text = err.to_string();
    assert!(matches!(err, PluginError::MemoryCap { cap_mib: 64, .. }), "{text}");
    assert!(text.contains("memory cap of 64 MiB") && text.contains("hostile"), "{text}");
    host_still_serves(&host);
}

#[test]
fn an_endless_loop_is_interrupted() {
    let (err, elapsed, host, _dir) = run("loop");
    let text = err.to_string();
    assert!(matches!(err, PluginError::Timeout { .. }), "{text}");
    assert!(text.contains("time budget"), "{text}");
    assert!(elapsed < Duration::from_secs(30), "stopped only after {elapsed:?}");
    host_still_serves(&host);
}

#[test]
fn a_trap_is_reported_with_the_panic_message() {
    let (err, _, host, _dir) = run("trap");
    let text = err.to_string();
    assert!(matches!(err, PluginError::Trap { .. }), "{text}");
    assert!(text.contains("hostile plugin panicked on purpose"), "{text}");
    host_still_serves(&host);
}

#[test]
fn batches_are_bounded() {
    let host = host_with(tight_limits());
    let mut good =
        host.dataset(&medmnist(), Some(&medmnist_dir())).expect("starts").into_dataset("breastmnist").expect("opens");
    let err = good.samples(Split::Test, 0, 100_000).expect_err("too large a batch");
    assert!(err.to_string().contains("larger than the limit"), "{err}");
}

#[test]
fn a_missing_data_folder_is_a_clear_error() {
    let host = host_with(tight_limits());
    let err = host.dataset(&medmnist(), Some(Path::new("/nonexistent/mvb-data"))).expect_err("missing folder");
    assert!(err.to_string().contains("/nonexistent/mvb-data"), "{err}");
}

/// The messages of the plugin host's `tracing` events emitted while it is the default
/// subscriber (wasmtime's own events are left out).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("capture lock"))
    }
}

impl<S: tracing::Subscriber> Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if !event.metadata().target().starts_with("mvb::plugin") {
            return;
        }
        struct Message(String);
        impl Visit for Message {
            fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0.lock().expect("capture lock").push(message.0);
    }
}

#[test]
fn a_log_flood_is_capped_per_call_and_per_instance() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    tracing::subscriber::with_default(subscriber, || {
        let host = host_with(tight_limits());
        let dir = scene("log-flood");
        let tag = format!("[{}] ", hostile().name);
        let mut flood = open_hostile(&host, &dir.path().join("data"));
        let samples = flood.samples(Split::Test, 0, 2).expect("a flooding call still answers");
        assert_eq!(samples.len(), 2);
        let first = captured.take();
        assert!(first.len() < 200, "one call of 5000 lines let {} events through", first.len());
        assert!(first.iter().all(|m| m.starts_with(&tag)), "{first:?}");
        let last = first.last().expect("some lines get through");
        assert!(last.contains("suppressed"), "the cut is announced: {last}");
        assert_eq!(first.iter().filter(|m| m.contains("suppressed")).count(), 1);
        // Call after call, until the instance as a whole has said enough.
        let mut later = Vec::new();
        for _ in 0..30 {
            flood.samples(Split::Test, 0, 1).expect("samples");
            later.extend(captured.take());
        }
        let total = first.len() + later.len();
        assert!(total < 2000, "31 calls of 5000 lines let {total} events through");
        let capped: Vec<&String> = later.iter().filter(|m| m.contains("from this instance")).collect();
        assert_eq!(capped.len(), 1, "one notice that the instance is silenced: {capped:?}");
        assert_eq!(later.last(), Some(capped[0]), "nothing follows it");
    });
}

#[test]
fn plugin_log_lines_reach_the_terminal_escaped() {
    let dir = scene("log-flood");
    let wasm = hostile_wasm();
    let data = dir.path().join("data");
    let out = mvb_output(&[
        "dataset",
        "show",
        "hostile",
        "--plugin",
        wasm.to_str().expect("utf-8 path"),
        "--data",
        data.to_str().expect("utf-8 path"),
        "--limit",
        "2",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let tag = format!("[{}] ", hostile().name);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(&tag)).collect();
    assert!(!lines.is_empty() && lines.len() < 200, "{} plugin lines on stderr", lines.len());
    assert!(!stderr.contains(['\u{1b}', '\u{202e}']), "raw control or bidi characters reached the terminal");
    assert!(stderr.contains("\\u{1b}[31mred") && stderr.contains("\\u{202e}desrever"), "{}", lines[0]);
    assert_eq!(stderr.matches("suppressed").count(), 1, "{stderr}");
}
