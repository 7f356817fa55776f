//! Renders the library's notices (`tracing` events: CUDA fall-back, resumed runs, plugin logs,
//! skipped replicates) as one line each on stderr, above any progress bar. The library never
//! prints; it emits events, and this is the only place they reach the terminal.

use std::fmt::{self, Write as _};
use std::sync::Mutex;

use indicatif::ProgressBar;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The progress bar on screen, if any: notices are printed above it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Installs the renderer for the whole process: mvb's own events at `info` and above
/// (`verbose`, set by `MVB_PLUGIN_DEBUG`, adds `debug`, plugins' debug logs included).
pub fn install(verbose: bool) {
    let max = if verbose { Level::DEBUG } else { Level::INFO };
    let subscriber = tracing_subscriber::registry().with(Renderer { max });
    // A second install (tests calling `cli::run` twice) keeps the first.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Shows `bar` while `f` runs; notices emitted meanwhile are printed above it.
pub fn with_bar<T>(bar: &ProgressBar, f: impl FnOnce() -> T) -> T {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
    let out = f();
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = None;
    out
}

struct Renderer {
    max: Level,
}

impl<S: Subscriber> Layer<S> for Renderer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        *metadata.level() <= self.max && metadata.target().starts_with("mvb")
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from_level(self.max))
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        let mut line = Line::default();
        event.record(&mut line);
        let prefix = match level {
            Level::ERROR | Level::WARN => "warning: ",
            _ => "mvb: ",
        };
        let text = format!("{prefix}{}", escape(&line.text));
        match BAR.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }
}

/// The event's message followed by its other fields as `name=value`.
#[derive(Default)]
struct Line {
    text: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.text, " {}={value}", field.name());
        }
    }
}

/// Control and bidirectional-override characters shown as escapes, so that no text reaching
/// the terminal (plugin logs included) can move the cursor or reorder a line.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}');
        if c.is_control() || bidi {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}
