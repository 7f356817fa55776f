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
    AnswerKind, DatasetInfo, Error, Image, Loaded, Modality, Qa, Sample, Single, SingleOf, Task, attr, fs, serve,
};

const NAME: &str = "slake";
/// The question files of the train, validation and test splits, with the split's id prefix.
const FILES: [(&str, &str); 3] = [("train.json", "train"), ("validate.json", "validation"), ("test.json", "test")];

struct Slake;

impl Single for Slake {
    const NAME: &'static str = NAME;

    fn locate() -> Option<&'static str> {
        fs::locate(&["", "Slake1.0"], "test.json").filter(|b| fs::is_dir(&fs::join(b, "imgs")))
    }

    fn read(base: &str) -> Result<Loaded, Error> {
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
    mvb_dataset_common::info(
        NAME,
        "SLAKE (English): radiology VQA on CT, MRI and X-ray; open/closed by answer_type",
        Task::Vqa,
        Modality::Radiology,
        Vec::new(),
        "CC-BY-4.0",
        "Bo Liu, Li-Ming Zhan, Li Xu, Lin Ma, Yan Yang, Xiao-Ming Wu. SLAKE: A Semantically-Labeled \
Knowledge-Enhanced Dataset for Medical Visual Question Answering. ISBI 2021.",
    )
}

serve!(SingleOf<Slake>);
