//! `mvb bench kernels`: the CUDA kernels next to their unfused cuBLAS paths and the device's
//! dense bf16 GEMM rate, and end-to-end ViT-B/16 encoding (`mvb::backend::cuda::bench`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use mvb::backend::cuda::{CudaError, Gpu, bench};
use mvb::backend::{Device, Precision};
use mvb::model::synthetic::{VitShape, write_random_clip};
use mvb::model::{Config, Weights, clip::Clip};

#[derive(Debug, Args)]
pub(crate) struct KernelsArgs {
    /// A few shapes only (a smoke run).
    #[arg(long)]
    quick: bool,
    /// Also write the Markdown table to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) fn kernels(args: &KernelsArgs) -> anyhow::Result<()> {
    let gpu = match Gpu::get() {
        Ok(gpu) => gpu,
        Err(e) => {
            eprintln!("mvb: CUDA unavailable ({e}); no kernel benchmarks on this machine");
            return Ok(());
        }
    };
    let mut table = bench::run_suite(&gpu, args.quick, |line| println!("{line}"))?;
    let ips = vit_b16_images_per_s(&gpu, Precision::Bf16, 256, if args.quick { 3 } else { 10 })?;
    let text = format!("\nViT-B/16 image encoding, bf16, batch 256, end to end from host pixels: {ips:.0} images/s\n");
    println!("{}", text.trim());
    table.push_str(&text);
    if let Some(path) = &args.out {
        std::fs::write(path, &table).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// End-to-end ViT-B/16 image encoding (random CLIP weights, 224 px, `precision`): images per second,
/// pixels uploaded from the host each batch, features left on the device.
/// The model is the same `model::clip` the CPU runs (one definition for every device).
fn vit_b16_images_per_s(gpu: &Gpu, precision: Precision, batch: usize, iters: usize) -> Result<f64, CudaError> {
    let device = Device::cuda(precision)?;
    let dir = std::env::temp_dir().join(format!("mvb-gpu-bench-b16-{}", std::process::id()));
    let io = |e: &dyn std::fmt::Display| CudaError::Shape(format!("random ViT-B/16 checkpoint: {e}"));
    write_random_clip(&dir, VitShape::B16, true).map_err(|e| io(&e))?;
    let model = Weights::open(&dir).and_then(|w| Clip::load(&w, &device, &Config::open(&dir)?));
    let _ = std::fs::remove_dir_all(&dir);
    let model = model.map_err(|e| io(&e))?;
    let pixels = bench::pattern(batch * 3 * 224 * 224, 10);
    let ms = bench::time_ms(gpu, 2, iters, || {
        model.image_features(&device, &pixels, batch).map(drop).map_err(|e| CudaError::Shape(e.to_string()))
    })?;
    Ok(batch as f64 / (ms * 1e-3))
}
