//! Subgroup results of `mvb run` (`[report] subgroups = ["sex", "age_group"]`), FairVLMed's
//! question of whether a model serves every group of patients alike: each unit's scores on the
//! samples of each value of an attribute, and the gap between its best and worst value.
//!
//! - Attributes travel with the predictions: every prediction line carries its sample's
//!   attributes (`predictions.jsonl`), read from the dataset when the unit is computed, so
//!   results and `mvb report` need nothing but that file, and a resumed run may ask for
//!   subgroups its earlier units never heard of.
//! - Paired: replicate `r` of a subgroup is the unit's replicate `r` (the dataset split's index
//!   set, shared by every model and strategy) restricted to the subgroup's samples; a
//!   replicate that draws none of them is undefined and skipped. The gap's replicate `r` is the
//!   best value's minus the worst value's on that same replicate (best and worst chosen by
//!   their point estimates; every score is higher-is-better).
//! - A score that has no value on a subgroup (AUROC on one class, open accuracy without open
//!   questions) is reported as not computable, with the reason, never as a number.
//! - `age_group` is derived from a whole-number `age` where a sample has no `age_group` of its
//!   own: `0-39`, `40-59`, `60-79`, `80+`.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::config::{Group, ReportSettings, Strategy};
use super::error::RunError;
use super::predictions::{Attributes, Unit, UnitKey};
use super::scores::MetricScore;
use crate::data::{AnswerKind, Split};
use crate::eval::bootstrap::{Bootstrapped, Estimate, estimate};
use crate::plugin::Dataset;

/// The attribute derived from `age`.
pub const AGE_GROUP: &str = "age_group";

/// Samples read from the dataset plugin at a time.
const READ_BATCH: u32 = 256;

/// The attributes of the first `limit` samples of `split` of `dataset`, by sample id.
pub(super) fn read(
    dataset: &mut Dataset,
    name: &str,
    (split, limit): (Split, Option<u64>),
) -> Result<HashMap<String, Attributes>, RunError> {
    let mut out = HashMap::new();
    for batch in dataset.batches(split, limit, READ_BATCH) {
        let batch = batch.map_err(|e| RunError::Usage(format!("dataset `{name}`: reading {split} samples: {e}")))?;
        for s in batch {
            let attributes: Attributes = s.attributes.into_iter().map(|a| (a.key, a.value)).collect();
            out.insert(s.id, attributes);
        }
    }
    Ok(out)
}

/// Each of `ids`' attributes from `by_id`; empty when none has any.
pub(super) fn of_ids(ids: &[String], by_id: &HashMap<String, Attributes>) -> Vec<Attributes> {
    let out: Vec<Attributes> = ids.iter().map(|id| by_id.get(id).cloned().unwrap_or_default()).collect();
    if out.iter().all(Attributes::is_empty) { Vec::new() } else { out }
}

/// Refuses an attribute of `settings` that no dataset of the run gives any sample (a typo would
/// otherwise report nothing), naming the attributes the datasets do give.
pub(super) fn check<'a>(
    settings: &ReportSettings,
    datasets: impl IntoIterator<Item = &'a HashMap<String, Attributes>>,
) -> Result<(), RunError> {
    let given: BTreeSet<&str> =
        datasets.into_iter().flat_map(|d| d.values()).flat_map(|a| a.keys()).map(String::as_str).collect();
    for wanted in &settings.subgroups {
        let found = given.contains(wanted.as_str()) || (wanted == AGE_GROUP && given.contains("age"));
        if !found {
            let list = if given.is_empty() {
                "none of them gives attributes".to_owned()
            } else {
                format!("they give {}", given.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
            };
            let message =
                format!("`subgroups` names `{wanted}`, which no dataset of this run gives its samples ({list})");
            return Err(settings.error(message));
        }
    }
    Ok(())
}

/// `key`'s value in `attributes` (`age_group` derived from `age` when absent).
fn value_of<'a>(attributes: &'a Attributes, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    if let Some(v) = attributes.get(key) {
        return Some(v.as_str().into());
    }
    let age: f64 = attributes.get("age").filter(|_| key == AGE_GROUP)?.trim().parse().ok()?;
    let group = match age {
        a if !(0.0..200.0).contains(&a) => return None,
        a if a < 40.0 => "0-39",
        a if a < 60.0 => "40-59",
        a if a < 80.0 => "60-79",
        _ => "80+",
    };
    Some(group.into())
}

/// The order values are reported in: by their leading number where both have one, else as text.
fn value_order(a: &str, b: &str) -> std::cmp::Ordering {
    let lead = |s: &str| -> Option<f64> {
        let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        s[..end].parse().ok()
    };
    match (lead(a), lead(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.cmp(b)),
        _ => a.cmp(b),
    }
}

/// One score of one subgroup.
#[derive(Debug, Clone, PartialEq)]
pub struct SubgroupScore {
    /// The score and its paired bootstrap.
    pub score: MetricScore,
    /// Why it has no value, when it has none.
    pub note: Option<String>,
}

/// The samples of one value of an attribute, and the unit's scores on them.
#[derive(Debug, Clone, PartialEq)]
pub struct SubgroupValue {
    /// The value.
    pub value: String,
    /// Its samples.
    pub n: usize,
    /// One per score, in metric order.
    pub scores: Vec<SubgroupScore>,
}

/// The gap between the best and the worst value of an attribute on one score.
#[derive(Debug, Clone, PartialEq)]
pub struct SubgroupGap {
    /// The score.
    pub metric: String,
    /// The value with the highest point estimate, and the one with the lowest.
    pub best_worst: Option<(String, String)>,
    /// best - worst, paired over the same replicates (all NaN without two values to compare).
    pub estimate: Estimate,
    /// Why there is no gap, when there is none.
    pub note: Option<String>,
}

/// One unit's results per value of one attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct SubgroupResult {
    /// Which unit.
    pub key: UnitKey,
    /// The model's family and group, when the configuration describes the model.
    pub family: Option<String>,
    /// See `family`.
    pub group: Option<Group>,
    /// The attribute.
    pub attribute: String,
    /// Its values, in order (samples without the attribute are in none).
    pub values: Vec<SubgroupValue>,
    /// One per score, in metric order.
    pub gaps: Vec<SubgroupGap>,
}

/// Scores a set of the unit's samples (positions in the unit) on index sets over that set.
pub(super) type ScoreFn<'a> = dyn FnMut(&[usize], &[Vec<u32>]) -> Result<Vec<MetricScore>, RunError> + 'a;

/// The subgroup results of `unit` for each attribute of `wanted` its samples carry;
/// `permutation` puts the unit in its reference's order, the order of `index_sets`.
pub(super) fn score(
    unit: &Unit,
    permutation: &[usize],
    index_sets: &[Vec<u32>],
    wanted: &[String],
    score_set: &mut ScoreFn<'_>,
) -> Result<Vec<(String, Vec<SubgroupValue>)>, RunError> {
    let mut out = Vec::new();
    if unit.attributes.is_empty() {
        return Ok(out);
    }
    for attribute in wanted {
        let values: Vec<Option<_>> = permutation.iter().map(|&i| value_of(&unit.attributes[i], attribute)).collect();
        let mut distinct: Vec<&str> = values.iter().flatten().map(|v| v.as_ref()).collect();
        distinct.sort_by(|a, b| value_order(a, b));
        distinct.dedup();
        if distinct.is_empty() {
            continue;
        }
        let mut groups = Vec::with_capacity(distinct.len());
        for value in distinct {
            let members: Vec<usize> = (0..values.len()).filter(|&r| values[r].as_deref() == Some(value)).collect();
            let mut local = vec![u32::MAX; values.len()];
            for (j, &r) in members.iter().enumerate() {
                local[r] = j as u32;
            }
            let sets: Vec<Vec<u32>> = index_sets
                .iter()
                .map(|set| set.iter().map(|&r| local[r as usize]).filter(|&l| l != u32::MAX).collect())
                .collect();
            let positions: Vec<usize> = members.iter().map(|&r| permutation[r]).collect();
            let scores = score_set(&positions, &sets)?
                .into_iter()
                .map(|s| SubgroupScore { note: note(unit, &positions, &s), score: s })
                .collect();
            groups.push(SubgroupValue { value: value.to_owned(), n: members.len(), scores });
        }
        out.push((attribute.clone(), groups));
    }
    Ok(out)
}

/// Why score `s` has no value on the samples at `positions` of `unit`, if it has none.
fn note(unit: &Unit, positions: &[usize], s: &MetricScore) -> Option<String> {
    let e = &s.boot.estimate;
    let n = positions.len();
    if !e.point.is_nan() {
        return (e.replicates == 0).then(|| format!("`{}` is undefined on every bootstrap replicate", s.name));
    }
    let why = if unit.is_vqa() {
        let open = positions.iter().filter(|&&i| unit.answers[i].qa.kind == AnswerKind::Open).count();
        format!("its {n} questions are {open} open and {} closed", n - open)
    } else {
        let labels: BTreeSet<u32> = positions.iter().flat_map(|&i| unit.labels[i].iter().copied()).collect();
        match labels.len() {
            0 | 1 => format!("its {n} samples have one class only ({:?})", labels.into_iter().collect::<Vec<_>>()),
            k => format!("its {n} samples have {k} classes"),
        }
    };
    Some(format!("not computable: `{}` is undefined on this subgroup ({why})", s.name))
}

/// The gap between the best and worst value of `values` on each score.
pub(super) fn gaps(values: &[SubgroupValue]) -> Result<Vec<SubgroupGap>, RunError> {
    let Some(first) = values.first() else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(first.scores.len());
    for (m, s) in first.scores.iter().enumerate() {
        let metric = s.score.name.clone();
        let defined: Vec<(&str, &Bootstrapped)> = values
            .iter()
            .filter_map(|v| {
                v.scores
                    .get(m)
                    .filter(|s| !s.score.boot.estimate.point.is_nan())
                    .map(|s| (v.value.as_str(), &s.score.boot))
            })
            .collect();
        let best = defined.iter().copied().reduce(|a, b| if b.1.estimate.point > a.1.estimate.point { b } else { a });
        let worst = defined.iter().copied().reduce(|a, b| if b.1.estimate.point < a.1.estimate.point { b } else { a });
        let gap = match (best, worst) {
            (Some(b), Some(w)) if defined.len() >= 2 => {
                let e =
                    b.1.minus(w.1)
                        .map_err(|error| RunError::Eval { context: format!("subgroup gap of `{metric}`"), error })?;
                SubgroupGap { metric, best_worst: Some((b.0.to_owned(), w.0.to_owned())), estimate: e, note: None }
            }
            _ => SubgroupGap {
                note: Some(format!(
                    "not computable: `{metric}` has a value on {} of the {} subgroups; a gap needs two",
                    defined.len(),
                    values.len()
                )),
                metric,
                best_worst: None,
                estimate: estimate(f64::NAN, std::iter::empty()),
            },
        };
        out.push(gap);
    }
    Ok(out)
}

/// Which subgroup row a line of `subgroups.csv` (and of `results.json`'s `subgroups` and
/// `subgroup_gaps`) is: a value's score (`value` set) or a gap (`best` and `worst` set).
#[derive(Debug, Serialize)]
pub struct RowKey<'a> {
    model: &'a str,
    family: Option<&'a str>,
    group: Option<Group>,
    dataset: &'a str,
    split: Split,
    strategy: Strategy,
    metric: &'a str,
    attribute: &'a str,
    value: Option<&'a str>,
    best: Option<&'a str>,
    worst: Option<&'a str>,
    n: usize,
    note: Option<&'a str>,
}

/// The columns of [`RowKey`].
pub const KEY_COLUMNS: [&str; 13] = [
    "model",
    "family",
    "group",
    "dataset",
    "split",
    "strategy",
    "metric",
    "attribute",
    "value",
    "best",
    "worst",
    "n",
    "note",
];

impl<'a> RowKey<'a> {
    fn of(s: &'a SubgroupResult, metric: &'a str, n: usize, note: Option<&'a str>) -> Self {
        RowKey {
            model: &s.key.model,
            family: s.family.as_deref(),
            group: s.group,
            dataset: &s.key.dataset,
            split: s.key.split,
            strategy: s.key.strategy,
            metric,
            attribute: &s.attribute,
            value: None,
            best: None,
            worst: None,
            n,
            note,
        }
    }

    /// Whether the row is a gap's.
    pub fn is_gap(&self) -> bool {
        self.value.is_none()
    }
}

/// Every row, per unit and attribute: its values' scores, then its gaps.
pub fn rows(subgroups: &[SubgroupResult]) -> Vec<(RowKey<'_>, &Estimate)> {
    let mut out = Vec::new();
    for s in subgroups {
        for v in &s.values {
            for sc in &v.scores {
                let key = RowKey { value: Some(&v.value), ..RowKey::of(s, &sc.score.name, v.n, sc.note.as_deref()) };
                out.push((key, &sc.score.boot.estimate));
            }
        }
        let n: usize = s.values.iter().map(|v| v.n).sum();
        for g in &s.gaps {
            let (best, worst) =
                g.best_worst.as_ref().map_or((None, None), |(b, w)| (Some(b.as_str()), Some(w.as_str())));
            out.push((RowKey { best, worst, ..RowKey::of(s, &g.metric, n, g.note.as_deref()) }, &g.estimate));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_groups_and_value_order() {
        let a = |age: &str| Attributes::from([("age".to_owned(), age.to_owned())]);
        assert_eq!(value_of(&a("39"), AGE_GROUP).as_deref(), Some("0-39"));
        assert_eq!(value_of(&a("80"), AGE_GROUP).as_deref(), Some("80+"));
        assert_eq!(value_of(&a("n/a"), AGE_GROUP), None);
        assert_eq!(value_of(&a("61"), "age").as_deref(), Some("61"));
        let mut v = vec!["80+", "0-39", "60-79", "40-59", "9"];
        v.sort_by(|a, b| value_order(a, b));
        assert_eq!(v, ["0-39", "9", "40-59", "60-79", "80+"]);
    }

    fn value(name: &str, point: f64, values: Vec<Option<f64>>) -> SubgroupValue {
        let score = MetricScore { name: "accuracy".into(), boot: Bootstrapped::new(point, values) };
        SubgroupValue { value: name.into(), n: 2, scores: vec![SubgroupScore { score, note: None }] }
    }

    /// The gap is best minus worst by point estimate, paired replicate by replicate; with one
    /// defined value it is not computable, with the reason.
    #[test]
    fn gaps_pair_the_best_and_worst_values() {
        let f = value("F", 0.5, vec![Some(0.5), Some(0.25), None]);
        let m = value("M", 0.75, vec![Some(1.0), Some(0.5), Some(0.5)]);
        let g = &gaps(&[f.clone(), m.clone()]).unwrap()[0];
        assert_eq!(g.best_worst, Some(("M".into(), "F".into())));
        assert_eq!((g.estimate.point, g.estimate.replicates, g.estimate.skipped), (0.25, 2, 1));
        assert_eq!(g.estimate.mean, 0.375);
        let undefined = value("X", f64::NAN, vec![None, None, None]);
        let g = &gaps(&[f, undefined]).unwrap()[0];
        assert_eq!((g.best_worst.as_ref(), g.estimate.point.is_nan()), (None, true));
        assert!(g.note.as_deref().unwrap().contains("a value on 1 of the 2 subgroups"));
    }
}
