//! The call arena as a program's global allocator, used the way a dataset plugin uses it: a
//! batch of samples (ids, byte buffers, label lists) built inside a batch scope and freed after
//! it, as the canonical ABI's post-return does. Runs under Miri:
//! `cargo +nightly miri test -p mvb-plugin-medmnist` in `plugins/`.
//!
//! `harness = false`: this program runs on its main thread only, as `SingleThreaded` requires.

#[allow(dead_code)] // the module's unit tests come along (cfg(test)) but run in the lib's harness
#[path = "../src/arena.rs"]
mod arena;

use arena::SingleThreaded;

#[global_allocator]
// SAFETY: this program never starts a thread (no test harness; see the module documentation).
static GLOBAL: SingleThreaded = unsafe { SingleThreaded::new() };

/// What a sample keeps on the heap.
struct Sample {
    id: String,
    pixels: Vec<u8>,
    labels: Vec<u32>,
}

const SIDE: usize = 12;

/// A batch as `samples` builds it: everything allocated inside the batch scope.
fn samples(pixels: &[u8], start: usize, count: usize) -> Vec<Sample> {
    let _batch = GLOBAL.batch();
    (start..start + count)
        .map(|i| Sample {
            id: format!("train-{i}"),
            pixels: pixels[i * SIDE * SIDE..(i + 1) * SIDE * SIDE].to_vec(),
            labels: vec![i as u32 % 3],
        })
        .collect()
}

fn check(batch: &[Sample], start: usize) {
    for (k, s) in batch.iter().enumerate() {
        let i = start + k;
        assert_eq!(s.id, format!("train-{i}"));
        assert!(s.pixels.iter().all(|&p| p == i as u8), "sample {i}'s pixels were overwritten");
        assert_eq!(s.labels, [i as u32 % 3]);
    }
}

fn main() {
    let n = 40;
    let pixels: Vec<u8> = (0..n * SIDE * SIDE).map(|j| (j / (SIDE * SIDE)) as u8).collect();
    // The host's usual order: each batch is freed (post-return) before the next call.
    for start in [0, 8, 16, 0, 24, 8] {
        let batch = samples(&pixels, start, 8);
        check(&batch, start);
        drop(batch);
    }
    // A batch kept past the next ones (an allocation that outlives its call) stays intact.
    let kept = samples(&pixels, 32, 8);
    for start in [0, 8, 16] {
        let batch = samples(&pixels, start, 8);
        check(&kept, 32);
        check(&batch, start);
    }
    // Growing a batch's collections after the scope ends moves them to the system allocator.
    let mut grown = samples(&pixels, 0, 4);
    grown.extend(samples(&pixels, 4, 4));
    grown.iter_mut().for_each(|s| s.labels.extend([7, 8, 9]));
    check(&kept, 32);
    assert_eq!(grown[5].labels, [2, 7, 8, 9]);
    println!("arena: ok");
}
