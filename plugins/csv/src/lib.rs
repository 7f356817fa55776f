//! mvb dataset plugin `csv`: a diagnosis dataset listed in a CSV file, for data that needs no
//! code of its own. Every `NAME.csv` in the data folder whose header has the columns `path`
//! and `label` is a dataset `NAME`:
//!
//! ```text
//! path,label,split,sex,age
//! images/0001.png,pneumonia,test,F,63
//! ```
//!
//! - `path`: the image, relative to the data folder (`/` separators, no `..`); it must exist.
//! - `label`: the class. With a `classes.txt` in the data folder (one name per line, line 1 is
//!   label 0) a label is one of its names or a label number; without one, the classes are the
//!   distinct labels, in numeric order when every label is a whole number and else sorted.
//! - `split` (optional): `train`, `validation` (or `val`) or `test`; without the column every
//!   row is in the test split.
//! - any other column is a sample attribute (for subgroup results); empty cells are left out.
//!
//! The sample id is the path. Errors name the file, line and column at fault.

use std::collections::{BTreeSet, HashSet};

use mvb_dataset_common::csv::{Csv, Row};
use mvb_dataset_common::{
    DatasetInfo, Error, ErrorKind, Family, Image, Loaded, Modality, Sample, Task, attr, corrupt, error, fs, serve,
    slot, split_named,
};

const CLASSES: &str = "classes.txt";

/// Whether `file`'s first line names the columns `path` and `label`.
fn has_columns(file: &str) -> bool {
    let Ok(text) = fs::read_text(file) else { return false };
    let header = text.lines().next().unwrap_or("");
    let columns: Vec<&str> = header.split(',').map(|c| c.trim().trim_matches('"')).collect();
    columns.contains(&"path") && columns.contains(&"label")
}

struct CsvFamily;

impl Family for CsvFamily {
    fn catalog() -> Result<Vec<String>, Error> {
        let files = fs::list("", true).unwrap_or_default();
        Ok(files
            .iter()
            .filter_map(|f| f.strip_suffix(".csv").filter(|_| has_columns(f)))
            .filter(|stem| *stem != mvb_dataset_common::split_file::FILE.trim_end_matches(".csv"))
            .map(str::to_owned)
            .collect())
    }

    fn open(name: &str) -> Result<Loaded, Error> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(error(ErrorKind::InvalidArgument, format!("`{name}` is not a dataset name")));
        }
        let file = format!("{name}.csv");
        let csv = Csv::parse(&file, &fs::read_text(&file)?)?;
        let (path_col, label_col) = (csv.column("path")?, csv.column("label")?);
        let split_col = csv.find("split");
        let attr_cols: Vec<usize> = (0..csv.header().len())
            .filter(|c| ![Some(path_col), Some(label_col), split_col].contains(&Some(*c)))
            .collect();
        let classes = match fs::is_file(CLASSES) {
            true => read_classes()?,
            false => distinct_labels(&csv, label_col),
        };
        let mut splits: [Vec<Sample>; 3] = Default::default();
        let mut seen = HashSet::new();
        for row in csv.rows() {
            let path = row.required(path_col)?;
            fs::check_relative(path, || format!("`{file}` line {}, column `path`", row.line))?;
            if !fs::is_file(path) {
                return Err(row.bad(path_col, format!("`{path}` is missing from the data folder")));
            }
            if !seen.insert(path) {
                return Err(row.bad(path_col, format!("`{path}` is listed twice; each image may appear once")));
            }
            let slot = match split_col {
                None => 2,
                Some(c) => split_named(row.get(c))
                    .map(slot)
                    .ok_or_else(|| row.bad(c, format!("`{}` is not train, validation or test", row.get(c))))?,
            };
            let label = label_of(&row, label_col, &classes)?;
            let attributes = attr_cols
                .iter()
                .filter(|&&c| !row.get(c).is_empty())
                .map(|&c| attr(&csv.header()[c], row.get(c)))
                .collect();
            let image = Some(Image::Path(path.to_owned()));
            splits[slot].push(Sample { id: path.to_owned(), image, labels: vec![label], qa: None, attributes });
        }
        Loaded::new(info(name, classes), splits)
    }
}

/// `classes.txt`: one non-empty name per line (trailing blank lines ignored).
fn read_classes() -> Result<Vec<String>, Error> {
    let text = fs::read_text(CLASSES)?;
    let mut names: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
    while names.last().is_some_and(String::is_empty) {
        names.pop();
    }
    if let Some(i) = names.iter().position(String::is_empty) {
        return Err(corrupt(format!("`{CLASSES}` line {}: empty class name", i + 1)));
    }
    if names.is_empty() {
        return Err(corrupt(format!("`{CLASSES}` holds no class names")));
    }
    Ok(names)
}

/// The distinct labels, numerically when all are whole numbers, else as sorted text.
fn distinct_labels(csv: &Csv, col: usize) -> Vec<String> {
    let labels: BTreeSet<&str> = csv.rows().map(|r| r.get(col)).filter(|l| !l.is_empty()).collect();
    let numbers: Option<BTreeSet<u64>> = labels.iter().map(|l| l.parse::<u64>().ok()).collect();
    match numbers {
        Some(n) => n.into_iter().map(|v| v.to_string()).collect(),
        None => labels.into_iter().map(str::to_owned).collect(),
    }
}

/// The label index of a row: its class's position, or a label number below the class count.
fn label_of(row: &Row<'_>, col: usize, classes: &[String]) -> Result<u32, Error> {
    let value = row.required(col)?;
    if let Some(i) = classes.iter().position(|c| c == value) {
        return Ok(i as u32);
    }
    match value.parse::<usize>() {
        Ok(i) if i < classes.len() => Ok(i as u32),
        _ => Err(row.bad(
            col,
            format!("`{value}` is not a class ({}) nor a label number below {}", classes.join(", "), classes.len()),
        )),
    }
}

fn info(name: &str, class_names: Vec<String>) -> DatasetInfo {
    mvb_dataset_common::info(
        name,
        format!("{name}: images listed in `{name}.csv` (path, label, split, attributes)"),
        Task::Diagnosis,
        Modality::Other,
        class_names,
        "unknown",
        "",
    )
}

serve!(CsvFamily);
