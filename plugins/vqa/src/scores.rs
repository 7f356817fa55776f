//! Per-sample scores of one normalised prediction against one normalised reference answer.

use std::collections::{HashMap, HashSet};

/// Precision, recall and F1 of MedVLMBench (`eval/metrics.py: calculate_f1score`): `tp` counts
/// the prediction tokens (with repetition) whose word occurs in the reference, `fp` the other
/// prediction tokens, `fn` the reference tokens (with repetition) whose word does not occur in
/// the prediction; precision = tp / (tp + fp), recall = tp / (tp + fn), F1 their harmonic mean.
/// All three are 0 when either side is empty or tp is 0.
pub fn precision_recall_f1(prediction: &[String], reference: &[String]) -> (f64, f64, f64) {
    if prediction.is_empty() || reference.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let reference_words: HashSet<&str> = reference.iter().map(String::as_str).collect();
    let prediction_words: HashSet<&str> = prediction.iter().map(String::as_str).collect();
    let tp = prediction.iter().filter(|w| reference_words.contains(w.as_str())).count();
    let fp = prediction.len() - tp;
    let fn_ = reference.iter().filter(|w| !prediction_words.contains(w.as_str())).count();
    if tp == 0 {
        return (0.0, 0.0, 0.0);
    }
    let precision = tp as f64 / (tp + fp) as f64;
    let recall = tp as f64 / (tp + fn_) as f64;
    (precision, recall, 2.0 * precision * recall / (precision + recall))
}

/// MedVLMBench's "exact match" (`calculate_exactmatch`): the number of distinct reference words
/// that occur in the prediction, divided by the number of prediction tokens; 0 for an empty
/// prediction.
pub fn exact_match(prediction: &[String], reference: &[String]) -> f64 {
    if prediction.is_empty() {
        return 0.0;
    }
    let prediction_words: HashSet<&str> = prediction.iter().map(String::as_str).collect();
    let reference_words: HashSet<&str> = reference.iter().map(String::as_str).collect();
    let found = reference_words.iter().filter(|w| prediction_words.contains(*w)).count();
    found as f64 / prediction.len() as f64
}

/// N-gram counts of `tokens`.
fn ngrams(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    if tokens.len() >= n {
        for gram in tokens.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

/// Matches of `prediction`'s n-grams in `reference`, each clipped to its count there, and the
/// number of prediction n-grams.
fn clipped_matches(prediction: &[String], reference: &[String], n: usize) -> (usize, usize) {
    let reference = ngrams(reference, n);
    let prediction = ngrams(prediction, n);
    let matches = prediction.iter().map(|(gram, &c)| c.min(reference.get(gram).copied().unwrap_or(0))).sum();
    (matches, prediction.values().sum())
}

/// Sentence BLEU-1..4 with a single reference and no smoothing, as `nltk`'s `sentence_bleu`
/// with weights `(1)`, `(1/2, 1/2)`, `(1/3, 1/3, 1/3)`, `(1/4, 1/4, 1/4, 1/4)`: the brevity
/// penalty (1 when the prediction is longer than the reference, else `exp(1 - r / c)`, 0 for an
/// empty prediction) times the geometric mean of the clipped n-gram precisions
/// `matches / max(1, prediction n-grams)`. BLEU-k is 0 when any of its first k orders has no
/// match (nltk returns 0 when unigrams have none, and a value below 1e-100 otherwise).
pub fn bleu(prediction: &[String], reference: &[String]) -> [f64; 4] {
    let c = prediction.len();
    let r = reference.len();
    let mut precisions = [(0usize, 1usize); 4];
    for (k, p) in precisions.iter_mut().enumerate() {
        let (matches, total) = clipped_matches(prediction, reference, k + 1);
        *p = (matches, total.max(1));
    }
    if c == 0 || precisions[0].0 == 0 {
        return [0.0; 4];
    }
    let brevity = if c > r { 1.0 } else { (1.0 - r as f64 / c as f64).exp() };
    let mut out = [0.0; 4];
    for (k, value) in out.iter_mut().enumerate() {
        let orders = &precisions[..=k];
        if orders.iter().any(|&(m, _)| m == 0) {
            continue;
        }
        let weight = 1.0 / (k + 1) as f64;
        let log_sum: f64 = orders.iter().map(|&(m, t)| weight * (m as f64 / t as f64).ln()).sum();
        *value = brevity * log_sum.exp();
    }
    out
}

/// The F-measure `2pr / (p + r)`, 0 when `p + r` is 0 (as `rouge_score.scoring.fmeasure`).
fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 }
}

/// The tokens torchmetrics' `rouge_score` scores with its default tokenizer: the text
/// lower-cased, every run of characters outside `[a-z0-9]` a separator, no stemming. Words
/// with an apostrophe, a period or a hyphen split (`3.5` is `3`, `5`), and characters outside
/// ASCII letters and digits vanish (`ménière` is `m`, `ni`, `re`; Chinese or Greek text has no
/// token at all).
pub fn rouge_tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// ROUGE-1, ROUGE-2 and ROUGE-L F-measures as MedVLMBench records them: torchmetrics'
/// `rouge_score(prediction, reference)` on the normalised texts (tokens of [`rouge_tokens`]),
/// each value rounded to `f32` as the float32 tensor torchmetrics returns, read by `.item()`.
pub fn rouge(prediction: &str, reference: &str) -> [f64; 3] {
    let (p, q) = (rouge_tokens(prediction), rouge_tokens(reference));
    [rouge_n(&p, &q, 1), rouge_n(&p, &q, 2), rouge_l(&p, &q)].map(|v| f64::from(v as f32))
}

/// ROUGE-N F-measure (as torchmetrics and `rouge_score`, on the given tokens): n-gram overlap
/// `sum min(count_pred, count_ref)`, precision = overlap / max(1, prediction n-grams), recall =
/// overlap / max(1, reference n-grams); 0 when either side has no n-gram.
fn rouge_n(prediction: &[String], reference: &[String], n: usize) -> f64 {
    let reference_counts = ngrams(reference, n);
    let prediction_counts = ngrams(prediction, n);
    let overlap: usize =
        reference_counts.iter().map(|(gram, &c)| c.min(prediction_counts.get(gram).copied().unwrap_or(0))).sum();
    let precision = overlap as f64 / prediction_counts.values().sum::<usize>().max(1) as f64;
    let recall = overlap as f64 / reference_counts.values().sum::<usize>().max(1) as f64;
    fmeasure(precision, recall)
}

/// ROUGE-L F-measure (as torchmetrics and `rouge_score`): longest common subsequence over the
/// lengths; 0 when either side is empty.
fn rouge_l(prediction: &[String], reference: &[String]) -> f64 {
    if prediction.is_empty() || reference.is_empty() {
        return 0.0;
    }
    let mut previous = vec![0usize; prediction.len() + 1];
    let mut current = vec![0usize; prediction.len() + 1];
    for word in reference {
        for (j, candidate) in prediction.iter().enumerate() {
            current[j + 1] = if word == candidate { previous[j] + 1 } else { previous[j + 1].max(current[j]) };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    let lcs = previous[prediction.len()];
    fmeasure(lcs as f64 / prediction.len() as f64, lcs as f64 / reference.len() as f64)
}
