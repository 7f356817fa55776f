//! CUDA kernel benchmarks (criterion): fused attention at ViT and decoder shapes and fused LoRA,
//! each next to its unfused cuBLAS path, timed with CUDA events. Prints a skip line and exits
//! where no GPU can start. `mvb bench kernels` prints the same comparisons as one table with
//! TFLOP/s, GB/s and the dense GEMM rate.

use std::time::Duration;

use criterion::Criterion;
use mvb::backend::cuda::attention as attn;
use mvb::backend::cuda::{DType, Gpu, bench};

fn main() {
    let gpu = match Gpu::get() {
        Ok(gpu) => gpu,
        Err(e) => {
            eprintln!("SKIP kernels bench: {e}");
            return;
        }
    };
    let gpu = &*gpu;
    let mut criterion = Criterion::default().configure_from_args().sample_size(20).warm_up_time(Duration::from_secs(1));
    let dt = DType::Bf16;
    // Time `f` with CUDA events, as criterion's custom timing.
    let events = |iters: u64, f: &mut dyn FnMut()| {
        let ms = bench::time_ms(gpu, 1, iters as usize, || {
            f();
            Ok(())
        })
        .expect("timing");
        Duration::from_secs_f64(ms * 1e-3 * iters as f64)
    };
    for s in bench::attention_shapes(false) {
        let mut inputs = bench::AttnInputs::new(gpu, dt, &s).expect("inputs");
        let mut scratch = attn::UnfusedScratch::new(gpu, dt, &s).expect("scratch");
        let mut group = criterion.benchmark_group(format!(
            "attention/{}/b{}h{}d{}/seq{}",
            if s.causal { "causal" } else { "encoder" },
            s.batch,
            s.heads,
            s.head_dim,
            s.q_len
        ));
        group
            .bench_function("fused", |b| b.iter_custom(|n| events(n, &mut || inputs.fused(gpu, None).expect("fused"))));
        group.bench_function("unfused", |b| {
            b.iter_custom(|n| events(n, &mut || inputs.unfused(gpu, &mut scratch).expect("unfused")))
        });
        group.finish();
    }
    for (tokens, d, rank, adapters) in bench::lora_shapes(true) {
        let mut inputs = bench::LoraInputs::new(gpu, dt, tokens, d, rank, adapters).expect("inputs");
        let mut group = criterion.benchmark_group(format!("lora/tokens{tokens}/d{d}/r{rank}/adapters{adapters}"));
        group.bench_function("fused", |bn| {
            bn.iter_custom(|n| events(n, &mut || inputs.fused(gpu, None).expect("fused")))
        });
        group.bench_function("unfused", |bn| {
            bn.iter_custom(|n| events(n, &mut || inputs.unfused(gpu).expect("unfused")))
        });
        group.finish();
    }
    criterion.final_summary();
}
