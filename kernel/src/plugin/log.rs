//! The `host.log` import (`wit/host.wit`): a plugin's log lines become `tracing` events tagged
//! with the plugin's name, cut to 4 KiB and rate-limited per call and per instance, so that a
//! plugin logging in a loop slows only itself and cannot flood the terminal. Control and
//! bidirectional characters are escaped here (`\u{..}`, see `text`), before the event reaches
//! any subscriber, so a line cannot clear the screen, forge another line or reorder itself.

use super::bindings::host::LogLevel;
use super::text;

/// The longest message kept, in bytes (longer ones are cut at a character boundary).
pub(crate) const MAX_MESSAGE_BYTES: usize = 4096;
/// The most lines one call into a plugin may log.
pub(crate) const LINES_PER_CALL: u32 = 100;
/// The most lines one plugin instance may log over its life (suppression notices included).
pub(crate) const LINES_PER_INSTANCE: u32 = 1000;

/// What happens to one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admit {
    /// Emitted.
    Line,
    /// Dropped, and replaced by the notice that this call's lines are suppressed from here on.
    CallCapped,
    /// Dropped, and replaced by the notice that the instance's lines are suppressed from here on.
    InstanceCapped,
    /// Dropped silently (the notice was given).
    Dropped,
}

/// Counts one instance's log lines against the caps.
#[derive(Debug, Default)]
pub(crate) struct LogBudget {
    this_call: u32,
    total: u32,
    call_capped: bool,
    instance_capped: bool,
}

impl LogBudget {
    /// Starts the count of a new call into the plugin.
    pub(crate) fn new_call(&mut self) {
        self.this_call = 0;
        self.call_capped = false;
    }

    fn admit(&mut self) -> Admit {
        if self.total >= LINES_PER_INSTANCE {
            if self.instance_capped {
                return Admit::Dropped;
            }
            self.instance_capped = true;
            return Admit::InstanceCapped;
        }
        if self.this_call >= LINES_PER_CALL {
            if self.call_capped {
                return Admit::Dropped;
            }
            self.call_capped = true;
            self.total += 1;
            return Admit::CallCapped;
        }
        self.this_call += 1;
        self.total += 1;
        Admit::Line
    }

    /// Emits `message` from `plugin` at `level`, or the notice that replaces it, or nothing.
    pub(crate) fn log(&mut self, plugin: &str, level: LogLevel, message: &str) {
        match self.admit() {
            Admit::Line => emit(level, plugin, &text::escape(cut(message))),
            Admit::CallCapped => emit(
                LogLevel::Warn,
                plugin,
                &format!("further log lines of this call suppressed (more than {LINES_PER_CALL})"),
            ),
            Admit::InstanceCapped => emit(
                LogLevel::Warn,
                plugin,
                &format!("further log lines suppressed (more than {LINES_PER_INSTANCE} from this instance)"),
            ),
            Admit::Dropped => {}
        }
    }
}

/// `message` cut to at most [`MAX_MESSAGE_BYTES`], at a character boundary.
fn cut(message: &str) -> &str {
    text::cut(message, MAX_MESSAGE_BYTES)
}

/// One event, the plugin's name first so that its text cannot pose as another plugin's.
fn emit(level: LogLevel, plugin: &str, text: &str) {
    match level {
        LogLevel::Trace => tracing::trace!("[{plugin}] {text}"),
        LogLevel::Debug => tracing::debug!("[{plugin}] {text}"),
        LogLevel::Info => tracing::info!("[{plugin}] {text}"),
        LogLevel::Warn => tracing::warn!("[{plugin}] {text}"),
        LogLevel::Error => tracing::error!("[{plugin}] {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit_n(budget: &mut LogBudget, n: u32) -> Vec<Admit> {
        (0..n).map(|_| budget.admit()).collect()
    }

    #[test]
    fn a_call_is_capped_with_one_notice() {
        let mut budget = LogBudget::default();
        let seen = admit_n(&mut budget, LINES_PER_CALL + 50);
        assert!(seen[..LINES_PER_CALL as usize].iter().all(|a| *a == Admit::Line));
        assert_eq!(seen[LINES_PER_CALL as usize], Admit::CallCapped);
        assert!(seen[LINES_PER_CALL as usize + 1..].iter().all(|a| *a == Admit::Dropped));
        budget.new_call();
        assert_eq!(budget.admit(), Admit::Line, "the next call logs again");
    }

    #[test]
    fn an_instance_is_capped_with_one_notice() {
        let mut budget = LogBudget::default();
        let mut seen = Vec::new();
        for _ in 0..2 * LINES_PER_INSTANCE / LINES_PER_CALL {
            budget.new_call();
            seen.extend(admit_n(&mut budget, LINES_PER_CALL * 2));
        }
        let shown = seen.iter().filter(|a| matches!(a, Admit::Line | Admit::CallCapped)).count();
        assert_eq!(shown, LINES_PER_INSTANCE as usize, "notices count against the instance's lines");
        assert_eq!(seen.iter().filter(|a| **a == Admit::InstanceCapped).count(), 1);
        budget.new_call();
        assert_eq!(budget.admit(), Admit::Dropped, "a capped instance stays silent");
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let message = "é".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(cut(&message).len(), MAX_MESSAGE_BYTES);
        let odd = format!("x{message}");
        assert_eq!(cut(&odd).len(), MAX_MESSAGE_BYTES - 1, "a two-byte character straddling the cap is left out");
        assert_eq!(cut("short"), "short");
    }
}
