//! A plain top-1 accuracy metric for diagnosis, for the kernel's tests: a correct metric
//! component, so that asking it to be a dataset shows what `mvb plugin check` reports missing.

wit_bindgen::generate!({ world: "metric", path: "../../../wit" });

use exports::mvb::plugin::metric_api::{Evaluation, Guest, GuestEvaluation, MetricInfo, Prediction, Reference, Score};
use mvb::plugin::types::{Error, ErrorKind, Task};

fn error(kind: ErrorKind, message: impl Into<String>) -> Error {
    Error { kind, message: message.into() }
}

struct Component;

impl Guest for Component {
    type Evaluation = Accuracy;

    fn info() -> MetricInfo {
        MetricInfo {
            name: "accuracy".to_string(),
            description: "Fraction of samples whose highest class score (first on ties) is the first reference label"
                .to_string(),
            task: Task::Diagnosis,
            higher_is_better: true,
            scores: vec!["accuracy".to_string()],
        }
    }

    fn prepare(predictions: Vec<Prediction>, references: Vec<Reference>) -> Result<Evaluation, Error> {
        if predictions.len() != references.len() {
            return Err(error(
                ErrorKind::InvalidArgument,
                format!("{} predictions but {} references", predictions.len(), references.len()),
            ));
        }
        let mut correct = Vec::with_capacity(predictions.len());
        for (i, (prediction, reference)) in predictions.iter().zip(&references).enumerate() {
            let Prediction::ClassScores(scores) = prediction else {
                return Err(error(
                    ErrorKind::InvalidArgument,
                    format!("prediction {i} is text; accuracy needs class scores"),
                ));
            };
            let Some(&label) = reference.labels.first() else {
                return Err(error(ErrorKind::InvalidArgument, format!("reference {i} has no label")));
            };
            let best = argmax(scores).ok_or_else(|| {
                error(ErrorKind::InvalidArgument, format!("prediction {i} has no class scores or a NaN score"))
            })?;
            if label as usize >= scores.len() {
                return Err(error(
                    ErrorKind::InvalidArgument,
                    format!("reference {i} has label {label} but prediction {i} scores only {} classes", scores.len()),
                ));
            }
            correct.push(best == label as usize);
        }
        Ok(Evaluation::new(Accuracy { correct }))
    }
}

/// The index of the largest score, the first one on ties; `None` when empty or any is NaN.
fn argmax(scores: &[f64]) -> Option<usize> {
    if scores.is_empty() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    Some(best)
}

/// Whether each sample's prediction was right.
struct Accuracy {
    correct: Vec<bool>,
}

impl GuestEvaluation for Accuracy {
    fn compute(&self, resample: Option<Vec<u32>>) -> Result<Vec<Score>, Error> {
        let (hits, total) = match resample {
            None => (self.correct.iter().filter(|&&c| c).count(), self.correct.len()),
            Some(indices) => {
                let mut hits = 0;
                for &i in &indices {
                    match self.correct.get(i as usize) {
                        Some(&c) => hits += usize::from(c),
                        None => {
                            return Err(error(
                                ErrorKind::InvalidArgument,
                                format!("resample index {i} is out of range ({} samples)", self.correct.len()),
                            ));
                        }
                    }
                }
                (hits, indices.len())
            }
        };
        if total == 0 {
            return Err(error(ErrorKind::Undefined, "accuracy of an empty set is undefined"));
        }
        Ok(vec![Score { name: "accuracy".to_string(), value: hits as f64 / total as f64 }])
    }
}

export!(Component);
