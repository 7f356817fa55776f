//! mvb metric plugin `balanced-accuracy`: mean per-class recall of class scores.
//!
//! Definition: with the predicted class `argmax(class-scores)` (the lowest index on ties, as
//! `numpy.argmax`) and the true class `labels[0]`, the mean over the classes present among the
//! true classes of the set (on a resample: of the resampled multiset, counted with repetition)
//! of `correct predictions of the class / samples of the class`. Classes that are predicted but
//! absent from the set are ignored. Reference: scikit-learn's
//! `sklearn.metrics.balanced_accuracy_score(y_true, y_pred)` (not `adjusted`).
//!
//! An empty set is `undefined`; a NaN score is `invalid-argument`.

wit_bindgen::generate!({ world: "metric", path: "../../wit" });

use exports::mvb::plugin::metric_api::{Evaluation, Guest, GuestEvaluation, MetricInfo, Prediction, Reference, Score};
use mvb::plugin::types::{Error, ErrorKind, Task};
use mvb_metric_common::{Diagnosis, Kind, Problem, check_indices};

struct Component;

impl Guest for Component {
    type Evaluation = BalancedAccuracy;

    fn info() -> MetricInfo {
        MetricInfo {
            name: "balanced-accuracy".to_string(),
            description: "Mean over the classes present in labels[0] of the recall of argmax(class-scores) \
                          (lowest index on ties), as sklearn.metrics.balanced_accuracy_score (not adjusted)"
                .to_string(),
            task: Task::Diagnosis,
            higher_is_better: true,
            scores: vec!["balanced-accuracy".to_string()],
        }
    }

    fn prepare(predictions: Vec<Prediction>, references: Vec<Reference>) -> Result<Evaluation, Error> {
        let rows = predictions.iter().map(|p| match p {
            Prediction::ClassScores(s) => Some(s.as_slice()),
            Prediction::Text(_) | Prediction::Judged(_) => None,
        });
        let labels = references.iter().map(|r| r.labels.as_slice());
        let data = Diagnosis::new("balanced accuracy", rows, labels, 1).map_err(to_error)?;
        let correct = (0..data.len()).map(|i| data.predicted(i) == data.labels[i]).collect();
        Ok(Evaluation::new(BalancedAccuracy { classes: data.classes, labels: data.labels, correct }))
    }
}

/// Each sample's class and whether its predicted class is that class.
struct BalancedAccuracy {
    classes: usize,
    labels: Vec<u32>,
    correct: Vec<bool>,
}

impl BalancedAccuracy {
    fn score(&self, samples: impl Iterator<Item = usize>) -> Result<f64, Problem> {
        let mut support = vec![0u64; self.classes];
        let mut hits = vec![0u64; self.classes];
        for i in samples {
            let class = self.labels[i] as usize;
            support[class] += 1;
            hits[class] += u64::from(self.correct[i]);
        }
        let (mut sum, mut present) = (0.0, 0usize);
        for (&n, &h) in support.iter().zip(&hits) {
            if n > 0 {
                sum += h as f64 / n as f64;
                present += 1;
            }
        }
        if present == 0 {
            return Err(Problem::undefined("the set is empty, so balanced accuracy is undefined"));
        }
        Ok(sum / present as f64)
    }
}

impl GuestEvaluation for BalancedAccuracy {
    fn compute(&self, resample: Option<Vec<u32>>) -> Result<Vec<Score>, Error> {
        let value = match resample {
            None => self.score(0..self.labels.len()),
            Some(indices) => {
                check_indices(self.labels.len(), &indices).map_err(to_error)?;
                self.score(indices.iter().map(|&i| i as usize))
            }
        }
        .map_err(to_error)?;
        Ok(vec![Score { name: "balanced-accuracy".to_string(), value }])
    }
}

fn to_error(problem: Problem) -> Error {
    let kind = match problem.kind {
        Kind::InvalidArgument => ErrorKind::InvalidArgument,
        Kind::Undefined => ErrorKind::Undefined,
    };
    Error { kind, message: problem.message }
}

export!(Component);
