//! LLaVA-1.5 against transformers' `LlavaForConditionalGeneration` and `LlavaProcessor` on the
//! tiny fixture (`tests/fixtures/decoder/tiny-llava`, legacy key layout, made by
//! `tools/make_decoder_fixtures.py`): the processor's pixels, the projected image features, the
//! chat prompt and its expanded ids, logits at every position within 1e-4 (f32), 32 greedy
//! tokens, and the left-padded batch; on the CPU, and on the GPU when one starts (f32 at the same
//! bounds, bf16 logits within 5e-2, as the CPU's bf16 path is held to).

use mvb::backend::{Device, Precision};
use mvb::data::load_file;
use mvb::model::generate::{self, Continue, Prompt};
use mvb::model::llava::Llava;

use crate::common::root;
use crate::decoder::{fixtures, floats, greedy, ids, reference, rel_error};

fn check_on(device: &Device, logit_bound: f64, exact_tokens: bool) {
    let tag = device.tag();
    let model = Llava::load_dir(&fixtures().join("tiny-llava"), device).expect("loads");
    let r = reference("tiny-llava");
    let image = load_file(&root().join(r["image"]["file"].as_str().expect("image file"))).expect("image");
    let pixels = model.preprocess(&image).expect("preprocesses");
    let err = rel_error(&pixels, &floats(&r["pixel_values"]));
    assert!(err <= 1e-5, "{tag}: pixel values differ by {err:e}");
    let features = model.image_features(&pixels, 1).expect("features").into_tensor(device).expect("download");
    let err = rel_error(features.data(), &floats(&r["image_features"]));
    eprintln!("llava {tag}: image features relative error {err:e}");
    assert!(err <= logit_bound, "{tag}: image features differ by {err:e}");

    let chat = model.lm.chat.as_ref().expect("a chat template");
    let mut texts = Vec::new();
    for (i, p) in r["prompts"].as_array().expect("prompts").iter().enumerate() {
        let text = chat.render_json(&p["messages"], true).expect("renders");
        assert_eq!(text, p["prompt"].as_str().expect("prompt"), "prompt {i}: chat template");
        assert_eq!(model.input_ids(&text).expect("ids"), ids(&p["input_ids"]), "prompt {i}: expanded ids");
        let prompt =
            model.prompts(std::slice::from_ref(&text), std::slice::from_ref(&image)).expect("prompt").remove(0);
        assert_eq!(
            prompt.splice.as_ref().map(|s| s.0.clone()),
            Some(ids(&p["image_token_positions"]).iter().map(|&i| i as usize).collect())
        );
        let logits = generate::prompt_logits(&model.lm.model, device, &prompt).expect("logits");
        let err = rel_error(logits.data(), &floats(&p["logits"]));
        eprintln!("llava {tag} prompt {i}: logits relative error {err:e} (bound {logit_bound:e})");
        assert!(err <= logit_bound, "{tag} prompt {i}: logits differ by {err:e}");
        let got = generate::generate(&model.lm.model, device, &[prompt], &greedy(32), |_, _| Continue::Yes)
            .expect("generates")
            .remove(0)
            .ids;
        let want = ids(&p["greedy"]["new_ids"]);
        if exact_tokens {
            assert_eq!(got, want, "{tag} prompt {i}: greedy tokens");
        }
        texts.push(text);
    }
    let images = vec![image; texts.len()];
    let prompts: Vec<Prompt> = model.prompts(&texts, &images).expect("prompts");
    let batched =
        generate::generate(&model.lm.model, device, &prompts, &greedy(32), |_, _| Continue::Yes).expect("batch");
    if exact_tokens {
        for (b, want) in batched.iter().zip(r["batch"]["new_ids"].as_array().expect("batch ids")) {
            assert_eq!(b.ids, ids(want), "{tag}: batched greedy differs from transformers' batch");
        }
    }
}

#[test]
fn llava_matches_transformers() {
    check_on(&Device::cpu(), 1e-4, true);
}

#[test]
fn llava_matches_transformers_on_cuda() {
    let Ok(f32) = Device::cuda(Precision::F32).map_err(|e| eprintln!("SKIP cuda llava: {e}")) else { return };
    check_on(&f32, 1e-4, true);
    check_on(&Device::cuda(Precision::Bf16).expect("the GPU started once"), 5e-2, false);
}

#[test]
fn a_prompt_without_its_image_is_refused() {
    let model = Llava::load_dir(&fixtures().join("tiny-llava"), &Device::cpu()).expect("loads");
    let image = load_file(&fixtures().join("images/test-40x30.png")).expect("image");
    let err = model.prompts(&["USER: no image here ASSISTANT:".into()], &[image]).expect_err("refused").to_string();
    assert!(err.contains("<image>"), "{err}");
}

#[test]
fn a_llava_config_that_disagrees_with_its_tower_is_named() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = fixtures().join("tiny-llava");
    for entry in std::fs::read_dir(&src).expect("fixture") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).expect("copy");
    }
    let config = std::fs::read_to_string(tmp.path().join("config.json")).expect("config");
    std::fs::write(
        tmp.path().join("config.json"),
        config.replace("\"image_seq_length\": 16", "\"image_seq_length\": 17"),
    )
    .expect("write");
    let err = Llava::load_dir(tmp.path(), &Device::cpu()).expect_err("refused").to_string();
    assert!(err.contains("image_seq_length 17") && err.contains("config.json"), "{err}");
}
