//! mvb dataset plugin `vqa-rad`: VQA-RAD (Lau et al., Scientific Data 2018) as its authors
//! publish it on OSF (<https://osf.io/89kps/>): `VQA_RAD Dataset Public.json` and the images in
//! `VQA_RAD Image Folder/`. The data folder is the one holding both (or its parent
//! `osfstorage-archive/`, as the OSF download unpacks).
//!
//! The samples are MedVLMBench's (`dataset/vqa.py`, which reads the Hugging Face copy
//! `flaviagiammarino/vqa-rad`), rebuilt from the publisher's file by that copy's rules
//! (its `scripts/processing.py`):
//! - test: entries whose `phrase_type` is `test_freeform` or `test_para`; train: `freeform` or
//!   `para`; there is no validation split;
//! - repeated (image, question, answer) triplets are dropped within each split, keeping the
//!   first, and train triplets that are also test triplets are dropped from train;
//! - question and answer are cleaned (lower case, runs of spaces made one, ` ?` made `?`, trimmed);
//! - a question is closed when its answer is `yes` or `no`, open otherwise (not the file's
//!   `answer_type`: MedVLMBench's rule).
//!
//! Ids are the file's `qid`. Attributes: `organ` (`image_organ`) and `question_type`.
//! With the official file this gives 451 test questions (251 closed, 200 open).

use mvb_dataset_common::json::{self, Entry};
use mvb_dataset_common::vqa::{self, Triplet};
use mvb_dataset_common::{DatasetInfo, Error, Loaded, Modality, Single, SingleOf, Task, attr, fs, serve};

const NAME: &str = "vqa-rad";
const JSON: &str = "VQA_RAD Dataset Public.json";
const IMAGES: &str = "VQA_RAD Image Folder";

struct VqaRad;

impl Single for VqaRad {
    const NAME: &'static str = NAME;

    fn locate() -> Option<&'static str> {
        fs::locate(&["", "osfstorage-archive"], JSON)
    }

    fn read(base: &str) -> Result<Loaded, Error> {
        let file = fs::join(base, JSON);
        let text = fs::read_text(&file)?;
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for entry in json::array(&file, &text)? {
            let triplet = triplet(&entry, base)?;
            match entry.text("phrase_type")?.as_str() {
                "freeform" | "para" => train.push(triplet),
                "test_freeform" | "test_para" => test.push(triplet),
                other => {
                    return Err(entry
                        .bad("phrase_type", format!("`{other}` is none of freeform, para, test_freeform, test_para")));
                }
            }
        }
        let test = vqa::dedup(test, &[]);
        let train = vqa::dedup(train, &test);
        let [train, test] = [train, test].map(|rows| rows.into_iter().map(vqa::sample).collect());
        Loaded::new(info(), [train, Vec::new(), test])
    }
}

/// The triplet of one entry, its image checked to exist.
fn triplet(entry: &Entry<'_>, base: &str) -> Result<Triplet, Error> {
    let image_key = entry.text("image_name")?;
    let image = fs::join(base, &format!("{IMAGES}/{image_key}"));
    fs::check_relative(&image, || format!("`{JSON}` entry {}", entry.index))?;
    if !fs::is_file(&image) {
        return Err(entry.bad("image_name", format!("`{image}` is missing from the data folder")));
    }
    let mut attributes = Vec::new();
    for (key, field) in [("organ", "image_organ"), ("question_type", "question_type")] {
        if let Some(value) = entry.optional_text(field) {
            attributes.push(attr(key, value.trim()));
        }
    }
    Ok(Triplet {
        image,
        image_key,
        question: entry.text("question")?,
        answer: entry.text("answer")?,
        id: format!("qid-{}", entry.text("qid")?),
        attributes,
    })
}

fn info() -> DatasetInfo {
    mvb_dataset_common::info(
        NAME,
        "VQA-RAD: clinician-written questions on radiology images (MedPix); open/closed by a yes/no answer",
        Task::Vqa,
        Modality::Radiology,
        Vec::new(),
        "CC0-1.0",
        "Jason J. Lau, Soumya Gayen, Asma Ben Abacha, Dina Demner-Fushman. A dataset of clinically \
generated visual questions and answers about radiology images. Scientific Data 5, 180251 (2018).",
    )
}

serve!(SingleOf<VqaRad>);
