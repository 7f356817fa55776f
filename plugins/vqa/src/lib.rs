//! mvb metric plugin `vqa`: the VQA text metrics of MedVLMBench (`eval/vqa.py` and
//! `eval/metrics.py` of github.com/ubc-tea/MedVLMBench), re-implemented from their definitions.
//!
//! Both the prediction (`text`) and the reference `answer` are lower-cased and normalised as
//! the standard VQA evaluation does (see [`normalize`]), then split into words. Per sample:
//! - `precision`, `recall`, `f1`: MedVLMBench's count-based unigram overlap: `tp` = prediction
//!   tokens (with repetition) whose word occurs in the reference, precision = tp / prediction
//!   tokens, recall = tp / (tp + reference tokens whose word is absent from the prediction);
//!   all 0 when either side is empty or nothing overlaps;
//! - `exact-match`: MedVLMBench's "exact match", which is not one: distinct reference words
//!   found in the prediction / prediction tokens (0 for an empty prediction);
//! - `bleu-1`..`bleu-4`: sentence BLEU, one reference, cumulative uniform weights, brevity
//!   penalty, no smoothing (`nltk.translate.bleu_score.sentence_bleu`); 0 when an order it uses
//!   has no matching n-gram;
//! - `rouge-1`, `rouge-2`, `rouge-l`: ROUGE F-measure exactly as MedVLMBench gets it from
//!   torchmetrics' `rouge_score(prediction, answer)` on the normalised texts: its default
//!   tokenizer lower-cases, turns every character outside `[a-z0-9]` into a separator and does
//!   not stem, so `3.5` scores as the two tokens `3`, `5`, `patient's` as `patient`, `s`, and
//!   `ménière` as `m`, `ni`, `re`. **An answer without ASCII letters or digits (Chinese, Greek,
//!   ...) has no tokens, and its ROUGE is 0 in the original, whatever the prediction**; mvb keeps
//!   that quirk. Each value is rounded to `f32`, as the float32 tensor torchmetrics returns
//!   (MedVLMBench reads it with `.item()`). Checked against torchmetrics 1.9.0 to 1e-9
//!   (`tests/fixtures/vqa/rouge.json`, made by `tools/make_rouge_fixture.py`);
//! - `closed-accuracy` (closed questions only): 1 when the normalised answer is a substring of
//!   the normalised prediction (both as words joined by single spaces), else 0;
//! - `open-accuracy` (open questions only): 1 when `recall >= 0.75`, else 0.
//!
//! - `gpt-score-open`, `gpt-score-overall` (predictions that come `judged`, in a run with a judge):
//!   MedVLMBench's "GPT score": the judge's score scaled to [0, 1] (score / 100 for its 1-100
//!   judge) on open questions, averaged over the open questions; overall, each open question
//!   counts its judge score and each closed question its closed accuracy, averaged over all
//!   samples (`open mean * n_open / N + closed accuracy * n_closed / N`). An open question whose
//!   judgement failed (no verdict) is left out of both (its count is reported by the host).
//!   NaN when no prediction of the set is judged.
//!
//! - MedVLMBench's per-kind means (its `eval/vqa.py` logs `{metric}_open`, `{metric}_closed` and
//!   `{metric}_overall`): `precision-open`, `recall-open`, `f1-open`, `exact-match-open`,
//!   `bleu-1-open`..`bleu-4-open`, `rouge-1-open`, `rouge-2-open`, `rouge-l-open` over open
//!   questions (BLEU and ROUGE are computed on open questions only there), and `precision-closed`,
//!   `recall-closed`, `f1-closed`, `exact-match-closed` over closed ones; NaN when the set has
//!   no question of that kind. `precision`, `recall`, `f1` and `exact-match` are its `_overall`
//!   means; `bleu-*` and `rouge-*` without a suffix are mvb's means over every question.
//!
//! Every score is the mean over the samples of the set (of the resample, with repetition);
//! `closed-accuracy` and `open-accuracy` are means over the closed, respectively open, samples
//! only, and are NaN when the set has none of that kind. An empty set is `undefined`.

mod normalize;
mod scores;
#[cfg(test)]
mod tests;

wit_bindgen::generate!({ world: "metric", path: "../../wit" });

use exports::mvb::plugin::metric_api::{Evaluation, Guest, GuestEvaluation, MetricInfo, Prediction, Reference, Score};
use mvb::plugin::types::{AnswerKind, Error, ErrorKind, Task};

/// The scores averaged over every sample, in the order of `SCORES`.
const PER_SAMPLE: usize = 11;

/// The per-sample scores MedVLMBench averages over open questions (`{metric}_open`): all.
const OPEN_SCORES: usize = PER_SAMPLE;
/// Those it averages over closed questions (`{metric}_closed`): precision, recall, F1, exact match.
const CLOSED_SCORES: usize = 4;

/// Score names, in the order `compute` returns them.
const SCORES: [&str; PER_SAMPLE + 4 + OPEN_SCORES + CLOSED_SCORES] = [
    "precision",
    "recall",
    "f1",
    "exact-match",
    "bleu-1",
    "bleu-2",
    "bleu-3",
    "bleu-4",
    "rouge-1",
    "rouge-2",
    "rouge-l",
    "closed-accuracy",
    "open-accuracy",
    "gpt-score-open",
    "gpt-score-overall",
    "precision-open",
    "recall-open",
    "f1-open",
    "exact-match-open",
    "bleu-1-open",
    "bleu-2-open",
    "bleu-3-open",
    "bleu-4-open",
    "rouge-1-open",
    "rouge-2-open",
    "rouge-l-open",
    "precision-closed",
    "recall-closed",
    "f1-closed",
    "exact-match-closed",
];

struct Component;

impl Guest for Component {
    type Evaluation = Vqa;

    fn info() -> MetricInfo {
        MetricInfo {
            name: "vqa".to_string(),
            description: "MedVLMBench VQA metrics on VQA-normalised words, means over samples: count-based unigram \
                          precision/recall/F1, their exact-match (distinct answer words found / prediction words), \
                          nltk sentence BLEU-1..4 (no smoothing), torchmetrics ROUGE-1/2/L F (its [a-z0-9] tokenizer: \
                          answers without ASCII letters or digits score 0); closed-accuracy = \
                          answer is a substring of the prediction (closed questions), open-accuracy = recall >= 0.75 \
                          (open questions); NaN when the set has no question of that kind; with a judge, \
                          gpt-score-open = mean judge score / 100 over open questions and gpt-score-overall = \
                          that on open and closed-accuracy on closed questions, averaged over all samples"
                .to_string(),
            task: Task::Vqa,
            higher_is_better: true,
            scores: SCORES.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    fn prepare(predictions: Vec<Prediction>, references: Vec<Reference>) -> Result<Evaluation, Error> {
        if predictions.len() != references.len() {
            return Err(invalid(format!(
                "{} predictions but {} references; they must pair up one to one",
                predictions.len(),
                references.len()
            )));
        }
        let mut samples = Vec::with_capacity(predictions.len());
        for (i, (prediction, reference)) in predictions.iter().zip(&references).enumerate() {
            let (text, judge) = match prediction {
                Prediction::Text(text) => (text, None),
                Prediction::Judged(judged) => (&judged.text, Some(judged.judge_score)),
                Prediction::ClassScores(_) => {
                    return Err(invalid(format!("prediction {i} is class scores; the VQA metrics need text")));
                }
            };
            if let Some(Some(score)) = judge
                && !(0.0..=1.0).contains(&score)
            {
                return Err(invalid(format!("prediction {i}: judge score {score} is outside [0, 1]")));
            }
            let Some(answer) = &reference.answer else {
                return Err(invalid(format!("reference {i} has no answer; the VQA metrics need one")));
            };
            let Some(kind) = reference.kind else {
                return Err(invalid(format!("reference {i} does not say whether its question is open or closed")));
            };
            samples.push(Sample::score(text, answer, kind, judge));
        }
        Ok(Evaluation::new(Vqa { samples }))
    }
}

/// The scores of one sample.
struct Sample {
    /// The scores averaged over all samples, in the order of `SCORES`.
    values: [f64; PER_SAMPLE],
    /// Open or closed question.
    kind: AnswerKind,
    /// The closed or open accuracy (0 or 1), according to `kind`.
    accuracy: f64,
    /// `None` when the prediction did not come judged; `Some(None)` when it did without a
    /// judge score (a closed question, or a failed judgement).
    judge: Option<Option<f64>>,
}

impl Sample {
    fn score(prediction: &str, answer: &str, kind: AnswerKind, judge: Option<Option<f64>>) -> Self {
        let prediction = normalize::normalize(prediction);
        let answer = normalize::normalize(answer);
        let (p, q) = (&prediction.tokens[..], &answer.tokens[..]);
        let (precision, recall, f1) = scores::precision_recall_f1(p, q);
        let [b1, b2, b3, b4] = scores::bleu(p, q);
        let [r1, r2, rl] = scores::rouge(&prediction.text, &answer.text);
        let values = [precision, recall, f1, scores::exact_match(p, q), b1, b2, b3, b4, r1, r2, rl];
        let hit = match kind {
            AnswerKind::Closed => prediction.text.contains(answer.text.as_str()),
            AnswerKind::Open => recall >= 0.75,
        };
        Sample { values, kind, accuracy: f64::from(u8::from(hit)), judge }
    }
}

/// Per-sample scores of the prepared set.
struct Vqa {
    samples: Vec<Sample>,
}

impl Vqa {
    fn means<'a>(&self, samples: impl Iterator<Item = &'a Sample>) -> Result<Vec<Score>, Error> {
        let mut sums = [0.0; PER_SAMPLE];
        let (mut open_sums, mut closed_sums) = ([0.0; PER_SAMPLE], [0.0; PER_SAMPLE]);
        let (mut count, mut closed, mut closed_hits, mut open, mut open_hits) = (0usize, 0usize, 0.0, 0usize, 0.0);
        let mut gpt = GptScore::default();
        for sample in samples {
            count += 1;
            gpt.add(sample);
            let by_kind = if sample.kind == AnswerKind::Open { &mut open_sums } else { &mut closed_sums };
            for ((sum, kind_sum), value) in sums.iter_mut().zip(by_kind.iter_mut()).zip(&sample.values) {
                *sum += value;
                *kind_sum += value;
            }
            match sample.kind {
                AnswerKind::Closed => {
                    closed += 1;
                    closed_hits += sample.accuracy;
                }
                AnswerKind::Open => {
                    open += 1;
                    open_hits += sample.accuracy;
                }
            }
        }
        if count == 0 {
            return Err(Error {
                kind: ErrorKind::Undefined,
                message: "the set is empty, so the VQA metrics are undefined".into(),
            });
        }
        let mean = |sum: f64, n: usize| if n == 0 { f64::NAN } else { sum / n as f64 };
        let values = sums.iter().map(|&s| mean(s, count)).chain([mean(closed_hits, closed), mean(open_hits, open)]);
        let values = values.chain(gpt.scores());
        let values = values.chain(open_sums.iter().map(|&s| mean(s, open)));
        let values = values.chain(closed_sums[..CLOSED_SCORES].iter().map(|&s| mean(s, closed)));
        Ok(SCORES.iter().zip(values).map(|(name, value)| Score { name: (*name).to_string(), value }).collect())
    }
}

/// Sums for MedVLMBench's GPT scores over the judged samples of a set.
#[derive(Debug, Default)]
struct GptScore {
    /// Whether any sample came judged.
    judged: bool,
    /// Scaled judge scores of open questions, and how many.
    open: (f64, usize),
    /// Closed accuracies of closed questions, and how many.
    closed: (f64, usize),
}

impl GptScore {
    fn add(&mut self, sample: &Sample) {
        let Some(judge) = sample.judge else { return };
        self.judged = true;
        match (sample.kind, judge) {
            (AnswerKind::Open, Some(score)) => self.open = (self.open.0 + score, self.open.1 + 1),
            (AnswerKind::Closed, _) => self.closed = (self.closed.0 + sample.accuracy, self.closed.1 + 1),
            (AnswerKind::Open, None) => {}
        }
    }

    /// `gpt-score-open` and `gpt-score-overall`.
    fn scores(&self) -> [f64; 2] {
        let n = self.open.1 + self.closed.1;
        if !self.judged || n == 0 {
            return [f64::NAN; 2];
        }
        let open = if self.open.1 == 0 { f64::NAN } else { self.open.0 / self.open.1 as f64 };
        [open, (self.open.0 + self.closed.0) / n as f64]
    }
}

impl GuestEvaluation for Vqa {
    fn compute(&self, resample: Option<Vec<u32>>) -> Result<Vec<Score>, Error> {
        match resample {
            None => self.means(self.samples.iter()),
            Some(indices) => {
                if let Some(bad) = indices.iter().find(|&&i| i as usize >= self.samples.len()) {
                    return Err(invalid(format!(
                        "resample index {bad} is out of range for {} samples",
                        self.samples.len()
                    )));
                }
                self.means(indices.iter().map(|&i| &self.samples[i as usize]))
            }
        }
    }
}

fn invalid(message: String) -> Error {
    Error { kind: ErrorKind::InvalidArgument, message }
}

export!(Component);
