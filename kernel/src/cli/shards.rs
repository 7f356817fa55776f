//! `mvb shards`: the scripts that run a benchmark as shards on a cluster scheduler, rendered for
//! one config from the templates in `docs/cluster/` (a Slurm job array with a merge job, a
//! Kubernetes Indexed Job).

use std::path::PathBuf;

use clap::Args;

/// The Slurm template.
const SLURM: &str = include_str!("../../../docs/cluster/mvb-array.sbatch");
/// The Kubernetes template.
const K8S: &str = include_str!("../../../docs/cluster/mvb-indexed-job.yaml");

#[derive(Debug, Args)]
pub(crate) struct ShardsArgs {
    /// The benchmark configuration (TOML) every shard runs.
    config: PathBuf,
    /// How many shards.
    #[arg(long)]
    shards: usize,
    /// The output folder shared by the shards (each writes `OUT/shard-I-of-N`).
    #[arg(long)]
    out: PathBuf,
    /// Print the Slurm job-array script.
    #[arg(long, conflicts_with = "k8s", required_unless_present = "k8s")]
    slurm: bool,
    /// Print the Kubernetes Indexed Job manifest.
    #[arg(long)]
    k8s: bool,
}

/// The template filled in for `config`, `shards` and `out`.
pub(crate) fn render(template: &str, config: &str, shards: usize, out: &str) -> String {
    template
        .replace("{{CONFIG}}", config)
        .replace("{{OUT}}", out)
        .replace("{{LAST}}", &shards.saturating_sub(1).to_string())
        .replace("{{SHARDS}}", &shards.to_string())
}

pub(crate) fn run(args: &ShardsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.shards >= 1, "--shards must be at least 1");
    let config = std::path::absolute(&args.config)?;
    anyhow::ensure!(config.is_file(), "{}: no such config file", config.display());
    let out = std::path::absolute(&args.out)?;
    let template = if args.slurm { SLURM } else { K8S };
    print!("{}", render(template, &config.display().to_string(), args.shards, &out.display().to_string()));
    Ok(())
}
