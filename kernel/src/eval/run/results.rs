//! Results recomputed from `predictions.jsonl` alone: every complete unit scored by the metric
//! plugins on the full set (the point estimate) and on the paired bootstrap's index sets, then
//! the RQ gaps; written as `results.json` and `results.csv` (and `gaps.csv`), with the
//! subgroup results of `[report] subgroups` ([`subgroups`](super::subgroups)) in
//! `results.json` and `subgroups.csv`.
//!
//! - Paired: the index sets depend only on the dataset's size and the bootstrap settings
//!   (numpy's `default_rng(seed)` and `integers(0, n, n)` per replicate, or the legacy
//!   `RandomState(seed)` and `randint(0, n, n)`), and every unit of a
//!   dataset split is first put in the same sample order (the first unit's), so replicate `r`
//!   resamples the same samples for every model and strategy.
//! - A replicate on which a metric is undefined (the plugin answers `undefined`, such as AUROC
//!   on one class) is skipped and counted.
//! - Deterministic: units are ordered by the configuration (models, then datasets, split,
//!   strategy), metrics by the configuration, JSON keys by declaration, and floats printed in
//!   their shortest round-trip form (NaN as `null` in JSON, empty in CSV): identical predictions
//!   and settings give byte-identical files.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;

use serde::Serialize;

use super::config::{BootstrapSettings, Group, ModelSpec, RunConfig, Strategy};
use super::error::{RunError, write_file};
use super::gaps::{self, Gap};
use super::judging::{self, Judgements};
use super::predictions::{Contents, Unit};
use super::provenance::Provenance;
use super::scores::{MetricScore, UnitResult};
use super::subgroups::{self, SubgroupResult};
use crate::data::{Split, Task};
use crate::eval::bootstrap::{BootstrapConfig, Estimate, resample_indices};
use crate::eval::metrics::Scorer;

/// `results.json`.
pub const RESULTS_JSON: &str = "results.json";
/// `results.csv`.
pub const RESULTS_CSV: &str = "results.csv";
/// `gaps.csv`.
pub const GAPS_CSV: &str = "gaps.csv";
/// `subgroups.csv` (written when the run has subgroup results).
pub const SUBGROUPS_CSV: &str = "subgroups.csv";

/// Everything computed from a predictions file.
#[derive(Debug, Clone)]
pub struct Results {
    /// The version of mvb that computed these results.
    pub computed_by: String,
    /// The versions of mvb that wrote the predictions.
    pub predicted_by: Vec<String>,
    /// The configuration of the last run header.
    pub config: RunConfig,
    /// Every model any header describes (the later description wins), in order.
    pub models: Vec<ModelSpec>,
    /// Dataset names in report order.
    pub datasets: Vec<String>,
    /// The bootstrap used.
    pub bootstrap: BootstrapConfig,
    /// Every score name, in metric order.
    pub metrics: Vec<String>,
    /// Each metric entry of the configuration with its plugin's one-line definition.
    pub metric_info: Vec<(String, String)>,
    /// The diagnosis score the RQ gaps, the heatmap and the console table use (`auroc` when
    /// present).
    pub primary: Option<String>,
    /// The VQA score they use (`gpt-score-overall` when the run has a judge, else `f1`).
    pub vqa_primary: Option<String>,
    /// The run's judge, when it has one.
    pub judge: Option<JudgeSummary>,
    /// The content hashes of the run's inputs (the last header's).
    pub provenance: Option<Provenance>,
    /// Per unit, in report order.
    pub units: Vec<UnitResult>,
    /// The RQ gaps of the primary score.
    pub gaps: Vec<Gap>,
    /// Per unit and attribute of `[report] subgroups` its samples carry, in report order.
    pub subgroups: Vec<SubgroupResult>,
}

impl Results {
    /// A unit's result.
    pub fn unit(&self, model: &str, dataset: &str, strategy: Strategy) -> Option<&UnitResult> {
        self.units.iter().find(|u| u.key.model == model && u.key.dataset == dataset && u.key.strategy == strategy)
    }
}

/// Who judged a run's open answers, and how many verdicts failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeSummary {
    /// The judge plugin.
    pub plugin: String,
    /// The judge's language model.
    pub model: String,
    /// SHA-256 of its files (none before the first verdict).
    pub model_sha256: Option<String>,
    /// `free-form` or `constrained`.
    pub mode: String,
    /// Verdicts recorded (distinct question, answer and generated answer).
    pub verdicts: usize,
    /// Of which failed (no score).
    pub failed: usize,
}

/// Bootstrap settings that replace those recorded in the predictions file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BootstrapOverride {
    /// Replicates.
    pub replicates: Option<usize>,
    /// Seed.
    pub seed: Option<u32>,
}

/// What the headers of a predictions file describe, and its units in report order.
struct Layout<'a> {
    /// The versions of mvb that wrote the predictions.
    predicted_by: Vec<String>,
    /// Every model any header describes (the later description wins).
    models: Vec<ModelSpec>,
    /// Dataset names in report order.
    datasets: Vec<String>,
    /// The complete units, ordered by model, dataset, split and strategy.
    order: Vec<&'a Unit>,
}

/// Orders the units by the configuration: models, then datasets (as the headers list them;
/// those no header names, from hand-edited files, go last), split and strategy.
fn layout(contents: &Contents) -> Layout<'_> {
    let mut predicted_by: Vec<String> = Vec::new();
    let mut models: Vec<ModelSpec> = Vec::new();
    let mut datasets: Vec<String> = Vec::new();
    for h in &contents.headers {
        if !predicted_by.contains(&h.mvb_version) {
            predicted_by.push(h.mvb_version.clone());
        }
        for m in &h.config.models {
            match models.iter_mut().find(|o| o.name == m.name) {
                Some(o) => *o = m.clone(),
                None => models.push(m.clone()),
            }
        }
        for d in &h.config.datasets {
            if !datasets.contains(&d.name) {
                datasets.push(d.name.clone());
            }
        }
    }
    let mut model_order: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
    for u in &contents.units {
        if !model_order.contains(&u.key.model) {
            model_order.push(u.key.model.clone());
        }
        if !datasets.contains(&u.key.dataset) {
            datasets.push(u.key.dataset.clone());
        }
    }
    let rank = |list: &[String], name: &str| list.iter().position(|n| n == name).unwrap_or(usize::MAX);
    let mut order: Vec<&Unit> = contents.units.iter().collect();
    order.sort_by_key(|u| {
        (rank(&model_order, &u.key.model), rank(&datasets, &u.key.dataset), u.key.split, u.key.strategy)
    });
    Layout { predicted_by, models, datasets, order }
}

/// The paired bootstrap's shared state: per dataset split, the sample order every unit is put
/// in (the first unit's) and the index sets every unit is resampled with.
#[derive(Default)]
struct Pairing<'a> {
    reference: HashMap<(&'a str, Split), &'a Unit>,
    index_sets: HashMap<(&'a str, Split), Vec<Vec<u32>>>,
}

impl<'a> Pairing<'a> {
    /// The reference unit of `unit`'s dataset split, and that split's index sets.
    fn of(&mut self, unit: &'a Unit, bootstrap: &BootstrapConfig) -> Result<(&'a Unit, &[Vec<u32>]), RunError> {
        let group = (unit.key.dataset.as_str(), unit.key.split);
        let reference = *self.reference.entry(group).or_insert(unit);
        let sets = match self.index_sets.entry(group) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(
                resample_indices(reference.len(), bootstrap)
                    .map_err(|error| RunError::Eval { context: format!("bootstrap of {}", unit.key.dataset), error })?,
            ),
        };
        Ok((reference, sets))
    }
}

/// Scores one unit, in its reference's sample order, on the full set and the index sets, and
/// on the samples of each value of each attribute of `subgroups`.
fn score_unit(
    scorer: &mut Scorer,
    (unit, reference): (&Unit, &Unit),
    index_sets: &[Vec<u32>],
    (models, wanted): (&[ModelSpec], &[String]),
    judgements: Option<&Judgements>,
) -> Result<(UnitResult, Vec<SubgroupResult>), RunError> {
    let permutation = align(unit, reference)?;
    let (judged, judge) = judging::unit_scores(&unit.answers, judgements.filter(|_| unit.is_vqa()));
    let mut score = |positions: &[usize], sets: &[Vec<u32>]| -> Result<Vec<MetricScore>, RunError> {
        if unit.is_vqa() {
            let samples = positions.iter().map(|&i| (unit.answers[i].text.as_str(), &unit.answers[i].qa, judged[i]));
            scorer.score_answers(samples, sets)
        } else {
            let samples = positions.iter().map(|&i| (unit.scores[i].as_slice(), unit.labels[i].as_slice()));
            scorer.score(samples, sets)
        }
        .map_err(|error| RunError::Metric { context: unit.key.to_string(), error: Box::new(error) })
    };
    let scores = score(&permutation, index_sets)?;
    let spec = models.iter().find(|m| m.name == unit.key.model);
    let (family, group) = (spec.map(|m| m.family.clone()), spec.map(|m| m.group));
    let mut by_value = Vec::new();
    for (attribute, values) in subgroups::score(unit, &permutation, index_sets, wanted, &mut score)? {
        let gaps = subgroups::gaps(&values)?;
        let (key, family, group) = (unit.key.clone(), family.clone(), group);
        by_value.push(SubgroupResult { key, family, group, attribute, values, gaps });
    }
    let result = UnitResult { key: unit.key.clone(), family, group, n: unit.len(), scores, judge };
    Ok((result, by_value))
}

/// Scores every complete unit of `contents` with the metric plugins ([`Scorer`]), with the
/// run's verdicts `judgements` when it has a judge, and computes the RQ gaps. `bootstrap`
/// overrides the last header's settings; `progress(done, total)` is called after each unit.
pub fn evaluate(
    host: &crate::plugin::PluginHost,
    contents: &Contents,
    judgements: &Judgements,
    bootstrap: BootstrapOverride,
    mut progress: impl FnMut(usize, usize),
) -> Result<Results, RunError> {
    let header =
        contents.last_header().ok_or_else(|| RunError::Usage("the predictions file has no run header".into()))?;
    let config = header.config.clone();
    let recorded = config.bootstrap_config();
    let bootstrap = BootstrapConfig {
        replicates: bootstrap.replicates.unwrap_or(recorded.replicates),
        seed: bootstrap.seed.unwrap_or(recorded.seed),
        generator: recorded.generator,
    };
    let Layout { predicted_by, models, datasets, order } = layout(contents);
    let mut scorer = Scorer::new(host, &config.metrics)
        .map_err(|error| RunError::Metric { context: "loading the metrics".into(), error: Box::new(error) })?;
    let mut pairing = Pairing::default();
    let (mut units, mut subgroups) = (Vec::with_capacity(order.len()), Vec::new());
    let judged = config.judge.as_ref().map(|_| judgements);
    let wanted = (models.as_slice(), config.report.subgroups.as_slice());
    for (done, &unit) in order.iter().enumerate() {
        let (reference, index_sets) = pairing.of(unit, &bootstrap)?;
        let (result, by_value) = score_unit(&mut scorer, (unit, reference), index_sets, wanted, judged)?;
        units.push(result);
        subgroups.extend(by_value);
        progress(done + 1, order.len());
    }
    let metrics = scorer.names().to_vec();
    let diagnosis = scorer.names_for(Task::Diagnosis);
    let has = |vqa: bool| order.iter().any(|u| u.is_vqa() == vqa);
    let primary =
        diagnosis.iter().find(|m| *m == "auroc").or_else(|| diagnosis.first()).cloned().filter(|_| has(false));
    let vqa = if has(true) { scorer.names_for(Task::Vqa) } else { Vec::new() };
    let preferred: &[&str] = if config.judge.is_some() { &["gpt-score-overall", "f1"] } else { &["f1"] };
    let vqa_primary = preferred.iter().find_map(|p| vqa.iter().find(|m| m == p)).or_else(|| vqa.first()).cloned();
    let judge = config.judge.as_ref().map(|j| {
        let (verdicts, failed) = judgements.counts();
        JudgeSummary {
            plugin: j.plugin.clone(),
            model: j.model.clone(),
            model_sha256: judgements.judge().map(|b| b.model_sha256.clone()),
            mode: j.mode().to_owned(),
            verdicts,
            failed,
        }
    });
    let mut gaps = Vec::new();
    for metric in primary.iter().chain(&vqa_primary) {
        gaps.extend(
            gaps::compute(&models, &datasets, &units, metric)
                .map_err(|error| RunError::Eval { context: "RQ gaps".into(), error })?,
        );
    }
    Ok(Results {
        computed_by: env!("CARGO_PKG_VERSION").to_owned(),
        predicted_by,
        config,
        models,
        datasets,
        bootstrap,
        metric_info: scorer.descriptions(),
        metrics,
        primary,
        vqa_primary,
        judge,
        provenance: header.provenance.clone(),
        units,
        gaps,
        subgroups,
    })
}

/// The positions in `unit` of `reference`'s samples, in `reference`'s order.
fn align(unit: &Unit, reference: &Unit) -> Result<Vec<usize>, RunError> {
    if unit.ids == reference.ids {
        return Ok((0..unit.len()).collect());
    }
    let mismatch = |what: String| {
        RunError::Mismatch(format!(
            "{} and {} must score the same samples for the paired bootstrap: {what}",
            reference.key, unit.key
        ))
    };
    if unit.len() != reference.len() {
        return Err(mismatch(format!("{} vs {} samples", reference.len(), unit.len())));
    }
    let at: HashMap<&str, usize> = unit.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    if at.len() != unit.len() {
        return Err(mismatch(format!("{} repeats a sample id", unit.key)));
    }
    reference
        .ids
        .iter()
        .map(|id| {
            at.get(id.as_str()).copied().ok_or_else(|| mismatch(format!("sample `{id}` is missing from the second")))
        })
        .collect()
}

/// `f64` in JSON and CSV: NaN as `null` (an empty CSV field).
fn finite(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// What every row of the results and gaps ends with: an estimate, NaN as `null`.
#[derive(Serialize)]
struct EstimateRow {
    point: Option<f64>,
    mean: Option<f64>,
    ci_lo: Option<f64>,
    ci_hi: Option<f64>,
    replicates: usize,
    skipped: usize,
}

impl From<&Estimate> for EstimateRow {
    fn from(e: &Estimate) -> Self {
        EstimateRow {
            point: finite(e.point),
            mean: finite(e.mean),
            ci_lo: finite(e.lo),
            ci_hi: finite(e.hi),
            replicates: e.replicates,
            skipped: e.skipped,
        }
    }
}

/// The columns of [`EstimateRow`].
const ESTIMATE_COLUMNS: [&str; 6] = ["point", "mean", "ci_lo", "ci_hi", "replicates", "skipped"];

/// Which unit and score a row of the results is.
#[derive(Serialize)]
struct ResultKey<'a> {
    model: &'a str,
    family: Option<&'a str>,
    group: Option<Group>,
    dataset: &'a str,
    split: Split,
    strategy: Strategy,
    metric: &'a str,
    n: usize,
}

/// A row of the results or of the gaps: what it is, then its estimate. Flat in JSON; `csv`
/// cannot write flattened structs, so CSV rows are written as the pair `(key, estimate)`.
#[derive(Serialize)]
struct Row<K> {
    #[serde(flatten)]
    key: K,
    #[serde(flatten)]
    estimate: EstimateRow,
}

/// One row of `results.json`'s `results` and of `results.csv`.
type ResultRow<'a> = Row<ResultKey<'a>>;

/// `results.csv`'s header: [`ResultRow`]'s fields.
fn results_header() -> Vec<&'static str> {
    let key = ["model", "family", "group", "dataset", "split", "strategy", "metric", "n"];
    [&key[..], &ESTIMATE_COLUMNS].concat()
}

/// One side of a gap.
#[derive(Serialize)]
struct SystemRow<'a> {
    model: &'a str,
    strategy: Strategy,
    point: Option<f64>,
}

/// Which gap a row of the gaps is.
#[derive(Serialize)]
struct GapKey<'a> {
    rq: &'a str,
    family: &'a str,
    dataset: &'a str,
    split: Split,
    metric: &'a str,
    generalist: SystemRow<'a>,
    specialist: SystemRow<'a>,
}

/// One row of `results.json`'s `gaps` (the systems nested) and of `gaps.csv` (spelled out).
type GapRow<'a> = Row<GapKey<'a>>;

/// `gaps.csv`'s header: [`GapRow`]'s fields, each system's three spelled out.
fn gaps_header() -> Vec<&'static str> {
    let key = [
        "rq",
        "family",
        "dataset",
        "split",
        "metric",
        "generalist",
        "generalist_strategy",
        "generalist_point",
        "specialist",
        "specialist_strategy",
        "specialist_point",
    ];
    [&key[..], &ESTIMATE_COLUMNS].concat()
}

#[derive(Serialize)]
struct ResultsJson<'a> {
    computed_by: &'a str,
    predicted_by: &'a [String],
    bootstrap: BootstrapSettings,
    metrics: &'a [String],
    gap_metric: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    judge: Option<JudgeJson<'a>>,
    config: &'a RunConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    provenance: Option<&'a Provenance>,
    results: Vec<ResultRow<'a>>,
    gaps: Vec<GapRow<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subgroups: Vec<SubgroupRow<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subgroup_gaps: Vec<SubgroupRow<'a>>,
}

/// One row of `results.json`'s `subgroups` or `subgroup_gaps`, and of `subgroups.csv`.
type SubgroupRow<'a> = Row<subgroups::RowKey<'a>>;

/// The subgroup rows, gaps' (`true`) or values'.
fn subgroup_rows(results: &Results, gaps: bool) -> Vec<SubgroupRow<'_>> {
    let rows = subgroups::rows(&results.subgroups).into_iter();
    rows.filter(|(k, _)| k.is_gap() == gaps).map(|(key, e)| Row { key, estimate: e.into() }).collect()
}

/// The judge in `results.json`: who judged, and each judged unit's tally.
#[derive(Serialize)]
struct JudgeJson<'a> {
    #[serde(flatten)]
    summary: &'a JudgeSummary,
    units: Vec<JudgedUnit<'a>>,
}

#[derive(Serialize)]
struct JudgedUnit<'a> {
    #[serde(flatten)]
    key: &'a super::predictions::UnitKey,
    #[serde(flatten)]
    tally: judging::JudgeTally,
}

/// One row per unit × score, in report order.
fn result_rows(results: &Results) -> Vec<ResultRow<'_>> {
    results.units.iter().flat_map(|u| u.scores.iter().map(move |s| result_row(u, &s.name, &s.boot.estimate))).collect()
}

fn result_row<'a>(u: &'a UnitResult, metric: &'a str, e: &Estimate) -> ResultRow<'a> {
    let key = ResultKey {
        model: &u.key.model,
        family: u.family.as_deref(),
        group: u.group,
        dataset: &u.key.dataset,
        split: u.key.split,
        strategy: u.key.strategy,
        metric,
        n: u.n,
    };
    ResultRow { key, estimate: e.into() }
}

fn system_row(s: &gaps::System) -> SystemRow<'_> {
    SystemRow { model: &s.model, strategy: s.strategy, point: finite(s.point) }
}

fn gap_row(g: &Gap) -> GapRow<'_> {
    let key = GapKey {
        rq: g.rq.as_str(),
        family: &g.family,
        dataset: &g.dataset,
        split: g.split,
        metric: &g.metric,
        generalist: system_row(&g.generalist),
        specialist: system_row(&g.specialist),
    };
    GapRow { key, estimate: (&g.estimate).into() }
}

/// `results.json`'s text.
pub fn results_json(results: &Results) -> Result<String, RunError> {
    let doc = ResultsJson {
        computed_by: &results.computed_by,
        predicted_by: &results.predicted_by,
        bootstrap: BootstrapSettings {
            replicates: results.bootstrap.replicates,
            seed: results.bootstrap.seed,
            generator: results.bootstrap.generator,
        },
        metrics: &results.metrics,
        gap_metric: results.primary.as_deref(),
        judge: results.judge.as_ref().map(|summary| JudgeJson {
            summary,
            units: results.units.iter().filter_map(|u| Some(JudgedUnit { key: &u.key, tally: u.judge? })).collect(),
        }),
        config: &results.config,
        provenance: results.provenance.as_ref(),
        results: result_rows(results),
        gaps: results.gaps.iter().map(gap_row).collect(),
        subgroups: subgroup_rows(results, false),
        subgroup_gaps: subgroup_rows(results, true),
    };
    let mut text =
        serde_json::to_string_pretty(&doc).map_err(|e| RunError::Usage(format!("cannot encode results: {e}")))?;
    text.push('\n');
    Ok(text)
}

/// A CSV file of `header` and one line per row (floats in their shortest round-trip form,
/// `None` empty, a nested struct's fields in order), written with the `csv` crate.
fn csv_text<K: Serialize>(
    file: &str,
    header: &[&str],
    rows: impl IntoIterator<Item = Row<K>>,
) -> Result<String, RunError> {
    let fail = |e: csv::Error| RunError::Usage(format!("cannot encode {file}: {e}"));
    let mut w =
        csv::WriterBuilder::new().has_headers(false).terminator(csv::Terminator::Any(b'\n')).from_writer(vec![]);
    w.write_record(header).map_err(fail)?;
    for row in rows {
        w.serialize((row.key, row.estimate)).map_err(fail)?;
    }
    let bytes = w.into_inner().map_err(|e| RunError::Usage(format!("cannot encode {file}: {e}")))?;
    String::from_utf8(bytes).map_err(|e| RunError::Usage(format!("cannot encode {file}: {e}")))
}

/// `results.csv`'s text: one row per model × dataset × strategy × metric.
pub fn results_csv(results: &Results) -> Result<String, RunError> {
    csv_text(RESULTS_CSV, &results_header(), result_rows(results))
}

/// `gaps.csv`'s text: one row per RQ gap.
pub fn gaps_csv(results: &Results) -> Result<String, RunError> {
    csv_text(GAPS_CSV, &gaps_header(), results.gaps.iter().map(gap_row))
}

/// `subgroups.csv`'s text: per unit and attribute, one row per value and score, then one per
/// score for the gap between the best and worst value.
pub fn subgroups_csv(results: &Results) -> Result<String, RunError> {
    let header = [&subgroups::KEY_COLUMNS[..], &ESTIMATE_COLUMNS].concat();
    let rows = subgroups::rows(&results.subgroups).into_iter().map(|(key, e)| Row { key, estimate: e.into() });
    csv_text(SUBGROUPS_CSV, &header, rows)
}

/// Writes `results.json`, `results.csv` and `gaps.csv` into `dir`, and `subgroups.csv` when
/// there are subgroup results (else removes an earlier one).
pub fn write(dir: &Path, results: &Results) -> Result<(), RunError> {
    write_file(&dir.join(RESULTS_JSON), &results_json(results)?)?;
    write_file(&dir.join(RESULTS_CSV), &results_csv(results)?)?;
    write_file(&dir.join(GAPS_CSV), &gaps_csv(results)?)?;
    let subgroups = dir.join(SUBGROUPS_CSV);
    if !results.subgroups.is_empty() {
        return write_file(&subgroups, &subgroups_csv(results)?);
    }
    match std::fs::remove_file(&subgroups) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RunError::io(&subgroups, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::bootstrap::Bootstrapped;
    use crate::eval::run::predictions::UnitKey;
    use crate::eval::run::scores::MetricScore;

    /// The headers are the row structs' field names (what `csv` writes as a header), and the
    /// rows are written as the tables promise.
    #[test]
    fn csv_headers_are_the_row_fields() {
        let key = UnitKey { model: "m,1".into(), dataset: "d".into(), split: Split::Test, strategy: Strategy::Zs };
        let unit = UnitResult {
            key,
            family: None,
            group: Some(Group::Specialist),
            n: 3,
            scores: vec![MetricScore { name: "auroc".into(), boot: Bootstrapped::new(0.5, vec![Some(0.25), None]) }],
            judge: None,
        };
        let gap = Gap {
            rq: gaps::Rq::Rq3,
            family: "clip".into(),
            dataset: "d".into(),
            split: Split::Test,
            metric: "auroc".into(),
            generalist: gaps::System { model: "g".into(), strategy: Strategy::Lp, point: 0.75 },
            specialist: gaps::System { model: "s".into(), strategy: Strategy::Lp, point: f64::NAN },
            estimate: Bootstrapped::new(0.25, vec![Some(0.25)]).estimate,
        };
        let results = results_with(vec![unit], vec![gap]);
        let rows = result_rows(&results);
        assert_eq!(header(&rows[0].key) + "," + &header(&rows[0].estimate), results_header().join(","));
        let csv = results_csv(&results).unwrap();
        assert_eq!(csv.lines().nth(1), Some("\"m,1\",,specialist,d,test,zs,auroc,3,0.5,0.25,0.25,0.25,1,1"));
        let gaps = gaps_csv(&results).unwrap();
        assert_eq!(gaps.lines().next(), Some(gaps_header().join(",").as_str()));
        assert_eq!(gaps.lines().nth(1), Some("RQ3,clip,d,test,auroc,g,lp,0.75,s,lp,,0.25,0.25,0.25,0.25,1,0"));
        let empty = results_with(Vec::new(), Vec::new());
        assert_eq!(gaps_csv(&empty).unwrap(), gaps_header().join(",") + "\n");
    }

    fn results_with(units: Vec<UnitResult>, gaps: Vec<Gap>) -> Results {
        Results {
            computed_by: String::new(),
            predicted_by: Vec::new(),
            config: RunConfig::default_config().unwrap(),
            models: Vec::new(),
            datasets: Vec::new(),
            bootstrap: BootstrapConfig::default(),
            metrics: Vec::new(),
            metric_info: Vec::new(),
            primary: None,
            vqa_primary: None,
            judge: None,
            provenance: None,
            units,
            gaps,
            subgroups: Vec::new(),
        }
    }

    /// The header line `csv` derives from a row's field names.
    fn header<T: Serialize>(row: &T) -> String {
        let mut w = csv::Writer::from_writer(vec![]);
        w.serialize(row).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        text.lines().next().unwrap().to_owned()
    }
}
