//! mvb dataset plugin `vqa-jsonl`: a VQA dataset listed one JSON object per line, for data that
//! needs no code of its own (the JSON Lines layout of Hugging Face's `datasets` and of LLaVA's
//! evaluation files). Every `NAME.jsonl` in the data folder is a dataset `NAME`:
//!
//! ```text
//! {"image": "images/0001.png", "question": "Is there a fracture?", "answer": "yes", "kind": "closed", "split": "test"}
//! {"image": "images/0001.png", "question": "Where is the lesion?", "answer": "left lung", "kind": "open", "split": "test", "sex": "F"}
//! ```
//!
//! - `image`: the image, relative to the `.jsonl` file's folder (the data folder; `/`
//!   separators, no `..`); it must exist.
//! - `question`, `answer`: non-empty text (a number answer is taken as written, `2`).
//! - `kind`: `open` or `closed` (any case); anything else is an error, never a guess.
//! - `split` (optional): `train`, `validation` (or `val`) or `test`; without it the question is
//!   in the test split. Any other value is an error.
//! - `id` (optional): the sample id, unique in the file; without it the id is `line-N`, which
//!   changes when lines are added above: give ids for results comparable across edits.
//! - any other field holding text or a number is a sample attribute (for subgroup results);
//!   empty ones are left out.
//!
//! Blank lines are skipped. Each bad line gives one error naming the file, the line and the
//! field at fault.

use std::collections::HashSet;

use mvb_dataset_common::{
    AnswerKind, Attribute, DatasetInfo, Error, ErrorKind, Family, Image, Loaded, Modality, Qa, Sample, Task, attr,
    corrupt, error, fs, serve, slot, split_named,
};
use serde_json::{Map, Value};

/// The fields with a meaning of their own; every other field is an attribute.
const FIELDS: [&str; 6] = ["image", "question", "answer", "kind", "split", "id"];

/// One line of a `.jsonl` file: its object and where it is.
struct Line<'a> {
    file: &'a str,
    number: usize,
    fields: Map<String, Value>,
}

impl Line<'_> {
    fn bad(&self, key: &str, what: impl std::fmt::Display) -> Error {
        corrupt(format!("`{}` line {}, field `{key}`: {what}", self.file, self.number))
    }

    /// The field `key` as text (a number as written), if present; arrays, objects, booleans
    /// and null are an error.
    fn optional(&self, key: &str) -> Result<Option<String>, Error> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(self.bad(key, format!("expected text or a number, found {}", kind_of(other)))),
        }
    }

    /// The field `key` as non-empty text.
    fn required(&self, key: &str) -> Result<String, Error> {
        match self.optional(key)? {
            None => Err(self.bad(key, "missing")),
            Some(s) if s.trim().is_empty() => Err(self.bad(key, "empty")),
            Some(s) => Ok(s),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Number(_) | Value::String(_) => "a value",
    }
}

struct VqaJsonl;

impl Family for VqaJsonl {
    fn catalog() -> Result<Vec<String>, Error> {
        let files = fs::list("", true).unwrap_or_default();
        Ok(files.iter().filter_map(|f| f.strip_suffix(".jsonl")).filter(|s| !s.is_empty()).map(str::to_owned).collect())
    }

    fn open(name: &str) -> Result<Loaded, Error> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(error(ErrorKind::InvalidArgument, format!("`{name}` is not a dataset name")));
        }
        let file = format!("{name}.jsonl");
        let text = fs::read_text(&file)?;
        let mut splits: [Vec<Sample>; 3] = Default::default();
        let mut ids = HashSet::new();
        let mut listing = fs::Listing::default();
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let line = parse_line(&file, i + 1, raw)?;
            let (slot, sample) = sample(&line, &mut listing)?;
            if !ids.insert(sample.id.clone()) {
                return Err(line.bad("id", format!("`{}` is used by an earlier line; ids must be unique", sample.id)));
            }
            splits[slot].push(sample);
        }
        Loaded::new(info(name), splits)
    }
}

/// Parses line `number` of `file` as a JSON object.
fn parse_line<'a>(file: &'a str, number: usize, raw: &str) -> Result<Line<'a>, Error> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(fields)) => Ok(Line { file, number, fields }),
        Ok(other) => Err(corrupt(format!("`{file}` line {number}: expected a JSON object, found {}", kind_of(&other)))),
        Err(e) => Err(corrupt(format!("`{file}` line {number}, column {}: not a JSON object: {e}", e.column()))),
    }
}

/// The split slot and sample of one line.
fn sample(line: &Line<'_>, listing: &mut fs::Listing) -> Result<(usize, Sample), Error> {
    let image = line.required("image")?;
    fs::check_relative(&image, || format!("`{}` line {}, field `image`", line.file, line.number))?;
    let (folder, base) = image.rsplit_once('/').unwrap_or(("", &image));
    if !listing.contains(folder, base) {
        return Err(line.bad("image", format!("`{image}` is missing from the data folder")));
    }
    let question = line.required("question")?;
    let answer = line.required("answer")?;
    let kind = match line.required("kind")?.trim().to_ascii_lowercase().as_str() {
        "open" => AnswerKind::Open,
        "closed" => AnswerKind::Closed,
        other => return Err(line.bad("kind", format!("`{other}` is neither `open` nor `closed`"))),
    };
    let slot = match line.optional("split")? {
        None => 2,
        Some(s) => split_named(&s)
            .map(slot)
            .ok_or_else(|| line.bad("split", format!("`{s}` is not train, validation or test")))?,
    };
    let id = match line.optional("id")? {
        Some(id) if !id.trim().is_empty() => id,
        Some(_) => return Err(line.bad("id", "empty")),
        None => format!("line-{}", line.number),
    };
    let mut attributes: Vec<Attribute> = Vec::new();
    for key in line.fields.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        if let Some(value) = line.optional(key)?.filter(|v| !v.is_empty()) {
            attributes.push(attr(key, value));
        }
    }
    let qa = Some(Qa { question, answer, kind });
    Ok((slot, Sample { id, image: Some(Image::Path(image)), labels: Vec::new(), qa, attributes }))
}

fn info(name: &str) -> DatasetInfo {
    mvb_dataset_common::info(
        name,
        format!("{name}: questions listed in `{name}.jsonl` (image, question, answer, kind, split, attributes)"),
        Task::Vqa,
        Modality::Other,
        Vec::new(),
        "unknown",
        "",
    )
}

serve!(VqaJsonl);
