//! The RQ gaps of MedVLMBench (arXiv 2506.17337; github.com/ubc-tea/MedVLMBench), per model family and dataset, always
//! best-of-group minus best-of-group:
//!
//! - **RQ1** = best generalist ZS − best specialist ZS, on a dataset that is in-distribution
//!   (ID) for at least one specialist of the family; the specialists compared are those ID on it.
//! - **RQ2** = best generalist fine-tuned − best specialist ZS, on the same ID datasets and
//!   specialists.
//! - **RQ3** = best generalist fine-tuned − best specialist fine-tuned, on a dataset that is
//!   out-of-distribution (OOD) for every specialist of the family.
//!
//! "Best" is the highest point estimate of the score within the group (across its models and,
//! for "fine-tuned", across the fine-tuning strategies); ties go to the earlier model and
//! strategy in report order; systems whose score is undefined (NaN) are not candidates. The CI
//! is the paired bootstrap of the difference between the two chosen systems: replicate `r` is
//! their difference on the same index set, skipped when either is undefined.

use super::config::{Group, ModelSpec, Strategy};
use super::scores::UnitResult;
use crate::data::Split;
use crate::eval::EvalError;
use crate::eval::bootstrap::{Bootstrapped, Estimate};

/// The three research questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rq {
    /// Generalist ZS vs specialist ZS, ID datasets.
    Rq1,
    /// Generalist fine-tuned vs specialist ZS, ID datasets.
    Rq2,
    /// Generalist fine-tuned vs specialist fine-tuned, OOD datasets.
    Rq3,
}

impl Rq {
    /// Every question, in order.
    pub const ALL: [Rq; 3] = [Rq::Rq1, Rq::Rq2, Rq::Rq3];

    /// `RQ1`, `RQ2`, `RQ3`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rq::Rq1 => "RQ1",
            Rq::Rq2 => "RQ2",
            Rq::Rq3 => "RQ3",
        }
    }

    /// What is compared, in words.
    pub fn description(self) -> &'static str {
        match self {
            Rq::Rq1 => "best generalist ZS - best specialist ZS (ID datasets)",
            Rq::Rq2 => "best generalist fine-tuned - best specialist ZS (ID datasets)",
            Rq::Rq3 => "best generalist fine-tuned - best specialist fine-tuned (OOD datasets)",
        }
    }
}

/// One side of a gap: the system chosen as its group's best.
#[derive(Debug, Clone, PartialEq)]
pub struct System {
    /// The model.
    pub model: String,
    /// The strategy.
    pub strategy: Strategy,
    /// Its point estimate.
    pub point: f64,
}

/// One RQ gap with its paired bootstrap CI.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// The question.
    pub rq: Rq,
    /// The model family.
    pub family: String,
    /// The dataset.
    pub dataset: String,
    /// The split evaluated.
    pub split: Split,
    /// The score compared.
    pub metric: String,
    /// The best generalist.
    pub generalist: System,
    /// The best specialist.
    pub specialist: System,
    /// `generalist − specialist`: point, mean and percentiles of the paired replicates.
    pub estimate: Estimate,
}

/// The best unit among `candidates` (highest finite point; the first on ties).
fn best<'a>(
    candidates: impl Iterator<Item = (&'a UnitResult, &'a Bootstrapped)>,
) -> Option<(&'a UnitResult, &'a Bootstrapped)> {
    let mut chosen: Option<(&UnitResult, &Bootstrapped)> = None;
    for (u, b) in candidates {
        let p = b.estimate.point;
        if p.is_nan() {
            continue;
        }
        if chosen.is_none_or(|(_, c)| p > c.estimate.point) {
            chosen = Some((u, b));
        }
    }
    chosen
}

/// The RQ gaps of score `metric` over `units` (in report order), for the families of `models`
/// and the datasets in `datasets` order. Ordered by question, family, dataset, split.
pub fn compute(
    models: &[ModelSpec],
    datasets: &[String],
    units: &[UnitResult],
    metric: &str,
) -> Result<Vec<Gap>, EvalError> {
    let mut families: Vec<&str> = Vec::new();
    for m in models {
        if !families.contains(&m.family.as_str()) {
            families.push(&m.family);
        }
    }
    let mut slices: Vec<(&str, Split)> = Vec::new();
    for d in datasets {
        for u in units.iter().filter(|u| &u.key.dataset == d) {
            if !slices.contains(&(d.as_str(), u.key.split)) {
                slices.push((d, u.key.split));
            }
        }
    }
    let mut gaps = Vec::new();
    for rq in Rq::ALL {
        for family in &families {
            let in_group =
                |g: Group| models.iter().filter(move |m| m.family == *family && m.group == g).collect::<Vec<_>>();
            let generalists = in_group(Group::Generalist);
            let specialists = in_group(Group::Specialist);
            if generalists.is_empty() || specialists.is_empty() {
                continue;
            }
            for &(dataset, split) in &slices {
                let id: Vec<&&ModelSpec> =
                    specialists.iter().filter(|m| m.id_datasets.iter().any(|d| d == dataset)).collect();
                let (spec_models, gen_ft, spec_ft): (Vec<&str>, bool, bool) = match rq {
                    Rq::Rq1 if !id.is_empty() => (id.iter().map(|m| m.name.as_str()).collect(), false, false),
                    Rq::Rq2 if !id.is_empty() => (id.iter().map(|m| m.name.as_str()).collect(), true, false),
                    Rq::Rq3 if id.is_empty() => (specialists.iter().map(|m| m.name.as_str()).collect(), true, true),
                    _ => continue,
                };
                let gen_models: Vec<&str> = generalists.iter().map(|m| m.name.as_str()).collect();
                let pick = |names: &[&str], fine_tuned: bool| {
                    best(
                        units
                            .iter()
                            .filter(|u| {
                                u.key.dataset == dataset
                                    && u.key.split == split
                                    && names.contains(&u.key.model.as_str())
                                    && u.key.strategy.is_fine_tuned() == fine_tuned
                            })
                            .filter_map(|u| u.score(metric).map(|b| (u, b))),
                    )
                };
                let (Some((gu, gb)), Some((su, sb))) = (pick(&gen_models, gen_ft), pick(&spec_models, spec_ft)) else {
                    continue;
                };
                let system = |u: &UnitResult, b: &Bootstrapped| System {
                    model: u.key.model.clone(),
                    strategy: u.key.strategy,
                    point: b.estimate.point,
                };
                gaps.push(Gap {
                    rq,
                    family: (*family).to_owned(),
                    dataset: dataset.to_owned(),
                    split,
                    metric: metric.to_owned(),
                    generalist: system(gu, gb),
                    specialist: system(su, sb),
                    estimate: gb.minus(sb)?,
                });
            }
        }
    }
    Ok(gaps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::run::predictions::UnitKey;
    use crate::eval::run::scores::MetricScore;

    fn model(name: &str, family: &str, group: Group, id: &[&str]) -> ModelSpec {
        ModelSpec {
            name: name.into(),
            path: String::new(),
            family: family.into(),
            group,
            id_datasets: id.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn unit(model: &str, dataset: &str, strategy: Strategy, point: f64, values: &[f64]) -> UnitResult {
        UnitResult {
            key: UnitKey { model: model.into(), dataset: dataset.into(), split: Split::Test, strategy },
            family: None,
            group: None,
            n: 10,
            scores: vec![MetricScore {
                name: "auroc".into(),
                boot: Bootstrapped::new(point, values.iter().map(|v| Some(*v)).collect()),
            }],
            judge: None,
        }
    }

    #[test]
    fn best_of_group_minus_best_of_group() {
        let models = vec![
            model("g1", "clip", Group::Generalist, &[]),
            model("g2", "clip", Group::Generalist, &[]),
            model("s1", "clip", Group::Specialist, &["a"]),
            model("s2", "clip", Group::Specialist, &[]),
            model("x", "siglip", Group::Generalist, &[]),
        ];
        let units = vec![
            unit("g1", "a", Strategy::Zs, 0.6, &[0.6, 0.5]),
            unit("g1", "a", Strategy::Lp, 0.9, &[0.9, 0.8]),
            unit("g2", "a", Strategy::Zs, 0.7, &[0.7, 0.75]),
            unit("g2", "a", Strategy::Lp, 0.8, &[0.8, 0.8]),
            unit("s1", "a", Strategy::Zs, 0.65, &[0.6, 0.7]),
            unit("s2", "a", Strategy::Zs, 0.99, &[0.99, 0.99]), // OOD on a: not a candidate
            unit("g1", "b", Strategy::Lp, 0.7, &[0.7, 0.6]),
            unit("s1", "b", Strategy::Lp, 0.75, &[0.7, 0.7]),
            unit("s2", "b", Strategy::Lp, f64::NAN, &[]),
            unit("x", "b", Strategy::Lp, 1.0, &[1.0, 1.0]),
        ];
        let gaps = compute(&models, &["a".into(), "b".into()], &units, "auroc").unwrap();
        let got: Vec<(Rq, &str, &str, &str, f64)> = gaps
            .iter()
            .map(|g| {
                (g.rq, g.dataset.as_str(), g.generalist.model.as_str(), g.specialist.model.as_str(), g.estimate.point)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Rq::Rq1, "a", "g2", "s1", 0.7 - 0.65),
                (Rq::Rq2, "a", "g1", "s1", 0.9 - 0.65),
                (Rq::Rq3, "b", "g1", "s1", 0.7 - 0.75),
            ]
        );
        // Paired replicates: g2 − s1 = [0.1, 0.05].
        assert_eq!(gaps[0].estimate.replicates, 2);
        assert!((gaps[0].estimate.mean - 0.075).abs() < 1e-12);
    }
}
