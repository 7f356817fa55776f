//! mvb dataset plugin `camelyon17`: Camelyon17-WILDS v1.0 (Bándi et al., IEEE TMI 2019; Koh et
//! al., WILDS, ICML 2021) as the WILDS package downloads it: `metadata.csv` and the 96×96 patches
//! `patches/patient_<PPP>_node_<N>/patch_patient_<PPP>_node_<N>_x_<X>_y_<Y>.png`. The data
//! folder is `camelyon17_v1.0/` or its parent.
//!
//! Labels: the `tumor` column (1 when the patch's central 32×32 region holds tumour tissue), as
//! WILDS and MedVLMBench (`dataset/diagnosis.py`, `Camelyon17`); class 0 is `negative tumor`,
//! class 1 `positive tumor` (MedVLMBench's zero-shot names).
//!
//! Splits: WILDS's official split by hospital (`center`, 0 to 4, as `camelyon17_dataset.py`
//! sets it): train = the rows of hospitals 0, 3 and 4 whose `split` is 0; validation =
//! hospital 1 (WILDS's out-of-distribution `val`); test = hospital 2. WILDS's in-distribution
//! validation set (`id_val`: rows of hospitals 0, 3 and 4 whose `split` is 1) has no slot
//! among the three splits and is left out, with a notice.
//!
//! MedVLMBench trained and tested on samples of its own, `sample3680_train_metadata.csv` and
//! `sample920_test_metadata.csv` (920 test patches), which it did not publish. When both files
//! are in the folder (rows with `metadata.csv`'s columns), they are the train and test splits;
//! else a user's `mvb-split.csv` (see `split_file`; ids are patch names) re-splits the
//! official split. mvb never draws a random sample of its own.
//!
//! Ids are the patch names (`patch_patient_004_node_4_x_3328_y_21792`). Attributes: `hospital`
//! and `slide`.

use mvb_dataset_common::csv::{Csv, Row};
use mvb_dataset_common::{
    DatasetInfo, Error, Image, Loaded, LogLevel, Modality, Sample, Single, SingleOf, Task, diagnosis, fs, log, serve,
    split_file,
};

const NAME: &str = "camelyon17";
const FOLDER: &str = "camelyon17_v1.0";
const METADATA: &str = "metadata.csv";
/// MedVLMBench's own samples, with the split slot each fills.
const SAMPLES: [(&str, usize); 2] = [("sample3680_train_metadata.csv", 0), ("sample920_test_metadata.csv", 2)];
const ATTRIBUTES: [(&str, &str); 2] = [("center", "hospital"), ("slide", "slide")];

struct Camelyon17;

impl Single for Camelyon17 {
    const NAME: &'static str = NAME;

    fn locate() -> Option<&'static str> {
        fs::locate(&["", FOLDER], METADATA).filter(|b| fs::is_dir(&fs::join(b, "patches")))
    }

    fn read(base: &str) -> Result<Loaded, Error> {
        let mut patches = fs::Listing::default();
        let samples: Vec<String> = SAMPLES.iter().map(|(f, _)| fs::join(base, f)).collect();
        let mut splits: [Vec<Sample>; 3] = Default::default();
        if samples.iter().all(|f| fs::is_file(f)) {
            log(LogLevel::Info, "using MedVLMBench's samples (sample3680_train, sample920_test) as train and test");
            for (file, (_, slot)) in samples.iter().zip(SAMPLES) {
                let csv = Csv::parse(file, &fs::read_text(file)?)?;
                let columns = Columns::of(&csv)?;
                for row in csv.rows() {
                    splits[slot].push(columns.sample(&row, base, &mut patches)?);
                }
            }
        } else {
            splits = official(base, &mut patches)?;
        }
        Loaded::new(info(), split_file::apply(base, splits)?)
    }
}

/// WILDS's official split of `metadata.csv`, by hospital.
fn official(base: &str, patches: &mut fs::Listing) -> Result<[Vec<Sample>; 3], Error> {
    let file = fs::join(base, METADATA);
    let csv = Csv::parse(&file, &fs::read_text(&file)?)?;
    let columns = Columns::of(&csv)?;
    let (center_col, split_col) = (csv.column("center")?, csv.column("split")?);
    let mut splits: [Vec<Sample>; 3] = Default::default();
    let mut id_val = 0usize;
    for row in csv.rows() {
        let slot = match (row.required(center_col)?, row.required(split_col)?) {
            ("1", _) => 1,
            ("2", _) => 2,
            ("0" | "3" | "4", "0") => 0,
            ("0" | "3" | "4", "1") => {
                id_val += 1;
                continue;
            }
            ("0" | "3" | "4", other) => return Err(row.bad(split_col, format!("`{other}` is neither 0 nor 1"))),
            (other, _) => return Err(row.bad(center_col, format!("`{other}` is no hospital (0 to 4)"))),
        };
        splits[slot].push(columns.sample(&row, base, patches)?);
    }
    if id_val > 0 {
        log(
            LogLevel::Info,
            &format!("{id_val} patches of WILDS's in-distribution validation set (id_val) are left out"),
        );
    }
    Ok(splits)
}

/// The columns every row needs, and the attribute columns the file has.
struct Columns {
    patient: usize,
    node: usize,
    x: usize,
    y: usize,
    tumor: usize,
    attributes: Vec<(usize, &'static str)>,
}

impl Columns {
    fn of(csv: &Csv) -> Result<Columns, Error> {
        Ok(Columns {
            patient: csv.column("patient")?,
            node: csv.column("node")?,
            x: csv.column("x_coord")?,
            y: csv.column("y_coord")?,
            tumor: csv.column("tumor")?,
            attributes: csv.optional(&ATTRIBUTES),
        })
    }

    /// The sample of one row, its patch checked to exist.
    fn sample(&self, row: &Row<'_>, base: &str, patches: &mut fs::Listing) -> Result<Sample, Error> {
        let number = |col: usize| -> Result<u64, Error> {
            let v = row.required(col)?;
            v.parse::<u64>().map_err(|_| row.bad(col, format!("`{v}` is not a whole number")))
        };
        let (patient, node) = (number(self.patient)?, number(self.node)?);
        let (x, y) = (number(self.x)?, number(self.y)?);
        let label = match row.required(self.tumor)? {
            "0" => 0,
            "1" => 1,
            other => return Err(row.bad(self.tumor, format!("`{other}` is neither 0 nor 1"))),
        };
        let folder = format!("patient_{patient:03}_node_{node}");
        let id = format!("patch_{folder}_x_{x}_y_{y}");
        let path = fs::join(base, &format!("patches/{folder}/{id}.png"));
        // One listing per patch folder, not one check per patch (455,954 in the full dataset).
        if !patches.contains(&fs::join(base, &format!("patches/{folder}")), &format!("{id}.png")) {
            return Err(row.bad(self.patient, format!("the patch `{path}` is missing from the data folder")));
        }
        Ok(diagnosis(id, Image::Path(path), label, row.attributes(&self.attributes)))
    }
}

fn info() -> DatasetInfo {
    mvb_dataset_common::info(
        NAME,
        "Camelyon17-WILDS: lymph-node histology patches, tumor (1) vs none (0); split by hospital",
        Task::Diagnosis,
        Modality::Pathology,
        vec!["negative tumor".to_owned(), "positive tumor".to_owned()],
        "CC0-1.0",
        "Peter Bándi, Oscar Geessink, Quirine Manson, et al. From Detection of Individual Metastases to \
Classification of Lymph Node Status at the Patient Level: The CAMELYON17 Challenge. IEEE TMI 38(2), 2019; \
Pang Wei Koh, Shiori Sagawa, Henrik Marklund, et al. WILDS: A Benchmark of in-the-Wild Distribution Shifts. ICML 2021.",
    )
}

serve!(SingleOf<Camelyon17>);
