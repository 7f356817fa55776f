//! mvb dataset plugin `chexpert`: CheXpert-v1.0-small (Irvin et al., AAAI 2019) as Stanford
//! publishes it: `train.csv`, `valid.csv` and the images under `train/` and `valid/`. The data
//! folder is `CheXpert-v1.0-small/` or its parent (the CSVs' `Path` column starts with
//! `CheXpert-v1.0-small/`).
//!
//! As MedVLMBench (`dataset/diagnosis.py`, `CXPDataset`): the official split, `train.csv` for
//! train and `valid.csv` (234 images) for test, no validation split; binary labels from the
//! `No Finding` column: 1 when it is 1, and 0 when it is 0, -1 (uncertain) or empty. Class 0 is
//! `diseased xray`, class 1 `normal xray` (MedVLMBench's zero-shot names). A user's own split
//! can be given as `mvb-split.csv` (see `split_file`).
//!
//! Ids are the `Path` values. Attributes: `sex`, `age`, `view` (`Frontal/Lateral`) and
//! `projection` (`AP/PA`), where the cell is not empty.

use mvb_dataset_common::csv::Csv;
use mvb_dataset_common::{
    DatasetInfo, Error, Image, Loaded, Modality, Sample, Single, SingleOf, Task, fs, serve, split_file,
};

const NAME: &str = "chexpert";
const FOLDER: &str = "CheXpert-v1.0-small";
const ATTRIBUTES: [(&str, &str); 4] =
    [("Sex", "sex"), ("Age", "age"), ("Frontal/Lateral", "view"), ("AP/PA", "projection")];

struct CheXpert;

impl Single for CheXpert {
    const NAME: &'static str = NAME;

    fn locate() -> Option<&'static str> {
        fs::locate(&["", FOLDER], "valid.csv")
    }

    fn read(base: &str) -> Result<Loaded, Error> {
        let train_file = fs::join(base, "train.csv");
        // The test split is required; a copy without train.csv serves an empty train split.
        let train = if fs::is_file(&train_file) { read(base, &train_file)? } else { Vec::new() };
        let test = read(base, &fs::join(base, "valid.csv"))?;
        Loaded::new(info(), split_file::apply(base, [train, Vec::new(), test])?)
    }
}

/// The samples of one CSV, each image checked to exist.
fn read(base: &str, file: &str) -> Result<Vec<Sample>, Error> {
    let csv = Csv::parse(file, &fs::read_text(file)?)?;
    let (path_col, label_col) = (csv.column("Path")?, csv.column("No Finding")?);
    let attr_cols = csv.optional(&ATTRIBUTES);
    csv.rows()
        .map(|row| {
            let listed = row.required(path_col)?;
            // `Path` is relative to the parent of CheXpert-v1.0-small.
            let path = match base {
                "" => listed.strip_prefix(&format!("{FOLDER}/")).unwrap_or(listed).to_owned(),
                _ => listed.to_owned(),
            };
            fs::check_relative(&path, || format!("`{file}` line {}, column `Path`", row.line))?;
            if !fs::is_file(&path) {
                return Err(row.bad(path_col, format!("`{path}` is missing from the data folder")));
            }
            let label = match row.get(label_col) {
                "1" | "1.0" => 1,
                "" | "0" | "0.0" | "-1" | "-1.0" => 0,
                other => return Err(row.bad(label_col, format!("`{other}` is none of 1.0, 0.0, -1.0 or empty"))),
            };
            let attributes = row.attributes(&attr_cols);
            Ok(Sample {
                id: listed.to_owned(),
                image: Some(Image::Path(path)),
                labels: vec![label],
                qa: None,
                attributes,
            })
        })
        .collect()
}

fn info() -> DatasetInfo {
    mvb_dataset_common::info(
        NAME,
        "CheXpert-v1.0-small: chest X-rays, any finding (0) vs No Finding (1); test = valid.csv",
        Task::Diagnosis,
        Modality::Radiology,
        vec!["diseased xray".to_owned(), "normal xray".to_owned()],
        "LicenseRef-Stanford-CheXpert-Research-Use",
        "Jeremy Irvin, Pranav Rajpurkar, Michael Ko, et al. CheXpert: A Large Chest Radiograph Dataset \
with Uncertainty Labels and Expert Comparison. AAAI 2019.",
    )
}

serve!(SingleOf<CheXpert>);
