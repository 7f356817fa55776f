//! CUDA kernel benchmarks (criterion): fused attention at ViT and decoder shapes and fused LoRA,
//! each next to its unfused cuBLAS path, timed with CUDA events. Prints a skip line and exits
//! where no GPU can start. `mvb bench kernels` prints the same comparisons as one table with
//! TFLOP/s, GB/s and the dense GEMM rate.

use std::time::Duration;

use criterion::Criterion;
use mvb::backend::cuda::attention::{self as attn, AttnArgs, Layout};
use mvb::backend::cuda::lora::{self, LoraArgs, LoraShape, Segments};
use mvb::backend::cuda::{DType, Gpu, GpuBuf, bench};

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
        let (nq, nkv) = (s.batch * s.heads * s.q_len * s.head_dim, s.batch * s.heads * s.kv_len * s.head_dim);
        let buf = |n: usize| GpuBuf::from_host(gpu, dt, &vec![0.01; n]).expect("alloc");
        let (q, k, v, o) = (buf(nq), buf(nkv), buf(nkv), buf(nq));
        let (lq, lkv) =
            (Layout::head_major(s.heads, s.q_len, s.head_dim), Layout::head_major(s.heads, s.kv_len, s.head_dim));
        let args = AttnArgs {
            q: q.ptr(gpu),
            k: k.ptr(gpu),
            v: v.ptr(gpu),
            o: o.ptr(gpu),
            layouts: [lq, lkv, lkv, lq],
            key_mask: 0,
            shape: s,
            scale: None,
        };
        let scratch = attn::UnfusedScratch::new(gpu, dt, &s).expect("scratch");
        let mut group = criterion.benchmark_group(format!(
            "attention/{}/b{}h{}d{}/seq{}",
            if s.causal { "causal" } else { "encoder" },
            s.batch,
            s.heads,
            s.head_dim,
            s.q_len
        ));
        group.bench_function("fused", |b| {
            b.iter_custom(|n| events(n, &mut || attn::attention(gpu, dt, &args, None).expect("fused")))
        });
        let ptrs = (args.q, args.k, args.v, args.o);
        group.bench_function("unfused", |b| {
            b.iter_custom(|n| events(n, &mut || attn::attention_unfused(gpu, dt, ptrs, &s, &scratch).expect("unfused")))
        });
        group.finish();
    }
    for (tokens, d, rank, adapters) in bench::lora_shapes(true) {
        let shape = LoraShape { d_in: d, d_out: d, rank, adapters };
        let buf = |n: usize| GpuBuf::from_host(gpu, dt, &vec![0.01; n]).expect("alloc");
        let (x, w, a, b, y, t, delta) = (
            buf(tokens * d),
            buf(d * d),
            buf(adapters * rank * d),
            buf(adapters * d * rank),
            buf(tokens * d),
            buf(tokens * rank),
            buf(tokens * d),
        );
        let starts: Vec<usize> = (0..=adapters).map(|i| i * tokens / adapters).collect();
        let ids: Vec<i32> = (0..adapters as i32).collect();
        let segs = Segments::new(gpu, &starts, &ids).expect("segments");
        let args = LoraArgs {
            x: x.ptr(gpu),
            w: w.ptr(gpu),
            a: a.ptr(gpu),
            b: b.ptr(gpu),
            y: y.ptr(gpu),
            t: t.ptr(gpu),
            scale: 2.0,
        };
        let mut group = criterion.benchmark_group(format!("lora/tokens{tokens}/d{d}/r{rank}/adapters{adapters}"));
        group.bench_function("fused", |bn| {
            bn.iter_custom(|n| events(n, &mut || lora::lora_fused(gpu, dt, &args, &shape, &segs, None).expect("fused")))
        });
        let dp = delta.ptr(gpu);
        group.bench_function("unfused", |bn| {
            bn.iter_custom(|n| {
                events(n, &mut || lora::lora_unfused(gpu, dt, &args, dp, &shape, &segs).expect("unfused"))
            })
        });
        group.finish();
    }
    criterion.final_summary();
}
