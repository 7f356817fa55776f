//! `mvb dataset show NAME`: a dataset's info and a few samples.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use mvb::data::{Split, load_image};
use mvb::plugin::PluginHost;

use super::plugins::print_dataset;
use super::resolve::open_dataset;

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The dataset: `NAME` (searched among the built-ins) or `PLUGIN/NAME`.
    name: String,
    /// Read from this plugin file instead of the built-ins.
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// The data folder (default: the plugin's vendored data).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Which split.
    #[arg(long, default_value = "test")]
    split: Split,
    /// How many samples to print.
    #[arg(long, default_value_t = 5)]
    limit: u32,
    /// Index of the first sample.
    #[arg(long, default_value_t = 0)]
    start: u64,
}

pub(crate) fn show(host: &PluginHost, args: &ShowArgs) -> anyhow::Result<()> {
    let mut dataset = open_dataset(host, &args.name, args.plugin.as_deref(), args.data.as_deref())?;
    let info = dataset.info().clone();
    println!("{} (plugin `{}`)", info.name, dataset.plugin());
    print_dataset(&info);
    let size = info.splits.get(args.split);
    let samples = dataset.samples(args.split, args.start, args.limit)?;
    println!("{} samples {}..{} of {size}:", args.split, args.start, args.start + samples.len() as u64);
    let root = dataset.data_dir().map(PathBuf::from).unwrap_or_default();
    for sample in &samples {
        let shape = match &sample.image {
            None => "no image".to_owned(),
            Some(image) => {
                let px = load_image(image, &root).with_context(|| format!("sample `{}`", sample.id))?;
                format!("image {}x{}x{}", px.height, px.width, px.channels)
            }
        };
        let labels: Vec<String> = sample
            .labels
            .iter()
            .map(|&l| format!("{l} {:?}", info.class_names.get(l as usize).map_or("?", String::as_str)))
            .collect();
        let mut line = format!("  {:<12} {shape}  labels [{}]", sample.id, labels.join(", "));
        if let Some(qa) = &sample.qa {
            line.push_str(&format!("  Q: {:?} A: {:?} ({:?})", qa.question, qa.answer, qa.kind));
        }
        for a in &sample.attributes {
            line.push_str(&format!("  {}={}", a.key, a.value));
        }
        println!("{line}");
    }
    Ok(())
}
