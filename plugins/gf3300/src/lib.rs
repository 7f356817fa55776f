//! mvb dataset plugin `gf3300`: Harvard-GF3300 (Luo et al., "Harvard Glaucoma Fairness", IEEE
//! TMI 2024) as its authors publish it: `data_summary.csv` and one `data_NNNN.npz` per subject
//! in `Training/`, `Validation/` and `Test/` (see `harvard` in `mvb-dataset-common`). The data
//! folder is the dataset's folder, or a parent holding it as `GF3300/`, `Harvard-GF3300/` or
//! `GF3300/data/`.
//!
//! As MedVLMBench (`dataset/diagnosis.py`, `GF3300Dataset`): the image is the `.npz` array
//! `rnflt` (the OCT retinal-nerve-fibre-layer thickness map, 200×200 microns), scaled to bytes
//! as `(x + 2) / 352 * 255` and truncated (NumPy's `astype(uint8)`; mvb also cuts values
//! outside 0 to 255 to that range, where NumPy's result is undefined); the label is the
//! summary's `glaucoma` (`yes` is class 1 `glaucomatous retina`, `no` class 0 `benign retina`).
//!
//! Splits: the publisher's, from the summary's `use` column (2,100 / 300 / 900). MedVLMBench
//! used FairMedFM's own sex-stratified random split (`GF3300/split/{train,test}.csv`, 594 test
//! subjects), which it did not publish; give it as `mvb-split.csv` (columns `id`, `split`; ids
//! are the `filename`s, `data_0001.npz`). mvb never draws a random split of its own.
//!
//! Attributes: `age`, `sex`, `race`, `ethnicity`, `language`, `marital_status`, where present.

use mvb_dataset_common::harvard::{self, Summary};
use mvb_dataset_common::{DatasetInfo, Error, Image, Loaded, Modality, Single, SingleOf, Task, npz, serve, split_file};

const NAME: &str = "gf3300";
const BASES: [&str; 4] = ["", "GF3300", "Harvard-GF3300", "GF3300/data"];
const KEY: &str = "rnflt";

struct Gf3300;

impl Single for Gf3300 {
    const NAME: &'static str = NAME;

    fn locate() -> Option<&'static str> {
        harvard::locate(&BASES)
    }

    fn read(base: &str) -> Result<Loaded, Error> {
        let splits = Summary::read(base)?.samples()?;
        Ok(Loaded::new(info(), split_file::apply(base, splits)?)?.with_decode(decode))
    }
}

/// The RNFLT map of one subject's file, scaled as MedVLMBench scales it.
fn decode(file: &str) -> Result<Image, Error> {
    npz::read(file, KEY)?.picture(file, KEY, |x| (x + 2.0) / 352.0 * 255.0)
}

fn info() -> DatasetInfo {
    mvb_dataset_common::info(
        NAME,
        "Harvard-GF3300: OCT retinal nerve fibre layer thickness maps, glaucoma (1) vs not (0)",
        Task::Diagnosis,
        Modality::Ophthalmology,
        vec!["benign retina".to_owned(), "glaucomatous retina".to_owned()],
        "CC-BY-NC-ND-4.0",
        "Yan Luo, Yu Tian, Min Shi, Louis R. Pasquale, Lucy Q. Shen, Nazlee Zebardast, Tobias Elze, \
Mengyu Wang. Harvard Glaucoma Fairness: A Retinal Nerve Disease Dataset for Fairness Learning and Fair \
Identity Normalization. IEEE Transactions on Medical Imaging, 2024.",
    )
}

serve!(SingleOf<Gf3300>);
