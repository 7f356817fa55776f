//! The dataset plugins of MedVLMBench's datasets read tiny synthetic copies in their publishers'
//! layouts (`tests/fixtures/datasets/<name>/`, made by `tools/make_dataset_fixtures.py`) with
//! the right splits, labels, open/closed kinds and attributes; a missing file, a missing column
//! or field and a bad row each give one error naming the file, the line and the column.

use std::path::{Path, PathBuf};

use mvb::data::{AnswerKind, Sample, Split, load_image};
use mvb::plugin::{Builtin, Dataset};

use crate::common::{host, root};

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/datasets").join(name)
}

/// Opens `dataset` with the built-in `plugin` on `dir`.
fn open(plugin: &str, dir: &Path, dataset: &str) -> Result<Dataset, String> {
    let source = Builtin::find(plugin).expect("a built-in").source();
    let plugin = host().dataset(&source, Some(dir)).expect("starts");
    plugin.into_dataset(dataset).map_err(|e| e.to_string())
}

/// Opens the fixture of the built-in `plugin`'s dataset `dataset` and checks its split sizes
/// (train, validation, test).
fn opened(plugin: &str, dataset: &str, sizes: (u64, u64, u64)) -> Dataset {
    let ds = open(plugin, &fixture(plugin), dataset).expect("opens");
    let s = ds.info().splits;
    assert_eq!((s.train, s.validation, s.test), sizes, "{plugin}");
    ds
}

/// Every sample of `split`.
fn all(ds: &mut Dataset, split: Split) -> Vec<Sample> {
    let n = ds.info().splits.get(split);
    let samples = ds.samples(split, 0, 4096).expect("samples");
    assert_eq!(samples.len() as u64, n);
    samples
}

/// (id, question, answer, kind) of each sample.
fn qa(samples: &[Sample]) -> Vec<(String, String, String, AnswerKind)> {
    samples
        .iter()
        .map(|s| {
            let qa = s.qa.as_ref().expect("a VQA sample");
            (s.id.clone(), qa.question.clone(), qa.answer.clone(), qa.kind)
        })
        .collect()
}

/// Opens a VQA fixture (named as its plugin and dataset), checks its split sizes and the
/// (id, question, answer, kind) of each test sample, and returns the dataset and test samples.
fn vqa_test(
    plugin: &str,
    sizes: (u64, u64, u64),
    expected: &[(&str, &str, &str, AnswerKind)],
) -> (Dataset, Vec<Sample>) {
    let mut ds = opened(plugin, plugin, sizes);
    let test = all(&mut ds, Split::Test);
    let expected: Vec<_> = expected.iter().map(|&(i, q, a, k)| (i.into(), q.into(), a.into(), k)).collect();
    assert_eq!(qa(&test), expected);
    (ds, test)
}

fn attr<'a>(s: &'a Sample, key: &str) -> Option<&'a str> {
    s.attributes.iter().find(|a| a.key == key).map(|a| a.value.as_str())
}

/// A writable copy of a fixture, to break.
fn copy(name: &str) -> tempfile::TempDir {
    fn walk(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                walk(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    walk(&fixture(name), dir.path());
    dir
}

/// Edits a text file of a copied fixture.
fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).expect("read");
    std::fs::write(path, f(text)).expect("write");
}

fn expect_error(plugin: &str, dir: &Path, dataset: &str, parts: &[&str]) {
    let err = open(plugin, dir, dataset).expect_err("a broken copy");
    for part in parts {
        assert!(err.contains(part), "`{part}` missing from: {err}");
    }
}

use AnswerKind::{Closed, Open};

#[test]
fn vqa_rad_rebuilds_the_hugging_face_splits() {
    let dir = fixture("vqa-rad");
    let (mut ds, test) = vqa_test(
        "vqa-rad",
        (2, 0, 3),
        &[
            ("qid-4", "is there a fracture?", "yes", Closed),
            ("qid-5", "how many lesions are there?", "2", Open),
            ("qid-6", "is the heart enlarged?", "no", Closed),
        ],
    );
    assert_eq!((attr(&test[0], "organ"), attr(&test[0], "question_type")), (Some("CHEST"), Some("PRES")));
    // qid 1 repeats a test triplet and qid 2 repeats qid 1: both leave train.
    let train = all(&mut ds, Split::Train);
    assert_eq!(qa(&train)[1], ("qid-8".into(), "where is the mass?".into(), "left lung".into(), Open));
    let px = load_image(test[1].image.as_ref().expect("image"), &dir).expect("decodes");
    assert_eq!((px.width, px.height), (8, 8));
}

#[test]
fn slake_keeps_english_and_its_own_answer_type() {
    let mut ds = opened("slake", "slake", (2, 1, 4));
    let test = all(&mut ds, Split::Test);
    let kinds: Vec<_> = qa(&test).into_iter().map(|(id, _, a, k)| (id, a, k)).collect();
    let expected =
        [("test-5", "Left", Open), ("test-6", "Left", Closed), ("test-7", "No", Closed), ("test-9", "2", Open)];
    let expected: Vec<_> = expected.iter().map(|&(i, a, k)| (i.into(), a.into(), k)).collect();
    assert_eq!(kinds, expected);
    assert_eq!(
        (attr(&test[0], "modality"), attr(&test[0], "location"), attr(&test[0], "content_type")),
        (Some("MRI"), Some("Abdomen"), Some("Position"))
    );
}

/// PathVQA's test split: the repeated triplet dropped, the text cleaned.
const PATHVQA_TEST: [(&str, &str, &str, AnswerKind); 3] = [
    ("test-0", "is this a tumor?", "yes", Closed),
    ("test-1", "what is present?", "necrosis", Open),
    ("test-2", "does this show fibrosis?", "no", Closed),
];

#[test]
fn pathvqa_reads_the_pickles_of_every_protocol() {
    let (mut ds, _) = vqa_test("pathvqa", (2, 1, 3), &PATHVQA_TEST);
    let val = all(&mut ds, Split::Validation);
    assert_eq!(qa(&val)[0].2, "yes");
}

#[test]
fn vqa_readers_name_the_file_line_and_field_at_fault() {
    let json = "VQA_RAD Dataset Public.json";
    let dir = copy("vqa-rad");
    std::fs::remove_file(dir.path().join("VQA_RAD Image Folder/synpic3.jpg")).expect("rm");
    expect_error(
        "vqa-rad",
        dir.path(),
        "vqa-rad",
        &[json, "line 82, column 5 (entry 5)", "`image_name`", "synpic3.jpg"],
    );

    let dir = copy("vqa-rad");
    edit(&dir.path().join(json), |t| t.replacen("\"answer\": \"no\",", "", 1));
    expect_error("vqa-rad", dir.path(), "vqa-rad", &[json, "line 82, column 5", "field `answer`: missing"]);

    let dir = copy("slake");
    edit(&dir.path().join("test.json"), |t| t.replacen("\"Left\"", "[1]", 1));
    expect_error("slake", dir.path(), "slake", &["`test.json` line 2, column 2 (entry 0)", "field `answer`"]);

    let dir = copy("slake");
    std::fs::remove_file(dir.path().join("validate.json")).expect("rm");
    expect_error("slake", dir.path(), "slake", &["`validate.json` is missing"]);

    let dir = copy("pathvqa");
    std::fs::write(dir.path().join("pvqa/qas/train/train_qa.pkl"), b"\x80\x04garbage").expect("write");
    expect_error("pathvqa", dir.path(), "pathvqa", &["`pvqa/qas/train/train_qa.pkl`: byte 2"]);
}

/// (id, label) of each sample.
fn labels(samples: &[Sample]) -> Vec<(String, u32)> {
    samples.iter().map(|s| (s.id.clone(), s.labels[0])).collect()
}

fn pairs(expected: &[(&str, u32)]) -> Vec<(String, u32)> {
    expected.iter().map(|&(id, l)| (id.to_owned(), l)).collect()
}

#[test]
fn imagefolder_takes_classes_from_folder_names() {
    let mut ds = opened("imagefolder", "imagefolder", (3, 1, 2));
    assert_eq!(ds.info().class_names, ["benign", "malignant"]);
    let train = all(&mut ds, Split::Train);
    assert_eq!(
        labels(&train),
        pairs(&[("train/benign/b.png", 0), ("train/benign/c.jpg", 0), ("train/malignant/a.png", 1)])
    );
    assert_eq!(labels(&all(&mut ds, Split::Test)), pairs(&[("test/benign/f.png", 0), ("test/malignant/e.png", 1)]));
}

#[test]
fn csv_reads_labels_splits_and_attributes() {
    let mut ds = opened("csv", "lesions", (2, 0, 2));
    assert_eq!(ds.info().class_names, ["benign", "malignant"]);
    let train = all(&mut ds, Split::Train);
    assert_eq!(labels(&train), pairs(&[("images/a.png", 1), ("images/b.png", 0)]));
    assert_eq!((attr(&train[0], "sex"), attr(&train[0], "age")), (Some("F"), Some("63")));
    let test = all(&mut ds, Split::Test);
    assert_eq!(labels(&test), pairs(&[("images/c.png", 0), ("images/d.png", 1)]));
    assert_eq!(attr(&test[0], "age"), None, "an empty cell is no attribute");

    // Without classes.txt the classes are the distinct labels, sorted.
    let dir = copy("csv");
    std::fs::remove_file(dir.path().join("classes.txt")).expect("rm");
    let mut ds = open("csv", dir.path(), "lesions").expect("opens");
    assert_eq!(ds.info().class_names, ["0", "1", "benign", "malignant"]);
    assert_eq!(labels(&all(&mut ds, Split::Train)), pairs(&[("images/a.png", 3), ("images/b.png", 0)]));
}

#[test]
fn csv_errors_name_the_file_line_and_column() {
    let dir = copy("csv");
    std::fs::remove_file(dir.path().join("images/d.png")).expect("rm");
    expect_error("csv", dir.path(), "lesions", &["`lesions.csv` line 5, column `path`", "images/d.png"]);

    let dir = copy("csv");
    edit(&dir.path().join("lesions.csv"), |t| t.replace("images/c.png,benign,test", "images/c.png,cyst,test"));
    expect_error("csv", dir.path(), "lesions", &["`lesions.csv` line 4, column `label`", "`cyst` is not a class"]);

    let dir = copy("csv");
    edit(&dir.path().join("lesions.csv"), |t| t.replace("split,", "fold,"));
    let ds = open("csv", dir.path(), "lesions").expect("no split column: all rows are test");
    assert_eq!(ds.info().splits.test, 4);

    let dir = copy("csv");
    edit(&dir.path().join("lesions.csv"), |t| t.replace("images/b.png,0,train,M,40", "images/b.png,0,train"));
    expect_error("csv", dir.path(), "lesions", &["`lesions.csv` line 3: 3 fields, but the header has 5"]);
}

#[test]
fn chexpert_labels_no_finding_with_uncertain_and_empty_as_zero() {
    let mut ds = opened("chexpert", "chexpert", (2, 0, 3));
    assert_eq!(ds.info().class_names, ["diseased xray", "normal xray"]);
    let test = all(&mut ds, Split::Test);
    assert_eq!(test.iter().map(|s| s.labels[0]).collect::<Vec<_>>(), [1, 0, 0]);
    assert_eq!(test[0].id, "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg");
    assert_eq!(
        (attr(&test[1], "sex"), attr(&test[1], "age"), attr(&test[1], "view")),
        (Some("Male"), Some("70"), Some("Lateral"))
    );
    assert_eq!(attr(&test[1], "projection"), None);
    assert_eq!(all(&mut ds, Split::Train).iter().map(|s| s.labels[0]).collect::<Vec<_>>(), [1, 0]);

    let dir = copy("chexpert");
    edit(&dir.path().join("CheXpert-v1.0-small/valid.csv"), |t| t.replace(",Lateral,,-1.0,", ",Lateral,,maybe,"));
    expect_error(
        "chexpert",
        dir.path(),
        "chexpert",
        &["`CheXpert-v1.0-small/valid.csv` line 3, column `No Finding`", "`maybe`"],
    );
    let dir = copy("chexpert");
    edit(&dir.path().join("CheXpert-v1.0-small/valid.csv"), |t| t.replacen("No Finding", "Finding", 1));
    expect_error(
        "chexpert",
        dir.path(),
        "chexpert",
        &["`CheXpert-v1.0-small/valid.csv` line 1: no column `No Finding`"],
    );
}

#[test]
fn ham10000_reads_both_image_folders_and_takes_a_split_file() {
    let mut ds = opened("ham10000", "ham10000", (4, 0, 0));
    let train = all(&mut ds, Split::Train);
    assert_eq!(
        labels(&train),
        pairs(&[("ISIC_0027419", 0), ("ISIC_0025030", 1), ("ISIC_0027850", 1), ("ISIC_0029176", 0)])
    );
    assert_eq!(
        (attr(&train[2], "sex"), attr(&train[2], "age"), attr(&train[2], "localization")),
        (Some("unknown"), None, Some("face"))
    );

    let dir = copy("ham10000");
    std::fs::write(
        dir.path().join("mvb-split.csv"),
        "id,split\nISIC_0025030,test\nISIC_0029176,test\nISIC_0027419,train\n",
    )
    .expect("write");
    let mut ds = open("ham10000", dir.path(), "ham10000").expect("opens");
    let s = ds.info().splits;
    assert_eq!((s.train, s.validation, s.test), (1, 0, 2), "only the listed images");
    assert_eq!(labels(&all(&mut ds, Split::Test)), pairs(&[("ISIC_0025030", 1), ("ISIC_0029176", 0)]));

    std::fs::write(dir.path().join("mvb-split.csv"), "id,split\nISIC_0025030,test\nISIC_9999999,test\n")
        .expect("write");
    expect_error("ham10000", dir.path(), "ham10000", &["`mvb-split.csv` line 3, column `id`", "ISIC_9999999"]);
    std::fs::remove_file(dir.path().join("mvb-split.csv")).expect("rm");
    std::fs::remove_file(dir.path().join("HAM10000_images_part_2/ISIC_0029176.jpg")).expect("rm");
    expect_error(
        "ham10000",
        dir.path(),
        "ham10000",
        &["`HAM10000_metadata.csv` line 5, column `image_id`", "ISIC_0029176.jpg"],
    );
}

#[test]
fn camelyon17_splits_by_hospital_as_wilds_does() {
    let mut ds = opened("camelyon17", "camelyon17", (3, 1, 2));
    assert_eq!(ds.info().class_names, ["negative tumor", "positive tumor"]);
    let train = all(&mut ds, Split::Train);
    assert_eq!(
        labels(&train),
        pairs(&[
            ("patch_patient_004_node_4_x_3328_y_21792", 1),
            ("patch_patient_061_node_0_x_512_y_512", 0),
            ("patch_patient_072_node_3_x_96_y_192", 1),
        ])
    );
    assert_eq!((attr(&train[1], "hospital"), attr(&train[1], "slide")), (Some("3"), Some("35")));
    let val = all(&mut ds, Split::Validation);
    assert_eq!(labels(&val), pairs(&[("patch_patient_010_node_1_x_1000_y_2000", 0)]));
    let test = all(&mut ds, Split::Test);
    assert_eq!(
        test.iter().map(|s| (s.labels[0], attr(s, "hospital"))).collect::<Vec<_>>(),
        [(1, Some("2")), (0, Some("2"))]
    );
    let dir = fixture("camelyon17");
    let px = load_image(test[0].image.as_ref().expect("image"), &dir).expect("decodes");
    assert_eq!((px.width, px.height), (8, 8));

    // MedVLMBench's own samples, when the user has them, are the train and test splits.
    let dir = copy("camelyon17");
    let base = dir.path().join("camelyon17_v1.0");
    let header = ",patient,node,x_coord,y_coord,tumor,slide,center,split\n";
    std::fs::write(base.join("sample3680_train_metadata.csv"), format!("{header}1,004,4,3200,22272,0,0,0,1\n"))
        .expect("write");
    std::fs::write(base.join("sample920_test_metadata.csv"), format!("{header}5,051,2,640,960,1,30,2,0\n"))
        .expect("write");
    let mut ds = open("camelyon17", dir.path(), "camelyon17").expect("opens");
    let s = ds.info().splits;
    assert_eq!((s.train, s.validation, s.test), (1, 0, 1));
    assert_eq!(labels(&all(&mut ds, Split::Test)), pairs(&[("patch_patient_051_node_2_x_640_y_960", 1)]));
}

#[test]
fn camelyon17_errors_name_the_file_line_and_column() {
    let csv = "camelyon17_v1.0/metadata.csv";
    let dir = copy("camelyon17");
    std::fs::remove_file(
        dir.path().join("camelyon17_v1.0/patches/patient_051_node_2/patch_patient_051_node_2_x_672_y_960.png"),
    )
    .expect("rm");
    expect_error("camelyon17", dir.path(), "camelyon17", &[csv, "line 8, column `patient`", "x_672_y_960.png"]);

    let dir = copy("camelyon17");
    edit(&dir.path().join(csv), |t| t.replace(",tumor,", ",label,"));
    expect_error("camelyon17", dir.path(), "camelyon17", &[csv, "line 1: no column `tumor`"]);

    let dir = copy("camelyon17");
    edit(&dir.path().join(csv), |t| t.replace("3,061,0,512,512,0,", "3,061,0,512,512,maybe,"));
    expect_error("camelyon17", dir.path(), "camelyon17", &[csv, "line 5, column `tumor`", "`maybe`"]);
}

#[test]
fn papila_reads_both_eyes_and_leaves_suspects_out() {
    let mut ds = opened("papila", "papila", (5, 0, 0));
    assert_eq!(ds.info().class_names, ["benign fundus", "glaucoma fundus"]);
    let train = all(&mut ds, Split::Train);
    assert_eq!(
        labels(&train),
        pairs(&[
            ("RET004OD.jpg", 1),
            ("RET005OD.jpg", 0),
            ("RET002OS.jpg", 1),
            ("RET004OS.jpg", 0),
            ("RET007OS.jpg", 0),
        ])
    );
    assert_eq!(
        (attr(&train[0], "sex"), attr(&train[0], "age"), attr(&train[0], "eye")),
        (Some("female"), Some("58"), Some("OD"))
    );
    assert_eq!(attr(&train[2], "sex"), Some("male"));

    let dir = copy("papila");
    std::fs::write(dir.path().join("mvb-split.csv"), "id,split\nRET004OD.jpg,test\nRET005OD.jpg,train\n")
        .expect("write");
    let ds = open("papila", dir.path(), "papila").expect("opens");
    let s = ds.info().splits;
    assert_eq!((s.train, s.validation, s.test), (1, 0, 1));
}

#[test]
fn papila_errors_name_the_file_line_and_column() {
    let od = "ClinicalData/patient_data_od.csv";
    let dir = copy("papila");
    std::fs::remove_file(dir.path().join("FundusImages/RET005OD.jpg")).expect("rm");
    expect_error("papila", dir.path(), "papila", &[od, "line 6, column ``", "RET005OD.jpg"]);

    let dir = copy("papila");
    edit(&dir.path().join(od), |t| t.replace("#004,58,1,1,", "#004,58,1,glaucoma,"));
    expect_error("papila", dir.path(), "papila", &[od, "line 5, column `Diagnosis`", "`glaucoma`"]);

    let dir = copy("papila");
    edit(&dir.path().join("ClinicalData/patient_data_os.csv"), |t| t.replacen("Diagnosis", "Dx", 1));
    expect_error("papila", dir.path(), "papila", &["patient_data_os.csv`: no line names the column `Diagnosis`"]);

    let dir = copy("papila");
    std::fs::remove_file(dir.path().join(od)).expect("rm");
    expect_error("papila", dir.path(), "papila", &[od, "is missing", "patient_data_od.xlsx"]);
}

#[test]
fn gf3300_scales_the_rnflt_map_and_keeps_the_published_split() {
    let mut ds = opened("gf3300", "gf3300", (2, 1, 2));
    assert_eq!(ds.info().class_names, ["benign retina", "glaucomatous retina"]);
    let test = all(&mut ds, Split::Test);
    assert_eq!(labels(&test), pairs(&[("data_0004.npz", 1), ("data_0005.npz", 0)]));
    assert_eq!(
        (attr(&test[0], "sex"), attr(&test[0], "race"), attr(&test[0], "age"), attr(&test[0], "language")),
        (Some("female"), Some("black"), Some("70.64"), Some("english"))
    );
    assert_eq!(attr(&test[1], "age"), None, "an empty cell is no attribute");
    // (x + 2) / 352 * 255, truncated: -2 -> 0, 350 -> 255, 174 -> 127.
    for sample in all(&mut ds, Split::Train).iter().chain(&test) {
        let px = load_image(sample.image.as_ref().expect("image"), &fixture("gf3300")).expect("pixels");
        assert_eq!((px.width, px.height, px.channels), (8, 8, 1));
        assert_eq!(px.data[..3], [0, 255, 127], "{}", sample.id);
    }
}

#[test]
fn gf3300_errors_name_the_file_line_and_column() {
    let dir = copy("gf3300");
    std::fs::remove_file(dir.path().join("Test/data_0005.npz")).expect("rm");
    expect_error(
        "gf3300",
        dir.path(),
        "gf3300",
        &["`data_summary.csv` line 6, column `filename`", "Test/data_0005.npz"],
    );

    let dir = copy("gf3300");
    edit(&dir.path().join("data_summary.csv"), |t| t.replace("single,yes,training", "single,maybe,training"));
    expect_error("gf3300", dir.path(), "gf3300", &["`data_summary.csv` line 3, column `glaucoma`", "`maybe`"]);

    let dir = copy("gf3300");
    edit(&dir.path().join("data_summary.csv"), |t| t.replace(",use", ",fold"));
    expect_error("gf3300", dir.path(), "gf3300", &["`data_summary.csv` line 1: no column `use`"]);

    // A file without the array fails when its batch is read, naming the file and the array.
    let dir = copy("gf3300");
    std::fs::copy(fixture("fairvlmed10k/Testing/data_00004.npz"), dir.path().join("Test/data_0004.npz")).expect("cp");
    let mut ds = open("gf3300", dir.path(), "gf3300").expect("opens");
    let err = ds.samples(Split::Test, 0, 2).expect_err("no rnflt").to_string();
    assert!(err.contains("`Test/data_0004.npz` has no array `rnflt`"), "{err}");
}

#[test]
fn fairvlmed10k_serves_diagnosis_and_medvlmbench_questions() {
    let mut ds = opened("fairvlmed10k", "fairvlmed10k", (1, 1, 2));
    let test = all(&mut ds, Split::Test);
    assert_eq!(labels(&test), pairs(&[("data_00003.npz", 0), ("data_00004.npz", 1)]));
    assert_eq!(
        (attr(&test[0], "sex"), attr(&test[0], "race"), attr(&test[0], "ethnicity"), attr(&test[0], "language")),
        (Some("male"), Some("asian"), Some("non-hispanic"), Some("spanish"))
    );
    let px = load_image(test[1].image.as_ref().expect("image"), &fixture("fairvlmed10k")).expect("pixels");
    assert_eq!((px.width, px.height, px.channels), (8, 8, 1));

    let mut ds = opened("fairvlmed10k", "fairvlmed10k-vqa", (1, 0, 3));
    let test = all(&mut ds, Split::Test);
    let expected = [
        ("test-0", "Does the patient have glaucoma?", "yes", Closed),
        ("test-1", "What is the cup-to-disc ratio of the right eye?", "0.7", Open),
        ("test-4", "Is the optic disc cupping enlarged?", "No", Closed),
    ];
    let expected: Vec<_> = expected.iter().map(|&(i, q, a, k)| (i.into(), q.into(), a.into(), k)).collect();
    assert_eq!(qa(&test), expected, "rows with an empty cell or `None` are dropped, as pandas' dropna");
    assert_eq!((attr(&test[0], "sex"), attr(&test[2], "race")), (Some("male"), Some("asian")));
    let px = load_image(test[0].image.as_ref().expect("image"), &fixture("fairvlmed10k")).expect("pixels");
    assert_eq!((px.width, px.height), (8, 8));
}

#[test]
fn fairvlmed10k_errors_name_the_file_line_and_column() {
    let dir = copy("fairvlmed10k");
    edit(&dir.path().join("vqa_test.csv"), |t| t.replace("Testing/data_00004.npz,What", "Testing/data_09999.npz,What"));
    expect_error(
        "fairvlmed10k",
        dir.path(),
        "fairvlmed10k-vqa",
        &["`vqa_test.csv` line 3, column `image_path`", "Testing/data_09999.npz"],
    );

    let dir = copy("fairvlmed10k");
    edit(&dir.path().join("vqa_test.csv"), |t| t.replace("question type", "type"));
    expect_error("fairvlmed10k", dir.path(), "fairvlmed10k-vqa", &["`vqa_test.csv` line 1: no column `question type`"]);

    let dir = copy("fairvlmed10k");
    edit(&dir.path().join("ReadMe/data_summary.csv"), |t| t.replace("yes,test", "yes,testing"));
    expect_error(
        "fairvlmed10k",
        dir.path(),
        "fairvlmed10k",
        &["`ReadMe/data_summary.csv` line 5, column `use`", "`testing`"],
    );
}

#[test]
fn vqa_jsonl_reads_questions_kinds_splits_and_attributes() {
    let mut ds = opened("vqa-jsonl", "chest", (1, 1, 3));
    let test = all(&mut ds, Split::Test);
    let expected = [
        ("q3", "Is the heart enlarged?", "no", Closed),
        ("q4", "How many nodules are there?", "2", Open),
        ("line-6", "Is this an MRI?", "no", Closed),
    ];
    let expected: Vec<_> = expected.iter().map(|&(i, q, a, k)| (i.into(), q.into(), a.into(), k)).collect();
    assert_eq!(qa(&test), expected, "a blank line is skipped; `Closed` is closed; no split is test");
    assert_eq!((attr(&test[0], "sex"), attr(&test[0], "age")), (Some("M"), Some("71")));
    assert_eq!((attr(&test[1], "site"), test[2].attributes.len()), (None, 0), "an empty field is no attribute");
    let px = load_image(test[0].image.as_ref().expect("image"), &fixture("vqa-jsonl")).expect("decodes");
    assert_eq!((px.width, px.height), (8, 8));
    assert_eq!(qa(&all(&mut ds, Split::Validation))[0].3, Open);
}

#[test]
fn vqa_jsonl_errors_name_the_file_line_and_field() {
    let file = "chest.jsonl";
    let broken = |from: &str, to: &str, parts: &[&str]| {
        let dir = copy("vqa-jsonl");
        edit(&dir.path().join(file), |t| t.replacen(from, to, 1));
        expect_error("vqa-jsonl", dir.path(), "chest", parts);
    };
    broken(
        "\"kind\": \"open\", \"split\": \"test\"",
        "\"kind\": \"free\", \"split\": \"test\"",
        &["`chest.jsonl` line 5, field `kind`", "`free` is neither `open` nor `closed`"],
    );
    broken(
        "\"split\": \"validation\"",
        "\"split\": \"dev\"",
        &["`chest.jsonl` line 2, field `split`", "`dev` is not train, validation or test"],
    );
    broken("images/b.jpg", "images/z.jpg", &["`chest.jsonl` line 3, field `image`", "`images/z.jpg` is missing"]);
    broken("images/a.png", "../a.png", &["`chest.jsonl` line 1, field `image`", "no `..`"]);
    broken("\"answer\": \"left lung\", ", "", &["`chest.jsonl` line 2, field `answer`: missing"]);
    broken(
        "\"question\": \"Is this an MRI?\"",
        "\"question\": [1]",
        &["`chest.jsonl` line 6, field `question`", "an array"],
    );
    broken(
        "\"id\": \"q2\"",
        "\"id\": \"q1\"",
        &["`chest.jsonl` line 2, field `id`", "`q1` is used by an earlier line"],
    );
    broken("{\"id\": \"q3\"", "{\"id\" \"q3\"", &["`chest.jsonl` line 3, column", "not a JSON object"]);
    broken("\"sex\": \"M\"", "\"sex\": {\"a\": 1}", &["`chest.jsonl` line 3, field `sex`", "an object"]);
}
