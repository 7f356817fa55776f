//! The judge of a run: MedVLMBench's "GPT score" (`../shared/MEDVLMBENCH.md`, "VQA metrics"),
//! asked of a judge plugin (`gpt-score` by default) that queries a language model the kernel
//! runs natively (`[judge] model`, a GGUF file or a Hugging Face folder).
//!
//! After the predictions, every open question of the complete VQA units is judged once per
//! distinct (question, reference answer, generated answer): a greedy judge gives the same verdict
//! to the same case, so repeated answers are judged once. Each verdict is appended and flushed to
//! `judgements.jsonl` as it is made, with the judge plugin, the SHA-256 of the judge model's
//! files and the mode (`free-form` or `constrained`); `mvb report` reads verdicts from that file
//! and never loads the judge, and `--resume` judges only the cases the file lacks. A judge that
//! finds no verdict (no score within its protocol's attempts) is recorded as a failure: counted
//! in the report, never scored.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::config::RunConfig;
use super::error::RunError;
use super::predictions::{Answer, Contents};
use super::provenance::model_sha256;
use super::{Progress, Stage};
use crate::data::AnswerKind;
use crate::model::ModelError;
use crate::model::causal::CausalLm;
use crate::model::generate::GenerateOptions as ModelOptions;
use crate::plugin::{ErrorKind, GenerateOptions, GenerationError, Generator, JudgeOptions, PluginHost};

/// The verdicts file inside the output folder.
pub const JUDGEMENTS_FILE: &str = "judgements.jsonl";

/// One judged case: a question, its reference answer and a generated answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Case {
    /// The question.
    pub question: String,
    /// The reference answer.
    pub reference: String,
    /// The generated answer.
    pub candidate: String,
}

/// Who judged: the plugin, the model's files and the mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeId {
    /// The judge plugin (a built-in name or a file).
    pub judge: String,
    /// SHA-256 of the judge model's file (or of its folder's files).
    pub model_sha256: String,
    /// `free-form` or `constrained`.
    pub mode: String,
}

/// One line of `judgements.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// What was judged.
    #[serde(flatten)]
    pub case: Case,
    /// Who judged.
    #[serde(flatten)]
    pub by: JudgeId,
    /// The score in the judge's range; `None` when the judge found no verdict.
    pub score: Option<f64>,
    /// The judge's range `[min, max]`.
    pub range: [f64; 2],
    /// The rationale, or why no verdict was found.
    pub rationale: String,
    /// How many times the judge asked its model (unknown for a failed judgement).
    pub model_calls: Option<u32>,
}

impl Judgement {
    /// The score scaled to [0, 1] (`None`: a failed judgement).
    pub fn scaled(&self) -> Option<f64> {
        let [lo, hi] = self.range;
        self.score.map(|s| (s - lo) / (hi - lo))
    }
}

/// The verdicts of a run folder.
#[derive(Debug, Default)]
pub struct Judgements {
    by_case: HashMap<Case, Judgement>,
    by: Option<JudgeId>,
}

impl Judgements {
    /// Reads `dir/judgements.jsonl` (none: empty). A last line cut short is ignored; any other
    /// line that does not parse, or a second judge, is an error naming the line.
    pub fn read(dir: &Path) -> Result<Judgements, RunError> {
        let path = dir.join(JUDGEMENTS_FILE);
        let mut text = String::new();
        match File::open(&path) {
            Ok(mut f) => f.read_to_string(&mut text).map_err(|e| RunError::io(&path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Judgements::default()),
            Err(e) => return Err(RunError::io(&path, e)),
        };
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        let mut out = Judgements::default();
        for (i, line) in complete.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let err = |message: String| RunError::Predictions { file: path.clone(), line: i + 1, message };
            let j: Judgement = serde_json::from_str(line).map_err(|e| err(format!("not a judgement: {e}")))?;
            match &out.by {
                Some(by) if *by != j.by => {
                    return Err(err(format!("judged by {:?}, but earlier lines by {:?}", j.by, by)));
                }
                _ => out.by = Some(j.by.clone()),
            }
            out.by_case.insert(j.case.clone(), j);
        }
        Ok(out)
    }

    /// The verdict on `case`, if it was judged.
    pub fn get(&self, case: &Case) -> Option<&Judgement> {
        self.by_case.get(case)
    }

    /// Who judged (none before the first verdict).
    pub fn judge(&self) -> Option<&JudgeId> {
        self.by.as_ref()
    }

    /// Number of verdicts, and of failed ones.
    pub fn counts(&self) -> (usize, usize) {
        (self.by_case.len(), self.by_case.values().filter(|j| j.score.is_none()).count())
    }
}

/// How the open questions of one VQA unit were judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct JudgeTally {
    /// Open questions.
    pub open: usize,
    /// Open questions with a verdict (exact matches included).
    pub judged: usize,
    /// Verdicts given for an exact match, without asking the model.
    pub exact: usize,
    /// Open questions whose judgement failed (no verdict).
    pub failed: usize,
    /// Open questions not judged yet (an interrupted run: `--resume` judges them).
    pub missing: usize,
}

/// The judge's input to the VQA metrics for each answer of a unit (`None` everywhere when the
/// run has no judge, or when some open question is not judged yet; else `Some(score)` with
/// `None` for closed questions and failed judgements), and the unit's tally.
pub fn unit_scores(
    answers: &[Answer],
    judgements: Option<&Judgements>,
) -> (Vec<Option<Option<f64>>>, Option<JudgeTally>) {
    let Some(judgements) = judgements else { return (vec![None; answers.len()], None) };
    let mut tally = JudgeTally::default();
    let mut scores = Vec::with_capacity(answers.len());
    for a in answers {
        if a.qa.kind != AnswerKind::Open {
            scores.push(Some(None));
            continue;
        }
        tally.open += 1;
        let case = Case { question: a.qa.question.clone(), reference: a.qa.answer.clone(), candidate: a.text.clone() };
        match judgements.get(&case) {
            Some(j) if j.score.is_some() => {
                tally.judged += 1;
                tally.exact += usize::from(j.model_calls == Some(0));
                scores.push(Some(j.scaled()));
            }
            Some(_) => {
                tally.failed += 1;
                scores.push(Some(None));
            }
            None => tally.missing += 1,
        }
    }
    if tally.missing > 0 {
        return (vec![None; answers.len()], Some(tally));
    }
    (scores, Some(tally))
}

/// The distinct open cases of the complete VQA units of `contents`, in file order.
pub fn open_cases(contents: &Contents) -> Vec<Case> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for answer in contents.units.iter().flat_map(|u| &u.answers) {
        if answer.qa.kind != AnswerKind::Open {
            continue;
        }
        let case = Case {
            question: answer.qa.question.clone(),
            reference: answer.qa.answer.clone(),
            candidate: answer.text.clone(),
        };
        if seen.insert(case.clone()) {
            out.push(case);
        }
    }
    out
}

/// The judge model as the `generation` import serves it.
#[derive(Debug)]
pub struct LocalModel(pub CausalLm);

impl Generator for LocalModel {
    fn generate(&self, prompt: &str, options: &GenerateOptions) -> Result<String, GenerationError> {
        let opts = ModelOptions {
            max_new_tokens: options.max_tokens as usize,
            temperature: options.temperature,
            seed: options.seed,
            stop: options.stop.clone(),
            ..ModelOptions::default()
        };
        self.0.reply(options.system.as_deref(), prompt, &opts, options.constraint.as_ref()).map_err(|e| match e {
            ModelError::Input(m) => GenerationError::Invalid(m),
            other => GenerationError::Failed(other.to_string()),
        })
    }
}

/// Judges the open cases of `contents` that `dir`'s verdicts lack, appending each verdict, as
/// the run's [`Stage::Judge`]. Returns the number of verdicts made. Without `[judge]`, nothing.
pub fn judge_run(
    host: &PluginHost,
    config: &RunConfig,
    dir: &Path,
    contents: &Contents,
    progress: &mut dyn FnMut(Progress),
) -> Result<usize, RunError> {
    let Some(settings) = &config.judge else { return Ok(0) };
    let known = Judgements::read(dir)?;
    let todo: Vec<Case> = open_cases(contents).into_iter().filter(|c| known.get(c).is_none()).collect();
    if todo.is_empty() {
        return Ok(0);
    }
    progress(Progress::Begin { stage: Stage::Judge, total: todo.len() as u64 });
    // The run's header already holds the judge model's hash (provenance, checked on resume):
    // a multi-gigabyte model is hashed once per run, not twice.
    let recorded = contents.last_header().and_then(|h| h.provenance.as_ref()).and_then(|p| p.judge.get("model"));
    let model_sha256 = match recorded {
        Some(hash) => hash.clone(),
        None => {
            progress(Progress::Status(format!("hashing {}", settings.model)));
            model_sha256(Path::new(&settings.model))?
        }
    };
    let by = JudgeId { judge: settings.plugin.clone(), model_sha256, mode: settings.mode().to_owned() };
    if let Some(earlier) = known.judge().filter(|k| **k != by) {
        return Err(RunError::Usage(format!(
            "{}: earlier verdicts were made by judge {} with model sha256 {} ({}); this run's judge is {} with \
             model sha256 {} ({}): use --overwrite or another --out",
            dir.join(JUDGEMENTS_FILE).display(),
            earlier.judge,
            earlier.model_sha256,
            earlier.mode,
            by.judge,
            by.model_sha256,
            by.mode
        )));
    }
    progress(Progress::Status(format!("loading {}", settings.model)));
    let device = config.device.resolve(config.precision()).map_err(ModelError::from);
    let model_err = |error| RunError::Model { model: format!("judge {}", settings.model), error };
    let lm = CausalLm::load(Path::new(&settings.model), &device.map_err(model_err)?, false).map_err(model_err)?;
    let judge_err = |error| RunError::Judge { context: format!("judge `{}`", settings.plugin), error };
    let mut judge = host.judge(&settings.source()?, Some(Arc::new(LocalModel(lm)))).map_err(judge_err)?;
    let range = [judge.info().min_score, judge.info().max_score];
    let mut log = Appender::open(&dir.join(JUDGEMENTS_FILE))?;
    let options = JudgeOptions { constrained: settings.constrained };
    progress(Progress::Status(String::new()));
    for (i, case) in todo.iter().enumerate() {
        let (score, rationale, model_calls) =
            match judge.judge(&case.question, &case.reference, &case.candidate, options) {
                Ok(v) => (Some(v.score), v.rationale, Some(v.model_calls)),
                Err(e) if e.kind() == Some(ErrorKind::Undefined) => (None, e.to_string(), None),
                Err(error) => return Err(judge_err(error)),
            };
        log.append(&Judgement { case: case.clone(), by: by.clone(), score, range, rationale, model_calls })?;
        progress(Progress::Done(i as u64 + 1));
    }
    progress(Progress::End);
    Ok(todo.len())
}

/// `judgements.jsonl` opened for appending whole lines (a line cut short by a crash is cut off).
struct Appender {
    file: File,
    path: PathBuf,
}

impl Appender {
    fn open(path: &Path) -> Result<Appender, RunError> {
        let io = |e| RunError::io(path, e);
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if keep < bytes.len() {
            file.set_len(keep as u64).map_err(io)?;
        }
        Ok(Appender { file, path: path.to_owned() })
    }

    fn append(&mut self, j: &Judgement) -> Result<(), RunError> {
        let mut line = serde_json::to_string(j).map_err(|e| RunError::Usage(format!("encoding a verdict: {e}")))?;
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(|e| RunError::io(&self.path, e))
    }
}
