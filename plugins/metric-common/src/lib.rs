//! Input checks and resample helpers shared by mvb's diagnosis metric plugins (`auroc`,
//! `accuracy`, `balanced-accuracy`). Plain Rust, no WIT: each plugin turns a [`Problem`] into
//! its own generated `error` record.
//!
//! Conventions shared by those plugins:
//! - a prediction is `class-scores`, one score per class; every prediction has the same number
//!   of scores; a NaN score is `invalid-argument`;
//! - a sample's class is its reference's first label (`labels[0]`), which must be below the
//!   number of scores;
//! - the predicted class is the index of the largest score, the lowest index on ties
//!   (`numpy.argmax`).

/// The broad reason an input was refused (a subset of the WIT `error-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The input is malformed.
    InvalidArgument,
    /// The metric has no value on this set.
    Undefined,
}

/// Why a call failed, with one line a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The broad reason.
    pub kind: Kind,
    /// The message.
    pub message: String,
}

impl Problem {
    /// An `invalid-argument` problem.
    pub fn invalid(message: impl Into<String>) -> Self {
        Problem { kind: Kind::InvalidArgument, message: message.into() }
    }

    /// An `undefined` problem.
    pub fn undefined(message: impl Into<String>) -> Self {
        Problem { kind: Kind::Undefined, message: message.into() }
    }
}

/// Checked diagnosis inputs: `len` samples of `classes` scores each.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// Number of score columns (classes), at least 1.
    pub classes: usize,
    /// Row-major scores: sample `i`, class `c` is `scores[i * classes + c]`.
    pub scores: Vec<f64>,
    /// The class of each sample (its first reference label), below `classes`.
    pub labels: Vec<u32>,
}

impl Diagnosis {
    /// Checks predictions (`None` for a prediction that is not `class-scores`) against
    /// reference label lists. `metric` names the caller in messages; `min_classes` is the
    /// fewest score columns the metric accepts.
    pub fn new<'a>(
        metric: &str,
        predictions: impl ExactSizeIterator<Item = Option<&'a [f64]>>,
        labels: impl ExactSizeIterator<Item = &'a [u32]>,
        min_classes: usize,
    ) -> Result<Self, Problem> {
        if predictions.len() != labels.len() {
            return Err(Problem::invalid(format!(
                "{} predictions but {} references; they must pair up one to one",
                predictions.len(),
                labels.len()
            )));
        }
        if predictions.len() >= 1 << 30 {
            return Err(Problem::invalid(format!(
                "{} samples is more than {metric} supports (2^30)",
                predictions.len()
            )));
        }
        let n = predictions.len();
        let mut classes = 0;
        let mut scores = Vec::new();
        let mut out_labels = Vec::with_capacity(n);
        for (i, (prediction, sample_labels)) in predictions.zip(labels).enumerate() {
            let Some(row) = prediction else {
                return Err(Problem::invalid(format!("prediction {i} is text; {metric} needs class scores")));
            };
            if i == 0 {
                classes = row.len();
                if classes < min_classes {
                    return Err(Problem::invalid(format!(
                        "prediction 0 has {classes} class scores; {metric} needs at least {min_classes}"
                    )));
                }
                scores.reserve_exact(n * classes);
            } else if row.len() != classes {
                return Err(Problem::invalid(format!(
                    "prediction {i} has {} class scores but prediction 0 has {classes}; all must score the same classes",
                    row.len()
                )));
            }
            if let Some(c) = row.iter().position(|s| s.is_nan()) {
                return Err(Problem::invalid(format!("prediction {i}: the score of class {c} is NaN")));
            }
            let Some(&label) = sample_labels.first() else {
                return Err(Problem::invalid(format!("reference {i} has no label")));
            };
            if label as usize >= classes {
                return Err(Problem::invalid(format!(
                    "reference {i} has label {label} but the predictions score only {classes} classes (labels 0 to {})",
                    classes - 1
                )));
            }
            scores.extend_from_slice(row);
            out_labels.push(label);
        }
        Ok(Diagnosis { classes, scores, labels: out_labels })
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The scores of sample `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.scores[i * self.classes..(i + 1) * self.classes]
    }

    /// The predicted class of sample `i`: the index of its largest score, the lowest index on
    /// ties (as `numpy.argmax`; scores are never NaN here).
    pub fn predicted(&self, i: usize) -> u32 {
        let row = self.row(i);
        let mut best = 0;
        for (c, &s) in row.iter().enumerate().skip(1) {
            if s > row[best] {
                best = c;
            }
        }
        best as u32
    }
}

/// Checks that every resample index is below `len`.
pub fn check_indices(len: usize, indices: &[u32]) -> Result<(), Problem> {
    match indices.iter().find(|&&i| i as usize >= len) {
        Some(bad) => Err(Problem::invalid(format!("resample index {bad} is out of range for {len} samples"))),
        None => Ok(()),
    }
}
