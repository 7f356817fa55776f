//! CPU image-encoder throughput: CLIP ViT-B/32 and ViT-B/16 image towers with random weights,
//! batch 16: f32 compute (weights stored f32, or bf16 upcast on load), and bf16 products with
//! f32 accumulation. Run with
//! `cargo bench --bench encoder`; `tools/bench_vs_torch.py` puts the same figure next to
//! PyTorch in one run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use mvb::backend::cpu::bf16_native;
use mvb::backend::{Device, Precision};
use mvb::model::synthetic::{VitShape, write_random_clip};
use mvb::model::{Config, Weights, clip::Clip};

const BATCH: usize = 16;

// The allocator of the `mvb` binary, so that the figures are the ones users get.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut criterion = Criterion::default().configure_from_args().sample_size(10).warm_up_time(Duration::from_secs(2));
    let tmp = tempfile::tempdir().expect("temp dir");
    for (name, shape) in [("vit-b32", VitShape::B32), ("vit-b16", VitShape::B16)] {
        let cases = [
            (false, Precision::F32, "cpu-f32"),
            (true, Precision::F32, "cpu-bf16-weights-f32-compute"),
            (
                true,
                Precision::Bf16,
                if bf16_native() { "cpu-bf16-compute-avx512bf16" } else { "cpu-bf16-compute-emulated" },
            ),
        ];
        for (bf16, precision, label) in cases {
            let dir = tmp.path().join(format!("{name}-{label}"));
            write_random_clip(&dir, shape, bf16).expect("random checkpoint");
            let device = Device::cpu_with(precision).expect("a CPU precision");
            let weights = Weights::open(&dir).expect("weights");
            let model = Clip::load(&weights, &device, &Config::open(&dir).expect("config")).expect("model");
            let pixels: Vec<f32> =
                (0..BATCH * 3 * 224 * 224).map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0).collect();
            let mut group = criterion.benchmark_group(format!("clip_vision/{name}/batch{BATCH}"));
            group.throughput(Throughput::Elements(BATCH as u64));
            group.measurement_time(Duration::from_secs(if shape.patch == 16 { 40 } else { 15 }));
            group.bench_function(label, |b| b.iter(|| black_box(model.image_features(&device, &pixels, BATCH))));
            group.finish();
        }
    }
    criterion.final_summary();
}
