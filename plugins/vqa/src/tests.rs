//! Native checks of the per-sample scores against the reference fixtures: torchmetrics' ROUGE
//! (`tests/fixtures/vqa/rouge.json`) and the VQA metric fixture of the kernel's tests
//! (`tests/fixtures/metrics/vqa.json`), to 1e-9.

use super::{AnswerKind, Sample, normalize, scores};
use serde_json::Value;

const TOLERANCE: f64 = 1e-9;

fn fixture(path: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key].as_str().unwrap_or_else(|| panic!("{key} is a string in {case}"))
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("{value} is a number"))
}

#[test]
fn rouge_equals_torchmetrics() {
    let data = fixture("vqa/rouge.json");
    let cases = data["cases"].as_array().expect("cases");
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for case in cases {
        let prediction = normalize::normalize(text(case, "prediction"));
        let reference = normalize::normalize(text(case, "reference"));
        assert_eq!(prediction.text, text(case, "normalized_prediction"), "normaliser on {case}");
        assert_eq!(reference.text, text(case, "normalized_reference"), "normaliser on {case}");
        let got = scores::rouge(&prediction.text, &reference.text);
        for (k, key) in ["rouge1", "rouge2", "rougeL"].into_iter().enumerate() {
            let want = number(&case[key]);
            assert!((got[k] - want).abs() <= TOLERANCE, "{key}: {} != {want} on {case}", got[k]);
            // Before the float32 rounding, the F-measure is torchmetrics' float64 one.
            let exact = number(&case["exact"][k]);
            assert_eq!(f64::from(exact as f32), want, "{key} rounding on {case}");
        }
    }
}

#[test]
fn per_sample_scores_equal_the_metric_fixture() {
    let data = fixture("metrics/vqa.json");
    for set in data["sets"].as_array().expect("sets") {
        let samples = set["samples"].as_array().expect("samples");
        let expected = set["per_sample"].as_array().expect("per_sample");
        for (sample, want) in samples.iter().zip(expected) {
            let kind = if text(sample, "kind") == "open" { AnswerKind::Open } else { AnswerKind::Closed };
            let got = Sample::score(text(sample, "prediction"), text(sample, "answer"), kind, None);
            for (value, name) in got.values.iter().zip(&super::SCORES[..super::PER_SAMPLE]) {
                let want = number(&want[*name]);
                assert!((value - want).abs() <= TOLERANCE, "{name}: {value} != {want} on {sample}");
            }
        }
    }
}

#[test]
fn rouge_tokens_keep_only_ascii_letters_and_digits() {
    assert_eq!(scores::rouge_tokens("3.5 cm"), ["3", "5", "cm"]);
    assert_eq!(scores::rouge_tokens("patient's 20%"), ["patient", "s", "20"]);
    assert_eq!(scores::rouge_tokens("ménière"), ["m", "ni", "re"]);
    assert!(scores::rouge_tokens("肺炎 πνευμονία").is_empty());
    assert_eq!(scores::rouge("", "yes"), [0.0; 3]);
    assert_eq!(scores::rouge("肺炎", "肺炎"), [0.0; 3]);
}

#[test]
fn gpt_scores_weigh_open_judge_scores_and_closed_accuracy_by_counts() {
    use super::{GptScore, Vqa};
    let judged = |p: &str, a: &str, kind, s| Sample::score(p, a, kind, Some(s));
    let samples = vec![
        judged("pneumonia", "pneumonia", AnswerKind::Open, Some(1.0)),
        judged("normal", "pneumonia", AnswerKind::Open, Some(0.2)),
        judged("no opacity", "pneumonia", AnswerKind::Open, None),
        judged("yes, it does", "yes", AnswerKind::Closed, None),
        judged("no", "yes", AnswerKind::Closed, None),
    ];
    let mut gpt = GptScore::default();
    samples.iter().for_each(|s| gpt.add(s));
    // Open mean over the two judged open questions; the failed judgement is left out of both.
    let [open, overall] = gpt.scores();
    assert!((open - 0.6).abs() < 1e-12, "{open}");
    assert!((overall - (1.0 + 0.2 + 1.0) / 4.0).abs() < 1e-12, "{overall}");
    let plain = Vqa { samples: vec![Sample::score("a", "a", AnswerKind::Open, None)] };
    let scores = plain.means(plain.samples.iter()).expect("scores");
    assert!(scores.iter().filter(|s| s.name.starts_with("gpt-score")).all(|s| s.value.is_nan()));
}
