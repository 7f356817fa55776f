//! `mvb run` (the benchmark: predictions, results, report, figures) and `mvb report` (results,
//! report and figures recomputed from a run folder's `predictions.jsonl`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mvb::eval::run::{
    self, BootstrapOverride, Progress, RunConfig, RunOptions, Stage, config::DEFAULT_OUT, merge, report::summary,
    shard::Shard,
};
use mvb::plugin::PluginHost;

use super::notices;

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The benchmark configuration (TOML); without it, the embedded default: the demo
    /// generalist and specialist models × the vendored MedMNIST sets × {ZS, FT-LP}.
    config: Option<PathBuf>,
    /// The output folder (default: the config's `out`, else `mvb-out`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in the output folder: skip complete units, recompute the rest.
    #[arg(long)]
    resume: bool,
    /// Start over when the output folder already holds predictions (the feature cache is kept).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Bootstrap replicates (default: the config's, else 1000).
    #[arg(long)]
    replicates: Option<usize>,
    /// Bootstrap seed (default: the config's, else 42).
    #[arg(long)]
    seed: Option<u32>,
    /// Where the models run: `cpu`, `cuda` or `auto` (default: the config's `device`, else cpu).
    /// Without a usable GPU, the CPU after a one-line notice.
    #[arg(long, value_name = "DEVICE")]
    device: Option<mvb::backend::DeviceRequest>,
    /// Arithmetic of the matrix products: f32, bf16 or f16 (GPU only) (default: the config's,
    /// else f32 on the CPU and bf16 on the GPU).
    #[arg(long, value_name = "TYPE")]
    precision: Option<mvb::backend::Precision>,
    /// Run only shard I of N (0-based; `0/4`): the units whose position in the plan is I
    /// modulo N, into `OUT/shard-I-of-N`. Default: from a Slurm job
    /// array (`SLURM_ARRAY_TASK_ID`, `_MIN`, `_COUNT`) or a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX` with `MVB_SHARDS`). `mvb merge` joins the shards.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Print the default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// The folder to write the merged run into (no predictions there yet).
    out: PathBuf,
    /// The shard folders (`mvb run --shard I/N`), every shard of the run.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// A run folder holding `predictions.jsonl`.
    dir: PathBuf,
    /// Bootstrap replicates (default: those recorded in the predictions file).
    #[arg(long)]
    replicates: Option<usize>,
    /// Bootstrap seed (default: the one recorded in the predictions file).
    #[arg(long)]
    seed: Option<u32>,
}

/// Draws the library's [`Progress`] events on one progress bar (stderr, hidden when stderr is
/// not a terminal), one stage at a time.
fn render(bar: &ProgressBar) -> impl FnMut(Progress) + '_ {
    move |event| match event {
        Progress::Begin { stage, total } => {
            let template = match stage {
                Stage::Predict => "{elapsed_precise} [{bar:30}] {pos}/{len} units  {msg}",
                Stage::Judge => "{elapsed_precise} [{bar:30}] {pos}/{len} answers judged  {msg}",
                Stage::Score => "{elapsed_precise} [{bar:30}] {pos}/{len} units scored",
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.reset();
            bar.set_length(total);
            bar.set_message("");
        }
        Progress::Status(text) => bar.set_message(notices::escape(&text)),
        Progress::Done(done) => bar.set_position(done),
        Progress::End => bar.finish_and_clear(),
        _ => {}
    }
}

/// Prints the summary and the files written; a closed stdout (`| head`) is not an error.
fn print_summary(results: &run::Results, dir: &std::path::Path, files: &[String]) {
    let text = format!("{}\nwrote {}/{{{}}}\n", summary(results), dir.display(), files.join(", "));
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

pub(crate) fn run(host: &PluginHost, args: &RunArgs) -> anyhow::Result<()> {
    if args.print_default_config {
        let _ = std::io::stdout().lock().write_all(run::config::DEFAULT_CONFIG.as_bytes());
        return Ok(());
    }
    let mut config = match &args.config {
        Some(path) => RunConfig::load(path)?,
        None => RunConfig::default_config()?,
    };
    if let Some(r) = args.replicates {
        anyhow::ensure!(r > 0, "--replicates must be at least 1");
        config.bootstrap.replicates = r;
    }
    if let Some(s) = args.seed {
        config.bootstrap.seed = s;
    }
    if let Some(d) = args.device {
        config.device = d;
    }
    if let Some(p) = args.precision {
        config.precision = Some(p);
    }
    let shard = match args.shard {
        Some(s) => Some(s),
        None => Shard::from_env().map_err(anyhow::Error::msg)?,
    };
    let base = args.out.clone().or_else(|| config.out.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    let out = shard.map_or(base.clone(), |s| s.folder(&base));
    let options = RunOptions { out: out.clone(), resume: args.resume, overwrite: args.overwrite, shard };
    let bar = ProgressBar::new(0);
    let outcome =
        notices::with_bar(&bar, || run::run(host, &config, &options, &mut render(&bar)).map_err(anyhow::Error::from))?;
    if outcome.reused > 0 {
        eprintln!("{} units computed, {} reused from the earlier run", outcome.computed, outcome.reused);
    }
    print_summary(&outcome.results, &out, &outcome.files);
    Ok(())
}

pub(crate) fn merge(host: &PluginHost, args: &MergeArgs) -> anyhow::Result<()> {
    let bar = ProgressBar::new(0);
    let (results, files) = notices::with_bar(&bar, || {
        merge::merge(host, &args.out, &args.shards, &mut render(&bar)).map_err(anyhow::Error::from)
    })?;
    print_summary(&results, &args.out, &files);
    Ok(())
}

pub(crate) fn report(host: &PluginHost, args: &ReportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.replicates != Some(0), "--replicates must be at least 1");
    let bootstrap = BootstrapOverride { replicates: args.replicates, seed: args.seed };
    let bar = ProgressBar::new(0);
    let (results, files) = notices::with_bar(&bar, || {
        run::report(host, &args.dir, bootstrap, &mut render(&bar)).map_err(anyhow::Error::from)
    })?;
    print_summary(&results, &args.dir, &files);
    Ok(())
}
