//! What mvb's first-party dataset plugins share (`vqa-rad`, `slake`, `pathvqa`, `imagefolder`,
//! `csv`, ...): the bindings of the WIT world `dataset` (`wit/dataset.wit`) with one export
//! macro, reads of the read-only `/data` folder with clear errors, CSV and JSON readers whose
//! every error names the file, line and column, and an opened dataset held in memory.
//!
//! A plugin crate implements [`Family`] (what its folder holds, and how to read it) and calls
//! [`serve!`]; everything that crosses the sandbox boundary is built here.

pub mod csv;
pub mod fs;
pub mod harvard;
pub mod json;
#[cfg(feature = "npz")]
pub mod npz;
pub mod split_file;
pub mod vqa;

wit_bindgen::generate!({
    world: "dataset",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "export_dataset_world",
    default_bindings_module: "mvb_dataset_common",
});

pub use exports::mvb::plugin::dataset_api::{Dataset, Guest, GuestDataset};
pub use mvb::plugin::host::{LogLevel, log};
pub use mvb::plugin::types::{
    AnswerKind, Attribute, DatasetInfo, Error, ErrorKind, Image, Modality, Pixels, Qa, Sample, Split, SplitSize, Task,
};

/// Builds the `error` every fallible call returns.
pub fn error(kind: ErrorKind, message: impl Into<String>) -> Error {
    Error { kind, message: message.into() }
}

/// A `corrupt-data` error.
pub fn corrupt(message: impl Into<String>) -> Error {
    error(ErrorKind::CorruptData, message)
}

/// The three splits in the contract's order, with the names used in messages.
pub const SPLITS: [(Split, &str); 3] =
    [(Split::Train, "train"), (Split::Validation, "validation"), (Split::Test, "test")];

/// The slot of `split` in `[train, validation, test]`.
pub fn slot(split: Split) -> usize {
    match split {
        Split::Train => 0,
        Split::Validation => 1,
        Split::Test => 2,
    }
}

/// The split called `name` (`train`, `validation`/`val`/`valid`, `test`), if any.
pub fn split_named(name: &str) -> Option<Split> {
    match name.trim().to_ascii_lowercase().as_str() {
        "train" | "training" => Some(Split::Train),
        "validation" | "val" | "valid" | "validate" => Some(Split::Validation),
        "test" | "testing" => Some(Split::Test),
        _ => None,
    }
}

/// One attribute `key` = `value`.
pub fn attr(key: &str, value: impl Into<String>) -> Attribute {
    Attribute { key: key.to_owned(), value: value.into() }
}

/// A diagnosis sample: one image with one label.
pub fn diagnosis(id: impl Into<String>, image: Image, label: u32, attributes: Vec<Attribute>) -> Sample {
    Sample { id: id.into(), image: Some(image), labels: vec![label], qa: None, attributes }
}

/// What a family plugin tells [`serve!`]: the datasets its folder holds, and how to open one.
pub trait Family {
    /// The dataset names found in `/data` (empty, never an error, for a foreign folder).
    fn catalog() -> Result<Vec<String>, Error>;
    /// Reads one dataset whole.
    fn open(name: &str) -> Result<Loaded, Error>;
}

/// A family that serves one dataset, found where [`Single::locate`] says; serve it as
/// `serve!(SingleOf<MyDataset>)`.
pub trait Single {
    /// The dataset's name.
    const NAME: &'static str;
    /// The folder (relative to the data folder) holding the dataset's files, if they are there.
    fn locate() -> Option<&'static str>;
    /// Reads the dataset from `base`, the folder [`Single::locate`] found.
    fn read(base: &str) -> Result<Loaded, Error>;
}

/// The [`Family`] of a [`Single`] dataset.
#[derive(Debug)]
pub struct SingleOf<T>(std::marker::PhantomData<T>);

impl<T: Single> Family for SingleOf<T> {
    fn catalog() -> Result<Vec<String>, Error> {
        Ok(T::locate().map(|_| vec![T::NAME.to_owned()]).unwrap_or_default())
    }

    fn open(name: &str) -> Result<Loaded, Error> {
        if name != T::NAME {
            let message = format!("unknown dataset `{name}`; this plugin serves only `{}`", T::NAME);
            return Err(error(ErrorKind::InvalidArgument, message));
        }
        T::read(T::locate().unwrap_or(""))
    }
}

/// A dataset's info with no split sizes yet ([`Loaded::new`] fills them in); `license` is an
/// SPDX id where one exists.
pub fn info(
    name: &str,
    description: impl Into<String>,
    task: Task,
    modality: Modality,
    class_names: Vec<String>,
    license: &str,
    citation: &str,
) -> DatasetInfo {
    DatasetInfo {
        name: name.to_owned(),
        description: description.into(),
        task,
        modality,
        class_names,
        multi_label: false,
        splits: Vec::new(),
        license: license.to_owned(),
        citation: citation.to_owned(),
    }
}

/// Turns an image path of a sample into the image the host receives (for files the host cannot
/// decode itself, such as arrays in `.npz` files).
pub type Decode = fn(&str) -> Result<Image, Error>;

/// An opened dataset, held in memory: its info and the samples of each split, in order.
#[derive(Debug)]
pub struct Loaded {
    info: DatasetInfo,
    splits: [Vec<Sample>; 3],
    decode: Option<Decode>,
}

impl Loaded {
    /// A dataset whose split sizes are those of `splits` (train, validation, test). Checks that
    /// sample ids are unique across splits.
    pub fn new(mut info: DatasetInfo, splits: [Vec<Sample>; 3]) -> Result<Loaded, Error> {
        let mut ids = std::collections::HashSet::new();
        if let Some(s) = splits.iter().flatten().find(|s| !ids.insert(s.id.as_str())) {
            return Err(corrupt(format!("sample id `{}` occurs twice; each sample must be listed once", s.id)));
        }
        info.splits =
            SPLITS.iter().zip(&splits).map(|(&(split, _), s)| SplitSize { split, count: s.len() as u64 }).collect();
        Ok(Loaded { info, splits, decode: None })
    }

    /// Converts each sample's `path` image with `decode` when a batch is read.
    pub fn with_decode(mut self, decode: Decode) -> Loaded {
        self.decode = Some(decode);
        self
    }

    /// The samples of one split.
    pub fn split(&self, split: Split) -> &[Sample] {
        &self.splits[slot(split)]
    }
}

impl GuestDataset for Loaded {
    fn info(&self) -> DatasetInfo {
        self.info.clone()
    }

    fn samples(&self, split: Split, start: u64, count: u32) -> Result<Vec<Sample>, Error> {
        let rows = self.split(split);
        let len = rows.len();
        let start = match usize::try_from(start) {
            Ok(s) if s <= len => s,
            _ => {
                let name = SPLITS[slot(split)].1;
                return Err(error(
                    ErrorKind::InvalidArgument,
                    format!("start {start} is past the end of the {name} split ({len} samples)"),
                ));
            }
        };
        let end = start.saturating_add(count as usize).min(len);
        let mut out = rows[start..end].to_vec();
        if let Some(decode) = self.decode {
            for sample in &mut out {
                if let Some(Image::Path(p)) = &sample.image {
                    sample.image = Some(decode(p)?);
                }
            }
        }
        Ok(out)
    }
}

/// Exports a [`Family`] as the plugin's `dataset-api`: `serve!(MyFamily);` at the crate root.
#[macro_export]
macro_rules! serve {
    ($family:ty) => {
        struct Component;

        impl $crate::Guest for Component {
            type Dataset = $crate::Loaded;

            fn catalog() -> Result<Vec<String>, $crate::Error> {
                <$family as $crate::Family>::catalog()
            }

            fn open(name: String) -> Result<$crate::Dataset, $crate::Error> {
                <$family as $crate::Family>::open(&name).map($crate::Dataset::new)
            }
        }

        $crate::export_dataset_world!(Component with_types_in $crate);
    };
}
