//! `mvb bench kernels`: the CUDA kernels next to their unfused cuBLAS paths and the device's
//! dense bf16 GEMM rate, and end-to-end ViT-B/16 encoding (`mvb::backend::cuda::bench`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use mvb::backend::cuda::{Gpu, bench};

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
    let table = bench::run_suite(&gpu, args.quick, |line| println!("{line}"))?;
    if let Some(path) = &args.out {
        std::fs::write(path, &table).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
