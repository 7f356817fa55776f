//! What the plugin knows about the MedMNIST v2 datasets: official label names (from the
//! MedMNIST `INFO` table), modality, licence, and the question templates of the VQA view
//! (`vqa`). Files with another name are still served, with their label numbers as class names,
//! but have no VQA view.

use crate::SplitData;
use crate::mvb::plugin::types::{DatasetInfo, Modality, Split, SplitSize, Task};
use crate::vqa::{Closed, Templates};

/// Facts about one official MedMNIST dataset.
pub struct Known {
    pub description: &'static str,
    pub modality: Modality,
    /// Official label names, in label order.
    pub classes: &'static [&'static str],
    /// The questions of the dataset's VQA view (`NAME-vqa`).
    pub vqa: Templates,
}

const CITATION: &str = "Jiancheng Yang, Rui Shi, Donglai Wei, Zequan Liu, Lin Zhao, Bilian Ke, \
Hanspeter Pfister, Bingbing Ni. MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D \
biomedical image classification. Scientific Data, 2023.";

const LICENSE: &str = "CC-BY-4.0";

/// The datasets whose label names the plugin knows.
const KNOWN: &[(&str, Known)] = &[
    (
        "pneumoniamnist",
        Known {
            description: "PneumoniaMNIST: paediatric chest X-rays, normal vs pneumonia (Kermany et al., Cell 2018)",
            modality: Modality::Radiology,
            classes: &["normal", "pneumonia"],
            vqa: Templates {
                even: Closed { question: "Does this chest X-ray show pneumonia?", yes: &[1] },
                odd: Closed { question: "Is this chest X-ray normal?", yes: &[0] },
                open: "What does this chest X-ray show?",
            },
        },
    ),
    (
        "breastmnist",
        Known {
            description: "BreastMNIST: breast ultrasound, malignant vs normal/benign (Al-Dhabyani et al., Data in Brief 2020)",
            modality: Modality::Radiology,
            classes: &["malignant", "normal, benign"],
            vqa: Templates {
                even: Closed { question: "Does this breast ultrasound show a malignant tumour?", yes: &[0] },
                odd: Closed { question: "Is this breast ultrasound normal or benign?", yes: &[1] },
                open: "What does this breast ultrasound show?",
            },
        },
    ),
    (
        "retinamnist",
        Known {
            description: "RetinaMNIST: retinal fundus photographs, diabetic-retinopathy grade 0-4 (ordinal; DeepDRiD, Liu et al., Patterns 2022)",
            modality: Modality::Ophthalmology,
            classes: &["0", "1", "2", "3", "4"],
            vqa: Templates {
                even: Closed { question: "Does this fundus photograph show diabetic retinopathy?", yes: &[1, 2, 3, 4] },
                odd: Closed { question: "Is this fundus photograph free of diabetic retinopathy?", yes: &[0] },
                open: "What is the diabetic retinopathy grade of this fundus photograph?",
            },
        },
    ),
];

/// Looks a file stem up, ignoring a MedMNIST+ size suffix (`retinamnist_224`).
pub fn lookup(name: &str) -> Option<&'static Known> {
    let base = match name.rsplit_once('_') {
        Some((base, size)) if size.parse::<u32>().is_ok() => base,
        _ => name,
    };
    KNOWN.iter().find(|(n, _)| *n == base).map(|(_, k)| k)
}

/// The VQA view `{base}-vqa` of an official dataset: its base name and facts.
pub fn lookup_vqa(name: &str) -> Option<(&str, &'static Known)> {
    let base = name.strip_suffix(crate::vqa::SUFFIX)?;
    lookup(base).map(|k| (base, k))
}

/// The info of the VQA view `name` of a dataset with diagnosis info `diagnosis`: two samples
/// per image, the same class names (samples keep their image's label).
pub fn vqa_info(name: &str, diagnosis: DatasetInfo) -> DatasetInfo {
    DatasetInfo {
        name: name.to_owned(),
        description: format!(
            "{} (VQA view by mvb: per image one closed yes/no and one open question, templated from the official label)",
            diagnosis.description
        ),
        task: Task::Vqa,
        splits: diagnosis.splits.into_iter().map(|s| SplitSize { split: s.split, count: 2 * s.count }).collect(),
        ..diagnosis
    }
}

/// Builds the dataset's info; `columns` is the label array's width (> 1 means multi-label).
pub fn info(name: &str, known: Option<&Known>, columns: usize, splits: &[SplitData; 3]) -> DatasetInfo {
    let class_names = match known {
        Some(k) => k.classes.iter().map(|c| (*c).to_owned()).collect(),
        None => {
            let count = if columns > 1 {
                columns
            } else {
                splits.iter().flat_map(|s| s.labels.iter().flatten()).max().map_or(0, |m| *m as usize + 1)
            };
            (0..count).map(|c| c.to_string()).collect()
        }
    };
    let sizes = [Split::Train, Split::Validation, Split::Test]
        .into_iter()
        .zip(splits)
        .map(|(split, data)| SplitSize { split, count: data.labels.len() as u64 })
        .collect();
    DatasetInfo {
        name: name.to_owned(),
        description: known.map_or_else(
            || format!("{name}: a file in MedMNIST layout, not an official MedMNIST dataset (class names are label numbers)"),
            |k| k.description.to_owned(),
        ),
        task: Task::Diagnosis,
        modality: known.map_or(Modality::Other, |k| k.modality),
        class_names,
        multi_label: columns > 1,
        splits: sizes,
        license: if known.is_some() { LICENSE.to_owned() } else { "unknown".to_owned() },
        citation: if known.is_some() { CITATION.to_owned() } else { String::new() },
    }
}
