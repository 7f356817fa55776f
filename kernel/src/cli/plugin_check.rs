//! `mvb plugin check FILE.wasm`: validate a third-party component against the mvb worlds.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use mvb::plugin::{PluginHost, PluginSource, World, WorldInfo};

use super::plugins::print_dataset;

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The component file (built for wasm32-wasip2).
    file: PathBuf,
    /// The world it must implement (dataset, metric, judge); found from its exports if omitted.
    #[arg(long, value_parser = parse_world)]
    world: Option<World>,
    /// For a dataset plugin: a data folder to list and open its datasets from.
    #[arg(long)]
    data: Option<PathBuf>,
}

fn parse_world(s: &str) -> Result<World, String> {
    World::parse(s).ok_or_else(|| format!("unknown world `{s}` (expected dataset, metric or judge)"))
}

pub(crate) fn run(host: &PluginHost, args: &CheckArgs) -> anyhow::Result<()> {
    let source = PluginSource::from_file(&args.file)?;
    let report = host
        .check(&source, args.world, args.data.as_deref())
        .with_context(|| format!("{} failed the check", args.file.display()))?;
    println!("{}: ok, implements the `{}` world ({})", args.file.display(), report.world, report.world.export_name());
    println!("  imports: {}", report.imports.join(", "));
    println!("  exports: {}", report.exports.join(", "));
    match report.info {
        WorldInfo::Dataset(None) => println!("  (pass --data DIR to list and open its datasets)"),
        WorldInfo::Dataset(Some(catalog)) => {
            if catalog.is_empty() {
                println!(
                    "  its catalog is empty for {}",
                    args.data.as_deref().unwrap_or_else(|| "?".as_ref()).display()
                );
            }
            for (name, info) in catalog {
                match info {
                    Ok(info) => print_dataset(&info),
                    Err(e) => println!("  {name}: cannot open: {e}"),
                }
            }
        }
        WorldInfo::Metric(info) => println!(
            "  metric {}: {} (task {}, {} is better; scores: {})",
            info.name,
            info.description,
            info.task,
            if info.higher_is_better { "higher" } else { "lower" },
            info.scores.join(", ")
        ),
        WorldInfo::Judge(info) => {
            println!("  judge {}: {} (scores {} to {})", info.name, info.description, info.min_score, info.max_score)
        }
    }
    Ok(())
}
