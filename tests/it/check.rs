//! `plugin check`: components of the wrong world, or not components at all, are rejected with
//! a message naming what is missing.

use mvb::plugin::{PluginError, PluginSource, World, WorldInfo};

use crate::common::{host, metric_only};

#[test]
fn a_metric_is_recognised_as_a_metric() {
    let source = PluginSource::from_file(&metric_only()).expect("readable");
    let report = host().check(&source, None, None).expect("passes as a metric");
    assert_eq!(report.world, World::Metric);
    let WorldInfo::Metric(info) = report.info else { panic!("metric info expected") };
    assert_eq!(info.name, "accuracy");
}

#[test]
fn a_metric_checked_as_a_dataset_names_the_missing_export() {
    let source = PluginSource::from_file(&metric_only()).expect("readable");
    let err = host().check(&source, Some(World::Dataset), None).expect_err("not a dataset");
    let text = err.to_string();
    assert!(matches!(err, PluginError::Mismatch { world: "dataset", .. }), "{text}");
    assert!(text.contains("missing export `mvb:plugin/dataset-api@0.1.0`"), "{text}");
    assert!(text.contains("mvb:plugin/metric-api@0.1.0") && text.contains("`metric` world"), "{text}");
}

#[test]
fn the_metric_computes_through_the_host() {
    use mvb::plugin::{Prediction, Reference};
    let source = PluginSource::from_file(&metric_only()).expect("readable");
    let mut metric = host().metric(&source).expect("starts");
    let preds = [vec![0.9, 0.1], vec![0.2, 0.8], vec![0.6, 0.4]].map(Prediction::ClassScores);
    let refs = [0, 1, 1].map(|l| Reference { labels: vec![l], ..Reference::default() });
    let eval = metric.prepare(&preds, &refs).expect("prepare");
    let full = metric.compute(&eval, None).expect("full set");
    assert!((full[0].value - 2.0 / 3.0).abs() < 1e-12);
    let resample = metric.compute(&eval, Some(&[2, 2, 0])).expect("resample");
    assert!((resample[0].value - 1.0 / 3.0).abs() < 1e-12);
    let err = metric.compute(&eval, Some(&[3])).expect_err("out of range");
    assert!(err.to_string().contains("out of range"), "{err}");
}

#[test]
fn bytes_that_are_not_a_component_are_rejected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("junk.wasm");
    std::fs::write(&file, b"\0asm\x01\0\0\0 definitely not a component").expect("write");
    let err = host().check(&PluginSource::from_file(&file).expect("readable"), None, None).expect_err("junk");
    assert!(matches!(err, PluginError::Compile { .. }) && err.to_string().contains("junk"), "{err}");
}
