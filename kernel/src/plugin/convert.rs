//! Turns what a plugin returns into the kernel's own types, checking the contract on the way:
//! a malformed answer is reported, never trusted.

use std::path::{Component, Path};

use super::bindings::types as wit;
use crate::data::{
    AnswerKind, Attribute, DatasetInfo, ImageRef, Modality, Pixels, Qa, Sample, Split, SplitSizes, Task,
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

/// Validates a dataset's info.
pub(crate) fn dataset_info(info: wit::DatasetInfo) -> Result<DatasetInfo, String> {
    if info.name.trim().is_empty() {
        return Err("the dataset's name is empty".into());
    }
    let task = task(info.task);
    if task == Task::Diagnosis && info.class_names.is_empty() {
        return Err(format!("diagnosis dataset `{}` has no class names", info.name));
    }
    let mut splits = SplitSizes::default();
    for s in &info.splits {
        let which = match s.split {
            wit::Split::Train => Split::Train,
            wit::Split::Validation => Split::Validation,
            wit::Split::Test => Split::Test,
        };
        *splits.get_mut(which) = s.count;
    }
    Ok(DatasetInfo {
        name: info.name,
        description: info.description,
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
        splits,
        license: info.license,
        citation: info.citation,
    })
}

/// Validates one sample against its dataset's info.
pub(crate) fn sample(sample: wit::Sample, info: &DatasetInfo) -> Result<Sample, String> {
    let id = sample.id;
    if id.is_empty() {
        return Err("a sample has an empty id".into());
    }
    let image = match sample.image {
        None => None,
        Some(wit::Image::Path(path)) => {
            let p = Path::new(&path);
            if path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
                return Err(format!(
                    "sample `{id}`: image path `{path}` must be relative to the data folder, without `..`"
                ));
            }
            Some(ImageRef::Path(path))
        }
        Some(wit::Image::Encoded(bytes)) => Some(ImageRef::Encoded(bytes)),
        Some(wit::Image::Raw(px)) => {
            if px.width == 0 || px.height == 0 || !matches!(px.channels, 1 | 3 | 4) {
                return Err(format!(
                    "sample `{id}`: raw image {}x{}x{} needs positive sides and 1, 3 or 4 channels",
                    px.height, px.width, px.channels
                ));
            }
            let expected = u64::from(px.width) * u64::from(px.height) * u64::from(px.channels);
            if px.data.len() as u64 != expected {
                return Err(format!(
                    "sample `{id}`: raw image {}x{}x{} should hold {expected} bytes, not {}",
                    px.height,
                    px.width,
                    px.channels,
                    px.data.len()
                ));
            }
            Some(ImageRef::Raw(Pixels { width: px.width, height: px.height, channels: px.channels, data: px.data }))
        }
    };
    let classes = info.class_names.len();
    if let Some(bad) = sample.labels.iter().find(|&&l| l as usize >= classes) {
        return Err(format!("sample `{id}`: label {bad} is not below the class count {classes}"));
    }
    if info.task == Task::Diagnosis && !info.multi_label && sample.labels.len() != 1 {
        return Err(format!(
            "sample `{id}`: a single-label dataset needs exactly one label, got {}",
            sample.labels.len()
        ));
    }
    Ok(Sample {
        id,
        image,
        labels: sample.labels,
        qa: sample.qa.map(|qa| Qa { question: qa.question, answer: qa.answer, kind: answer_kind(qa.kind) }),
        attributes: sample.attributes.into_iter().map(|a| Attribute { key: a.key, value: a.value }).collect(),
    })
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
