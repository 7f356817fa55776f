//! mvb dataset plugin `pathvqa`: PathVQA (He et al., 2020) as its authors publish it
//! (<https://github.com/UCSD-AI4H/PathVQA>, the `pvqa` folder): the questions in
//! `qas/{train,val,test}/{split}_qa.pkl` (Python pickles: a list of dicts with `image`,
//! `question`, `answer`) and the images in `images/{split}/<image>.jpg`. The data folder is
//! `pvqa/` or its parent.
//!
//! The samples are MedVLMBench's (`dataset/vqa.py`, which reads the Hugging Face copy
//! `flaviagiammarino/path-vqa`), rebuilt from the publisher's files by that copy's rules (its
//! `scripts/processing.py`): the official train, validation (`val`) and test splits; repeated
//! (image, question, answer) triplets dropped within a split, keeping the first; question and
//! answer cleaned (lower case, runs of spaces made one, ` ?` made `?`, trimmed); a question is
//! closed when its answer is `yes` or `no`, open otherwise. With the official files this gives
//! 6,719 test questions (3,362 closed, 3,357 open).
//!
//! Ids are `<split>-<position>` in the de-duplicated split (the Hugging Face copy's order).
//! The pickles are read as plain data only (`pickle`): nothing in them is executed.

mod pickle;

use mvb_dataset_common::vqa::{self, Triplet};
use mvb_dataset_common::{DatasetInfo, Error, Loaded, Modality, Sample, Single, SingleOf, Task, corrupt, fs, serve};
use pickle::Value;

const NAME: &str = "pathvqa";
/// The publisher's split folders, in the contract's order.
const SPLITS: [&str; 3] = ["train", "val", "test"];

struct PathVqa;

impl Single for PathVqa {
    const NAME: &'static str = NAME;

    fn locate() -> Option<&'static str> {
        fs::locate(&["", "pvqa"], "qas/test/test_qa.pkl")
    }

    fn read(base: &str) -> Result<Loaded, Error> {
        let mut splits: [Vec<Sample>; 3] = Default::default();
        for (split, out) in SPLITS.into_iter().zip(&mut splits) {
            let file = fs::join(base, &format!("qas/{split}/{split}_qa.pkl"));
            // A missing train or validation file leaves that split empty; the test file is required.
            if split != "test" && !fs::is_file(&file) {
                continue;
            }
            let rows = vqa::dedup(read_split(base, split, &file)?, &[]);
            *out = rows
                .into_iter()
                .enumerate()
                .map(|(i, t)| vqa::sample(Triplet { id: format!("{split}-{i}"), ..t }))
                .collect();
        }
        Loaded::new(info(), splits)
    }
}

/// The triplets of one split's pickle, each image checked to exist.
fn read_split(base: &str, split: &str, file: &str) -> Result<Vec<Triplet>, Error> {
    let value = pickle::load(&fs::read_bytes(file)?).map_err(|e| corrupt(format!("`{file}`: {e}")))?;
    let Value::List(entries) = value else {
        return Err(corrupt(format!("`{file}`: expected a list of question dicts")));
    };
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let field = |key: &str| -> Result<String, Error> {
                let Value::Dict(d) = entry else {
                    return Err(corrupt(format!("`{file}` entry {index}: not a dict")));
                };
                let found = d.iter().find(|(k, _)| *k == Value::Str(key.to_owned())).map(|(_, v)| v);
                let found = found.ok_or_else(|| corrupt(format!("`{file}` entry {index}, key `{key}`: missing")))?;
                found.text().ok_or_else(|| corrupt(format!("`{file}` entry {index}, key `{key}`: not a string")))
            };
            let image_key = field("image")?;
            let image = fs::join(base, &format!("images/{split}/{image_key}.jpg"));
            fs::check_relative(&image, || format!("`{file}` entry {index}"))?;
            if !fs::is_file(&image) {
                return Err(corrupt(format!(
                    "`{file}` entry {index}, key `image`: `{image}` is missing from the data folder"
                )));
            }
            Ok(Triplet {
                image,
                image_key,
                question: field("question")?,
                answer: field("answer")?,
                id: String::new(),
                attributes: Vec::new(),
            })
        })
        .collect()
}

fn info() -> DatasetInfo {
    mvb_dataset_common::info(
        NAME,
        "PathVQA: questions on pathology images from textbooks and PEIR; open/closed by a yes/no answer",
        Task::Vqa,
        Modality::Pathology,
        Vec::new(),
        "MIT",
        "Xuehai He, Yichen Zhang, Luntian Mou, Eric Xing, Pengtao Xie. PathVQA: 30000+ Questions for \
Medical Visual Question Answering. arXiv:2003.10286 (2020).",
    )
}

serve!(SingleOf<PathVqa>);
