//! The answer normaliser of the standard VQA evaluation (Antol et al., VQA v2 `vqaEval`), as
//! MedVLMBench applies it (`eval/utils.py: normalize_word`) to lower-cased text:
//!
//! 1. **Punctuation** `; / [ ] " { } ( ) = + \ _ - > < @ ` , ? !`: a mark is deleted wherever it
//!    occurs if the text has that mark next to an ASCII space (`"p "` or `" p"`), or if the text
//!    has a comma between two digits anywhere; otherwise it becomes a space. (Apostrophes,
//!    colons and other characters are kept.)
//! 2. **Periods** not followed by a digit are deleted, scanning left to right, at most 32 of them:
//!    the reference normaliser passes `re.UNICODE` (32) where `re.sub` expects the replacement
//!    count, and mvb keeps that cap so that long answers normalise identically. (The reference
//!    pattern reads as "a period not between digits", but its look-behind is mistyped as a
//!    look-ahead, so only the following character matters.)
//! 3. **Words**: split on whitespace (Python's `str.split()`); the number words `zero`..`ten`
//!    and `none` become `0`..`10`, `none` → `0`; the articles `a`, `an`, `the` are dropped; and
//!    the contraction table of the reference normaliser is applied word by word. That table
//!    restores apostrophes (`dont` → `don't`, `whats` → `what's`); it does not spell
//!    contractions out.
//!
//! "Digit" means a Unicode decimal digit (general category Nd), as Python's `\d`.

/// Punctuation marks the VQA normaliser deletes or turns into spaces.
const PUNCT: [char; 21] =
    [';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'];

/// At most this many periods are deleted (see the module documentation).
const MAX_PERIODS_DELETED: usize = 32;

/// A normalised answer: its tokens, and the tokens joined by single spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The words, in order.
    pub tokens: Vec<String>,
    /// `tokens.join(" ")`.
    pub text: String,
}

/// Lower-cases and normalises `text` (see the module documentation).
pub fn normalize(text: &str) -> Normalized {
    let lower = text.to_lowercase();
    let punctuated = punctuation(&lower);
    let stripped = periods(&punctuated);
    let tokens: Vec<String> = stripped
        .split(is_python_space)
        .filter(|w| !w.is_empty())
        .map(number_word)
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .map(|w| contraction(w).unwrap_or(w).to_owned())
        .collect();
    let text = tokens.join(" ");
    Normalized { tokens, text }
}

/// Step 1: each punctuation mark is deleted or becomes a space, decided on the whole text.
fn punctuation(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let comma_between_digits =
        chars.windows(3).any(|w| is_decimal_digit(w[0]) && w[1] == ',' && is_decimal_digit(w[2]));
    // Marks that touch an ASCII space somewhere in the text.
    let mut touches_space = [false; PUNCT.len()];
    for pair in chars.windows(2) {
        let mark = match pair {
            [' ', c] => *c,
            [c, ' '] => *c,
            _ => continue,
        };
        if let Some(k) = PUNCT.iter().position(|&p| p == mark) {
            touches_space[k] = true;
        }
    }
    let mut out = String::with_capacity(text.len());
    for c in chars {
        match PUNCT.iter().position(|&p| p == c) {
            Some(k) if comma_between_digits || touches_space[k] => {}
            Some(_) => out.push(' '),
            None => out.push(c),
        }
    }
    out
}

/// Step 2: delete periods not followed by a digit, the first 32 only.
fn periods(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut deleted = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '.' && deleted < MAX_PERIODS_DELETED && !chars.peek().is_some_and(|&n| is_decimal_digit(n)) {
            deleted += 1;
            continue;
        }
        out.push(c);
    }
    out
}

/// Whitespace as Python's `str.split()` sees it: Unicode White_Space plus the information
/// separators U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `none` and the number words `zero`..`ten` as digits.
fn number_word(word: &str) -> &str {
    match word {
        "none" | "zero" => "0",
        "one" => "1",
        "two" => "2",
        "three" => "3",
        "four" => "4",
        "five" => "5",
        "six" => "6",
        "seven" => "7",
        "eight" => "8",
        "nine" => "9",
        "ten" => "10",
        other => other,
    }
}

/// The contraction table of the standard VQA normaliser (entries with capitals never match
/// lower-cased text but are kept so that the table is complete).
fn contraction(word: &str) -> Option<&'static str> {
    Some(match word {
        "aint" => "ain't",
        "arent" => "aren't",
        "cant" => "can't",
        "couldve" => "could've",
        "couldnt" => "couldn't",
        "couldn'tve" | "couldnt've" => "couldn't've",
        "didnt" => "didn't",
        "doesnt" => "doesn't",
        "dont" => "don't",
        "hadnt" => "hadn't",
        "hadnt've" | "hadn'tve" => "hadn't've",
        "hasnt" => "hasn't",
        "havent" => "haven't",
        "hed" => "he'd",
        "hed've" | "he'dve" => "he'd've",
        "hes" => "he's",
        "howd" => "how'd",
        "howll" => "how'll",
        "hows" => "how's",
        "Id've" | "I'dve" => "I'd've",
        "Im" => "I'm",
        "Ive" => "I've",
        "isnt" => "isn't",
        "itd" => "it'd",
        "itd've" | "it'dve" => "it'd've",
        "itll" => "it'll",
        "let's" => "let's",
        "maam" => "ma'am",
        "mightnt" => "mightn't",
        "mightnt've" | "mightn'tve" => "mightn't've",
        "mightve" => "might've",
        "mustnt" => "mustn't",
        "mustve" => "must've",
        "neednt" => "needn't",
        "notve" => "not've",
        "oclock" => "o'clock",
        "oughtnt" => "oughtn't",
        "ow's'at" | "'ows'at" | "'ow'sat" => "'ow's'at",
        "shant" => "shan't",
        "shed've" | "she'dve" => "she'd've",
        "she's" => "she's",
        "shouldve" => "should've",
        "shouldnt" => "shouldn't",
        "shouldnt've" | "shouldn'tve" => "shouldn't've",
        "somebody'd" => "somebodyd",
        "somebodyd've" | "somebody'dve" => "somebody'd've",
        "somebodyll" => "somebody'll",
        "somebodys" => "somebody's",
        "someoned" => "someone'd",
        "someoned've" | "someone'dve" => "someone'd've",
        "someonell" => "someone'll",
        "someones" => "someone's",
        "somethingd" => "something'd",
        "somethingd've" | "something'dve" => "something'd've",
        "somethingll" => "something'll",
        "thats" => "that's",
        "thered" => "there'd",
        "thered've" | "there'dve" => "there'd've",
        "therere" => "there're",
        "theres" => "there's",
        "theyd" => "they'd",
        "theyd've" | "they'dve" => "they'd've",
        "theyll" => "they'll",
        "theyre" => "they're",
        "theyve" => "they've",
        "twas" => "'twas",
        "wasnt" => "wasn't",
        "wed've" | "we'dve" => "we'd've",
        "weve" => "we've",
        "werent" => "weren't",
        "whatll" => "what'll",
        "whatre" => "what're",
        "whats" => "what's",
        "whatve" => "what've",
        "whens" => "when's",
        "whered" => "where'd",
        "wheres" => "where's",
        "whereve" => "where've",
        "whod" => "who'd",
        "whod've" | "who'dve" => "who'd've",
        "wholl" => "who'll",
        "whos" => "who's",
        "whove" => "who've",
        "whyll" => "why'll",
        "whyre" => "why're",
        "whys" => "why's",
        "wont" => "won't",
        "wouldve" => "would've",
        "wouldnt" => "wouldn't",
        "wouldnt've" | "wouldn'tve" => "wouldn't've",
        "yall" => "y'all",
        "yall'll" | "y'allll" => "y'all'll",
        "yall'd've" | "y'alld've" | "y'all'dve" => "y'all'd've",
        "youd" => "you'd",
        "youd've" | "you'dve" => "you'd've",
        "youll" => "you'll",
        "youre" => "you're",
        "youve" => "you've",
        _ => return None,
    })
}

/// Unicode decimal digits (general category Nd, Unicode 14.0, the version of the Python that
/// generates mvb's reference fixtures), as inclusive ranges.
const DECIMAL_DIGITS: [(u32, u32); 62] = [
    (0x30, 0x39),
    (0x660, 0x669),
    (0x6F0, 0x6F9),
    (0x7C0, 0x7C9),
    (0x966, 0x96F),
    (0x9E6, 0x9EF),
    (0xA66, 0xA6F),
    (0xAE6, 0xAEF),
    (0xB66, 0xB6F),
    (0xBE6, 0xBEF),
    (0xC66, 0xC6F),
    (0xCE6, 0xCEF),
    (0xD66, 0xD6F),
    (0xDE6, 0xDEF),
    (0xE50, 0xE59),
    (0xED0, 0xED9),
    (0xF20, 0xF29),
    (0x1040, 0x1049),
    (0x1090, 0x1099),
    (0x17E0, 0x17E9),
    (0x1810, 0x1819),
    (0x1946, 0x194F),
    (0x19D0, 0x19D9),
    (0x1A80, 0x1A89),
    (0x1A90, 0x1A99),
    (0x1B50, 0x1B59),
    (0x1BB0, 0x1BB9),
    (0x1C40, 0x1C49),
    (0x1C50, 0x1C59),
    (0xA620, 0xA629),
    (0xA8D0, 0xA8D9),
    (0xA900, 0xA909),
    (0xA9D0, 0xA9D9),
    (0xA9F0, 0xA9F9),
    (0xAA50, 0xAA59),
    (0xABF0, 0xABF9),
    (0xFF10, 0xFF19),
    (0x104A0, 0x104A9),
    (0x10D30, 0x10D39),
    (0x11066, 0x1106F),
    (0x110F0, 0x110F9),
    (0x11136, 0x1113F),
    (0x111D0, 0x111D9),
    (0x112F0, 0x112F9),
    (0x11450, 0x11459),
    (0x114D0, 0x114D9),
    (0x11650, 0x11659),
    (0x116C0, 0x116C9),
    (0x11730, 0x11739),
    (0x118E0, 0x118E9),
    (0x11950, 0x11959),
    (0x11C50, 0x11C59),
    (0x11D50, 0x11D59),
    (0x11DA0, 0x11DA9),
    (0x16A60, 0x16A69),
    (0x16AC0, 0x16AC9),
    (0x16B50, 0x16B59),
    (0x1D7CE, 0x1D7FF),
    (0x1E140, 0x1E149),
    (0x1E2F0, 0x1E2F9),
    (0x1E950, 0x1E959),
    (0x1FBF0, 0x1FBF9),
];

/// Whether `c` is a Unicode decimal digit (Python's `\d`).
fn is_decimal_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    let c = c as u32;
    let k = DECIMAL_DIGITS.partition_point(|&(start, _)| start <= c);
    k > 0 && c <= DECIMAL_DIGITS[k - 1].1
}
