//! The demonstration VLMs (`data/models/demo-vlm-{generalist,specialist}`, trained by
//! `tools/train_demo_vlms.py`) against transformers, on ten VQA test samples each from the
//! `medmnist` plugin's VQA views: the plugin serves the question the reference was made from,
//! the chat prompt and its expanded ids are transformers', and mvb's greedy answers (ids and
//! text, stopping at `</s>`), one at a time and as one left-padded batch, are transformers'
//! greedy answers (`tests/fixtures/demo-vlm/reference.json`, written by the same script).

use std::collections::HashMap;

use serde_json::Value;

use mvb::backend::Device;
use mvb::data::{AnswerKind, ImageRef, Pixels, Split};
use mvb::model::llava::Llava;
use mvb::plugin::Dataset;

use crate::common::{host, medmnist, medmnist_dir, root};
use crate::decoder::{greedy, ids};

/// MedVLMBench's prompt for a question whose gold answer is yes/no (`../shared/MEDVLMBENCH.md`).
const CLOSED_PREFIX: &str = "Answer the following question about the image with yes or no. ";

fn reference() -> Value {
    let path = root().join("tests/fixtures/demo-vlm/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("reference file")).expect("reference JSON")
}

/// The test sample `id` (`test-{i}-closed` or `test-{i}-open`) of the open VQA view: its
/// MedVLMBench prompt and its image.
fn sample(ds: &mut Dataset, id: &str) -> (String, Pixels) {
    let (image, kind) = id.strip_prefix("test-").and_then(|r| r.split_once('-')).expect("a test sample id");
    let index = 2 * image.parse::<u64>().expect("an image index") + u64::from(kind == "open");
    let s = ds.samples(Split::Test, index, 1).expect("the sample").remove(0);
    assert_eq!(s.id, id, "the plugin's sample {index}");
    let qa = s.qa.expect("a question");
    let prompt = match qa.kind {
        AnswerKind::Closed => format!("{CLOSED_PREFIX}{}", qa.question),
        AnswerKind::Open => qa.question,
    };
    let Some(ImageRef::Raw(pixels)) = s.image else { panic!("{id}: raw pixels expected") };
    (prompt, pixels)
}

fn check(name: &str) {
    let r = &reference()[name];
    let model = Llava::load_dir(&root().join(r["model_dir"].as_str().expect("model_dir")), &Device::cpu())
        .expect("the demo VLM loads");
    assert_eq!(model.lm.eos, [r["eos_token_id"].as_u64().expect("eos") as u32], "{name}: end of sequence");
    let opts = greedy(r["max_new_tokens"].as_u64().expect("max_new_tokens") as usize);
    let mut datasets: HashMap<String, Dataset> = HashMap::new();
    let (mut texts, mut images, mut want) = (Vec::new(), Vec::new(), Vec::new());
    for s in r["samples"].as_array().expect("samples") {
        let (dataset, id) = (s["dataset"].as_str().expect("dataset"), s["id"].as_str().expect("id"));
        let ds = datasets.entry(dataset.to_owned()).or_insert_with(|| {
            host().dataset(&medmnist(), Some(&medmnist_dir())).expect("starts").into_dataset(dataset).expect("opens")
        });
        let (prompt, pixels) = sample(ds, id);
        assert_eq!(prompt, s["prompt"].as_str().expect("prompt"), "{name} {dataset} {id}: question");
        let text = model.prompt(&prompt, false).expect("renders");
        assert_eq!(text, s["chat"].as_str().expect("chat"), "{name} {dataset} {id}: chat template");
        assert_eq!(model.input_ids(&text).expect("ids"), ids(&s["input_ids"]), "{name} {dataset} {id}: ids");
        let (answer, generated) = model
            .generate(std::slice::from_ref(&text), std::slice::from_ref(&pixels), &opts, |_, _| {})
            .expect("generates")
            .remove(0);
        let expected = (ids(&s["new_ids"]), s["text"].as_str().expect("text").to_owned());
        eprintln!("{name} {dataset} {id}: {answer:?} (transformers {:?})", expected.1);
        assert_eq!((generated.ids, answer), expected, "{name} {dataset} {id}: greedy answer");
        texts.push(text);
        images.push(pixels);
        want.push(expected);
    }
    let batch = model.generate(&texts, &images, &opts, |_, _| {}).expect("generates a batch");
    for ((answer, generated), expected) in batch.into_iter().zip(&want) {
        assert_eq!(&(generated.ids, answer), expected, "{name}: the batch answers as one at a time");
    }
}

#[test]
fn the_demo_vlm_generalist_answers_as_transformers() {
    check("demo-vlm-generalist");
}

#[test]
fn the_demo_vlm_specialist_answers_as_transformers() {
    check("demo-vlm-specialist");
}
