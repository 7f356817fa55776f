//! Text a plugin supplies, made safe before the host keeps or shows it: identifiers (names,
//! ids, class names) are refused when they are too long or hold a control or bidirectional
//! character; free text (descriptions, error messages, log lines) has those characters escaped
//! and is cut to a bounded length with a note. Follows Unicode's bidirectional algorithm
//! (UAX #9) for the explicit embedding, override and isolate characters.

use std::fmt::Write as _;

/// The longest name the host accepts: a catalog entry, a dataset, metric or score name, a
/// class name, an attribute key.
pub(crate) const MAX_NAME_BYTES: usize = 256;
/// The longest sample id the host accepts.
pub(crate) const MAX_ID_BYTES: usize = 512;
/// The longest one-line text kept (a description, a licence, an error message); longer ones
/// are cut with a note.
pub(crate) const MAX_LINE_BYTES: usize = 4096;
/// The longest citation kept (a BibTeX entry can be long); longer ones are cut with a note.
pub(crate) const MAX_CITATION_BYTES: usize = 16 * 1024;
/// How much of a plugin's text an error message quotes.
const QUOTE_BYTES: usize = 80;

/// Whether `c` could move the cursor, clear the screen or reorder a line on a terminal: a C0
/// or C1 control character (tab and line feed included) or a bidirectional mark, embedding,
/// override or isolate.
pub(crate) fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `s` with every unsafe character written as `\u{..}`.
pub(crate) fn escape(s: &str) -> String {
    escape_except(s, &[])
}

/// `s` with every unsafe character but those in `keep` written as `\u{..}`.
pub(crate) fn escape_except(s: &str, keep: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_unsafe(c) && !keep.contains(&c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` cut to at most `max` bytes at a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// Free text from a plugin: escaped, and cut to `max` bytes with a note saying how much was
/// left out. The cut happens first, so a huge text costs no more than `max` to escape.
pub(crate) fn free_text(s: &str, max: usize) -> String {
    let kept = cut(s, max);
    let mut out = escape(kept);
    if kept.len() < s.len() {
        let _ = write!(out, " [... {} more bytes cut by the host]", s.len() - kept.len());
    }
    out
}

/// A short quotation of plugin text for an error message: escaped and cut.
pub(crate) fn quote(s: &str) -> String {
    let kept = cut(s, QUOTE_BYTES);
    let mut out = escape(kept);
    if kept.len() < s.len() {
        let _ = write!(out, "... ({} bytes)", s.len());
    }
    out
}

/// Checks an identifier (`what` says which, such as "class name"): not empty, at most `max`
/// bytes, no unsafe character.
pub(crate) fn identifier(what: &str, s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("a {what} is empty"));
    }
    if s.len() > max {
        return Err(format!("{what} `{}` is {} bytes long, more than the limit of {max}", quote(s), s.len()));
    }
    if let Some(c) = s.chars().find(|&c| is_unsafe(c)) {
        return Err(format!("{what} `{}` holds the control or bidirectional character U+{:04X}", quote(s), c as u32));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_but_not_ordinary_text() {
        assert_eq!(escape("a\nb\u{1b}[2J"), "a\\u{a}b\\u{1b}[2J");
        assert_eq!(escape("\u{202e}x\u{2066}\u{85}"), "\\u{202e}x\\u{2066}\\u{85}");
        assert_eq!(escape("Größe é 肺 ✓"), "Größe é 肺 ✓");
        assert_eq!(escape_except("q\n\tz\r", &['\n', '\t']), "q\n\tz\\u{d}");
    }

    #[test]
    fn free_text_is_cut_with_a_note() {
        let long = "x".repeat(10_000);
        let kept = free_text(&long, 100);
        assert!(kept.starts_with(&"x".repeat(100)) && kept.ends_with("[... 9900 more bytes cut by the host]"));
        assert_eq!(free_text("short\u{1b}", 100), "short\\u{1b}");
    }

    #[test]
    fn identifiers_are_refused_not_rewritten() {
        assert!(identifier("id", "test/1", MAX_ID_BYTES).is_ok());
        assert!(identifier("id", "", MAX_ID_BYTES).unwrap_err().contains("empty"));
        let forged = identifier("id", "x\n{\"id\":\"y\"}", MAX_ID_BYTES).unwrap_err();
        assert!(forged.contains("U+000A") && forged.contains("x\\u{a}{") && !forged.contains('\n'), "{forged}");
        let long = identifier("class name", &"é".repeat(1000), MAX_NAME_BYTES).unwrap_err();
        assert!(long.contains("2000 bytes long") && long.len() < 300, "{long}");
    }
}
