//! Owned, validated dataset types, mirroring `mvb:plugin/types` in `wit/types.wit`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a dataset evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Image classification.
    Diagnosis,
    /// Visual question answering.
    Vqa,
}

/// The imaging domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    /// X-ray, CT, MRI, ultrasound.
    Radiology,
    /// Histology.
    Pathology,
    /// Skin.
    Dermatology,
    /// Eye.
    Ophthalmology,
    /// Anything else.
    Other,
}

/// A dataset partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Fitting data.
    Train,
    /// Hyper-parameter selection.
    Validation,
    /// Held-out evaluation.
    Test,
}

impl Split {
    /// All splits, in their canonical order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// The lower-case name used on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Split::Train),
            "validation" | "val" => Ok(Split::Validation),
            "test" => Ok(Split::Test),
            _ => Err(format!("unknown split `{s}` (expected train, validation or test)")),
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Task::Diagnosis => "diagnosis",
            Task::Vqa => "vqa",
        })
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Modality::Radiology => "radiology",
            Modality::Pathology => "pathology",
            Modality::Dermatology => "dermatology",
            Modality::Ophthalmology => "ophthalmology",
            Modality::Other => "other",
        })
    }
}

/// Sample counts per split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitSizes {
    /// Training samples.
    pub train: u64,
    /// Validation samples.
    pub validation: u64,
    /// Test samples.
    pub test: u64,
}

impl SplitSizes {
    /// The size of one split.
    pub fn get(&self, split: Split) -> u64 {
        match split {
            Split::Train => self.train,
            Split::Validation => self.validation,
            Split::Test => self.test,
        }
    }

    /// Mutable access to the size of one split.
    pub fn get_mut(&mut self, split: Split) -> &mut u64 {
        match split {
            Split::Train => &mut self.train,
            Split::Validation => &mut self.validation,
            Split::Test => &mut self.test,
        }
    }
}

/// What a dataset plugin says about one of its datasets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Machine name.
    pub name: String,
    /// One human-readable line.
    pub description: String,
    /// Diagnosis or VQA.
    pub task: Task,
    /// Imaging domain.
    pub modality: Modality,
    /// Class names in label order.
    pub class_names: Vec<String>,
    /// Whether samples may carry several labels.
    pub multi_label: bool,
    /// Samples per split.
    pub splits: SplitSizes,
    /// Licence of the data.
    pub license: String,
    /// How to cite the data.
    pub citation: String,
}

/// Decoded 8-bit pixels, row-major, channels interleaved.
#[derive(Clone, PartialEq, Eq)]
pub struct Pixels {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// 1, 3 or 4.
    pub channels: u8,
    /// `width * height * channels` bytes.
    pub data: Vec<u8>,
}

impl fmt::Debug for Pixels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pixels({}x{}x{})", self.height, self.width, self.channels)
    }
}

/// Where a sample's image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A path relative to the dataset's root (already checked to be relative and `..`-free).
    Path(String),
    /// An encoded image file.
    Encoded(Vec<u8>),
    /// Decoded pixels.
    Raw(Pixels),
}

/// Open or closed VQA question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerKind {
    /// Free-form.
    Open,
    /// Yes/no or another closed set.
    Closed,
}

/// The question-answer part of a VQA sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qa {
    /// The question.
    pub question: String,
    /// The reference answer.
    pub answer: String,
    /// Open or closed.
    pub kind: AnswerKind,
}

/// A subgroup attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    /// Name, such as `sex`.
    pub key: String,
    /// Value, as text.
    pub value: String,
}

/// One validated sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Unique, stable identifier.
    pub id: String,
    /// The image, if any.
    pub image: Option<ImageRef>,
    /// Class label indices.
    pub labels: Vec<u32>,
    /// VQA part, if any.
    pub qa: Option<Qa>,
    /// Subgroup attributes.
    pub attributes: Vec<Attribute>,
}
