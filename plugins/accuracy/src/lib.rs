//! mvb metric plugin `accuracy`: top-1 accuracy of class scores.
//!
//! Definition: the fraction of samples whose predicted class, `argmax(class-scores)` (the
//! lowest index on ties, as `numpy.argmax`), equals `labels[0]`; on a resample, the fraction
//! over the listed indices, counted with repetition. Reference: scikit-learn's
//! `sklearn.metrics.accuracy_score(y_true, scores.argmax(axis=1))`.
//!
//! An empty set is `undefined`; a NaN score is `invalid-argument`.

wit_bindgen::generate!({ world: "metric", path: "../../wit" });

use exports::mvb::plugin::metric_api::{Evaluation, Guest, GuestEvaluation, MetricInfo, Prediction, Reference, Score};
use mvb::plugin::types::{Error, ErrorKind, Task};
use mvb_metric_common::{Diagnosis, Kind, Problem, check_indices};

struct Component;

impl Guest for Component {
    type Evaluation = Accuracy;

    fn info() -> MetricInfo {
        MetricInfo {
            name: "accuracy".to_string(),
            description: "Fraction of samples whose argmax(class-scores) (lowest index on ties, as numpy.argmax) \
                          equals labels[0], as sklearn.metrics.accuracy_score"
                .to_string(),
            task: Task::Diagnosis,
            higher_is_better: true,
            scores: vec!["accuracy".to_string()],
        }
    }

    fn prepare(predictions: Vec<Prediction>, references: Vec<Reference>) -> Result<Evaluation, Error> {
        let rows = predictions.iter().map(|p| match p {
            Prediction::ClassScores(s) => Some(s.as_slice()),
            Prediction::Text(_) | Prediction::Judged(_) => None,
        });
        let labels = references.iter().map(|r| r.labels.as_slice());
        let data = Diagnosis::new("accuracy", rows, labels, 1).map_err(to_error)?;
        let correct = (0..data.len()).map(|i| data.predicted(i) == data.labels[i]).collect();
        Ok(Evaluation::new(Accuracy { correct }))
    }
}

/// Whether each sample's predicted class is its label.
struct Accuracy {
    correct: Vec<bool>,
}

impl GuestEvaluation for Accuracy {
    fn compute(&self, resample: Option<Vec<u32>>) -> Result<Vec<Score>, Error> {
        let (hits, total) = match resample {
            None => (self.correct.iter().filter(|&&c| c).count(), self.correct.len()),
            Some(indices) => {
                check_indices(self.correct.len(), &indices).map_err(to_error)?;
                (indices.iter().filter(|&&i| self.correct[i as usize]).count(), indices.len())
            }
        };
        if total == 0 {
            return Err(to_error(Problem::undefined("the set is empty, so accuracy is undefined")));
        }
        Ok(vec![Score { name: "accuracy".to_string(), value: hits as f64 / total as f64 }])
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
