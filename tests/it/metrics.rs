//! The built-in metric plugins (`auroc`, `accuracy`, `balanced-accuracy`, `vqa`) reproduce the
//! reference values in `tests/fixtures/metrics/` to 1e-9: scikit-learn for diagnosis, nltk,
//! rouge_score with torchmetrics' tokenizer (what MedVLMBench calls), rounded to f32 as torchmetrics returns it,
//! and MedVLMBench's definitions for VQA, on the full set and on resamples.
//! Regenerate the fixtures with `python3 tools/make_metric_fixtures.py`.

use mvb::data::AnswerKind;
use mvb::eval::metrics::{Metric, Scorer};
use mvb::plugin::{Builtin, ErrorKind, MetricPlugin, PluginError, Prediction, Reference, Score};
use serde_json::Value;

use crate::common::{host, root};

/// Absolute tolerance (relative above 1).
const TOLERANCE: f64 = 1e-9;

const DIAGNOSIS_METRICS: [&str; 3] = ["auroc", "accuracy", "balanced-accuracy"];

const VQA_SCORES: [&str; 30] = [
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

fn fixture(name: &str) -> Value {
    let path = root().join("tests/fixtures/metrics").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn metric(name: &str) -> MetricPlugin {
    let builtin = Builtin::find(name).unwrap_or_else(|| panic!("`{name}` is built in"));
    host().metric(&builtin.source()).expect("metric plugin starts")
}

/// The plugin's own error kind, by name (`ErrorKind` is not re-exported from `mvb::plugin`).
fn is_undefined(err: &PluginError) -> bool {
    err.kind() == Some(ErrorKind::Undefined)
}

fn is_invalid(err: &PluginError) -> bool {
    err.kind() == Some(ErrorKind::InvalidArgument)
}

fn indices(value: &Value) -> Vec<u32> {
    value.as_array().expect("index list").iter().map(|i| i.as_u64().expect("index") as u32).collect()
}

/// Compares one value with its expectation: a number, `"nan"`.
fn check_value(what: &str, got: f64, expected: &Value) {
    match expected {
        Value::String(s) if s == "nan" => assert!(got.is_nan(), "{what}: expected NaN, got {got}"),
        Value::Number(n) => {
            let want = n.as_f64().expect("number");
            assert!(
                (got - want).abs() <= TOLERANCE * want.abs().max(1.0),
                "{what}: got {got:.17}, expected {want:.17}"
            );
        }
        other => panic!("{what}: unexpected expectation {other}"),
    }
}

/// Compares a single-score result with a number or `"undefined"`.
fn check_single(what: &str, got: Result<Vec<Score>, PluginError>, name: &str, expected: &Value) {
    match (got, expected) {
        (Err(err), Value::String(s)) if s == "undefined" => assert!(is_undefined(&err), "{what}: {err}"),
        (Ok(scores), Value::String(s)) if s == "undefined" => panic!("{what}: expected undefined, got {scores:?}"),
        (Ok(scores), _) => {
            assert_eq!(scores.len(), 1, "{what}");
            assert_eq!(scores[0].name, name, "{what}");
            check_value(what, scores[0].value, expected);
        }
        (Err(err), _) => panic!("{what}: {err}"),
    }
}

fn diagnosis_inputs(case: &Value) -> (Vec<Prediction>, Vec<Reference>) {
    let predictions = case["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .map(|row| {
            Prediction::ClassScores(row.as_array().expect("row").iter().map(|s| s.as_f64().expect("score")).collect())
        })
        .collect();
    let references = case["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|l| Reference { labels: vec![l.as_u64().expect("label") as u32], ..Reference::default() })
        .collect();
    (predictions, references)
}

#[test]
fn diagnosis_metrics_match_scikit_learn() {
    let data = fixture("diagnosis.json");
    let cases = data["cases"].as_array().expect("cases");
    assert!(cases.len() >= 8);
    for name in DIAGNOSIS_METRICS {
        let mut plugin = metric(name);
        for case in cases {
            let case_name = case["name"].as_str().expect("name");
            let (predictions, references) = diagnosis_inputs(case);
            let eval = plugin.prepare(&predictions, &references).expect("prepare");
            let what = format!("{name} on {case_name}");
            check_single(&what, plugin.compute(&eval, None), name, &case["full"][name]);
            for (r, resample) in case["resamples"].as_array().expect("resamples").iter().enumerate() {
                let ix = indices(&resample["indices"]);
                let what = format!("{name} on {case_name}, resample {r}");
                check_single(&what, plugin.compute(&eval, Some(&ix)), name, &resample["expected"][name]);
            }
            plugin.release(eval).expect("release");
        }
    }
}

#[test]
fn diagnosis_metrics_describe_themselves() {
    for name in DIAGNOSIS_METRICS {
        let plugin = metric(name);
        let info = plugin.info();
        assert_eq!(info.name, name);
        assert_eq!(info.scores, [name]);
        assert_eq!(info.task, mvb::data::Task::Diagnosis);
        assert!(info.higher_is_better);
        assert!(info.description.contains("sklearn"), "{}", info.description);
    }
}

#[test]
fn diagnosis_metrics_are_undefined_on_empty_sets() {
    for name in DIAGNOSIS_METRICS {
        let mut plugin = metric(name);
        let eval = plugin.prepare(&[], &[]).expect("an empty set prepares");
        let err = plugin.compute(&eval, None).expect_err("empty set");
        assert!(is_undefined(&err), "{name}: {err}");
        let preds = [vec![0.2, 0.8], vec![0.7, 0.3]].map(Prediction::ClassScores);
        let refs = [1, 0].map(|l| Reference { labels: vec![l], ..Reference::default() });
        let eval = plugin.prepare(&preds, &refs).expect("prepare");
        let err = plugin.compute(&eval, Some(&[])).expect_err("empty resample");
        assert!(is_undefined(&err), "{name}: {err}");
        // One class only: AUROC is undefined, the accuracies are not.
        let value = plugin.compute(&eval, Some(&[0, 0]));
        match name {
            "auroc" => assert!(is_undefined(&value.expect_err("one class")), "{name}"),
            _ => assert_eq!(value.expect("defined")[0].value, 1.0, "{name}"),
        }
    }
}

#[test]
fn diagnosis_metrics_refuse_malformed_inputs() {
    let label = |l: u32| Reference { labels: vec![l], ..Reference::default() };
    for name in DIAGNOSIS_METRICS {
        let mut plugin = metric(name);
        let nan = [Prediction::ClassScores(vec![0.5, f64::NAN]), Prediction::ClassScores(vec![0.5, 0.5])];
        let err = plugin.prepare(&nan, &[label(0), label(1)]).expect_err("NaN");
        assert!(is_invalid(&err) && err.to_string().contains("NaN"), "{name}: {err}");
        let text = [Prediction::Text("yes".into())];
        assert!(is_invalid(&plugin.prepare(&text, &[label(0)]).expect_err("text")), "{name}");
        let ragged = [Prediction::ClassScores(vec![0.5, 0.5]), Prediction::ClassScores(vec![0.2, 0.3, 0.5])];
        assert!(is_invalid(&plugin.prepare(&ragged, &[label(0), label(1)]).expect_err("ragged")), "{name}");
        let two = [Prediction::ClassScores(vec![0.5, 0.5]), Prediction::ClassScores(vec![0.2, 0.8])];
        let err = plugin.prepare(&two, &[label(0), label(2)]).expect_err("label out of range");
        assert!(is_invalid(&err) && err.to_string().contains("label 2"), "{name}: {err}");
        let unlabelled = [Reference::default(), label(1)];
        assert!(is_invalid(&plugin.prepare(&two, &unlabelled).expect_err("no label")), "{name}");
        assert!(is_invalid(&plugin.prepare(&two, &[label(0)]).expect_err("length mismatch")), "{name}");
    }
    let mut auroc = metric("auroc");
    let one_column = [Prediction::ClassScores(vec![1.0])];
    assert!(is_invalid(&auroc.prepare(&one_column, &[label(0)]).expect_err("one column")));
    let infinite = [Prediction::ClassScores(vec![0.0, f64::INFINITY]), Prediction::ClassScores(vec![0.5, 0.5])];
    assert!(is_invalid(&auroc.prepare(&infinite, &[label(0), label(1)]).expect_err("infinite")));
}

fn answer_kind(value: &Value) -> AnswerKind {
    match value.as_str().expect("kind") {
        "open" => AnswerKind::Open,
        "closed" => AnswerKind::Closed,
        other => panic!("unknown kind {other}"),
    }
}

/// Checks the VQA scores of a set against the reference: the overall ones from `expected`,
/// the per-kind ones (`-open`, `-closed`) as means of the reference's per-sample values over the
/// set's samples of that kind (`samples`: each sample's kind and reference values, with
/// repetition).
fn check_vqa(what: &str, got: Result<Vec<Score>, PluginError>, expected: &Value, samples: &[(AnswerKind, &Value)]) {
    let scores = got.unwrap_or_else(|e| panic!("{what}: {e}"));
    let names: Vec<&str> = scores.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, VQA_SCORES, "{what}");
    for score in &scores {
        let kind = [("-open", AnswerKind::Open), ("-closed", AnswerKind::Closed)]
            .into_iter()
            .find_map(|(suffix, kind)| score.name.strip_suffix(suffix).map(|base| (base, kind)));
        if let Some((base, kind)) = kind.filter(|(base, _)| !base.starts_with("gpt-score")) {
            let values: Vec<f64> =
                samples.iter().filter(|(k, _)| *k == kind).map(|(_, v)| v[base].as_f64().expect("value")).collect();
            let want = if values.is_empty() { f64::NAN } else { values.iter().sum::<f64>() / values.len() as f64 };
            let want = if want.is_nan() { Value::from("nan") } else { Value::from(want) };
            check_value(&format!("{what}: {}", score.name), score.value, &want);
            continue;
        }
        if score.name.starts_with("gpt-score") {
            // Unjudged predictions (text only) have no GPT score.
            assert!(score.value.is_nan(), "{what}: {} = {}", score.name, score.value);
            continue;
        }
        check_value(&format!("{what}: {}", score.name), score.value, &expected[&score.name]);
    }
}

#[test]
fn vqa_metrics_match_the_reference() {
    let data = fixture("vqa.json");
    let mut plugin = metric("vqa");
    let info = plugin.info().clone();
    assert_eq!(info.name, "vqa");
    assert_eq!(info.scores, VQA_SCORES);
    assert_eq!(info.task, mvb::data::Task::Vqa);
    for set in data["sets"].as_array().expect("sets") {
        let set_name = set["name"].as_str().expect("name");
        let samples = set["samples"].as_array().expect("samples");
        let predictions: Vec<Prediction> =
            samples.iter().map(|s| Prediction::Text(s["prediction"].as_str().expect("text").to_owned())).collect();
        let references: Vec<Reference> = samples
            .iter()
            .map(|s| Reference {
                labels: Vec::new(),
                answer: Some(s["answer"].as_str().expect("answer").to_owned()),
                kind: Some(answer_kind(&s["kind"])),
            })
            .collect();
        let eval = plugin.prepare(&predictions, &references).expect("prepare");
        let per_sample = set["per_sample"].as_array().expect("per_sample");
        let kinds: Vec<(AnswerKind, &Value)> =
            samples.iter().zip(per_sample).map(|(s, v)| (answer_kind(&s["kind"]), v)).collect();
        // A one-index resample scores a single sample.
        for (i, expected) in per_sample.iter().enumerate() {
            let what = format!("{set_name}, sample {i} ({:?})", samples[i]["prediction"]);
            check_vqa(&what, plugin.compute(&eval, Some(&[i as u32])), expected, &kinds[i..=i]);
        }
        check_vqa(&format!("{set_name}, full set"), plugin.compute(&eval, None), &set["full"], &kinds);
        for (r, resample) in set["resamples"].as_array().expect("resamples").iter().enumerate() {
            let ix = indices(&resample["indices"]);
            let picked: Vec<(AnswerKind, &Value)> = ix.iter().map(|&i| kinds[i as usize]).collect();
            let what = format!("{set_name}, resample {r}");
            check_vqa(&what, plugin.compute(&eval, Some(&ix)), &resample["expected"], &picked);
        }
        let err = plugin.compute(&eval, Some(&[])).expect_err("empty resample");
        assert!(is_undefined(&err), "{err}");
        plugin.release(eval).expect("release");
    }
}

#[test]
fn vqa_metrics_handle_empty_sets_and_refuse_malformed_inputs() {
    let mut plugin = metric("vqa");
    let eval = plugin.prepare(&[], &[]).expect("an empty set prepares");
    assert!(is_undefined(&plugin.compute(&eval, None).expect_err("empty set")));
    let reference = |kind| Reference { labels: Vec::new(), answer: Some("yes".into()), kind: Some(kind) };
    // Empty predictions score 0 but are not an error.
    let empty = [Prediction::Text(String::new()), Prediction::Text(String::new())];
    let eval = plugin.prepare(&empty, &[reference(AnswerKind::Closed), reference(AnswerKind::Open)]).expect("prepare");
    for score in plugin.compute(&eval, None).expect("scores") {
        // No GPT score without a judge.
        let undefined = score.name.starts_with("gpt-score");
        assert!(if undefined { score.value.is_nan() } else { score.value == 0.0 }, "{}", score.name);
    }
    let scores = [Prediction::ClassScores(vec![0.1, 0.9])];
    assert!(is_invalid(&plugin.prepare(&scores, &[reference(AnswerKind::Open)]).expect_err("class scores")));
    let text = [Prediction::Text("yes".into())];
    let no_answer = Reference { answer: None, ..reference(AnswerKind::Open) };
    assert!(is_invalid(&plugin.prepare(&text, &[no_answer]).expect_err("no answer")));
    let no_kind = Reference { kind: None, ..reference(AnswerKind::Open) };
    assert!(is_invalid(&plugin.prepare(&text, &[no_kind]).expect_err("no kind")));
    assert!(is_invalid(&plugin.prepare(&text, &[]).expect_err("length mismatch")));
}

/// `eval::metrics::Scorer`, the one scoring path of `mvb run` and `mvb zeroshot`: the plugins'
/// values, NaN (and skipped replicates) where a metric is undefined. AUROC follows scikit-learn
/// and MedVLMBench: a multi-class set missing a class has no one-vs-rest AUROC.
#[test]
fn the_scorer_reports_the_plugins_values() {
    let host = host();
    let metrics = [Metric::Builtin("accuracy"), Metric::Builtin("auroc")];
    let mut scorer = Scorer::new(&host, &metrics).expect("the built-ins load");
    assert_eq!(scorer.names(), ["accuracy", "auroc"]);
    let rows = [[0.7f32, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.3, 0.5, 0.2], [0.1, 0.2, 0.7]];
    let labels = [[0u32], [1], [1], [1], [2]];
    let samples = |n: usize| rows[..n].iter().zip(&labels[..n]).map(|(r, l)| (r.as_slice(), l.as_slice()));
    // Class 2 absent: accuracy 3/4, AUROC undefined.
    let scores = scorer.score(samples(4), &[vec![0, 1, 2, 3]]).expect("scores");
    assert_eq!(scores[0].boot.estimate.point, 0.75);
    assert!(scores[1].boot.estimate.point.is_nan());
    assert_eq!((scores[1].boot.estimate.replicates, scores[1].boot.estimate.skipped), (0, 1));
    // All classes present: the plugin's value, on the full set and on a resample.
    let mut auroc = metric("auroc");
    let predictions: Vec<Prediction> =
        rows.iter().map(|r| Prediction::ClassScores(r.iter().map(|&v| f64::from(v)).collect())).collect();
    let references: Vec<Reference> =
        labels.iter().map(|l| Reference { labels: l.to_vec(), ..Reference::default() }).collect();
    let eval = auroc.prepare(&predictions, &references).expect("prepare");
    let want = auroc.compute(&eval, None).expect("defined")[0].value;
    let scores = scorer.score(samples(5), &[vec![0, 1, 2, 3, 4], vec![0, 0, 1, 1, 1]]).expect("scores");
    assert_eq!(scores[1].boot.estimate.point, want);
    assert_eq!(scores[1].boot.values, [Some(want), None]);
    let twice = Scorer::new(&host, &[Metric::Builtin("auroc"), Metric::Builtin("auroc")]).expect_err("twice");
    assert!(twice.to_string().contains("two metrics report a score named `auroc`"), "{twice}");
}

#[test]
fn judged_answers_reach_the_vqa_metric_as_medvlmbenchs_gpt_score() {
    let mut plugin = metric("vqa");
    let reference =
        |answer: &str, kind| Reference { labels: Vec::new(), answer: Some(answer.into()), kind: Some(kind) };
    let judged = |text: &str, judge_score| Prediction::Judged { text: text.into(), judge_score };
    let predictions = [judged("left lung", Some(0.9)), judged("heart", Some(0.3)), judged("yes", None)];
    let references = [
        reference("left lung", AnswerKind::Open),
        reference("liver", AnswerKind::Open),
        reference("no", AnswerKind::Closed),
    ];
    let eval = plugin.prepare(&predictions, &references).expect("prepares");
    let scores = plugin.compute(&eval, None).expect("scores");
    let get = |name: &str| scores.iter().find(|s| s.name == name).map(|s| s.value).expect(name);
    assert!((get("gpt-score-open") - 0.6).abs() < 1e-12);
    // Open: 0.9 and 0.3; closed: "yes" for "no" is wrong (0): (0.9 + 0.3 + 0) / 3.
    assert!((get("gpt-score-overall") - 0.4).abs() < 1e-12);
    let resample = plugin.compute(&eval, Some(&[0, 0, 2])).expect("a resample");
    let overall = resample.iter().find(|s| s.name == "gpt-score-overall").expect("overall").value;
    assert!((overall - 0.6).abs() < 1e-12, "{overall}");
    let bad = [judged("x", Some(1.5))];
    assert!(is_invalid(&plugin.prepare(&bad, &[reference("x", AnswerKind::Open)]).expect_err("out of [0, 1]")));
}
