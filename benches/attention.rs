//! CPU decode attention (`backend::cpu::attention`, criterion): one decoding step of
//! SmolLM2-135M's attention at batch 16 (9 query heads over 3 key/value heads of 64, 256 cached
//! positions, f16 keys and values), over 30 layers' caches so that they stream from memory as in
//! a real step (about 94 MB), with the cache head-major (`Device::kv_cache` on the CPU: each
//! head's positions in one run) and position-major (`[batch, capacity, heads·64]`, the GPU's).

use std::time::Duration;

use criterion::{Criterion, Throughput};
use half::f16;
use mvb::backend::cpu::{AttentionMask, Operand, attention};

const BATCH: usize = 16;
const HEADS: usize = 9;
const KV_HEADS: usize = 3;
const DIM: usize = 64;
const LEN: usize = 256;
const CAPACITY: usize = 384;
const LAYERS: usize = 30;

/// The key or value operand of one layer's cache in either layout.
fn operand(data: &[f16], head_major: bool) -> Operand<'_, f16> {
    let (row_stride, head_stride) = if head_major { (DIM, CAPACITY * DIM) } else { (KV_HEADS * DIM, DIM) };
    let batch_stride = KV_HEADS * CAPACITY * DIM;
    Operand { data, offset: 0, row_stride, head_stride, batch_stride, heads: KV_HEADS, len: LEN }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args().sample_size(20).warm_up_time(Duration::from_secs(1));
    let mut seed = 7u64;
    let mut cache = || -> Vec<f16> {
        (0..BATCH * KV_HEADS * CAPACITY * DIM)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                f16::from_f32((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            })
            .collect()
    };
    let layers: Vec<[Vec<f16>; 2]> = (0..LAYERS).map(|_| [cache(), cache()]).collect();
    let q: Vec<f32> = (0..BATCH * HEADS * DIM).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    let keys = vec![1u32; BATCH * LEN];
    let mask = AttentionMask { causal: true, keys: Some(&keys) };
    let width = HEADS * DIM;
    let qo = Operand {
        data: &q[..],
        offset: 0,
        row_stride: width,
        head_stride: DIM,
        batch_stride: width,
        heads: HEADS,
        len: 1,
    };
    let threads = rayon::current_num_threads();
    let mut group = criterion.benchmark_group("attention");
    // Bytes of keys and values read per step.
    group.throughput(Throughput::Bytes((LAYERS * 2 * BATCH * KV_HEADS * LEN * DIM * 2) as u64));
    for (layout, head_major) in [("head-major", true), ("position-major", false)] {
        let name = format!("decode/b{BATCH}h{HEADS}kv{KV_HEADS}d{DIM}/len{LEN}/x{LAYERS}/{layout}/f16/cpu{threads}");
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut sink = 0f32;
                for [k, v] in &layers {
                    let out = attention(qo, operand(k, head_major), operand(v, head_major), BATCH, DIM, mask);
                    sink += out[0];
                }
                sink
            })
        });
    }
    group.finish();
    criterion.final_summary();
}
