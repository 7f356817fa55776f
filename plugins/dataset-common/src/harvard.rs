//! The layout of the Harvard Ophthalmology AI Lab's fairness datasets, shared by Harvard-GF3300
//! (`gf3300`) and Harvard-FairVLMed (`fairvlmed10k`): a `data_summary.csv` (at the top or in
//! `ReadMe/`) with one row per subject, and one `.npz` per subject, named by the row's
//! `filename`, in the folder of its `use`: `Training/`, `Validation/`, `Test/` (or `Testing/`).
//! Columns read: `filename`, `use` (`training`, `validation`, `test`), `glaucoma` (`yes`/`no`,
//! any case: MedVLMBench's label rule) and, where present, the demographics `age`, `gender`
//! (served as `sex`), `race`, `ethnicity`, `language` and `maritalstatus` (as `marital_status`).

use std::collections::HashMap;

use crate::csv::{Csv, Row};
use crate::{Attribute, Error, Image, Sample, diagnosis, fs};

/// Where `data_summary.csv` may lie, relative to the dataset's folder.
const SUMMARIES: [&str; 2] = ["data_summary.csv", "ReadMe/data_summary.csv"];
/// The demographic columns, with the attribute key each becomes.
pub const ATTRIBUTES: [(&str, &str); 6] = [
    ("age", "age"),
    ("gender", "sex"),
    ("race", "race"),
    ("ethnicity", "ethnicity"),
    ("language", "language"),
    ("maritalstatus", "marital_status"),
];
/// The folders of each split's files, in the order train, validation, test.
const FOLDERS: [&[&str]; 3] = [&["Training"], &["Validation"], &["Test", "Testing"]];

/// The summary of the dataset in `base`, if it has one.
pub fn summary_file(base: &str) -> Option<String> {
    SUMMARIES.iter().map(|s| fs::join(base, s)).find(|s| fs::is_file(s))
}

/// The first of `bases` holding a summary.
pub fn locate(bases: &[&'static str]) -> Option<&'static str> {
    bases.iter().copied().find(|b| summary_file(b).is_some())
}

/// A parsed summary.
#[derive(Debug)]
pub struct Summary {
    base: String,
    csv: Csv,
    filename: usize,
    attributes: Vec<(usize, &'static str)>,
}

impl Summary {
    /// Reads the summary of the dataset in `base`.
    pub fn read(base: &str) -> Result<Summary, Error> {
        let file = summary_file(base).unwrap_or_else(|| fs::join(base, SUMMARIES[0]));
        let csv = Csv::parse(&file, &fs::read_text(&file)?)?;
        let filename = csv.column("filename")?;
        let attributes = csv.optional(&ATTRIBUTES);
        Ok(Summary { base: base.to_owned(), csv, filename, attributes })
    }

    /// The demographics of each subject, by file name (for samples that name the file).
    pub fn attributes(&self) -> HashMap<String, Vec<Attribute>> {
        self.csv.rows().map(|r| (r.get(self.filename).to_owned(), r.attributes(&self.attributes))).collect()
    }

    /// The glaucoma samples of each split (ids are file names; images are the `.npz` paths,
    /// for the plugin's decoder), each file checked to exist.
    pub fn samples(&self) -> Result<[Vec<Sample>; 3], Error> {
        let (use_col, label_col) = (self.csv.column("use")?, self.csv.column("glaucoma")?);
        let folders: Vec<&str> = FOLDERS
            .iter()
            .map(|names| names.iter().copied().find(|n| fs::is_dir(&fs::join(&self.base, n))).unwrap_or(names[0]))
            .collect();
        let mut listing = fs::Listing::default();
        let mut splits: [Vec<Sample>; 3] = Default::default();
        for row in self.csv.rows() {
            let slot = match row.required(use_col)? {
                "training" => 0,
                "validation" => 1,
                "test" => 2,
                other => return Err(row.bad(use_col, format!("`{other}` is none of training, validation, test"))),
            };
            let name = row.required(self.filename)?;
            let folder = fs::join(&self.base, folders[slot]);
            fs::check_relative(name, || format!("`{}` line {}, column `filename`", self.csv.file(), row.line))?;
            if !listing.contains(&folder, name) {
                return Err(row.bad(self.filename, format!("`{folder}/{name}` is missing from the data folder")));
            }
            let label = glaucoma(&row, label_col)?;
            let image = Image::Path(format!("{folder}/{name}"));
            splits[slot].push(diagnosis(name, image, label, row.attributes(&self.attributes)));
        }
        Ok(splits)
    }
}

/// MedVLMBench's rule: 1 when `glaucoma` is `yes` (any case), 0 when `no`.
fn glaucoma(row: &Row<'_>, col: usize) -> Result<u32, Error> {
    match row.required(col)?.to_lowercase().as_str() {
        "yes" => Ok(1),
        "no" => Ok(0),
        _ => Err(row.bad(col, format!("`{}` is neither yes nor no", row.get(col)))),
    }
}
