//! mvb dataset plugin for MedMNIST v2 `.npz` files (<https://medmnist.com>).
//!
//! Every `NAME.npz` in the data folder is one dataset. A file is a zip of `.npy` arrays
//! `{train,val,test}_images` (uint8, `N×H×W` or `N×H×W×C`) and `{train,val,test}_labels`
//! (uint8, `N×1`, or `N×K` 0/1 columns for multi-label sets). Arrays are decompressed once in
//! `open`; `samples` then lends each sample's pixels from them to the host without a copy
//! (see `lend`), and builds the rest of the batch in a bump arena (see `arena`).
//!
//! Each official dataset also has a VQA view, `NAME-vqa` (see `vqa`): the same images and
//! splits, each asked one closed yes/no question and one open question templated from its
//! official label, e.g. for PneumoniaMNIST "Does this chest X-ray show pneumonia?" (even image
//! indices) or "Is this chest X-ray normal?" (odd ones), and "What does this chest X-ray
//! show?" (answer `normal` or `pneumonia`). The templates are in `catalog`; the rule is
//! documented in `data/medmnist/README.md`.

mod arena;
mod catalog;
mod lend;
mod vqa;

use std::io::{Cursor, Read};

use catalog::Known;
use exports::mvb::plugin::dataset_api::{Dataset, Guest, GuestDataset};
use mvb::plugin::types::{DatasetInfo, Error, ErrorKind, Image, Pixels, Sample, Split};
use vqa::Templates;

wit_bindgen::generate!({ world: "dataset", path: "../../wit" });

/// The plugin's global allocator: the call arena, on wasm only (host builds, for tests, keep
/// the system allocator).
#[cfg(target_family = "wasm")]
#[global_allocator]
// SAFETY: wasm32 without the atomics feature (checked below) has no way to start a thread.
static ARENA: arena::SingleThreaded = unsafe { arena::SingleThreaded::new() };

#[cfg(all(target_family = "wasm", target_feature = "atomics"))]
compile_error!("the call arena assumes a single-threaded target");

/// Serves the allocations of one batch from the arena until the guard drops (`None` where
/// the arena is not the global allocator). The `samples` export holds one while it builds and
/// lowers a batch (see `lend::api`).
fn batch_scope() -> Option<arena::BatchScope<'static>> {
    #[cfg(target_family = "wasm")]
    return Some(ARENA.batch());
    #[cfg(not(target_family = "wasm"))]
    return None;
}

/// The folder the host preopens for this plugin.
const ROOT: &str = "/data";

struct Component;

impl Guest for Component {
    type Dataset = MedMnist;

    fn catalog() -> Result<Vec<String>, Error> {
        let entries = std::fs::read_dir(ROOT).map_err(|e| io_error(ROOT, &e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(ROOT, &e))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else { continue };
            if let Some(stem) = file_name.strip_suffix(".npz") {
                names.push(stem.to_owned());
                if catalog::lookup(stem).is_some() {
                    names.push(format!("{stem}{}", vqa::SUFFIX));
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn open(name: String) -> Result<Dataset, Error> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(error(ErrorKind::InvalidArgument, format!("`{name}` is not a dataset name")));
        }
        let view = catalog::lookup_vqa(&name);
        let file = format!("{}.npz", view.map_or(name.as_str(), |(base, _)| base));
        let path = format!("{ROOT}/{file}");
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => error(
                ErrorKind::NotFound,
                format!("no file `{file}` in the data folder (the catalog lists what is there)"),
            ),
            _ => io_error(&file, &e),
        })?;
        let dataset = match view {
            Some((base, known)) => MedMnist::parse(base, &file, bytes)?.into_vqa(&name, known),
            None => MedMnist::parse(&name, &file, bytes)?,
        };
        Ok(Dataset::new(dataset))
    }
}

/// One split's arrays, decompressed.
#[derive(Default)]
struct SplitData {
    /// `len × height × width × channels` bytes.
    pixels: Vec<u8>,
    /// Label indices per sample.
    labels: Vec<Vec<u32>>,
}

/// An opened MedMNIST file.
struct MedMnist {
    info: DatasetInfo,
    width: u32,
    height: u32,
    channels: u8,
    splits: [SplitData; 3],
    /// For a VQA view: the questions and the class names that answer the open ones.
    vqa: Option<(&'static Templates, &'static [&'static str])>,
}

impl MedMnist {
    fn parse(name: &str, file: &str, bytes: Vec<u8>) -> Result<Self, Error> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| error(ErrorKind::CorruptData, format!("`{file}` is not a readable .npz (zip) file: {e}")))?;
        let known = catalog::lookup(name);
        let mut shape: Option<(u32, u32, u8)> = None;
        let mut label_columns: Option<usize> = None;
        let mut splits: [SplitData; 3] = Default::default();
        for (slot, prefix) in ["train", "val", "test"].iter().enumerate() {
            let images = format!("{prefix}_images.npy");
            let labels = format!("{prefix}_labels.npy");
            let Some((image_shape, pixels)) = read_u8_array(&mut zip, file, &images)? else {
                continue;
            };
            let (n, h, w, c) = match image_shape[..] {
                [n, h, w] => (n, h, w, 1),
                [n, h, w, c] if matches!(c, 1 | 3 | 4) => (n, h, w, c),
                _ => {
                    return Err(error(
                        ErrorKind::CorruptData,
                        format!(
                            "`{file}`: `{images}` has shape {image_shape:?}; expected N×H×W or N×H×W×C with C in 1, 3, 4"
                        ),
                    ));
                }
            };
            let this = (to_u32(h, file, &images)?, to_u32(w, file, &images)?, c as u8);
            if *shape.get_or_insert(this) != this {
                return Err(error(
                    ErrorKind::CorruptData,
                    format!("`{file}`: `{images}` has images of another size than the other splits"),
                ));
            }
            let Some((label_shape, raw_labels)) = read_u8_array(&mut zip, file, &labels)? else {
                return Err(error(ErrorKind::CorruptData, format!("`{file}` has `{images}` but no `{labels}`")));
            };
            let columns = match label_shape[..] {
                [m] if m == n => 1usize,
                [m, k] if m == n && k >= 1 => k as usize,
                _ => {
                    return Err(error(
                        ErrorKind::CorruptData,
                        format!("`{file}`: `{labels}` has shape {label_shape:?}; expected {n}×1 or {n}×K"),
                    ));
                }
            };
            if *label_columns.get_or_insert(columns) != columns {
                return Err(error(
                    ErrorKind::CorruptData,
                    format!("`{file}`: `{labels}` has {columns} columns, unlike the other splits"),
                ));
            }
            let labels = decode_labels(&raw_labels, columns, known, file, &labels)?;
            splits[slot] = SplitData { pixels, labels };
        }
        let Some((height, width, channels)) = shape else {
            return Err(error(ErrorKind::CorruptData, format!("`{file}` holds no `*_images.npy` array")));
        };
        let columns = label_columns.unwrap_or(1);
        let info = catalog::info(name, known, columns, &splits);
        Ok(MedMnist { info, width, height, channels, splits, vqa: None })
    }

    /// The VQA view `name` of this (official, single-label) dataset.
    fn into_vqa(self, name: &str, known: &'static Known) -> Self {
        let info = catalog::vqa_info(name, self.info);
        MedMnist { info, vqa: Some((&known.vqa, known.classes)), ..self }
    }

    fn split(&self, split: Split) -> &SplitData {
        match split {
            Split::Train => &self.splits[0],
            Split::Validation => &self.splits[1],
            Split::Test => &self.splits[2],
        }
    }
}

impl GuestDataset for MedMnist {
    fn info(&self) -> DatasetInfo {
        self.info.clone()
    }

    fn samples(&self, split: Split, start: u64, count: u32) -> Result<Vec<Sample>, Error> {
        let data = self.split(split);
        let per_image = if self.vqa.is_some() { 2 } else { 1 };
        let len = per_image * data.labels.len() as u64;
        if start > len {
            return Err(error(
                ErrorKind::InvalidArgument,
                format!("start {start} is past the end of the {} split ({len} samples)", split_name(split)),
            ));
        }
        let (start, end) = (start as usize, (start + u64::from(count)).min(len) as usize);
        if let Some((templates, classes)) = self.vqa {
            return Ok(self.vqa_samples(split, start..end, templates, classes));
        }
        let image_len = self.image_len();
        let pixels = &data.pixels[start * image_len..end * image_len];
        let loan = lend::Loan::new(pixels, self.width, self.height, self.channels);
        let prefix = split_name(split);
        let samples = (start..end)
            .map(|i| Sample {
                id: sample_id(prefix, i),
                image: Some(Image::Raw(Pixels {
                    width: self.width,
                    height: self.height,
                    channels: self.channels,
                    // Lent below, when there is a loan: filled in by the export (see `lend`).
                    data: match loan {
                        Some(_) => Vec::new(),
                        None => data.pixels[i * image_len..(i + 1) * image_len].to_vec(),
                    },
                })),
                labels: data.labels[i].clone(),
                qa: None,
                attributes: Vec::new(),
            })
            .collect();
        if let Some(loan) = loan {
            // SAFETY: the images are the batch's, in order, each an empty `raw`; the array
            // belongs to this dataset, which the host cannot drop before the batch's
            // post-return, and nothing writes it after `open`.
            unsafe { lend::lend(loan) };
        }
        Ok(samples)
    }
}

impl MedMnist {
    fn image_len(&self) -> usize {
        self.width as usize * self.height as usize * usize::from(self.channels)
    }

    /// VQA samples `range` of `split` (two per image: see `vqa`), their pixels copied.
    fn vqa_samples(
        &self,
        split: Split,
        range: std::ops::Range<usize>,
        templates: &Templates,
        classes: &[&str],
    ) -> Vec<Sample> {
        let data = self.split(split);
        let image_len = self.image_len();
        let prefix = split_name(split);
        range
            .map(|j| {
                let i = j / 2;
                let label = data.labels[i].first().copied().unwrap_or(0);
                Sample {
                    id: vqa::sample_id(sample_id(prefix, i), j),
                    image: Some(Image::Raw(Pixels {
                        width: self.width,
                        height: self.height,
                        channels: self.channels,
                        data: data.pixels[i * image_len..(i + 1) * image_len].to_vec(),
                    })),
                    labels: data.labels[i].clone(),
                    qa: Some(vqa::qa(templates, classes, j, label)),
                    attributes: Vec::new(),
                }
            })
            .collect()
    }
}

/// `{prefix}-{index}`, without the formatting machinery (this runs once per sample).
fn sample_id(prefix: &str, index: usize) -> String {
    let mut digits = [0u8; 20];
    let (mut n, mut at) = (index, digits.len());
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut id = String::with_capacity(prefix.len() + 1 + digits.len() - at);
    id.push_str(prefix);
    id.push('-');
    id.extend(digits[at..].iter().map(|&d| char::from(d)));
    id
}

/// A `.npy` array's shape and uint8 data.
type Array = (Vec<u64>, Vec<u8>);

/// Reads `entry` as a uint8 `.npy` array; `None` when the zip has no such entry.
fn read_u8_array<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    file: &str,
    entry: &str,
) -> Result<Option<Array>, Error> {
    let mut reader = match zip.by_name(entry) {
        Ok(reader) => reader,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(error(ErrorKind::CorruptData, format!("`{file}`: cannot read `{entry}`: {e}"))),
    };
    let corrupt = |what: String| error(ErrorKind::CorruptData, format!("`{file}`: `{entry}`: {what}"));
    let npy = npyz::NpyFile::new(&mut reader).map_err(|e| corrupt(format!("not a valid .npy array: {e}")))?;
    let shape = npy.shape().to_vec();
    if npy.order() == npyz::Order::Fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(corrupt("is stored in Fortran order (`fortran_order: True`); save it in C order".into()));
    }
    let expected: u64 = shape.iter().product();
    let dtype = npy.dtype();
    let data =
        npy.into_vec::<u8>().map_err(|e| corrupt(format!("expected uint8 data, found {}: {e}", dtype.descr())))?;
    if data.len() as u64 != expected {
        return Err(corrupt(format!("holds {} values for shape {shape:?}", data.len())));
    }
    // The zip reader checks the member's CRC-32 when it reaches the end: read to it, so that a
    // flipped byte is an error rather than a changed pixel.
    std::io::copy(&mut reader, &mut std::io::sink())
        .map_err(|e| corrupt(format!("fails its checksum (the file is damaged): {e}")))?;
    Ok(Some((shape, data)))
}

/// Turns `N×columns` label bytes into label-index lists, checking them against the class count.
fn decode_labels(
    raw: &[u8],
    columns: usize,
    known: Option<&Known>,
    file: &str,
    entry: &str,
) -> Result<Vec<Vec<u32>>, Error> {
    let classes = known.map(|k| k.classes.len());
    raw.chunks(columns)
        .enumerate()
        .map(|(row, values)| {
            if columns == 1 {
                let label = u32::from(values[0]);
                match classes {
                    Some(n) if label as usize >= n => Err(error(
                        ErrorKind::CorruptData,
                        format!("`{file}`: `{entry}` row {row} has label {label}, but the dataset has {n} classes"),
                    )),
                    _ => Ok(vec![label]),
                }
            } else {
                values
                    .iter()
                    .enumerate()
                    .filter_map(|(class, &v)| match v {
                        0 => None,
                        1 => Some(Ok(class as u32)),
                        _ => Some(Err(error(
                            ErrorKind::CorruptData,
                            format!(
                                "`{file}`: `{entry}` row {row} column {class} is {v}; multi-label columns hold 0 or 1"
                            ),
                        ))),
                    })
                    .collect()
            }
        })
        .collect()
}

fn to_u32(v: u64, file: &str, entry: &str) -> Result<u32, Error> {
    u32::try_from(v)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| error(ErrorKind::CorruptData, format!("`{file}`: `{entry}` has an image side of {v}")))
}

fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Validation => "val",
        Split::Test => "test",
    }
}

fn error(kind: ErrorKind, message: String) -> Error {
    Error { kind, message }
}

fn io_error(what: &str, e: &std::io::Error) -> Error {
    error(ErrorKind::Io, format!("cannot read `{what}`: {e}"))
}

// The exports of `export!(Component)`, with `samples` wrapped to lend its pixels (see `lend`).
exports::mvb::plugin::dataset_api::__export_mvb_plugin_dataset_api_0_1_0_cabi!(
    Component with_types_in crate::lend::api
);
