//! The VQA view of a MedMNIST dataset (`NAME-vqa`): the same images and splits, each asked two
//! questions templated from its official label (mvb's rule, documented in
//! `data/medmnist/README.md`; the question/answer form follows MedVLMBench's VQA sets:
//! closed yes/no questions and open ones, `../shared/MEDVLMBENCH.md`).
//!
//! Image `i` of a split gives samples `2i` (closed) and `2i + 1` (open), with ids
//! `{split}-{i}-closed` and `{split}-{i}-open`. The closed question alternates between two
//! wordings of opposite polarity by the parity of `i` (even: the first, odd: the second), so
//! that "yes" is the right answer for about half the questions whatever the class balance. The
//! open question's answer is the official class name of the label.

use crate::mvb::plugin::types::{AnswerKind, Qa};

/// The suffix that names a dataset's VQA view.
pub const SUFFIX: &str = "-vqa";

/// A closed question and the labels for which its answer is "yes".
pub struct Closed {
    pub question: &'static str,
    pub yes: &'static [u32],
}

/// The question templates of one dataset.
pub struct Templates {
    /// Asked of even-indexed images.
    pub even: Closed,
    /// Asked of odd-indexed images (the opposite polarity of `even`).
    pub odd: Closed,
    /// The open question; its answer is the label's official class name.
    pub open: &'static str,
}

/// Whether VQA sample `j` is the closed question of its image (else the open one).
pub fn is_closed(j: usize) -> bool {
    j.is_multiple_of(2)
}

/// Question and answer of VQA sample `j` (image `j / 2`), whose image has `label`.
pub fn qa(templates: &Templates, classes: &[&str], j: usize, label: u32) -> Qa {
    let image = j / 2;
    if is_closed(j) {
        let closed = if image.is_multiple_of(2) { &templates.even } else { &templates.odd };
        let answer = if closed.yes.contains(&label) { "yes" } else { "no" };
        Qa { question: closed.question.to_owned(), answer: answer.to_owned(), kind: AnswerKind::Closed }
    } else {
        let answer = classes.get(label as usize).map_or_else(|| label.to_string(), |c| (*c).to_owned());
        Qa { question: templates.open.to_owned(), answer, kind: AnswerKind::Open }
    }
}

/// The id of VQA sample `j` of a split, given its image's id `{split}-{j / 2}`.
pub fn sample_id(mut image_id: String, j: usize) -> String {
    image_id.push_str(if is_closed(j) { "-closed" } else { "-open" });
    image_id
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Templates = Templates {
        even: Closed { question: "Is it b?", yes: &[1] },
        odd: Closed { question: "Is it a?", yes: &[0] },
        open: "What is it?",
    };

    fn answers(label: u32) -> Vec<(String, String)> {
        (0..8).map(|j| qa(&T, &["a", "b"], j, label)).map(|q| (q.question, q.answer)).collect()
    }

    #[test]
    fn each_image_has_a_closed_then_an_open_question_and_the_closed_one_alternates() {
        let want = |a: &str, b: &str| {
            [("Is it b?", a), ("What is it?", "b"), ("Is it a?", b), ("What is it?", "b")]
                .repeat(2)
                .into_iter()
                .map(|(q, a)| (q.to_owned(), a.to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(answers(1), want("yes", "no"));
        assert!(matches!(qa(&T, &["a", "b"], 0, 1).kind, AnswerKind::Closed));
        assert!(matches!(qa(&T, &["a", "b"], 1, 1).kind, AnswerKind::Open));
        let zero = answers(0);
        assert_eq!((zero[0].1.as_str(), zero[1].1.as_str(), zero[2].1.as_str()), ("no", "a", "yes"));
    }

    #[test]
    fn ids_name_the_image_and_the_kind() {
        assert_eq!(sample_id("test-7".into(), 14), "test-7-closed");
        assert_eq!(sample_id("test-7".into(), 15), "test-7-open");
    }
}
