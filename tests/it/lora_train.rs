//! FT-LoRA against PyTorch + PEFT on the tiny fixtures (`tools/make_lora_reference.py`, stored
//! in `tests/fixtures/lora/`): the loss and the gradient of every LoRA weight and of the head on
//! one batch (dropout off), a 20-step AdamW run (loss per step, final weights), and PEFT adapters
//! both ways (PEFT-written loaded by mvb; mvb-written loaded by PEFT, its features stored by the
//! script). Errors are relative to the largest magnitude of the reference tensor. The gradient
//! and training checks run on the CPU, then on CUDA in f32 when a GPU starts (else a
//! `SKIP cuda <check>` line), held to the same bounds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mvb::backend::{Device, Precision};
use mvb::model::ContrastiveModel;
use mvb::train::lora::{Adapter, LoraShape};
use mvb::train::{Head, LoraConfig, Trainer, peft, targets};

use crate::common::{Dev, on_each_device, root};

const FAMILIES: [&str; 2] = ["clip", "siglip"];

fn dir(family: &str) -> PathBuf {
    root().join("tests/fixtures/lora").join(family)
}

fn model(family: &str) -> ContrastiveModel {
    model_on(family, &Device::cpu())
}

fn model_on(family: &str, device: &Device) -> ContrastiveModel {
    let spec = root().join(format!("tests/fixtures/tiny-{family}"));
    ContrastiveModel::load_on(spec.to_str().expect("utf-8"), device).expect("loads")
}

/// Runs `check` on the CPU, then on the GPU in f32 when one starts.
fn each_device(name: &str, check: impl Fn(&Device)) {
    on_each_device(name, |dev| match dev {
        Dev::Cpu => check(&Device::cpu()),
        Dev::Cuda(_) => check(&Device::cuda(Precision::F32).expect("the GPU started once")),
    });
}

/// The reference tensors of `family`, as f32.
fn reference(family: &str) -> HashMap<String, Vec<f32>> {
    let bytes = std::fs::read(dir(family).join("reference.safetensors")).expect("reference present");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            assert_eq!(v.dtype(), safetensors::Dtype::F32, "{name}");
            (name, v.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        })
        .collect()
}

/// `max |got − want| / max |want|`.
fn rel(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    got.iter().zip(want).fold(0f32, |m, (g, w)| m.max((g - w).abs())) / scale
}

/// A trainer of `family`'s tiny model from the reference's start (the PEFT-saved initial
/// adapter, dropout off).
fn trainer<'m>(family: &str, model: &'m ContrastiveModel, r: &HashMap<String, Vec<f32>>, lr: f64) -> Trainer<'m> {
    let mut adapter = peft::load(&dir(family).join("init_adapter")).expect("PEFT adapter loads");
    adapter.shape.dropout = 0.0;
    let bias = r["head.bias"].clone();
    let head = Head { classes: 2, dim: r["head.weight"].len() / 2, weight: r["head.weight"].clone(), bias };
    let config = LoraConfig { lr, weight_decay: 0.0, ..LoraConfig::default() };
    Trainer::new(model, adapter, head, r["class_weights"].clone(), config).expect("trainer")
}

fn batch(r: &HashMap<String, Vec<f32>>, rows: &[usize]) -> (Vec<f32>, Vec<u32>) {
    let per = r["pixels"].len() / r["labels"].len();
    let px = rows.iter().flat_map(|&i| r["pixels"][i * per..(i + 1) * per].iter().copied()).collect();
    (px, rows.iter().map(|&i| r["labels"][i] as u32).collect())
}

#[test]
fn gradients_match_torch_autograd() {
    each_device("lora gradients", gradients_match_on);
}

fn gradients_match_on(device: &Device) {
    let tag = device.tag();
    for family in FAMILIES {
        let (m, r) = (model_on(family, device), reference(family));
        let mut t = trainer(family, &m, &r, 1e-3);
        let (px, ys) = batch(&r, &(0..8).collect::<Vec<_>>());
        let g = t.gradients(&px, &ys, false).unwrap_or_else(|e| panic!("{tag} {family}: {e}"));
        let mut worst = rel(&[g.loss], &r["loss"]);
        worst = worst.max(rel(&g.head_weight, &r["grad/head.weight"])).max(rel(&g.head_bias, &r["grad/head.bias"]));
        let mut checked = 0;
        for (target, (da, db)) in &g.lora {
            for (which, got) in [("A", da), ("B", db)] {
                let name = format!("grad/{}", peft::key(*target, which));
                let want = r.get(&name).unwrap_or_else(|| panic!("{family}: torch has no {name}"));
                let e = rel(got, want);
                assert!(e < 1e-5, "{tag} {family} {name}: relative error {e}");
                worst = worst.max(e);
                checked += 1;
            }
        }
        let in_torch = r.keys().filter(|k| k.starts_with("grad/base_model")).count();
        assert_eq!(checked, in_torch, "{tag} {family}: every LoRA gradient torch has");
        assert!(worst < 1e-5, "{tag} {family}: worst relative error {worst}");
        println!("{tag} {family}: {checked} LoRA gradients + head, max relative error {worst:.2e}");
    }
}

#[test]
fn twenty_adamw_steps_match_peft() {
    each_device("lora 20 steps", twenty_steps_on);
}

fn twenty_steps_on(device: &Device) {
    let tag = device.tag();
    for family in FAMILIES {
        let (m, r) = (model_on(family, device), reference(family));
        let mut t = trainer(family, &m, &r, 1e-3);
        let mut worst_loss = 0f32;
        for (step, rows) in r["order"].chunks(8).enumerate() {
            let rows: Vec<usize> = rows.iter().map(|&v| v as usize).collect();
            let (px, ys) = batch(&r, &rows);
            let loss = t.step(&px, &ys).unwrap_or_else(|e| panic!("{tag} {family} step {step}: {e}"));
            let want = r["losses"][step];
            assert!((loss - want).abs() < 1e-5, "{tag} {family} step {step}: loss {loss} vs torch {want}");
            worst_loss = worst_loss.max((loss - want).abs());
        }
        let mut worst = rel(&t.head.weight, &r["final/head.weight"]).max(rel(&t.head.bias, &r["final/head.bias"]));
        for (target, pair) in &t.adapter.pairs {
            for (which, got) in [("A", &pair.a), ("B", &pair.b)] {
                let want = &r[&format!("final/{}", peft::key(*target, which))];
                let abs = got.iter().zip(want).fold(0f32, |m, (g, w)| m.max((g - w).abs()));
                assert!(abs < 1e-4, "{tag} {family} {target:?} {which}: {abs}");
                worst = worst.max(abs);
            }
        }
        println!("{tag} {family}: 20 steps, max loss difference {worst_loss:.2e}, max weight difference {worst:.2e}");
    }
}

/// Image features of the first 8 reference images with `adapter` attached.
fn features_with(family: &str, adapter: &Adapter, merge: bool, r: &HashMap<String, Vec<f32>>) -> Vec<f32> {
    let mut m = model(family);
    peft::attach(&mut m, adapter, merge).expect("attaches");
    let (px, _) = batch(r, &(0..8).collect::<Vec<_>>());
    m.image_features_from_pixels(&px, 8).expect("features").into_data()
}

#[test]
fn peft_trained_adapter_loads_and_gives_peft_features() {
    for family in FAMILIES {
        let r = reference(family);
        let adapter = peft::load(&dir(family).join("peft_adapter")).expect("PEFT adapter loads");
        for merge in [false, true] {
            let e = rel(&features_with(family, &adapter, merge, &r), &r["peft_features"]);
            assert!(e < 1e-4, "{family} merge={merge}: relative error {e}");
        }
    }
}

/// A deterministic adapter with non-zero `B`s.
fn mvb_adapter(m: &ContrastiveModel) -> Adapter {
    let mut a = Adapter::init(LoraShape::default(), &targets(m), 7);
    for (k, pair) in a.pairs.values_mut().enumerate() {
        pair.b.iter_mut().enumerate().for_each(|(i, v)| *v = (((i * 37 + k * 11) % 101) as f32 - 50.0) / 2000.0);
        if pair.a.iter().all(|&v| v == 0.0) {
            pair.a.iter_mut().enumerate().for_each(|(i, v)| *v = (((i * 13) % 29) as f32 - 14.0) / 500.0);
        }
    }
    a
}

fn same_adapter_files(a: &Path, b: &Path) {
    let (x, y) = (peft::load(a).expect("loads"), peft::load(b).expect("loads"));
    assert_eq!(x, y, "{} and {} differ", a.display(), b.display());
}

#[test]
fn mvb_written_adapter_loads_in_peft() {
    for family in FAMILIES {
        let (m, r) = (model(family), reference(family));
        let adapter = mvb_adapter(&m);
        let tmp = tempfile::tempdir().expect("temp dir");
        peft::save(&adapter, tmp.path(), family).expect("saves");
        assert_eq!(peft::load(tmp.path()).expect("reads back"), adapter);
        let fixture = dir(family).join("mvb_adapter");
        if std::env::var_os("MVB_BLESS").is_some() {
            peft::save(&adapter, &fixture, family).expect("blesses");
        }
        same_adapter_files(tmp.path(), &fixture);
        let want = r.get("mvb_features").expect("run tools/make_lora_reference.py after MVB_BLESS=1");
        for merge in [false, true] {
            let e = rel(&features_with(family, &adapter, merge, &r), want);
            assert!(e < 1e-4, "{family} merge={merge}: relative error {e}");
        }
    }
}

/// One FT-LoRA step (forward, backward, AdamW; batch 8, f32, CPU) on the tiny fixture and on a
/// random-weight ViT-B/16 CLIP. Timing only: `cargo test --test it lora_step_time -- --ignored
/// --nocapture`.
#[test]
#[ignore = "timing"]
fn lora_step_time() {
    use mvb::model::synthetic::{VitShape, write_random_clip};
    let tmp = tempfile::tempdir().expect("temp dir");
    let b16 = tmp.path().join("vit-b16");
    write_random_clip(&b16, VitShape::B16, false).expect("random checkpoint");
    for f in [
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "merges.txt",
        "special_tokens_map.json",
    ] {
        std::fs::copy(root().join("tests/fixtures/tiny-clip").join(f), b16.join(f)).expect("copy");
    }
    for (name, spec) in [("tiny-clip", root().join("tests/fixtures/tiny-clip")), ("vit-b16", b16)] {
        let m = ContrastiveModel::load(spec.to_str().expect("utf-8")).expect("loads");
        let side = m.image_size();
        let adapter = Adapter::init(LoraShape::default(), &targets(&m), 1);
        let dim = m.image_features_from_pixels(&vec![0.0; 3 * side * side], 1).expect("features").cols();
        let head = Head { classes: 2, dim, weight: vec![0.01; 2 * dim], bias: vec![0.0; 2] };
        let mut t = Trainer::new(&m, adapter, head, vec![1.0, 1.0], LoraConfig::default()).expect("trainer");
        let px: Vec<f32> = (0..8 * 3 * side * side).map(|i| ((i * 7919) % 255) as f32 / 127.0 - 1.0).collect();
        let ys = [0, 1, 0, 1, 1, 0, 1, 0];
        t.step(&px, &ys).expect("warm-up step");
        let start = std::time::Instant::now();
        let steps = 3;
        for _ in 0..steps {
            t.step(&px, &ys).expect("step");
        }
        let s = start.elapsed().as_secs_f64() / f64::from(steps);
        println!(
            "{name}: one FT-LoRA step (batch 8, cpu f32, {} threads): {:.3} s, {:.1} samples/s",
            rayon::current_num_threads(),
            s,
            8.0 / s
        );
    }
}
