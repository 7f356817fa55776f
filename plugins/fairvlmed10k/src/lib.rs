//! mvb dataset plugin `fairvlmed10k`: Harvard-FairVLMed (Luo et al., "FairCLIP", CVPR 2024) as
//! its authors publish it: `data_summary.csv` and one `data_NNNNN.npz` per subject in
//! `Training/`, `Validation/` and `Testing/` (or `Test/`; see `harvard` in
//! `mvb-dataset-common`). The data folder is the dataset's folder, or a parent holding it as
//! `FairVLMed10k/`, `Harvard-FairVLMed10k/` or `FairVLMed/`. Two datasets:
//!
//! - `fairvlmed10k` (diagnosis), as MedVLMBench (`dataset/diagnosis.py`,
//!   `FairVLMed10kDataset`): the image is the `.npz` array `slo_fundus` (the scanning laser
//!   ophthalmoscope fundus picture, bytes as stored); the label is `glaucoma` (`yes` is class 1).
//!   Splits: the publisher's, from `use` (7,000 / 1,000 / 2,000). MedVLMBench used FairMedFM's
//!   own sex-stratified random split (1,746 test subjects; its `split/{train,test}.csv`, over
//!   JPEG copies of the pictures), which it did not publish; give it as `mvb-split.csv`
//!   (columns `id`, `split`; ids are the `filename`s, `data_00001.npz`).
//! - `fairvlmed10k-vqa`, as MedVLMBench (`dataset/vqa.py`, `HarvardFairVLMed10kVQA`): questions
//!   from `vqa_train.csv`, `vqa_val.csv` and `vqa_test.csv` in the dataset's folder (columns
//!   `image_path`, the `.npz` relative to that folder, `question`, `answer`, `question type`),
//!   rows with any cell pandas reads as missing dropped (`dropna()`), question and answer as
//!   written, open when `question type` is `OPEN`, closed otherwise. MedVLMBench made these
//!   files from the clinical summaries and did not publish them (3,994 test questions, 1,998
//!   open): the dataset is listed only where `vqa_test.csv` is present. Ids are
//!   `<split>-<row>` (the row's 0-based position in its file, pandas' index).
//!
//! Attributes: `age`, `sex`, `race`, `ethnicity`, `language`, `marital_status` from the summary,
//! where present (for questions, by the image's file name).

use std::collections::HashMap;

use mvb_dataset_common::csv::{Csv, Row};
use mvb_dataset_common::harvard::{self, Summary};
use mvb_dataset_common::{
    AnswerKind, Attribute, DatasetInfo, Error, ErrorKind, Family, Image, Loaded, LogLevel, Modality, Qa, Sample, Task,
    error, fs, log, npz, serve, split_file,
};

const DIAGNOSIS: &str = "fairvlmed10k";
const VQA: &str = "fairvlmed10k-vqa";
const BASES: [&str; 4] = ["", "FairVLMed10k", "Harvard-FairVLMed10k", "FairVLMed"];
const KEY: &str = "slo_fundus";
/// MedVLMBench's question files: (file, split slot, id prefix).
const QUESTIONS: [(&str, usize, &str); 3] =
    [("vqa_train.csv", 0, "train"), ("vqa_val.csv", 1, "validation"), ("vqa_test.csv", 2, "test")];

/// The folder holding the question files, if any.
fn vqa_base() -> Option<&'static str> {
    BASES.into_iter().find(|b| fs::is_file(&fs::join(b, QUESTIONS[2].0)))
}

struct FairVlMed;

impl Family for FairVlMed {
    fn catalog() -> Result<Vec<String>, Error> {
        let found = [(DIAGNOSIS, harvard::locate(&BASES).is_some()), (VQA, vqa_base().is_some())];
        Ok(found.into_iter().filter(|(_, there)| *there).map(|(name, _)| name.to_owned()).collect())
    }

    fn open(name: &str) -> Result<Loaded, Error> {
        let missing = |what: &str| error(ErrorKind::NotFound, format!("the data folder holds no {what}"));
        match name {
            DIAGNOSIS => {
                let base = harvard::locate(&BASES).ok_or_else(|| missing("data_summary.csv"))?;
                let splits = Summary::read(base)?.samples()?;
                Ok(Loaded::new(info(DIAGNOSIS), split_file::apply(base, splits)?)?.with_decode(decode))
            }
            VQA => questions(vqa_base().ok_or_else(|| missing("vqa_test.csv"))?),
            _ => Err(error(
                ErrorKind::InvalidArgument,
                format!("unknown dataset `{name}`; this plugin serves `{DIAGNOSIS}` and `{VQA}`"),
            )),
        }
    }
}

/// The SLO fundus picture of one subject's file.
fn decode(file: &str) -> Result<Image, Error> {
    npz::read(file, KEY)?.picture(file, KEY, |x| x)
}

/// The VQA dataset from MedVLMBench's question files in `base`.
fn questions(base: &'static str) -> Result<Loaded, Error> {
    let demographics = match harvard::summary_file(base) {
        Some(_) => Summary::read(base)?.attributes(),
        None => HashMap::new(),
    };
    let (mut splits, mut dropped): ([Vec<Sample>; 3], usize) = Default::default();
    let mut listing = fs::Listing::default();
    for (name, slot, prefix) in QUESTIONS {
        let file = fs::join(base, name);
        if !fs::is_file(&file) {
            continue;
        }
        let csv = Csv::parse(&file, &fs::read_text(&file)?)?;
        let columns =
            [csv.column("image_path")?, csv.column("question")?, csv.column("answer")?, csv.column("question type")?];
        for (index, row) in csv.rows().enumerate() {
            if row.has_pandas_na() {
                dropped += 1;
                continue;
            }
            let id = format!("{prefix}-{index}");
            splits[slot].push(question(&row, columns, base, id, &mut listing, &demographics)?);
        }
    }
    if dropped > 0 {
        log(LogLevel::Info, &format!("{dropped} questions with an empty cell are left out, as MedVLMBench's dropna()"));
    }
    Ok(Loaded::new(info(VQA), splits)?.with_decode(decode))
}

/// The sample of one question row, its image checked to exist.
fn question(
    row: &Row<'_>,
    [image_col, question_col, answer_col, kind_col]: [usize; 4],
    base: &str,
    id: String,
    listing: &mut fs::Listing,
    demographics: &HashMap<String, Vec<Attribute>>,
) -> Result<Sample, Error> {
    let listed = row.required(image_col)?;
    let path = fs::join(base, listed);
    fs::check_relative(&path, || format!("line {}, column `image_path`", row.line))?;
    let (folder, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
    if !listing.contains(folder, name) {
        return Err(row.bad(image_col, format!("`{path}` is missing from the data folder")));
    }
    let kind = if row.get(kind_col) == "OPEN" { AnswerKind::Open } else { AnswerKind::Closed };
    let qa = Qa { question: row.get(question_col).to_owned(), answer: row.get(answer_col).to_owned(), kind };
    let attributes = demographics.get(name).cloned().unwrap_or_default();
    Ok(Sample { id, image: Some(Image::Path(path.clone())), labels: Vec::new(), qa: Some(qa), attributes })
}

fn info(name: &str) -> DatasetInfo {
    let (description, task, classes) = match name {
        DIAGNOSIS => (
            "Harvard-FairVLMed: SLO fundus pictures, glaucoma (1) vs not (0)",
            Task::Diagnosis,
            vec![
                "a benign scanning laser ophthalmoscope fundus image".to_owned(),
                "a glaucoma scanning laser ophthalmoscope fundus image".to_owned(),
            ],
        ),
        _ => ("Harvard-FairVLMed VQA: MedVLMBench's questions on SLO fundus pictures", Task::Vqa, Vec::new()),
    };
    mvb_dataset_common::info(
        name,
        description,
        task,
        Modality::Ophthalmology,
        classes,
        "CC-BY-NC-ND-4.0",
        "Yan Luo, Min Shi, Muhammad Osama Khan, et al. FairCLIP: Harnessing Fairness in Vision-Language \
Learning. CVPR 2024.",
    )
}

serve!(FairVlMed);
