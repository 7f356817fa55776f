//! The MedMNIST plugin reports the official split sizes and label names of each vendored
//! file, reads pixels and labels exactly, and turns corrupt files into clear errors.

use std::io::Read;
use std::path::Path;

use mvb::data::{ImageRef, Modality, Split};
use mvb::plugin::{Dataset, PluginError};

use crate::common::{host, medmnist, medmnist_dir};

fn open(name: &str, dir: &Path) -> Result<Dataset, PluginError> {
    host().dataset(&medmnist(), Some(dir))?.into_dataset(name)
}

/// (name, class names, modality, train/val/test sizes, test class counts) from the MedMNIST
/// v2 INFO table and `data/medmnist/README.md`.
type Official = (&'static str, &'static [&'static str], Modality, [u64; 3], &'static [usize]);
const OFFICIAL: &[Official] = &[
    ("pneumoniamnist", &["normal", "pneumonia"], Modality::Radiology, [4708, 524, 624], &[234, 390]),
    ("breastmnist", &["malignant", "normal, benign"], Modality::Radiology, [546, 78, 156], &[42, 114]),
    ("retinamnist", &["0", "1", "2", "3", "4"], Modality::Ophthalmology, [1080, 120, 400], &[174, 46, 92, 68, 20]),
];

#[test]
fn catalog_lists_the_vendored_files() {
    let mut plugin = host().dataset(&medmnist(), Some(&medmnist_dir())).expect("starts");
    assert_eq!(plugin.catalog().expect("catalog"), ["breastmnist", "pneumoniamnist", "retinamnist"]);
}

#[test]
fn official_split_sizes_label_names_and_class_counts() {
    for (name, classes, modality, sizes, test_counts) in OFFICIAL {
        let mut ds = open(name, &medmnist_dir()).expect("opens");
        let info = ds.info().clone();
        assert_eq!(info.class_names, *classes, "{name}");
        assert_eq!(info.modality, *modality, "{name}");
        assert_eq!([info.splits.train, info.splits.validation, info.splits.test], *sizes, "{name}");
        assert_eq!(info.license, "CC-BY-4.0");
        let mut counts = vec![0usize; classes.len()];
        let mut start = 0;
        while start < info.splits.test {
            let batch = ds.samples(Split::Test, start, 64).expect("batch");
            for s in &batch {
                counts[s.labels[0] as usize] += 1;
            }
            start += batch.len() as u64;
        }
        assert_eq!(counts, *test_counts, "{name} test class counts");
    }
}

/// Reads `{split}_images.npy` natively with zip + npyz, as a reference.
fn native_images(file: &Path, entry: &str) -> (Vec<u64>, Vec<u8>) {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(file).expect("open")).expect("zip");
    let mut bytes = Vec::new();
    zip.by_name(entry).expect("entry").read_to_end(&mut bytes).expect("read");
    let npy = npyz::NpyFile::new(&bytes[..]).expect("npy");
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<u8>().expect("u8"))
}

#[test]
fn pixels_match_a_native_read() {
    for (name, split, entry) in
        [("retinamnist", Split::Validation, "val_images.npy"), ("breastmnist", Split::Train, "train_images.npy")]
    {
        let (shape, pixels) = native_images(&medmnist_dir().join(format!("{name}.npz")), entry);
        let per_image: u64 = shape[1..].iter().product();
        let mut ds = open(name, &medmnist_dir()).expect("opens");
        let samples = ds.samples(split, 5, 3).expect("samples");
        for (k, s) in samples.iter().enumerate() {
            let Some(ImageRef::Raw(px)) = &s.image else { panic!("raw pixels expected") };
            assert_eq!((u64::from(px.height), u64::from(px.width)), (shape[1], shape[2]));
            assert_eq!(px.channels, if shape.len() == 4 { shape[3] as u8 } else { 1 });
            let at = ((5 + k) as u64 * per_image) as usize;
            assert_eq!(px.data, pixels[at..at + per_image as usize], "{name} sample {}", s.id);
        }
    }
}

#[test]
fn start_past_the_end_is_an_argument_error() {
    let mut ds = open("breastmnist", &medmnist_dir()).expect("opens");
    assert!(ds.samples(Split::Test, 156, 10).expect("at the end").is_empty());
    let err = ds.samples(Split::Test, 157, 10).expect_err("past the end");
    assert!(err.to_string().contains("past the end"), "{err}");
}

fn corrupt_scene(name: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(format!("{name}.npz")), bytes).expect("write");
    dir
}

#[test]
fn a_truncated_npz_is_a_clear_error() {
    let good = std::fs::read(medmnist_dir().join("pneumoniamnist.npz")).expect("read");
    let dir = corrupt_scene("pneumoniamnist", &good[..good.len() / 2]);
    let err = open("pneumoniamnist", dir.path()).expect_err("truncated");
    let text = err.to_string();
    assert!(matches!(err, PluginError::Failed { .. }), "{text}");
    assert!(text.contains("pneumoniamnist.npz") && text.contains("medmnist"), "{text}");
}

#[test]
fn garbage_is_a_clear_error() {
    let dir = corrupt_scene("noise", &[0x50, 0x4b, 0x03, 0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let err = open("noise", dir.path()).expect_err("garbage");
    assert!(matches!(err, PluginError::Failed { .. }) && err.to_string().contains("noise.npz"), "{err}");
}

#[test]
fn a_corrupt_array_inside_a_valid_zip_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::create(dir.path().join("odd.npz")).expect("create");
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("test_images.npy", opts).expect("entry");
    std::io::Write::write_all(&mut zip, b"\x93NUMPY\x01\x00garbage header").expect("write");
    zip.finish().expect("finish");
    let err = open("odd", dir.path()).expect_err("bad npy");
    let text = err.to_string();
    assert!(text.contains("odd.npz") && text.contains("test_images.npy"), "{text}");
}

#[test]
fn an_unknown_name_is_not_found() {
    let err = open("chestmnist", &medmnist_dir()).expect_err("absent");
    assert!(err.to_string().contains("chestmnist.npz"), "{err}");
}
