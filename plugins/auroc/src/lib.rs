//! mvb metric plugin `auroc`: area under the ROC curve of class scores.
//!
//! Definition (identical to scikit-learn's `sklearn.metrics.roc_auc_score`, ties included):
//! - **Two score columns** (binary): the score of sample `i` is `class-scores[1]`, its class is
//!   `labels[0]` (0 or 1); the value is the trapezoidal area under the ROC curve whose
//!   thresholds are the distinct scores, so tied scores form one ROC step (a diagonal segment).
//!   This equals the Mann-Whitney statistic `P(score⁺ > score⁻) + ½·P(score⁺ = score⁻)`.
//! - **More than two columns** (multi-class): the one-vs-rest macro average, the mean over
//!   classes `c` of the binary AUROC of `class-scores[c]` for "class is `c`" against the rest,
//!   as `roc_auc_score(y, p, multi_class="ovr", average="macro")`. MedVLMBench itself reports
//!   nothing for multi-class sets; this is mvb's documented choice. Unlike scikit-learn, the
//!   scores need not sum to 1 (only their order within each column matters).
//!
//! `undefined` when a set has a single class (binary), or lacks any class (multi-class: every
//! class must be present, as scikit-learn requires); the bootstrap skips such replicates.
//! NaN or infinite scores are `invalid-argument` (scikit-learn refuses them too).
//!
//! Speed: `prepare` sorts the samples by score once per ranked column and gives each sample the
//! index of its run of tied scores. A resample is tallied into positive and negative weight per
//! run (one increment per index), and its AUROC is one sequential pass over the runs (a
//! weighted Mann-Whitney sum in exact integer arithmetic), so a bootstrap replicate costs O(n),
//! not a sort.

wit_bindgen::generate!({ world: "metric", path: "../../wit" });

use std::cell::RefCell;

use exports::mvb::plugin::metric_api::{Evaluation, Guest, GuestEvaluation, MetricInfo, Prediction, Reference, Score};
use mvb::plugin::types::{Error, ErrorKind, Task};
use mvb_metric_common::{Diagnosis, Kind, Problem, check_indices};

struct Component;

impl Guest for Component {
    type Evaluation = Auroc;

    fn info() -> MetricInfo {
        MetricInfo {
            name: "auroc".to_string(),
            description: "Area under the ROC curve (trapezoidal, ties as one step) of class-scores[1] against \
                          labels[0], as sklearn.metrics.roc_auc_score; with more than two score columns the \
                          one-vs-rest macro average over classes (mvb's choice; MedVLMBench has none)"
                .to_string(),
            task: Task::Diagnosis,
            higher_is_better: true,
            scores: vec!["auroc".to_string()],
        }
    }

    fn prepare(predictions: Vec<Prediction>, references: Vec<Reference>) -> Result<Evaluation, Error> {
        let rows = predictions.iter().map(|p| match p {
            Prediction::ClassScores(s) => Some(s.as_slice()),
            Prediction::Text(_) | Prediction::Judged(_) => None,
        });
        let labels = references.iter().map(|r| r.labels.as_slice());
        let data = Diagnosis::new("AUROC", rows, labels, 2).map_err(to_error)?;
        if let Some(at) = data.scores.iter().position(|s| s.is_infinite()) {
            return Err(error(
                ErrorKind::InvalidArgument,
                format!(
                    "prediction {}: the score of class {} is infinite; AUROC needs finite scores",
                    at / data.classes,
                    at % data.classes
                ),
            ));
        }
        Ok(Evaluation::new(Auroc::new(&data)))
    }
}

/// One ranked column. Its distinct scores, in decreasing order, define runs `0..runs` (a run
/// is a group of tied scores); sample `i` falls in the tally `key[i] = 2 × run + positive`.
struct Ranking {
    /// The column's class (positive for this ranking).
    class: u32,
    /// The tally of each sample.
    key: Vec<u32>,
    /// The number of runs of tied scores.
    runs: usize,
}

/// Prepared rankings: one (column 1) for binary sets, one per class for multi-class sets.
struct Auroc {
    len: usize,
    classes: usize,
    rankings: Vec<Ranking>,
    /// Reused buffer: negative and positive weight per run.
    tallies: RefCell<Vec<u32>>,
}

impl Auroc {
    fn new(data: &Diagnosis) -> Self {
        let ranked: Vec<usize> = if data.classes == 2 { vec![1] } else { (0..data.classes).collect() };
        let rankings = ranked.into_iter().map(|class| Ranking::new(data, class)).collect();
        Auroc { len: data.len(), classes: data.classes, rankings, tallies: RefCell::new(Vec::new()) }
    }

    /// The AUROC (mean over rankings) of the full set, or of the multiset of `resample` indices
    /// (already checked to be in range).
    fn score(&self, resample: Option<&[u32]>) -> Result<f64, Problem> {
        if self.len == 0 {
            // Nothing was prepared, so not even the number of classes is known.
            return Err(Problem::undefined("the set is empty, so AUROC is undefined"));
        }
        let mut tallies = self.tallies.borrow_mut();
        let mut total = 0.0;
        for ranking in &self.rankings {
            tallies.clear();
            tallies.resize(2 * ranking.runs, 0);
            match resample {
                None => ranking.key.iter().for_each(|&k| tallies[k as usize] += 1),
                Some(indices) => indices.iter().for_each(|&i| tallies[ranking.key[i as usize] as usize] += 1),
            }
            let (twice_area, positives, negatives) = area(&tallies);
            if positives == 0 && negatives == 0 {
                return Err(Problem::undefined("the set is empty, so AUROC is undefined"));
            }
            if positives == 0 || negatives == 0 {
                return Err(self.single_class(ranking.class, positives == 0));
            }
            total += twice_area as f64 / (2 * positives * negatives) as f64;
        }
        Ok(total / self.rankings.len() as f64)
    }

    fn single_class(&self, class: u32, absent: bool) -> Problem {
        Problem::undefined(match (self.classes, absent) {
            (2, _) => "only one class is present, so AUROC is undefined".to_string(),
            (k, true) => format!("class {class} is absent; one-vs-rest AUROC needs all {k} classes present"),
            (_, false) => format!("every sample is of class {class}, so AUROC is undefined"),
        })
    }
}

impl Ranking {
    fn new(data: &Diagnosis, class: usize) -> Self {
        let mut order: Vec<(f64, u32)> = (0..data.len()).map(|i| (data.row(i)[class], i as u32)).collect();
        // Decreasing score; equal scores (0.0 and -0.0 included) end up adjacent.
        order.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut key = vec![0; order.len()];
        let mut run = 0;
        for (k, &(score, i)) in order.iter().enumerate() {
            if k > 0 && order[k - 1].0 != score {
                run += 1;
            }
            key[i as usize] = 2 * run + u32::from(data.labels[i as usize] as usize == class);
        }
        let runs = if order.is_empty() { 0 } else { run as usize + 1 };
        Ranking { class: class as u32, key, runs }
    }
}

/// Twice the area under the ROC curve times `positives × negatives`, and those two totals,
/// from the negative and positive weight of each run (`tallies[2r]`, `tallies[2r + 1]`), runs in
/// decreasing score order: a run with `p` positive and `n` negative weight, below `tp`
/// positive weight of higher scores, adds `n × (2·tp + p)` (a trapezoid).
fn area(tallies: &[u32]) -> (u64, u64, u64) {
    let (mut tp, mut fp, mut twice_area) = (0u64, 0u64, 0u64);
    for run in tallies.chunks_exact(2) {
        let (n, p) = (u64::from(run[0]), u64::from(run[1]));
        twice_area += n * (2 * tp + p);
        tp += p;
        fp += n;
    }
    (twice_area, tp, fp)
}

impl GuestEvaluation for Auroc {
    fn compute(&self, resample: Option<Vec<u32>>) -> Result<Vec<Score>, Error> {
        if let Some(indices) = &resample {
            check_indices(self.len, indices).map_err(to_error)?;
        }
        let value = self.score(resample.as_deref()).map_err(to_error)?;
        Ok(vec![Score { name: "auroc".to_string(), value }])
    }
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Error {
    Error { kind, message: message.into() }
}

fn to_error(problem: Problem) -> Error {
    let kind = match problem.kind {
        Kind::InvalidArgument => ErrorKind::InvalidArgument,
        Kind::Undefined => ErrorKind::Undefined,
    };
    error(kind, problem.message)
}

export!(Component);
