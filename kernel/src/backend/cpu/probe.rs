//! The machine's measured f32 FMA peak: independent fused multiply-add chains in every rayon
//! thread, widest vectors the CPU has (AVX-512, AVX2+FMA, else scalar), so that benchmarks can
//! state their GFLOP/s as a fraction of what this CPU can do (as STREAM does for bandwidth).

use std::time::Instant;

use rayon::prelude::*;

/// Independent accumulators per thread: enough to cover the FMA latency on two ports.
const CHAINS: usize = 12;

/// Measured f32 GFLOP/s of all rayon threads together (an FMA counts 2), over about `seconds`.
pub fn fma_peak_gflops(seconds: f64) -> f64 {
    let threads = rayon::current_num_threads().max(1);
    // Calibrate the iterations per thread on one short run.
    let mut iters: u64 = 1 << 20;
    loop {
        let t = Instant::now();
        std::hint::black_box(chains(iters));
        let s = t.elapsed().as_secs_f64();
        if s > 0.05 || iters > 1 << 34 {
            iters = ((iters as f64) * (seconds / threads as f64).max(0.05) / s.max(1e-9)) as u64;
            break;
        }
        iters *= 4;
    }
    let iters = iters.max(1);
    let t = Instant::now();
    let lanes: usize = (0..threads).into_par_iter().map(|_| chains(iters).1).max().unwrap_or(1);
    let s = t.elapsed().as_secs_f64();
    (threads as f64) * (iters as f64) * (CHAINS * lanes) as f64 * 2.0 / s / 1e9
}

/// Runs `iters` rounds of `CHAINS` FMAs; returns a result (to keep it) and the lanes per FMA.
fn chains(iters: u64) -> (f32, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512 F.
            return (unsafe { chains_avx512(iters) }, 16);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return (unsafe { chains_avx2(iters) }, 8);
        }
    }
    let mut acc = [1.0f32; CHAINS];
    for _ in 0..iters {
        for a in &mut acc {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    (acc.iter().sum(), 1)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chains_avx2(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let (m, c) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut acc = [_mm256_set1_ps(1.0); CHAINS];
    for _ in 0..iters {
        for a in &mut acc {
            *a = _mm256_fmadd_ps(*a, m, c);
        }
    }
    let mut out = [0f32; 8];
    let mut sum = _mm256_setzero_ps();
    for a in acc {
        sum = _mm256_add_ps(sum, a);
    }
    // SAFETY: `out` holds eight f32.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn chains_avx512(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let (m, c) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let mut acc = [_mm512_set1_ps(1.0); CHAINS];
    for _ in 0..iters {
        for a in &mut acc {
            *a = _mm512_fmadd_ps(*a, m, c);
        }
    }
    let mut sum = _mm512_setzero_ps();
    for a in acc {
        sum = _mm512_add_ps(sum, a);
    }
    _mm512_reduce_add_ps(sum)
}
