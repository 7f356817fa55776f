//! Constrained decoding: replies forced into a shape by masking, at each step, every token
//! that would take the reply off it (the idea of llama.cpp's grammars and of transformers'
//! `prefix_allowed_tokens_fn`, for the two shapes `wit/host.wit`'s `constraint` offers). A
//! token's effect is judged by its own decoded text (its "piece"), so the reply is checked as
//! the concatenation of the pieces chosen.

use super::ModelError;

/// Longest `one-of` list, and longest string in it.
const MAX_OPTIONS: usize = 64;
const MAX_OPTION_BYTES: usize = 256;

/// A shape a reply must take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// A first line holding only a decimal integer in `min..=max` (no sign, no leading zero),
    /// then its newline; free text after it.
    IntegerLine {
        /// Smallest value.
        min: u64,
        /// Largest value.
        max: u64,
    },
    /// Exactly one of these strings.
    OneOf(Vec<String>),
}

impl Constraint {
    /// Checks the constraint itself (a range with `min` above `max`, an empty list, ...).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Constraint::IntegerLine { min, max } if min > max => {
                Err(format!("integer-line range {min}..={max} is empty (min is above max)"))
            }
            Constraint::IntegerLine { .. } => Ok(()),
            Constraint::OneOf(options) => {
                if options.is_empty() || options.len() > MAX_OPTIONS {
                    return Err(format!("one-of needs 1 to {MAX_OPTIONS} strings, not {}", options.len()));
                }
                match options.iter().find(|o| o.is_empty() || o.len() > MAX_OPTION_BYTES) {
                    Some(o) => Err(format!("one-of strings are 1 to {MAX_OPTION_BYTES} bytes; one has {}", o.len())),
                    None => Ok(()),
                }
            }
        }
    }

    /// Whether nothing is left to enforce after `text` (the integer line is complete).
    fn satisfied(&self, text: &str) -> bool {
        matches!(self, Constraint::IntegerLine { .. }) && text.contains('\n')
    }

    /// Whether the reply `text` may grow by `piece`.
    pub fn allows(&self, text: &str, piece: &str) -> bool {
        if piece.is_empty() {
            return self.satisfied(text);
        }
        match self {
            Constraint::IntegerLine { .. } if text.contains('\n') => true,
            Constraint::IntegerLine { min, max } => {
                let (digits, newline) = match piece.find('\n') {
                    Some(at) => (&piece[..at], true),
                    None => (piece, false),
                };
                if !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return false;
                }
                let line = format!("{text}{digits}");
                if newline { complete_integer(&line, *min, *max) } else { integer_prefix(&line, *min, *max) }
            }
            Constraint::OneOf(options) => {
                options.iter().any(|o| o.starts_with(text) && o[text.len()..].starts_with(piece))
            }
        }
    }

    /// Whether the reply may end after `text`.
    pub fn may_end(&self, text: &str) -> bool {
        match self {
            Constraint::IntegerLine { .. } => text.contains('\n'),
            Constraint::OneOf(options) => options.iter().any(|o| o == text),
        }
    }

    /// Whether the reply must end after `text` (it equals an option no other extends).
    pub fn must_end(&self, text: &str) -> bool {
        match self {
            Constraint::IntegerLine { .. } => false,
            Constraint::OneOf(options) => {
                self.may_end(text) && !options.iter().any(|o| o.len() > text.len() && o.starts_with(text))
            }
        }
    }
}

/// Whether `digits` is an integer in `min..=max` written without a leading zero.
fn complete_integer(digits: &str, min: u64, max: u64) -> bool {
    well_formed(digits) && digits.parse::<u128>().is_ok_and(|v| (u128::from(min)..=u128::from(max)).contains(&v))
}

/// Whether more digits after `digits` can make an integer in `min..=max`.
fn integer_prefix(digits: &str, min: u64, max: u64) -> bool {
    if !well_formed(digits) {
        return false;
    }
    let Ok(p) = digits.parse::<u128>() else { return false };
    let (min, max) = (u128::from(min), u128::from(max));
    if p == 0 {
        return min == 0;
    }
    let mut scale = 1u128;
    // `p` followed by n digits spans [p * 10^n, p * 10^n + 10^n - 1].
    while p.saturating_mul(scale) <= max {
        if p * scale + (scale - 1) >= min {
            return true;
        }
        scale *= 10;
    }
    false
}

/// Non-empty ASCII digits without a leading zero (but `0` itself).
fn well_formed(digits: &str) -> bool {
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && (digits == "0" || !digits.starts_with('0'))
}

/// Applies a constraint to the rows of one batch: each row's reply so far, as pieces.
#[derive(Debug)]
pub(crate) struct Masker<'a> {
    constraint: &'a Constraint,
    pieces: &'a [String],
    eos: &'a [u32],
    texts: Vec<String>,
}

impl<'a> Masker<'a> {
    /// A masker for `rows` rows over a vocabulary whose token `i` reads `pieces[i]`.
    pub(crate) fn new(constraint: &'a Constraint, pieces: &'a [String], eos: &'a [u32], rows: usize) -> Self {
        Masker { constraint, pieces, eos, texts: vec![String::new(); rows] }
    }

    /// Sets the logits of the tokens row `row` may not take next to -inf.
    pub(crate) fn mask(&self, row: usize, logits: &mut [f32]) -> Result<(), ModelError> {
        let text = &self.texts[row];
        if self.constraint.satisfied(text) {
            return Ok(());
        }
        let may_end = self.constraint.may_end(text);
        let mut any = false;
        for (id, logit) in logits.iter_mut().enumerate() {
            let allowed = if self.eos.contains(&(id as u32)) {
                may_end
            } else {
                self.pieces.get(id).is_some_and(|p| self.constraint.allows(text, p))
            };
            if allowed {
                any = true;
            } else {
                *logit = f32::NEG_INFINITY;
            }
        }
        if any {
            Ok(())
        } else {
            Err(ModelError::Input(format!("no token of the vocabulary continues the constrained reply {text:?}")))
        }
    }

    /// Records row `row`'s new token; true when the reply must end there.
    pub(crate) fn push(&mut self, row: usize, id: u32) -> bool {
        if let Some(piece) = self.pieces.get(id as usize) {
            self.texts[row].push_str(piece);
        }
        self.constraint.must_end(&self.texts[row])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integer_line_accepts_exactly_the_numbers_in_range() {
        let c = Constraint::IntegerLine { min: 1, max: 100 };
        assert!(c.allows("", "8") && c.allows("8", "5") && c.allows("85", "\n") && c.allows("85", "\nGood"));
        assert!(c.allows("1", "00") && c.allows("100", "\n") && !c.allows("100", "0") && !c.allows("10", "1\n"));
        assert!(!c.allows("", "0") && !c.allows("", " 8") && !c.allows("", "\n") && !c.allows("", "-5"));
        assert!(!c.allows("", "") && c.allows("85\n", "") && c.allows("85\n", "any text"));
        assert!(!c.may_end("85") && c.may_end("85\nok") && !c.must_end("85\n"));
        let c = Constraint::IntegerLine { min: 50, max: 60 };
        assert!(c.allows("", "5") && !c.allows("", "4") && c.allows("", "6") && !c.allows("6", "1"));
        assert!(!c.allows("5", "\n") && c.allows("", "55\n"));
        assert!(Constraint::IntegerLine { min: 0, max: 3 }.allows("", "0\n"));
        assert!(Constraint::IntegerLine { min: 5, max: 4 }.validate().is_err());
    }

    #[test]
    fn one_of_accepts_the_options_and_ends_on_a_complete_one() {
        let c = Constraint::OneOf(vec!["yes".into(), "no".into(), "not sure".into()]);
        assert!(c.allows("", "y") && c.allows("ye", "s") && c.allows("", "yes") && !c.allows("", "yes."));
        assert!(c.allows("no", "t sure") && !c.allows("", "No"));
        assert!(c.may_end("no") && !c.must_end("no") && c.must_end("yes") && !c.may_end("ye"));
        assert!(Constraint::OneOf(vec![]).validate().is_err());
        assert!(Constraint::OneOf(vec![String::new()]).validate().is_err());
    }

    #[test]
    fn the_masker_leaves_only_allowed_tokens_and_eos_when_complete() {
        let pieces: Vec<String> = ["a", "1", "0", "\n", "5\n", " 7", ""].iter().map(|s| (*s).to_owned()).collect();
        let c = Constraint::IntegerLine { min: 1, max: 100 };
        let eos = [6u32];
        let mut m = Masker::new(&c, &pieces, &eos, 1);
        let mut logits = vec![0.0; 7];
        m.mask(0, &mut logits).expect("some token allowed");
        let open: Vec<usize> = (0..7).filter(|&i| logits[i].is_finite()).collect();
        assert_eq!(open, vec![1, 4]);
        assert!(!m.push(0, 4));
        let mut logits = vec![0.0; 7];
        m.mask(0, &mut logits).expect("free after the line");
        assert!(logits.iter().all(|v| v.is_finite()));
        let none = Constraint::OneOf(vec!["zebra".into()]);
        let m = Masker::new(&none, &pieces, &eos, 1);
        assert!(m.mask(0, &mut [0.0; 7]).is_err());
    }
}
