//! mvb dataset plugin `ham10000`: HAM10000 (Tschandl et al., Scientific Data 2018) as published
//! on the Harvard Dataverse: `HAM10000_metadata.csv` and the images, `<image_id>.jpg`, in
//! `HAM10000_images_part_1/` and `HAM10000_images_part_2/` (or one merged `HAM10000_images/`).
//!
//! Labels as MedVLMBench (`dataset/diagnosis.py`, `HAM10000Dataset`): 1 when `dx` is `akiec` or
//! `mel`, else 0; class 0 is `benign keratosis-like lesions`, class 1 `actinic keratoses or
//! melanoma`. Attributes: `sex`, `age`, `localization`, `dx_type` (where not empty).
//!
//! Splits: MedVLMBench drew its own train/val/test split (`HAM10000/split/{split}.csv`, 1,811
//! test images) and did not publish it, and the dataset itself has no official split. Without
//! a split file every image is in the train split and the test split is empty (a notice says
//! so); give the split as `mvb-split.csv` (columns `id`, `split`; ids are the `image_id`s).
//! mvb never draws a random split of its own.

use mvb_dataset_common::csv::Csv;
use mvb_dataset_common::{
    DatasetInfo, Error, Image, Loaded, LogLevel, Modality, Sample, Single, SingleOf, Task, fs, log, serve, split_file,
};

const NAME: &str = "ham10000";
const METADATA: &str = "HAM10000_metadata.csv";
const IMAGE_FOLDERS: [&str; 3] = ["HAM10000_images_part_1", "HAM10000_images_part_2", "HAM10000_images"];
const ATTRIBUTES: [(&str, &str); 4] =
    [("sex", "sex"), ("age", "age"), ("localization", "localization"), ("dx_type", "dx_type")];

struct Ham10000;

impl Single for Ham10000 {
    const NAME: &'static str = NAME;

    fn locate() -> Option<&'static str> {
        fs::locate(&[""], METADATA)
    }

    fn read(_base: &str) -> Result<Loaded, Error> {
        let csv = Csv::parse(METADATA, &fs::read_text(METADATA)?)?;
        let (id_col, dx_col) = (csv.column("image_id")?, csv.column("dx")?);
        let attr_cols = csv.optional(&ATTRIBUTES);
        let mut all = Vec::with_capacity(csv.len());
        for row in csv.rows() {
            let id = row.required(id_col)?;
            let file = format!("{id}.jpg");
            let path = IMAGE_FOLDERS.iter().map(|f| fs::join(f, &file)).find(|p| fs::is_file(p));
            let path = path.ok_or_else(|| {
                row.bad(id_col, format!("`{file}` is in none of {}", IMAGE_FOLDERS.join("/, ") + "/"))
            })?;
            fs::check_relative(&path, || format!("`{METADATA}` line {}", row.line))?;
            let label = u32::from(matches!(row.required(dx_col)?, "akiec" | "mel"));
            let attributes = row.attributes(&attr_cols);
            all.push(Sample {
                id: id.to_owned(),
                image: Some(Image::Path(path)),
                labels: vec![label],
                qa: None,
                attributes,
            });
        }
        if !fs::is_file(split_file::FILE) {
            log(
                LogLevel::Warn,
                "HAM10000 has no official split: every image is in train and test is empty; \
give MedVLMBench's (or your own) split as mvb-split.csv",
            );
        }
        Loaded::new(info(), split_file::apply("", [all, Vec::new(), Vec::new()])?)
    }
}

fn info() -> DatasetInfo {
    mvb_dataset_common::info(
        NAME,
        "HAM10000: dermatoscopic images, akiec or mel (1) vs the other diagnoses (0)",
        Task::Diagnosis,
        Modality::Dermatology,
        vec!["benign keratosis-like lesions".to_owned(), "actinic keratoses or melanoma".to_owned()],
        "CC-BY-NC-4.0",
        "Philipp Tschandl, Cliff Rosendahl, Harald Kittler. The HAM10000 dataset, a large collection of \
multi-source dermatoscopic images of common pigmented skin lesions. Scientific Data 5, 180161 (2018).",
    )
}

serve!(SingleOf<Ham10000>);
