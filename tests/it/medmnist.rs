//! The MedMNIST plugin reports the official split sizes and label names of each vendored
//! file, reads pixels and labels exactly, and turns corrupt files into clear errors; its VQA
//! views (`NAME-vqa`) ask each image one closed and one open question with the answers that
//! the documented rule gives (data/medmnist/README.md), under unique ids.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use mvb::data::{AnswerKind, ImageRef, Modality, Sample, Split, Task};
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
    assert_eq!(
        plugin.catalog().expect("catalog"),
        ["breastmnist", "breastmnist-vqa", "pneumoniamnist", "pneumoniamnist-vqa", "retinamnist", "retinamnist-vqa"]
    );
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

/// A whole split, read in batches of 64.
fn read_split(ds: &mut Dataset, split: Split, len: u64) -> Vec<Sample> {
    let mut all = Vec::new();
    while (all.len() as u64) < len {
        let batch = ds.samples(split, all.len() as u64, 64).expect("batch");
        assert!(!batch.is_empty(), "a short split");
        all.extend(batch);
    }
    all
}

/// (dataset, closed question of even / odd images, labels for which each is answered yes, open
/// question, closed questions answered yes per split): data/medmnist/README.md's rule.
type VqaRule = (&'static str, [(&'static str, &'static [u32]); 2], &'static str, [usize; 3]);
const VQA_RULES: &[VqaRule] = &[
    (
        "pneumoniamnist",
        [("Does this chest X-ray show pneumonia?", &[1]), ("Is this chest X-ray normal?", &[0])],
        "What does this chest X-ray show?",
        [2322, 269, 308],
    ),
    (
        "breastmnist",
        [
            ("Does this breast ultrasound show a malignant tumour?", &[0]),
            ("Is this breast ultrasound normal or benign?", &[1]),
        ],
        "What does this breast ultrasound show?",
        [290, 38, 84],
    ),
    (
        "retinamnist",
        [
            ("Does this fundus photograph show diabetic retinopathy?", &[1, 2, 3, 4]),
            ("Is this fundus photograph free of diabetic retinopathy?", &[0]),
        ],
        "What is the diabetic retinopathy grade of this fundus photograph?",
        [576, 56, 190],
    ),
];

#[test]
fn vqa_views_ask_each_image_a_closed_and_an_open_question_with_the_documented_answers() {
    for (name, closed, open_question, yes_counts) in VQA_RULES {
        let (_, classes, modality, sizes, _) = OFFICIAL.iter().find(|o| o.0 == *name).expect("official");
        let mut diag = open(name, &medmnist_dir()).expect("opens");
        let mut ds = open(&format!("{name}-vqa"), &medmnist_dir()).expect("opens the VQA view");
        let info = ds.info().clone();
        assert_eq!((info.task, info.modality, info.license.as_str()), (Task::Vqa, *modality, "CC-BY-4.0"), "{name}");
        let vqa_sizes = [info.splits.train, info.splits.validation, info.splits.test];
        assert_eq!(vqa_sizes, sizes.map(|n| 2 * n), "{name}: two samples per image");
        let mut ids = HashSet::new();
        for (k, split) in [Split::Train, Split::Validation, Split::Test].into_iter().enumerate() {
            let images = read_split(&mut diag, split, sizes[k]);
            let samples = read_split(&mut ds, split, vqa_sizes[k]);
            let mut yes = 0;
            for (j, s) in samples.iter().enumerate() {
                let (i, image) = (j / 2, &images[j / 2]);
                let qa = s.qa.as_ref().expect("a question");
                assert!(ids.insert(s.id.clone()), "{name}: id `{}` is repeated", s.id);
                assert_eq!(s.image, image.image, "{name} {}: the image of its diagnosis sample", s.id);
                assert_eq!(s.labels, image.labels, "{name} {}", s.id);
                let label = image.labels[0];
                if j % 2 == 0 {
                    let (question, yes_labels) = closed[i % 2];
                    let want = if yes_labels.contains(&label) { "yes" } else { "no" };
                    assert_eq!(s.id, format!("{}-closed", image.id));
                    assert_eq!(
                        (qa.kind, qa.question.as_str(), qa.answer.as_str()),
                        (AnswerKind::Closed, question, want)
                    );
                    yes += usize::from(want == "yes");
                } else {
                    assert_eq!(s.id, format!("{}-open", image.id));
                    let want = classes[label as usize];
                    assert_eq!(
                        (qa.kind, qa.question.as_str(), qa.answer.as_str()),
                        (AnswerKind::Open, *open_question, want)
                    );
                }
            }
            assert_eq!(yes, yes_counts[k], "{name} {split:?}: closed questions answered yes");
        }
    }
}

#[test]
fn a_vqa_view_past_its_end_and_of_an_unofficial_file_are_refused() {
    let mut ds = open("breastmnist-vqa", &medmnist_dir()).expect("opens");
    assert_eq!(ds.samples(Split::Test, 310, 10).expect("the last two").len(), 2);
    let err = ds.samples(Split::Test, 313, 10).expect_err("past the end");
    assert!(err.to_string().contains("312 samples"), "{err}");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(medmnist_dir().join("breastmnist.npz"), dir.path().join("mine.npz")).expect("copy");
    let mut plugin = host().dataset(&medmnist(), Some(dir.path())).expect("starts");
    assert_eq!(plugin.catalog().expect("catalog"), ["mine"], "no VQA view without question templates");
    let err = open("mine-vqa", dir.path()).expect_err("no such view");
    assert!(err.to_string().contains("mine-vqa.npz"), "{err}");
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

/// `breastmnist.npz` rewritten with its members stored (not deflated), for byte surgery.
fn stored_copy(dir: &Path) -> Vec<u8> {
    let src = std::fs::File::open(medmnist_dir().join("breastmnist.npz")).expect("open");
    let mut zin = zip::ZipArchive::new(src).expect("zip");
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..zin.len() {
        let mut member = zin.by_index(i).expect("member");
        let name = member.name().expect("a member name").to_string();
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).expect("read");
        out.start_file(name, opts).expect("entry");
        std::io::Write::write_all(&mut out, &bytes).expect("write");
    }
    let bytes = out.finish().expect("finish").into_inner();
    std::fs::write(dir.join("breastmnist.npz"), &bytes).expect("write");
    bytes
}

#[test]
fn a_flipped_byte_inside_an_array_fails_its_checksum() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bytes = stored_copy(dir.path());
    assert!(open("breastmnist", dir.path()).is_ok(), "the stored copy reads");
    let name = b"test_images.npy";
    let at = bytes.windows(name.len()).position(|w| w == name).expect("local header") + name.len() + 1000;
    bytes[at] ^= 0x10;
    std::fs::write(dir.path().join("breastmnist.npz"), &bytes).expect("write");
    let text = open("breastmnist", dir.path()).expect_err("a damaged member").to_string();
    assert!(text.contains("test_images.npy") && text.contains("checksum"), "{text}");
}

/// A version-1 `.npy` file: `dict` (the header's Python literal) padded as numpy pads it.
fn npy(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.to_owned();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn a_fortran_order_array_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::create(dir.path().join("fort.npz")).expect("create");
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default();
    let images = npy("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3, 3), }", &[7; 18]);
    let labels = npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1), }", &[0, 1]);
    for (name, bytes) in [("test_images.npy", images), ("test_labels.npy", labels)] {
        zip.start_file(name, opts).expect("entry");
        std::io::Write::write_all(&mut zip, &bytes).expect("write");
    }
    zip.finish().expect("finish");
    let text = open("fort", dir.path()).expect_err("Fortran order").to_string();
    assert!(text.contains("fort.npz") && text.contains("Fortran order"), "{text}");
}
