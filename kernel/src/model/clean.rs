//! open_clip's text cleaning before tokenization (`open_clip/tokenizer.py`: `basic_clean`, then
//! `whitespace_clean`): ftfy's `fix_text` with its default fixes that apply to well-formed text
//! (terminal escapes and control characters removed, Latin ligatures split, full-width forms
//! narrowed, curly quotes straightened, line breaks unified, NFC), HTML entities decoded twice
//! (numeric ones and the common named ones), then runs of whitespace made one space and the ends
//! trimmed. ftfy's repair of mojibake (text decoded with the wrong encoding) is not reproduced.

/// The text open_clip's tokenizers see for `text`.
pub fn open_clip(text: &str) -> String {
    let fixed = fix_text(text);
    let unescaped = unescape(&unescape(&fixed));
    unescaped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The subset of `ftfy.fix_text` described in the module docs.
fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            // A terminal escape `ESC [ params letter`.
            chars.next();
            while chars.next_if(|d| d.is_ascii_digit() || *d == ';').is_some() {}
            chars.next_if(char::is_ascii_alphabetic);
            continue;
        }
        match c {
            '\u{2018}'..='\u{201b}' | '\u{2bc}' => out.push('\''),
            '\u{201c}'..='\u{201f}' => out.push('"'),
            '\u{ff01}'..='\u{ff5e}' => out.push(char::from_u32(c as u32 - 0xfee0).unwrap_or(c)),
            '\u{3000}' => out.push(' '),
            '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => {
                if !(c == '\r' && chars.peek() == Some(&'\n')) {
                    out.push('\n');
                }
            }
            c if is_removed_control(c) => {}
            c => match ligature(c) {
                Some(s) => out.push_str(s),
                None => out.push(c),
            },
        }
    }
    let mut normalized = tokenizers::NormalizedString::from(out.as_str());
    normalized.nfc();
    normalized.get().to_owned()
}

/// ftfy's `remove_control_chars` set.
fn is_removed_control(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}' | '\u{e}'..='\u{1f}' | '\u{7f}' | '\u{206a}'..='\u{206f}' | '\u{feff}'
        | '\u{fff9}'..='\u{fffc}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e007f}')
}

/// ftfy's `fix_latin_ligatures`.
fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "ʼn",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        _ => return None,
    })
}

/// Python's `html.unescape` for numeric references and the common named entities.
fn unescape(text: &str) -> String {
    const NAMED: [(&str, &str); 7] =
        [("amp", "&"), ("lt", "<"), ("gt", ">"), ("quot", "\""), ("apos", "'"), ("nbsp", "\u{a0}"), ("#39", "'")];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest[1..].find(';').map(|e| e + 1).filter(|&e| e <= 33);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let numeric = name.strip_prefix('#').and_then(|n| match n.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => n.parse::<u32>().ok(),
            });
            let c = numeric.map(|v| char::from_u32(v).unwrap_or('\u{fffd}').to_string());
            c.or_else(|| NAMED.iter().find(|(n, _)| *n == name).map(|(_, s)| (*s).to_owned())).map(|s| (s, e))
        });
        match decoded {
            Some((s, e)) => {
                out.push_str(&s);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::open_clip;

    #[test]
    fn cleans_as_open_clip() {
        assert_eq!(
            open_clip("  a\tphoto \n of\u{a0}a “cat’s” ﬁsh &amp;amp; &#233;  "),
            "a photo of a \"cat's\" fish & é"
        );
        assert_eq!(open_clip("ＣＴ\u{1b}[31m scan\u{0}"), "CT scan");
        assert_eq!(open_clip("a & b &unknown; &#x41;"), "a & b &unknown; A");
    }
}
