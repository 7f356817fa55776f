//! Rules the VQA readers share, as MedVLMBench applies them (`dataset/vqa.py` in
//! ubc-tea/MedVLMBench, over the Hugging Face copies `flaviagiammarino/vqa-rad` and
//! `flaviagiammarino/path-vqa`, whose `scripts/processing.py` made them from the publishers'
//! files).

use std::collections::HashSet;

use crate::{AnswerKind, Attribute, Image, Qa, Sample};

/// The Hugging Face copies' cleaning of a question or answer: lower case, runs of spaces made
/// one, ` ?` made `?`, surrounding white space removed.
pub fn clean(text: &str) -> String {
    let lower = text.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    for c in lower.chars() {
        if c == ' ' && out.ends_with(' ') {
            continue;
        }
        out.push(c);
    }
    out.replace(" ?", "?").trim().to_owned()
}

/// MedVLMBench's rule for VQA-RAD and PathVQA: a question is closed when its answer is `yes`
/// or `no` (any case), open otherwise.
pub fn kind_by_answer(answer: &str) -> AnswerKind {
    match answer.to_lowercase().as_str() {
        "yes" | "no" => AnswerKind::Closed,
        _ => AnswerKind::Open,
    }
}

/// One image-question-answer triplet as the publisher lists it, before cleaning.
#[derive(Debug, Clone)]
pub struct Triplet {
    /// The image's path in the data folder.
    pub image: String,
    /// The image's name as the file lists it (the de-duplication key).
    pub image_key: String,
    /// The question and answer as listed (answers as Python's `str()` writes them).
    pub question: String,
    /// See `question`.
    pub answer: String,
    /// The sample id.
    pub id: String,
    /// Subgroup attributes.
    pub attributes: Vec<Attribute>,
}

impl Triplet {
    fn key(&self) -> (String, String, String) {
        (self.image_key.clone(), self.question.clone(), self.answer.clone())
    }
}

/// Drops repeated (image, question, answer) triplets, keeping the first (`pandas`'
/// `drop_duplicates`), and those whose triplet is in `exclude`.
pub fn dedup(rows: Vec<Triplet>, exclude: &[Triplet]) -> Vec<Triplet> {
    let excluded: HashSet<_> = exclude.iter().map(Triplet::key).collect();
    let mut kept = HashSet::new();
    rows.into_iter()
        .filter(|row| {
            let key = row.key();
            !excluded.contains(&key) && kept.insert(key)
        })
        .collect()
}

/// A sample from a cleaned triplet, open or closed by its answer.
pub fn sample(t: Triplet) -> Sample {
    let (question, answer) = (clean(&t.question), clean(&t.answer));
    let kind = kind_by_answer(&answer);
    Sample {
        id: t.id,
        image: Some(Image::Path(t.image)),
        labels: Vec::new(),
        qa: Some(Qa { question, answer, kind }),
        attributes: t.attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_is_the_hugging_face_copies() {
        assert_eq!(clean("  Is  the Liver   normal ?  "), "is the liver normal?");
        assert_eq!(clean("Yes"), "yes");
        assert_eq!(kind_by_answer("YES"), AnswerKind::Closed);
        assert_eq!(kind_by_answer("left"), AnswerKind::Open);
    }
}
