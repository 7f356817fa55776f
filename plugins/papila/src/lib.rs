//! mvb dataset plugin `papila`: PAPILA (Kovalyk et al., Scientific Data 2022) as published on
//! figshare: `ClinicalData/patient_data_od.xlsx` and `patient_data_os.xlsx` (one row per
//! patient, for the right and the left eye) and `FundusImages/RET<NNN><OD|OS>.jpg`. The data
//! folder is the archive's folder (`PapilaDB-PAPILA-<hash>/`), or a parent holding it as
//! `PAPILA/` or `PAPILA/data/`.
//!
//! The clinical data are Excel workbooks, which the sandboxed reader does not parse: save
//! each as CSV next to it (`patient_data_od.csv`, `patient_data_os.csv`; LibreOffice
//! `soffice --headless --convert-to csv`, or pandas `read_excel(...).to_csv(...)`), as
//! MedVLMBench's preprocessing (FairMedFM's `PAPILA.ipynb`) also did. The header is the first
//! line naming `Diagnosis` (title rows above it are skipped); the patient id is the `ID`
//! column, or the first column when it has no name (`#002`); rows with neither an id nor a
//! diagnosis (the workbook's second header row) are skipped.
//!
//! Labels as MedVLMBench (`dataset/diagnosis.py`, `PAPILADataset`, over FairMedFM's binary
//! table): `Diagnosis` 0 (healthy) is class 0 `benign fundus`, 1 (glaucoma) class 1
//! `glaucoma fundus`; 2 (suspect) is left out, with a notice. Images: right eyes (OD) first,
//! then left eyes (OS), each in file order.
//!
//! Splits: MedVLMBench used its own split (`PAPILA/split/new_{train,test}.csv`, 56 test images)
//! and did not publish it; PAPILA has no official split. Without a split file every image is
//! in train and test is empty (a notice says so); give the split as `mvb-split.csv` (columns
//! `id`, `split`; ids are image names, MedVLMBench's `Path` values). mvb never draws a random
//! split of its own.
//!
//! Ids are image names (`RET002OD.jpg`). Attributes: `sex` (`Gender` 0 male, 1 female, as the
//! PAPILA paper codes it), `age`, `eye` (`OD` right, `OS` left).

use mvb_dataset_common::csv::{Csv, Row};
use mvb_dataset_common::{
    DatasetInfo, Error, ErrorKind, Image, Loaded, LogLevel, Modality, Sample, Single, SingleOf, Task, attr, diagnosis,
    error, fs, log, serve, split_file,
};

const NAME: &str = "papila";
/// The folders (relative to the data folder) where PAPILA's files may lie.
const BASES: [&str; 3] = ["", "PAPILA", "PAPILA/data"];
/// The clinical data of each eye, in reading order.
const EYES: [(&str, &str); 2] = [("patient_data_od", "OD"), ("patient_data_os", "OS")];

struct Papila;

impl Single for Papila {
    const NAME: &'static str = NAME;

    fn locate() -> Option<&'static str> {
        BASES.into_iter().find(|b| fs::is_dir(&fs::join(b, "ClinicalData")) && fs::is_dir(&fs::join(b, "FundusImages")))
    }

    fn read(base: &str) -> Result<Loaded, Error> {
        let (mut all, mut suspects) = (Vec::new(), 0usize);
        for (stem, eye) in EYES {
            let file = fs::join(base, &format!("ClinicalData/{stem}.csv"));
            if !fs::is_file(&file) {
                let message = format!(
                    "`{file}` is missing: save `ClinicalData/{stem}.xlsx` as CSV beside it (the sandbox reads no Excel files)"
                );
                return Err(error(ErrorKind::NotFound, message));
            }
            let csv = Csv::parse_from_header(&file, &fs::read_text(&file)?, "Diagnosis")?;
            let columns = Columns::of(&csv)?;
            for row in csv.rows() {
                match columns.sample(&row, base, eye)? {
                    Read::Sample(sample) => all.push(sample),
                    Read::Suspect => suspects += 1,
                    Read::Blank => {}
                }
            }
        }
        if suspects > 0 {
            log(LogLevel::Info, &format!("{suspects} eyes diagnosed as suspect (Diagnosis 2) are left out"));
        }
        let split_file = fs::join(base, split_file::FILE);
        if !fs::is_file(&split_file) {
            log(
                LogLevel::Warn,
                "PAPILA has no official split: every image is in train and test is empty; \
give MedVLMBench's (or your own) split as mvb-split.csv",
            );
        }
        Loaded::new(info(), split_file::apply(base, [all, Vec::new(), Vec::new()])?)
    }
}

/// What one row of the clinical data gives.
enum Read {
    Sample(Sample),
    /// Diagnosis 2: left out.
    Suspect,
    /// No id and no diagnosis (the workbook's second header row): skipped.
    Blank,
}

/// The columns of one clinical-data file.
struct Columns {
    id: usize,
    diagnosis: usize,
    gender: Option<usize>,
    age: Option<usize>,
}

impl Columns {
    fn of(csv: &Csv) -> Result<Columns, Error> {
        let id = match csv.find("ID") {
            Some(c) => c,
            None if csv.header().first().is_some_and(String::is_empty) => 0,
            None => csv.column("ID")?,
        };
        Ok(Columns { id, diagnosis: csv.column("Diagnosis")?, gender: csv.find("Gender"), age: csv.find("Age") })
    }

    /// The sample of one row, its image checked to exist.
    fn sample(&self, row: &Row<'_>, base: &str, eye: &str) -> Result<Read, Error> {
        let (id, dx) = (row.get(self.id), row.get(self.diagnosis));
        if id.is_empty() && dx.is_empty() {
            return Ok(Read::Blank);
        }
        let digits = id.trim_start_matches('#');
        let number: u32 =
            digits.parse().map_err(|_| row.bad(self.id, format!("`{id}` is not a patient id like #002")))?;
        let label = match code(row, self.diagnosis) {
            Some(0) => 0,
            Some(1) => 1,
            Some(2) => return Ok(Read::Suspect),
            _ => {
                return Err(
                    row.bad(self.diagnosis, format!("`{dx}` is none of 0 (healthy), 1 (glaucoma), 2 (suspect)"))
                );
            }
        };
        let name = format!("RET{number:03}{eye}.jpg");
        let path = fs::join(base, &format!("FundusImages/{name}"));
        if !fs::is_file(&path) {
            return Err(row.bad(self.id, format!("`{path}` is missing from the data folder")));
        }
        let mut attributes = vec![attr("eye", eye)];
        if let Some(c) = self.gender {
            let sex = match code(row, c) {
                Some(0) => "male",
                Some(1) => "female",
                _ if row.get(c).is_empty() => "",
                _ => return Err(row.bad(c, format!("`{}` is neither 0 (male) nor 1 (female)", row.get(c)))),
            };
            attributes.extend((!sex.is_empty()).then(|| attr("sex", sex)));
        }
        attributes.extend(self.age.filter(|&c| !row.get(c).is_empty()).map(|c| attr("age", row.get(c))));
        Ok(Read::Sample(diagnosis(name, Image::Path(path), label, attributes)))
    }
}

/// A whole-number code (`1`, or `1.0` as a spreadsheet may write it).
fn code(row: &Row<'_>, col: usize) -> Option<i64> {
    row.number(col).filter(|v| v.fract() == 0.0 && v.abs() < 1e9).map(|v| v as i64)
}

fn info() -> DatasetInfo {
    mvb_dataset_common::info(
        NAME,
        "PAPILA: fundus photographs of both eyes, glaucoma (1) vs healthy (0); suspects left out",
        Task::Diagnosis,
        Modality::Ophthalmology,
        vec!["benign fundus".to_owned(), "glaucoma fundus".to_owned()],
        "CC-BY-4.0",
        "Oleksandr Kovalyk, Juan Morales-Sánchez, Rafael Verdú-Monedero, Inmaculada Sellés-Navarro, \
Ana Palazón-Cabanes, José-Luis Sancho-Gómez. PAPILA: Dataset with fundus images and clinical data of both eyes \
of the same patient for glaucoma assessment. Scientific Data 9, 291 (2022).",
    )
}

serve!(SingleOf<Papila>);
