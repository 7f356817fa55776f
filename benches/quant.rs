//! Quantised CPU matrix products (`backend::cpu::quant::linear`, criterion): `x[m×cols] · Wᵀ`
//! for each ggml type at SmolLM2-135M's shapes (576 → 1536 and 1536 → 576), at m = 1 (batch-1
//! decode), 16 (batch-16 decode) and 128 (prefill), on the rayon threads (the K-quants at 1536
//! columns only: their rows are whole 256-element super-blocks). Prints GMAC/s.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use mvb::backend::cpu::quant::{GgmlType, QMatrix, linear};

/// A matrix of `ty` with random quants and unit-size block scales (f16 1.0 = 0x3C00).
fn random_matrix(ty: GgmlType, rows: usize, cols: usize, seed: &mut u64) -> QMatrix {
    let bytes = ty.matrix_bytes(rows, cols).expect("shape");
    let mut data: Vec<u8> = (0..bytes)
        .map(|_| {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (*seed >> 56) as u8
        })
        .collect();
    // Byte offsets of the f16 scales inside one block.
    let scales: &[usize] = match ty {
        GgmlType::Q8_0 | GgmlType::Q4_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q4_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        _ => &[],
    };
    for block in data.chunks_mut(ty.block_bytes()) {
        for &at in scales {
            block[at..at + 2].copy_from_slice(&0x2C00u16.to_le_bytes()); // 1/16
        }
    }
    QMatrix::from_bytes(ty, rows, cols, data).expect("matrix")
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args().sample_size(20).warm_up_time(Duration::from_secs(1));
    let mut seed = 42u64;
    let threads = rayon::current_num_threads();
    // criterion's name filter (an argument that is neither a flag nor a flag's number) also
    // selects the GMAC/s lines.
    let filter =
        std::env::args().skip(1).find(|a| !a.starts_with('-') && a.parse::<f64>().is_err()).unwrap_or_default();
    for ty in [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K] {
        for (rows, cols) in [(1536, 576), (576, 1536)] {
            if cols % ty.block_len() != 0 {
                continue; // a K-quant row is whole 256-element super-blocks (576 is not)
            }
            let w = random_matrix(ty, rows, cols, &mut seed);
            for m in [1usize, 4, 8, 12, 16, 128] {
                let name = format!("quant/{ty:?}/{cols}x{rows}/m{m}/cpu");
                if !name.contains(&filter) {
                    continue;
                }
                let x: Vec<f32> = (0..m * cols).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
                let mut out = vec![0f32; m * rows];
                let macs = (m * rows * cols) as u64;
                // A plain-timer figure first, for the GMAC/s line.
                let start = Instant::now();
                let reps = (2_000_000_000 / macs).clamp(3, 2000);
                for _ in 0..reps {
                    linear(&x, m, &w, &mut out).expect("linear");
                }
                let rate = macs as f64 * reps as f64 / start.elapsed().as_secs_f64() / 1e9;
                println!("quant {ty:?} {cols}->{rows} m{m} cpu threads {threads}: {rate:.1} GMAC/s");
                let mut group = criterion.benchmark_group(name);
                group.throughput(Throughput::Elements(macs));
                group.bench_function("linear", |b| b.iter(|| linear(&x, m, &w, &mut out).expect("linear")));
                group.finish();
            }
        }
    }
}
