//! A minimal mvb dataset plugin: the starting point for your own.
//!
//! It serves one dataset, `template`, from a data folder that holds two files:
//!
//! * `classes.txt`: one class name per line, in label order (line 1 is label 0);
//! * `labels.csv`: a header line `split,path,label`, then one row per image, such as
//!   `test,images/a.png,1`. `split` is `train`, `validation` or `test`; `path` is the image
//!   file, relative to the data folder; `label` is its class index. (This simple format does
//!   not allow commas in paths.)
//!
//! The plugin runs inside mvb's sandbox: it sees the data folder, read-only, at `/data` and
//! nothing else; it has no network, no environment and no stdout. It speaks to the user through
//! the `host::log` import and through the `error` values it returns.
//!
//! To make your own plugin, copy this folder, rename the package in `Cargo.toml`, and change
//! the three places marked `TODO`: the dataset's name, how the folder is read (`Index::load`),
//! and what `info` reports.

use std::collections::BTreeMap;
use std::path::Path;

// Generates Rust bindings for the `dataset` world: the traits to implement (`Guest`,
// `GuestDataset`), the shared types, the `host` import and the `export!` macro.
// Point `path` at your copy of mvb's `wit` folder.
wit_bindgen::generate!({ world: "dataset", path: "../../wit" });

use exports::mvb::plugin::dataset_api::{Dataset, Guest, GuestDataset};
use mvb::plugin::host::{LogLevel, log};
use mvb::plugin::types::{DatasetInfo, Error, ErrorKind, Image, Modality, Sample, Split, SplitSize, Task};

/// Where the host mounts the data folder the user gave (read-only).
const DATA: &str = "/data";

/// TODO: the name this plugin serves its dataset under (lower-case, no spaces).
const NAME: &str = "template";

/// Builds the `error` every fallible call returns: a kind the host can act on, and one line
/// the user can act on, naming the file, line or argument at fault.
fn error(kind: ErrorKind, message: impl Into<String>) -> Error {
    Error { kind, message: message.into() }
}

/// Reads a whole text file of the data folder, turning failures into clear errors.
fn read_text(file: &str) -> Result<String, Error> {
    let bytes = std::fs::read(Path::new(DATA).join(file)).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => error(ErrorKind::NotFound, format!("`{file}` is missing from the data folder")),
        _ => error(ErrorKind::Io, format!("cannot read `{file}`: {e}")),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        error(ErrorKind::CorruptData, format!("`{file}` line {line}: not valid UTF-8 text"))
    })
}

/// The position of a split in `Index::splits`, and its name for messages.
fn split_slot(split: Split) -> (usize, &'static str) {
    match split {
        Split::Train => (0, "train"),
        Split::Validation => (1, "validation"),
        Split::Test => (2, "test"),
    }
}

/// One row of `labels.csv`.
struct Row {
    path: String,
    label: u32,
}

/// An opened dataset: everything parsed once in `open`, so that `samples` only slices.
struct Index {
    class_names: Vec<String>,
    /// The rows of each split, in file order: train, validation, test.
    splits: [Vec<Row>; 3],
}

impl Index {
    /// TODO: replace with whatever your data folder holds.
    fn load() -> Result<Index, Error> {
        let class_names = parse_classes(&read_text("classes.txt")?)?;
        let splits = parse_labels(&read_text("labels.csv")?, class_names.len())?;
        Ok(Index { class_names, splits })
    }
}

/// Parses `classes.txt`: one non-empty name per line; blank lines at the end are ignored.
fn parse_classes(text: &str) -> Result<Vec<String>, Error> {
    let mut names: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    while names.last().is_some_and(String::is_empty) {
        names.pop();
    }
    if names.is_empty() {
        return Err(error(ErrorKind::CorruptData, "`classes.txt` holds no class names"));
    }
    if let Some(i) = names.iter().position(String::is_empty) {
        let line = i + 1;
        return Err(error(
            ErrorKind::CorruptData,
            format!("`classes.txt` line {line}: empty class name (one name per line, no blank lines)"),
        ));
    }
    Ok(names)
}

/// Parses `labels.csv` into the rows of each split, checking every row.
fn parse_labels(text: &str, class_count: usize) -> Result<[Vec<Row>; 3], Error> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let header = lines.next().map_or("", |(_, l)| l.trim_start_matches('\u{feff}'));
    if header != "split,path,label" {
        return Err(error(
            ErrorKind::CorruptData,
            format!("`labels.csv` line 1: expected the header `split,path,label`, found `{header}`"),
        ));
    }

    let mut splits: [Vec<Row>; 3] = Default::default();
    // Sample ids must be unique across the whole dataset; here the id is the path.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (line, row) in lines {
        if row.is_empty() {
            continue;
        }
        let bad = |what: String| error(ErrorKind::CorruptData, format!("`labels.csv` line {line}: {what}"));
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        let [split, path, label] = fields[..] else {
            return Err(bad(format!("expected 3 fields `split,path,label`, found {}", fields.len())));
        };
        let slot = match split {
            "train" => 0,
            "validation" => 1,
            "test" => 2,
            _ => return Err(bad(format!("unknown split `{split}` (use train, validation or test)"))),
        };
        // The host refuses image paths that are absolute or contain `..`; say so early.
        if path.is_empty() || path.starts_with('/') || path.contains('\\') || path.split('/').any(|part| part == "..") {
            return Err(bad(format!(
                "path `{path}` must be relative to the data folder, with `/` separators and no `..`"
            )));
        }
        let label: u32 = label.parse().map_err(|_| bad(format!("label `{label}` is not a non-negative integer")))?;
        if label as usize >= class_count {
            return Err(error(
                ErrorKind::CorruptData,
                format!(
                    "`labels.csv` line {line}: label {label} is out of range; `classes.txt` names {class_count} classes (labels 0 to {})",
                    class_count - 1
                ),
            ));
        }
        if let Some(first) = seen.insert(path.to_string(), line) {
            return Err(bad(format!("path `{path}` is already listed on line {first}; each image may appear once")));
        }
        splits[slot].push(Row { path: path.to_string(), label });
    }
    Ok(splits)
}

/// The type that the `export!` macro below turns into the component's exports.
struct Component;

impl Guest for Component {
    /// The Rust type behind the WIT resource `dataset`.
    type Dataset = Index;

    fn catalog() -> Result<Vec<String>, Error> {
        // A folder without our files is not an error: we simply serve nothing from it.
        if Path::new(DATA).join("labels.csv").exists() { Ok(vec![NAME.to_string()]) } else { Ok(Vec::new()) }
    }

    fn open(name: String) -> Result<Dataset, Error> {
        if name != NAME {
            return Err(error(
                ErrorKind::InvalidArgument,
                format!("unknown dataset `{name}`; this plugin serves only `{NAME}`"),
            ));
        }
        let index = Index::load()?;
        let [train, validation, test] = &index.splits;
        log(
            LogLevel::Debug,
            &format!(
                "{NAME}: {} classes; {} train, {} validation, {} test samples",
                index.class_names.len(),
                train.len(),
                validation.len(),
                test.len()
            ),
        );
        Ok(Dataset::new(index))
    }
}

impl GuestDataset for Index {
    fn info(&self) -> DatasetInfo {
        let [train, validation, test] = &self.splits;
        // TODO: describe your dataset.
        DatasetInfo {
            name: NAME.to_string(),
            description: "Template dataset: images listed in labels.csv, classes in classes.txt".to_string(),
            task: Task::Diagnosis,
            modality: Modality::Other,
            class_names: self.class_names.clone(),
            multi_label: false,
            // All three splits, in this order; an absent split has count 0.
            splits: vec![
                SplitSize { split: Split::Train, count: train.len() as u64 },
                SplitSize { split: Split::Validation, count: validation.len() as u64 },
                SplitSize { split: Split::Test, count: test.len() as u64 },
            ],
            // Placeholder: replace with your data's real licence (an SPDX identifier where one
            // exists, such as `CC-BY-4.0`) and the citation its authors ask for.
            license: "CC0-1.0".to_string(),
            citation: String::new(),
        }
    }

    fn samples(&self, split: Split, start: u64, count: u32) -> Result<Vec<Sample>, Error> {
        let (slot, split_name) = split_slot(split);
        let rows = &self.splits[slot];
        let len = rows.len();
        // `start == len` is allowed (it gives an empty list); beyond that is the caller's error.
        let start = match usize::try_from(start) {
            Ok(start) if start <= len => start,
            _ => {
                return Err(error(
                    ErrorKind::InvalidArgument,
                    format!("start {start} is past the end of the {split_name} split ({len} samples)"),
                ));
            }
        };
        let end = start.saturating_add(count as usize).min(len);
        Ok(rows[start..end]
            .iter()
            .map(|row| Sample {
                // Ids must be unique across all splits and stable across runs: the path is both.
                id: row.path.clone(),
                // A path lets the host open and decode the image itself. `Image::Encoded`
                // (file bytes) and `Image::Raw` (decoded pixels) are the alternatives.
                image: Some(Image::Path(row.path.clone())),
                labels: vec![row.label],
                qa: None,
                attributes: Vec::new(),
            })
            .collect())
    }
}

export!(Component);
