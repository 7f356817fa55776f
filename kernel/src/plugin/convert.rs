//! Turns what a plugin returns into the kernel's own types, checking the contract on the way:
//! a malformed answer is reported, never trusted, and every bound is checked before the host
//! keeps or uses what it was given (the limits are the constants here and in `text`).

use std::collections::HashSet;
use std::path::{Component, Path};

use super::bindings::types as wit;
use super::text;
use crate::data::{
    AnswerKind, Attribute, DatasetInfo, ImageRef, MAX_IMAGE_BYTES, Modality, Pixels, Qa, Sample, Split, SplitSizes,
    Task,
};

pub(crate) fn split(split: Split) -> wit::Split {
    match split {
        Split::Train => wit::Split::Train,
        Split::Validation => wit::Split::Validation,
        Split::Test => wit::Split::Test,
    }
}

pub(crate) fn task(task: wit::Task) -> Task {
    match task {
        wit::Task::Diagnosis => Task::Diagnosis,
        wit::Task::Vqa => Task::Vqa,
    }
}

pub(crate) fn answer_kind(kind: wit::AnswerKind) -> AnswerKind {
    match kind {
        wit::AnswerKind::Open => AnswerKind::Open,
        wit::AnswerKind::Closed => AnswerKind::Closed,
    }
}

pub(crate) fn wit_answer_kind(kind: AnswerKind) -> wit::AnswerKind {
    match kind {
        AnswerKind::Open => wit::AnswerKind::Open,
        AnswerKind::Closed => wit::AnswerKind::Closed,
    }
}

/// The most datasets a catalog may list.
pub(crate) const MAX_CATALOG: usize = 10_000;
/// The most classes a dataset may declare.
pub(crate) const MAX_CLASSES: usize = 10_000;
/// The most attributes one sample may carry.
pub(crate) const MAX_ATTRIBUTES: usize = 64;
/// The longest attribute value, in bytes.
pub(crate) const MAX_ATTRIBUTE_VALUE_BYTES: usize = 256;
/// The longest question or reference answer, in bytes.
pub(crate) const MAX_QA_BYTES: usize = 64 * 1024;

/// Validates a catalog: at most [`MAX_CATALOG`] names, each a valid, distinct name.
pub(crate) fn catalog(names: &[String]) -> Result<(), String> {
    if names.len() > MAX_CATALOG {
        return Err(format!("the catalog lists {} datasets, more than the limit of {MAX_CATALOG}", names.len()));
    }
    let mut seen = HashSet::with_capacity(names.len());
    for name in names {
        text::identifier("dataset name", name, text::MAX_NAME_BYTES)?;
        if !seen.insert(name.as_str()) {
            return Err(format!("the catalog lists `{name}` twice"));
        }
    }
    Ok(())
}

/// Validates a dataset's info, opened from the catalog as `opened_as`: its name is that name,
/// the splits are train, validation and test once each in that order, the class names are
/// valid, distinct and not too many; free text is escaped and cut.
pub(crate) fn dataset_info(info: wit::DatasetInfo, opened_as: &str) -> Result<DatasetInfo, String> {
    text::identifier("dataset name", &info.name, text::MAX_NAME_BYTES)?;
    if info.name != opened_as {
        return Err(format!("opened as `{opened_as}`, the dataset calls itself `{}`", text::quote(&info.name)));
    }
    let task = task(info.task);
    if task == Task::Diagnosis && info.class_names.is_empty() {
        return Err(format!("diagnosis dataset `{}` has no class names", info.name));
    }
    class_names(&info.class_names)?;
    Ok(DatasetInfo {
        splits: splits(&info.splits)?,
        name: info.name,
        description: text::free_text(&info.description, text::MAX_LINE_BYTES),
        task,
        modality: match info.modality {
            wit::Modality::Radiology => Modality::Radiology,
            wit::Modality::Pathology => Modality::Pathology,
            wit::Modality::Dermatology => Modality::Dermatology,
            wit::Modality::Ophthalmology => Modality::Ophthalmology,
            wit::Modality::Other => Modality::Other,
        },
        class_names: info.class_names,
        multi_label: info.multi_label,
        license: text::free_text(&info.license, text::MAX_LINE_BYTES),
        citation: text::free_text(&info.citation, text::MAX_CITATION_BYTES),
    })
}

/// Class names: at most [`MAX_CLASSES`], each a valid name, no two alike.
fn class_names(names: &[String]) -> Result<(), String> {
    if names.len() > MAX_CLASSES {
        return Err(format!("{} class names, more than the limit of {MAX_CLASSES}", names.len()));
    }
    let mut seen = HashSet::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        text::identifier("class name", name, text::MAX_NAME_BYTES).map_err(|e| format!("class {i}: {e}"))?;
        if !seen.insert(name.as_str()) {
            return Err(format!("class name `{name}` appears twice (class {i})"));
        }
    }
    Ok(())
}

/// The split sizes, which must list train, validation and test once each, in that order.
fn splits(sizes: &[wit::SplitSize]) -> Result<SplitSizes, String> {
    let order = [wit::Split::Train, wit::Split::Validation, wit::Split::Test];
    let listed: Vec<&str> = sizes.iter().take(4).map(|s| split_name(s.split)).collect();
    if sizes.len() != 3 || sizes.iter().zip(order).any(|(s, want)| s.split != want) {
        let more = if sizes.len() > 4 { ", ..." } else { "" };
        return Err(format!(
            "the splits must be train, validation and test once each, in that order; got [{}{more}]",
            listed.join(", ")
        ));
    }
    Ok(SplitSizes { train: sizes[0].count, validation: sizes[1].count, test: sizes[2].count })
}

fn split_name(split: wit::Split) -> &'static str {
    match split {
        wit::Split::Train => "train",
        wit::Split::Validation => "validation",
        wit::Split::Test => "test",
    }
}

/// Validates one sample against its dataset's info.
pub(crate) fn sample(sample: wit::Sample, info: &DatasetInfo) -> Result<Sample, String> {
    let id = sample.id;
    text::identifier("sample id", &id, text::MAX_ID_BYTES)?;
    let image = sample.image.map(|image| self::image(image, &id)).transpose()?;
    labels(&sample.labels, info).map_err(|e| format!("sample `{id}`: {e}"))?;
    let qa = sample.qa.map(|qa| self::qa(qa, &id)).transpose()?;
    let attributes = attributes(sample.attributes).map_err(|e| format!("sample `{id}`: {e}"))?;
    Ok(Sample { id, image, labels: sample.labels, qa, attributes })
}

fn image(image: wit::Image, id: &str) -> Result<ImageRef, String> {
    Ok(match image {
        wit::Image::Path(path) => {
            let p = Path::new(&path);
            if path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
                return Err(format!(
                    "sample `{id}`: image path `{}` must be relative to the data folder, without `..`",
                    text::quote(&path)
                ));
            }
            ImageRef::Path(path)
        }
        wit::Image::Encoded(bytes) => ImageRef::Encoded(bytes),
        wit::Image::Raw(px) => {
            if px.width == 0 || px.height == 0 || !matches!(px.channels, 1 | 3 | 4) {
                return Err(format!(
                    "sample `{id}`: raw image {}x{}x{} needs positive sides and 1, 3 or 4 channels",
                    px.height, px.width, px.channels
                ));
            }
            let expected = u64::from(px.width) * u64::from(px.height) * u64::from(px.channels);
            if expected > MAX_IMAGE_BYTES {
                return Err(format!(
                    "sample `{id}`: raw image {}x{}x{} is {expected} bytes, more than the limit of {MAX_IMAGE_BYTES}",
                    px.height, px.width, px.channels
                ));
            }
            if px.data.len() as u64 != expected {
                return Err(format!(
                    "sample `{id}`: raw image {}x{}x{} should hold {expected} bytes, not {}",
                    px.height,
                    px.width,
                    px.channels,
                    px.data.len()
                ));
            }
            ImageRef::Raw(Pixels { width: px.width, height: px.height, channels: px.channels, data: px.data })
        }
    })
}

fn labels(labels: &[u32], info: &DatasetInfo) -> Result<(), String> {
    let classes = info.class_names.len();
    if let Some(bad) = labels.iter().find(|&&l| l as usize >= classes) {
        return Err(format!("label {bad} is not below the class count {classes}"));
    }
    if info.task == Task::Diagnosis && !info.multi_label && labels.len() != 1 {
        return Err(format!("a single-label dataset needs exactly one label, got {}", labels.len()));
    }
    let mut seen = HashSet::with_capacity(labels.len());
    if let Some(twice) = labels.iter().find(|&&l| !seen.insert(l)) {
        return Err(format!("label {twice} is given twice"));
    }
    Ok(())
}

/// The question and answer: bounded, with control and bidirectional characters escaped
/// except line breaks and tabs, which may be part of a question.
fn qa(qa: wit::Qa, id: &str) -> Result<Qa, String> {
    for (what, s) in [("question", &qa.question), ("answer", &qa.answer)] {
        if s.len() > MAX_QA_BYTES {
            return Err(format!(
                "sample `{id}`: the {what} is {} bytes, more than the limit of {MAX_QA_BYTES}",
                s.len()
            ));
        }
    }
    let keep = ['\n', '\t'];
    Ok(Qa {
        question: text::escape_except(&qa.question, &keep),
        answer: text::escape_except(&qa.answer, &keep),
        kind: answer_kind(qa.kind),
    })
}

fn attributes(attributes: Vec<wit::Attribute>) -> Result<Vec<Attribute>, String> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(format!("{} attributes, more than the limit of {MAX_ATTRIBUTES}", attributes.len()));
    }
    let mut out = Vec::with_capacity(attributes.len());
    for a in attributes {
        text::identifier("attribute key", &a.key, text::MAX_NAME_BYTES)?;
        if a.value.len() > MAX_ATTRIBUTE_VALUE_BYTES {
            return Err(format!(
                "attribute `{}` has a value of {} bytes, more than the limit of {MAX_ATTRIBUTE_VALUE_BYTES}",
                a.key,
                a.value.len()
            ));
        }
        out.push(Attribute { value: text::escape(&a.value), key: a.key });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> DatasetInfo {
        DatasetInfo {
            name: "t".into(),
            description: String::new(),
            task: Task::Diagnosis,
            modality: Modality::Other,
            class_names: vec!["a".into(), "b".into()],
            multi_label: false,
            splits: SplitSizes::default(),
            license: String::new(),
            citation: String::new(),
        }
    }

    fn sample(image: Option<wit::Image>, labels: Vec<u32>) -> wit::Sample {
        wit::Sample { id: "s1".into(), image, labels, qa: None, attributes: Vec::new() }
    }

    #[test]
    fn paths_must_stay_inside_the_data_folder() {
        for bad in ["../x.png", "/etc/passwd", "a/../../x.png", ""] {
            let err = super::sample(sample(Some(wit::Image::Path(bad.into())), vec![0]), &info()).expect_err(bad);
            assert!(err.contains("relative"), "{err}");
        }
        assert!(super::sample(sample(Some(wit::Image::Path("a/./b.png".into())), vec![0]), &info()).is_ok());
    }

    #[test]
    fn raw_pixels_must_fill_their_shape() {
        let px =
            |data: usize, channels| wit::Image::Raw(wit::Pixels { width: 2, height: 2, channels, data: vec![0; data] });
        assert!(super::sample(sample(Some(px(4, 1)), vec![1]), &info()).is_ok());
        assert!(super::sample(sample(Some(px(3, 1)), vec![1]), &info()).expect_err("short").contains("4 bytes"));
        assert!(super::sample(sample(Some(px(8, 2)), vec![1]), &info()).expect_err("2 channels").contains("channels"));
    }

    #[test]
    fn labels_must_name_a_class() {
        assert!(super::sample(sample(None, vec![2]), &info()).expect_err("label 2").contains("class count"));
        assert!(super::sample(sample(None, vec![0, 1]), &info()).expect_err("two labels").contains("exactly one"));
    }
}
