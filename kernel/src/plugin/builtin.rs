//! The first-party plugins, built from `plugins/` by `kernel/build.rs` and embedded in the
//! binary. They run through exactly the same sandboxed path as a third party's `.wasm` file.

use std::borrow::Cow;
use std::path::PathBuf;

use super::source::{Origin, PluginSource};
use super::world::World;

/// A plugin embedded in the binary.
#[derive(Debug)]
pub struct Builtin {
    /// The name users refer to it by.
    pub name: &'static str,
    /// The world it implements.
    pub world: World,
    /// The component bytes.
    pub bytes: &'static [u8],
    /// For dataset plugins: the folder under the repository's `data/` holding its vendored data.
    pub data_folder: Option<&'static str>,
}

/// Every built-in plugin.
pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "medmnist",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_medmnist.wasm")),
        data_folder: Some("medmnist"),
    },
    Builtin {
        name: "vqa-rad",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_vqa_rad.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "slake",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_slake.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "pathvqa",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_pathvqa.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "imagefolder",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_imagefolder.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "csv",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_csv.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "vqa-jsonl",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_vqa_jsonl.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "chexpert",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_chexpert.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "ham10000",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_ham10000.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "camelyon17",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_camelyon17.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "papila",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_papila.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "gf3300",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_gf3300.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "fairvlmed10k",
        world: World::Dataset,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_fairvlmed10k.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "auroc",
        world: World::Metric,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_auroc.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "accuracy",
        world: World::Metric,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_accuracy.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "balanced-accuracy",
        world: World::Metric,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_balanced_accuracy.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "vqa",
        world: World::Metric,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_vqa.wasm")),
        data_folder: None,
    },
    Builtin {
        name: "gpt-score",
        world: World::Judge,
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/mvb_plugin_gpt_score.wasm")),
        data_folder: None,
    },
];

impl Builtin {
    /// Looks a built-in up by name.
    pub fn find(name: &str) -> Option<&'static Builtin> {
        BUILTINS.iter().find(|b| b.name == name)
    }

    /// The plugin's source, for the host to load.
    pub fn source(&self) -> PluginSource {
        PluginSource { name: self.name.to_owned(), bytes: Cow::Borrowed(self.bytes), origin: Origin::Builtin }
    }

    /// Where the plugin's default data lives: `$MVB_DATA_DIR/<folder>` when that variable is
    /// set, else `data/<folder>` under the current directory, else the vendored copy in the
    /// source tree this binary was built from.
    pub fn default_data_dir(&self) -> Option<PathBuf> {
        let folder = self.data_folder?;
        if let Some(root) = std::env::var_os("MVB_DATA_DIR") {
            return Some(PathBuf::from(root).join(folder));
        }
        let local = PathBuf::from("data").join(folder);
        if local.is_dir() {
            return Some(local);
        }
        let vendored = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data").join(folder);
        vendored.is_dir().then_some(vendored)
    }
}
