//! `predictions.jsonl`, the ground truth of a run: one JSON object per line, appended and
//! flushed one unit (model × dataset × split × strategy) at a time.
//!
//! Three kinds of line:
//! - `{"run": {"mvb_version": …, "config": {…}}}`: a header, written when the file is created
//!   and again when a resumed run's configuration differs; the last one describes the models
//!   (family, group, ID datasets), metrics and bootstrap the report uses.
//! - `{"model", "dataset", "split", "strategy", "id", "labels", "scores"}`: one sample's class
//!   probabilities (diagnosis);
//! - `{"model", "dataset", "split", "strategy", "id", "qa": {"question", "answer", "kind"},
//!   "prompt", "text"}`: one VQA sample's question, reference answer and kind, the prompt the
//!   model was given and the text it generated. A unit holds one kind of line only.
//! - Either kind of prediction line ends with `"attributes": {"sex": "F", …}` when the
//!   dataset gives the sample attributes (for subgroup results; absent otherwise).
//! - `{"done": {"model", "dataset", "split", "strategy", "n"}}`: the unit above it is complete
//!   with `n` samples. Prediction lines without their marker belong to a unit that was
//!   interrupted; readers ignore them (and `--resume` cuts them off and recomputes the unit).
//!
//! A last line without its newline is a write cut short: it is ignored with a warning. Any
//! other line that does not parse is an error naming its line number.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{RunConfig, Strategy};
use super::error::RunError;
use super::provenance::Provenance;
use crate::data::{Qa, Split};

/// The file name inside the output folder.
pub const PREDICTIONS_FILE: &str = "predictions.jsonl";

/// What identifies a unit of work.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitKey {
    /// The model's name.
    pub model: String,
    /// The dataset's name.
    pub dataset: String,
    /// The split evaluated.
    pub split: Split,
    /// The strategy.
    pub strategy: Strategy,
}

impl std::fmt::Display for UnitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} × {} {} × {}", self.model, self.dataset, self.split, self.strategy)
    }
}

/// The run header line's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunHeader {
    /// The version of mvb that wrote the predictions after this header.
    pub mvb_version: String,
    /// The configuration (paths resolved; the output folder left out).
    pub config: RunConfig,
    /// The content hashes of the run's inputs (absent in files of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// The shard this folder ran, if it is one (`mvb run --shard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<super::shard::Shard>,
}

impl RunHeader {
    /// The header of a run of `config` by this mvb (without provenance).
    pub fn new(config: &RunConfig) -> Self {
        RunHeader {
            mvb_version: env!("CARGO_PKG_VERSION").to_owned(),
            config: config.clone(),
            provenance: None,
            shard: None,
        }
    }
}

/// A sample's attributes (sex, age, site, ...), by key, for subgroup results.
pub type Attributes = BTreeMap<String, String>;

/// One VQA sample's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The question, the reference answer and its kind, as the dataset gave them.
    pub qa: Qa,
    /// The prompt the model answered (before its chat template).
    pub prompt: String,
    /// The generated text.
    pub text: String,
}

/// One unit's predictions, in sample order: class probabilities (diagnosis) or answers (VQA).
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Which unit.
    pub key: UnitKey,
    /// Sample ids.
    pub ids: Vec<String>,
    /// Diagnosis: their labels (empty for VQA).
    pub labels: Vec<Vec<u32>>,
    /// Diagnosis: class probabilities, one row per sample (empty for VQA).
    pub scores: Vec<Vec<f32>>,
    /// VQA: one answer per sample (empty for diagnosis).
    pub answers: Vec<Answer>,
    /// One per sample, or empty when no sample has attributes.
    pub attributes: Vec<Attributes>,
}

impl Unit {
    /// The number of samples.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the unit has no samples.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether it holds VQA answers.
    pub fn is_vqa(&self) -> bool {
        !self.answers.is_empty()
    }

    /// An empty unit.
    fn new(key: UnitKey) -> Unit {
        Unit {
            key,
            ids: Vec::new(),
            labels: Vec::new(),
            scores: Vec::new(),
            answers: Vec::new(),
            attributes: Vec::new(),
        }
    }
}

/// A prediction line as written.
#[derive(Serialize)]
struct PredictionOut<'a> {
    model: &'a str,
    dataset: &'a str,
    split: Split,
    strategy: Strategy,
    id: &'a str,
    #[serde(flatten)]
    output: OutputOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<&'a Attributes>,
}

/// What a prediction line holds, as written.
#[derive(Serialize)]
#[serde(untagged)]
enum OutputOut<'a> {
    Classes { labels: &'a [u32], scores: &'a [f32] },
    Answer(&'a Answer),
}

/// A prediction line as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictionIn {
    model: String,
    dataset: String,
    split: Split,
    strategy: Strategy,
    id: String,
    labels: Option<Vec<u32>>,
    scores: Option<Vec<f32>>,
    qa: Option<Qa>,
    prompt: Option<String>,
    text: Option<String>,
    #[serde(default)]
    attributes: Attributes,
}

/// What a prediction line holds, as read.
enum OutputIn {
    Classes(Vec<u32>, Vec<f32>),
    Answer(Answer),
}

impl PredictionIn {
    /// Class scores or an answer, never a mix of the two.
    fn output(&mut self) -> Result<OutputIn, String> {
        let id = &self.id;
        match (self.labels.take(), self.scores.take(), self.qa.take(), self.prompt.take(), self.text.take()) {
            (Some(labels), Some(scores), None, None, None) => {
                if scores.is_empty() {
                    return Err(format!("sample `{id}` has no scores"));
                }
                if let Some(l) = labels.iter().find(|&&l| l as usize >= scores.len()) {
                    return Err(format!("sample `{id}`: label {l} but {} class scores", scores.len()));
                }
                Ok(OutputIn::Classes(labels, scores))
            }
            (None, None, Some(qa), Some(prompt), Some(text)) => Ok(OutputIn::Answer(Answer { qa, prompt, text })),
            _ => Err(format!(
                "sample `{id}` must hold either `labels` and `scores` (diagnosis) or `qa`, `prompt` and `text` (VQA)"
            )),
        }
    }
}

/// The completion marker's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Done {
    model: String,
    dataset: String,
    split: Split,
    strategy: Strategy,
    n: usize,
}

#[derive(Serialize)]
struct DoneLine<'a> {
    done: &'a Done,
}

#[derive(Serialize)]
struct HeaderLine<'a> {
    run: &'a RunHeader,
}

/// What was left out when reading: an interrupted unit, a cut-short last line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dropped {
    /// The unit whose lines had no completion marker, and how many lines it had.
    pub unfinished: Option<(UnitKey, usize)>,
    /// The 1-based number of a last line without its newline.
    pub partial_line: Option<usize>,
}

impl Dropped {
    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        self.unfinished.is_none() && self.partial_line.is_none()
    }

    /// Human-readable warnings, one per dropped thing.
    pub fn warnings(&self, path: &Path) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((key, lines)) = &self.unfinished {
            out.push(format!("{}: ignoring {lines} prediction lines of the unfinished unit {key}", path.display()));
        }
        if let Some(line) = self.partial_line {
            out.push(format!("{}: ignoring line {line}, cut short (no newline)", path.display()));
        }
        out
    }
}

/// The complete content of a predictions file.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// Every header, in file order.
    pub headers: Vec<RunHeader>,
    /// Every complete unit, in file order.
    pub units: Vec<Unit>,
    /// The byte length of the file up to the end of its last header or completed unit.
    pub complete_len: u64,
    /// What was ignored.
    pub dropped: Dropped,
}

impl Contents {
    /// The last header.
    pub fn last_header(&self) -> Option<&RunHeader> {
        self.headers.last()
    }
}

/// Reads a predictions file.
pub fn read(path: &Path) -> Result<Contents, RunError> {
    let bytes = std::fs::read(path).map_err(|e| RunError::io(path, e))?;
    parse(&bytes, path)
}

/// Parses predictions-file bytes; `path` names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Contents, RunError> {
    let mut parser = Parser { path, contents: Contents::default(), pending: None, completed: HashMap::new() };
    let mut offset = 0usize;
    let mut number = 0usize;
    while offset < bytes.len() {
        number += 1;
        let (line, next, terminated) = match bytes[offset..].iter().position(|&b| b == b'\n') {
            Some(p) => (&bytes[offset..offset + p], offset + p + 1, true),
            None => (&bytes[offset..], bytes.len(), false),
        };
        offset = next;
        if !terminated {
            if !line.iter().all(u8::is_ascii_whitespace) {
                parser.contents.dropped.partial_line = Some(number);
            }
            break;
        }
        parser.line(line, number, offset as u64)?;
    }
    let mut contents = parser.contents;
    if let Some((unit, _)) = parser.pending {
        contents.dropped.unfinished = Some((unit.key.clone(), unit.len()));
    }
    Ok(contents)
}

/// The state of [`parse`] between lines.
struct Parser<'p> {
    path: &'p Path,
    contents: Contents,
    /// The unit being read, and its first line.
    pending: Option<(Unit, usize)>,
    /// The line of each completed unit's marker.
    completed: HashMap<UnitKey, usize>,
}

impl Parser<'_> {
    fn err(&self, line: usize, message: String) -> RunError {
        RunError::Predictions { file: self.path.to_owned(), line, message }
    }

    /// Reads line `number` (without its newline), which ends at byte `end`.
    fn line(&mut self, line: &[u8], number: usize, end: u64) -> Result<(), RunError> {
        let text = std::str::from_utf8(line).map_err(|_| self.err(number, "not valid UTF-8".into()))?;
        if text.trim().is_empty() {
            if self.pending.is_none() {
                self.contents.complete_len = end;
            }
            return Ok(());
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| self.err(number, format!("not a JSON object: {e}")))?;
        let serde_json::Value::Object(mut object) = value else {
            return Err(self.err(number, "not a JSON object".into()));
        };
        if object.len() == 1 && object.contains_key("run") {
            self.header(object.remove("run").unwrap_or_default(), number)?;
            self.contents.complete_len = end;
        } else if object.len() == 1 && object.contains_key("done") {
            self.done(object.remove("done").unwrap_or_default(), number)?;
            self.contents.complete_len = end;
        } else {
            self.prediction(serde_json::Value::Object(object), number)?;
        }
        Ok(())
    }

    fn header(&mut self, value: serde_json::Value, number: usize) -> Result<(), RunError> {
        let header: RunHeader =
            serde_json::from_value(value).map_err(|e| self.err(number, format!("bad run header: {e}")))?;
        if let Some((unit, first)) = &self.pending {
            return Err(self.err(number, format!("a run header inside unit {} (begun at line {first})", unit.key)));
        }
        self.contents.headers.push(header);
        Ok(())
    }

    fn done(&mut self, value: serde_json::Value, number: usize) -> Result<(), RunError> {
        let done: Done =
            serde_json::from_value(value).map_err(|e| self.err(number, format!("bad completion marker: {e}")))?;
        let key = UnitKey { model: done.model, dataset: done.dataset, split: done.split, strategy: done.strategy };
        let unit = match self.pending.take() {
            Some((unit, first)) if unit.key != key => {
                let message =
                    format!("completion marker of {key} after predictions of {} (from line {first})", unit.key);
                return Err(self.err(number, message));
            }
            Some((unit, _)) => unit,
            None => Unit::new(key.clone()),
        };
        if unit.len() != done.n {
            let message = format!("unit {key} is marked complete with {} samples, but has {}", done.n, unit.len());
            return Err(self.err(number, message));
        }
        if let Some(first) = self.completed.insert(key.clone(), number) {
            return Err(self.err(number, format!("unit {key} is complete twice (first at line {first})")));
        }
        if self.contents.headers.is_empty() {
            return Err(self.err(number, "predictions before any run header".into()));
        }
        let mut unit = unit;
        if unit.attributes.iter().all(Attributes::is_empty) {
            unit.attributes.clear();
        }
        self.contents.units.push(unit);
        Ok(())
    }

    fn prediction(&mut self, value: serde_json::Value, number: usize) -> Result<(), RunError> {
        let mut p: PredictionIn =
            serde_json::from_value(value).map_err(|e| self.err(number, format!("bad prediction: {e}")))?;
        let output = p.output().map_err(|m| self.err(number, m))?;
        let key = UnitKey { model: p.model, dataset: p.dataset, split: p.split, strategy: p.strategy };
        if self.completed.contains_key(&key) {
            return Err(self.err(number, format!("a prediction of {key}, which is already complete")));
        }
        let path = self.path;
        let err = |message: String| RunError::Predictions { file: path.to_owned(), line: number, message };
        let (unit, first) = self.pending.get_or_insert_with(|| (Unit::new(key.clone()), number));
        if unit.key != key {
            let message = format!(
                "a prediction of {key} inside unit {} (begun at line {first}, never marked complete)",
                unit.key
            );
            return Err(err(message));
        }
        match output {
            OutputIn::Classes(labels, scores) => {
                if unit.is_vqa() {
                    return Err(err(format!("sample `{}` has class scores inside a unit of answers", p.id)));
                }
                if let Some(width) = unit.scores.first().map(Vec::len)
                    && width != scores.len()
                {
                    return Err(err(format!(
                        "sample `{}` has {} class scores, earlier samples {width}",
                        p.id,
                        scores.len()
                    )));
                }
                unit.labels.push(labels);
                unit.scores.push(scores);
            }
            OutputIn::Answer(answer) => {
                if !unit.scores.is_empty() {
                    return Err(err(format!("sample `{}` has an answer inside a unit of class scores", p.id)));
                }
                unit.answers.push(answer);
            }
        }
        unit.ids.push(p.id);
        unit.attributes.push(p.attributes);
        Ok(())
    }
}

/// Appends to a predictions file.
#[derive(Debug)]
pub struct Writer {
    file: BufWriter<File>,
    path: PathBuf,
}

impl Writer {
    /// Creates (or empties) the file.
    pub fn create(path: &Path) -> Result<Writer, RunError> {
        let file = File::create(path).map_err(|e| RunError::io(path, e))?;
        Ok(Writer { file: BufWriter::new(file), path: path.to_owned() })
    }

    /// Opens the file for appending after cutting it to `len` bytes (what [`read`] found
    /// complete).
    pub fn resume(path: &Path, len: u64) -> Result<Writer, RunError> {
        let io = |e| RunError::io(path, e);
        let file = std::fs::OpenOptions::new().write(true).open(path).map_err(io)?;
        file.set_len(len).map_err(io)?;
        drop(file);
        let file = std::fs::OpenOptions::new().append(true).open(path).map_err(io)?;
        Ok(Writer { file: BufWriter::new(file), path: path.to_owned() })
    }

    fn io(&self, source: std::io::Error) -> RunError {
        RunError::io(&self.path, source)
    }

    fn line(&mut self, value: &impl Serialize) -> Result<(), RunError> {
        serde_json::to_writer(&mut self.file, value).map_err(|e| self.io(e.into()))?;
        self.file.write_all(b"\n").map_err(|e| self.io(e))
    }

    /// Writes a header line and flushes.
    pub fn header(&mut self, header: &RunHeader) -> Result<(), RunError> {
        self.line(&HeaderLine { run: header })?;
        self.file.flush().map_err(|e| self.io(e))
    }

    /// Writes a unit's prediction lines and its completion marker, and flushes.
    pub fn unit(&mut self, unit: &Unit) -> Result<(), RunError> {
        let k = &unit.key;
        let outputs: Vec<OutputOut<'_>> = if unit.is_vqa() {
            unit.answers.iter().map(OutputOut::Answer).collect()
        } else {
            unit.labels.iter().zip(&unit.scores).map(|(labels, scores)| OutputOut::Classes { labels, scores }).collect()
        };
        if outputs.len() != unit.ids.len() {
            return Err(RunError::Usage(format!("unit {k}: {} ids but {} predictions", unit.ids.len(), outputs.len())));
        }
        if !unit.attributes.is_empty() && unit.attributes.len() != unit.ids.len() {
            let (ids, attributes) = (unit.ids.len(), unit.attributes.len());
            return Err(RunError::Usage(format!("unit {k}: {ids} ids but {attributes} attribute sets")));
        }
        for (i, (id, output)) in unit.ids.iter().zip(outputs).enumerate() {
            self.line(&PredictionOut {
                model: &k.model,
                dataset: &k.dataset,
                split: k.split,
                strategy: k.strategy,
                id,
                output,
                attributes: unit.attributes.get(i).filter(|a| !a.is_empty()),
            })?;
        }
        let done = Done {
            model: k.model.clone(),
            dataset: k.dataset.clone(),
            split: k.split,
            strategy: k.strategy,
            n: unit.len(),
        };
        self.line(&DoneLine { done: &done })?;
        self.file.flush().map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(model: &str, n: usize) -> Unit {
        Unit {
            key: UnitKey { model: model.into(), dataset: "d".into(), split: Split::Test, strategy: Strategy::Zs },
            ids: (0..n).map(|i| format!("s{i}")).collect(),
            labels: (0..n).map(|i| vec![(i % 2) as u32]).collect(),
            scores: (0..n).map(|i| vec![0.25 + i as f32 / 100.0, 0.75 - i as f32 / 100.0]).collect(),
            answers: Vec::new(),
            attributes: (0..n)
                .map(|i| match i {
                    0 => Attributes::new(),
                    _ => Attributes::from([("sex".to_owned(), if i % 2 == 0 { "F" } else { "M" }.to_owned())]),
                })
                .collect(),
        }
    }

    fn vqa_unit(model: &str, n: usize) -> Unit {
        let kind = |i: usize| {
            if i.is_multiple_of(2) { crate::data::AnswerKind::Closed } else { crate::data::AnswerKind::Open }
        };
        Unit {
            key: UnitKey { model: model.into(), dataset: "v".into(), split: Split::Test, strategy: Strategy::Ots },
            ids: (0..n).map(|i| format!("q{i}")).collect(),
            labels: Vec::new(),
            scores: Vec::new(),
            answers: (0..n)
                .map(|i| Answer {
                    qa: Qa { question: format!("question {i}?"), answer: "yes".into(), kind: kind(i) },
                    prompt: format!("prompt {i}"),
                    text: format!("answer \"{i}\"\n"),
                })
                .collect(),
            attributes: Vec::new(),
        }
    }

    #[test]
    fn vqa_units_round_trip_and_do_not_mix() {
        let units = [vqa_unit("a", 3), unit("b", 2)];
        let bytes = written(&units);
        let c = parse(&bytes, Path::new("p")).unwrap();
        assert_eq!(c.units, units);
        let text = String::from_utf8(bytes).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[2] = lines[2].replace("\"text\"", "\"labels\":[0],\"scores\":[1.0],\"x\"");
        let bad = lines.join("\n") + "\n";
        let e = parse(bad.as_bytes(), Path::new("p.jsonl")).unwrap_err().to_string();
        assert!(e.starts_with("p.jsonl, line 3: bad prediction"), "{e}");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[2] = text
            .lines()
            .nth(6)
            .unwrap()
            .replace("\"b\"", "\"a\"")
            .replace("\"d\"", "\"v\"")
            .replace("\"zs\"", "\"ots\"");
        let bad = lines.join("\n") + "\n";
        let e = parse(bad.as_bytes(), Path::new("p.jsonl")).unwrap_err().to_string();
        assert!(e.contains("line 3: sample `s1` has class scores inside a unit of answers"), "{e}");
    }

    fn written(units: &[Unit]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let mut w = Writer::create(&path).unwrap();
        let config = RunConfig::default_config().unwrap();
        w.header(&RunHeader::new(&config)).unwrap();
        for u in units {
            w.unit(u).unwrap();
        }
        drop(w);
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn round_trips() {
        let units = [unit("a", 3), unit("b", 2)];
        let bytes = written(&units);
        let c = parse(&bytes, Path::new("p")).unwrap();
        assert_eq!(c.units, units);
        assert_eq!(c.complete_len, bytes.len() as u64);
        assert!(c.dropped.is_empty());
        assert_eq!(c.headers.len(), 1);
    }

    #[test]
    fn an_interrupted_unit_is_dropped() {
        let bytes = written(&[unit("a", 3), unit("b", 4)]);
        let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
        // header + a (3 + marker) + 2 of b's lines + half of the third.
        let mut cut: Vec<u8> = lines[..7].concat();
        cut.extend_from_slice(&lines[7][..10]);
        let c = parse(&cut, Path::new("p")).unwrap();
        assert_eq!(c.units.len(), 1);
        assert_eq!(c.complete_len, lines[..5].concat().len() as u64);
        assert_eq!(c.dropped.unfinished.as_ref().map(|(k, n)| (k.model.as_str(), *n)), Some(("b", 2)));
        assert_eq!(c.dropped.partial_line, Some(8));
    }

    #[test]
    fn malformed_lines_are_named() {
        let bytes = written(&[unit("a", 3)]);
        let text = String::from_utf8(bytes).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[2] = "{\"model\": \"a\", \"id\": 3}";
        let bad = lines.join("\n") + "\n";
        let e = parse(bad.as_bytes(), Path::new("p.jsonl")).unwrap_err().to_string();
        assert!(e.starts_with("p.jsonl, line 3: bad prediction: "), "{e}");
        lines[2] = "not json";
        let bad = lines.join("\n") + "\n";
        let e = parse(bad.as_bytes(), Path::new("p.jsonl")).unwrap_err().to_string();
        assert!(e.starts_with("p.jsonl, line 3: not a JSON object"), "{e}");
        // A wrong count in the marker.
        let marker = lines[4].replace("\"n\":3", "\"n\":4");
        lines[2] = text.lines().nth(2).unwrap();
        lines[4] = &marker;
        let bad = lines.join("\n") + "\n";
        let e = parse(bad.as_bytes(), Path::new("p.jsonl")).unwrap_err().to_string();
        assert!(e.contains("line 5: unit a × d test × zs is marked complete with 4 samples, but has 3"), "{e}");
    }
}
