//! `mvb plugins`: the built-in plugins and what they serve.

use mvb::data::DatasetInfo;
use mvb::eval::dataset::data_dir;
use mvb::plugin::{BUILTINS, PluginHost, World};

pub(crate) fn run(host: &PluginHost) -> anyhow::Result<()> {
    for builtin in BUILTINS {
        println!("{} (built-in {} plugin, {} KiB)", builtin.name, builtin.world, builtin.bytes.len() / 1024);
        match builtin.world {
            World::Dataset => {
                let Ok(dir) = data_dir(builtin, None) else {
                    println!("  data: none vendored; give the dataset's folder with --data");
                    continue;
                };
                println!("  data: {}", dir.display());
                let mut plugin = host.dataset(&builtin.source(), Some(&dir))?;
                for name in plugin.catalog()? {
                    let handle = plugin.open(&name)?;
                    print_dataset(handle.info());
                    plugin.close(handle)?;
                }
            }
            World::Metric => {
                let info = host.metric(&builtin.source())?.info().clone();
                println!("  {}: {}", info.name, info.description);
            }
            World::Judge => {
                let info = host.judge(&builtin.source(), None)?.info().clone();
                println!("  {}: {}", info.name, info.description);
            }
        }
    }
    Ok(())
}

/// Prints a dataset's info in a few indented lines.
pub(crate) fn print_dataset(info: &DatasetInfo) {
    println!("  {}: {}", info.name, info.description);
    let classes: Vec<String> = info.class_names.iter().enumerate().map(|(i, c)| format!("{i} {c:?}")).collect();
    println!(
        "    {} / {}{}, {} classes: {}",
        info.task,
        info.modality,
        if info.multi_label { ", multi-label" } else { "" },
        info.class_names.len(),
        classes.join(", ")
    );
    println!(
        "    splits: train {}, validation {}, test {}; licence {}",
        info.splits.train, info.splits.validation, info.splits.test, info.license
    );
}
