//! Command-line definitions (clap) and dispatch; one file per subcommand.

mod bench;
mod bench_kernels;
mod dataset;
mod generate;
mod judge;
pub(crate) mod notices;
mod plugin_check;
mod plugins;
mod resolve;
mod run;
mod shards;
mod zeroshot;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mvb::plugin::{HostConfig, PluginHost};

/// mvb: evaluate medical vision-language models (MedVLMBench, re-implemented).
#[derive(Debug, Parser)]
#[command(name = "mvb", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    sandbox: SandboxArgs,
    #[command(subcommand)]
    command: Command,
}

/// Bounds for every plugin instance.
#[derive(Debug, Args)]
struct SandboxArgs {
    /// Memory cap per plugin instance, in MiB.
    #[arg(long, global = true, default_value_t = 1024, value_name = "MIB")]
    plugin_memory: u64,
    /// Wall-time budget per plugin call, in seconds.
    #[arg(long, global = true, default_value_t = 60.0, value_name = "SECONDS")]
    plugin_timeout: f64,
    /// Do not cache compiled plugins on disk.
    #[arg(long, global = true)]
    no_cache: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the built-in plugins and the datasets they serve.
    Plugins,
    /// Work with plugin files.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Look at datasets.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Zero-shot classification of a dataset split with a contrastive model: accuracy and AUROC.
    Zeroshot(zeroshot::ZeroShotArgs),
    /// Write a model's image features and the labels of a dataset split to a safetensors file.
    Embed(zeroshot::EmbedArgs),
    /// Generate text with a decoder (a GGUF file or a Hugging Face folder), streamed.
    Generate(generate::GenerateArgs),
    /// Judge one answer as `mvb run` judges open VQA answers (MedVLMBench's GPT score).
    Judge(judge::JudgeArgs),
    /// Measure throughput.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run a benchmark: predictions, results with bootstrap CIs, RQ gaps, report and figures.
    Run(run::RunArgs),
    /// Recompute results, report and figures from a run folder's predictions.jsonl.
    Report(run::ReportArgs),
    /// Join the shard folders of a run (`mvb run --shard I/N`) into one run folder.
    Merge(run::MergeArgs),
    /// Print a Slurm job-array script or a Kubernetes Indexed Job that runs a config as shards.
    Shards(shards::ShardsArgs),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Image-encoder throughput on random weights at real ViT shapes.
    Encoder(bench::EncoderArgs),
    /// Decoder prefill and decode tokens/s at batch 1 and 16 (greedy, CPU).
    Decoder(bench::DecoderArgs),
    /// FT-LoRA training steps on a random CLIP image tower (samples/s).
    Lora(bench::LoraArgs),
    /// This CPU's measured f32 FMA peak (GFLOP/s over the rayon threads).
    Peak(bench::PeakArgs),
    /// CUDA kernels (fused attention, LoRA) next to their unfused cuBLAS paths, on the GPU.
    Kernels(bench_kernels::KernelsArgs),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Validate a third-party component against the mvb worlds and print what it says about itself.
    Check(plugin_check::CheckArgs),
}

#[derive(Debug, Subcommand)]
enum DatasetCommand {
    /// Print a dataset's info and some of its samples.
    Show(dataset::ShowArgs),
}

/// Parses the command line and runs it.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    notices::install(std::env::var_os("MVB_PLUGIN_DEBUG").is_some());
    let host = || make_host(&cli.sandbox);
    match &cli.command {
        Command::Plugins => plugins::run(&host()?),
        Command::Plugin(PluginCommand::Check(args)) => plugin_check::run(&host()?, args),
        Command::Dataset(DatasetCommand::Show(args)) => dataset::show(&host()?, args),
        Command::Zeroshot(args) => zeroshot::run(&host()?, args),
        Command::Embed(args) => zeroshot::embed(&host()?, args),
        Command::Generate(args) => generate::run(args),
        Command::Judge(args) => judge::run(&host()?, args),
        Command::Bench(BenchCommand::Encoder(args)) => bench::encoder(args),
        Command::Bench(BenchCommand::Decoder(args)) => bench::decoder(args),
        Command::Bench(BenchCommand::Lora(args)) => bench::lora(args),
        Command::Bench(BenchCommand::Peak(args)) => bench::peak(args),
        Command::Bench(BenchCommand::Kernels(args)) => bench_kernels::kernels(args),
        Command::Run(args) => run::run(&host()?, args),
        Command::Report(args) => run::report(&host()?, args),
        Command::Merge(args) => run::merge(&host()?, args),
        Command::Shards(args) => shards::run(args),
    }
}

fn make_host(args: &SandboxArgs) -> anyhow::Result<PluginHost> {
    let mut config = if args.no_cache { HostConfig::default() } else { HostConfig::with_default_cache() };
    if !(args.plugin_timeout.is_finite() && args.plugin_timeout > 0.0) {
        anyhow::bail!("--plugin-timeout must be a positive number of seconds");
    }
    config.limits.memory_bytes = args.plugin_memory << 20;
    config.limits.call_budget = Duration::from_secs_f64(args.plugin_timeout);
    Ok(PluginHost::new(config)?)
}
