//! mvb dataset plugin `slake`: the English questions of SLAKE (Liu et al., ISBI 2021) as its
//! authors publish it (<https://www.med-vqa.com/slake/>, `Slake1.0`): `train.json`,
//! `validate.json`, `test.json` and the images under `imgs/` (`imgs/xmlab0/source.jpg`). The
//! data folder is `Slake1.0/` or its parent.
//!
//! As MedVLMBench (`dataset/vqa.py`, over the Hugging Face copy `BoKelvin/SLAKE`, the same
//! files): the official splits (train, validation from `validate.json`, test); only entries
//! whose `q_lang` starts with `en`; question and answer as written; a question is open when its
//! `answer_type` is `OPEN`, closed otherwise. The official test split has 1,061 English
//! questions (645 open, 416 closed).
//!
//! Ids are `<split>-<qid>`. Attributes: `modality`, `location` (organ or body part) and
//! `content_type` (what the question asks about).

use mvb_dataset_common::json::{self, Entry};
use mvb_dataset_common::{
    AnswerKind, DatasetInfo, Error, Family, Image, Loaded, Modality, Qa, Sample, Task, attr, expect_name, fs, serve,
};

const NAME: &str = "slake";
/// The question files of the train, validation and test splits, with the split's id prefix.
const FILES: [(&str, &str); 3] = [("train.json", "train"), ("validate.json", "validation"), ("test.json", "test")];

/// The folder holding the question files: the data folder or its `Slake1.0/`.
fn base() -> Option<&'static str> {
    ["", "Slake1.0"].into_iter().find(|b| fs::is_file(&fs::join(b, "test.json")) && fs::is_dir(&fs::join(b, "imgs")))
}

struct Slake;

impl Family for Slake {
    fn catalog() -> Result<Vec<String>, Error> {
        Ok(base().map(|_| vec![NAME.to_owned()]).unwrap_or_default())
    }

    fn open(name: &str) -> Result<Loaded, Error> {
        expect_name(name, NAME)?;
        let base = base().unwrap_or("");
        let mut splits: [Vec<Sample>; 3] = Default::default();
        for ((file, prefix), out) in FILES.into_iter().zip(&mut splits) {
            let file = fs::join(base, file);
            let text = fs::read_text(&file)?;
            for entry in json::array(&file, &text)? {
                if entry.text("q_lang")?.starts_with("en") {
                    out.push(sample(&entry, base, prefix)?);
                }
            }
        }
        Loaded::new(info(), splits)
    }
}

/// The sample of one English entry.
fn sample(entry: &Entry<'_>, base: &str, prefix: &str) -> Result<Sample, Error> {
    let img_name = entry.text("img_name")?;
    let image = fs::join(base, &format!("imgs/{img_name}"));
    fs::check_relative(&image, || format!("entry {}", entry.index))?;
    if !fs::is_file(&image) {
        return Err(entry.bad("img_name", format!("`{image}` is missing from the data folder")));
    }
    let kind = match entry.text("answer_type")?.as_str() {
        "OPEN" => AnswerKind::Open,
        _ => AnswerKind::Closed,
    };
    let attributes = ["modality", "location", "content_type"]
        .into_iter()
        .filter_map(|key| entry.optional_text(key).map(|v| attr(key, v)))
        .collect();
    Ok(Sample {
        id: format!("{prefix}-{}", entry.text("qid")?),
        image: Some(Image::Path(image)),
        labels: Vec::new(),
        qa: Some(Qa { question: entry.text("question")?, answer: entry.text("answer")?, kind }),
        attributes,
    })
}

fn info() -> DatasetInfo {
    DatasetInfo {
        name: NAME.to_owned(),
        description: "SLAKE (English): radiology VQA on CT, MRI and X-ray; open/closed by answer_type".to_owned(),
        task: Task::Vqa,
        modality: Modality::Radiology,
        class_names: Vec::new(),
        multi_label: false,
        splits: Vec::new(),
        license: "CC-BY-4.0".to_owned(),
        citation: "Bo Liu, Li-Ming Zhan, Li Xu, Lin Ma, Yan Yang, Xiao-Ming Wu. SLAKE: A Semantically-Labeled \
Knowledge-Enhanced Dataset for Medical Visual Question Answering. ISBI 2021."
            .to_owned(),
    }
}

serve!(Slake);
