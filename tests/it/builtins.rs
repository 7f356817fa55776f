//! Every built-in plugin loads and describes itself.

use mvb::plugin::{BUILTINS, World};

use crate::common::{host, medmnist_dir};

#[test]
fn every_builtin_loads() {
    let host = host();
    for builtin in BUILTINS {
        let source = builtin.source();
        match builtin.world {
            World::Dataset => {
                // A folder of another dataset's files is an empty catalog, never an error.
                let mut plugin = host.dataset(&source, Some(&medmnist_dir())).expect("dataset plugin starts");
                let catalog = plugin.catalog().expect("catalog");
                assert_eq!(catalog.is_empty(), builtin.name != "medmnist", "{}: {catalog:?}", builtin.name);
            }
            World::Metric => {
                host.metric(&source).expect("metric plugin starts");
            }
            World::Judge => {
                host.judge(&source, None).expect("judge plugin starts");
            }
        }
        let report = host.check(&source, None, None).expect("built-ins pass their own check");
        assert_eq!(report.world, builtin.world);
    }
}

#[test]
fn builtins_find_their_vendored_data() {
    for builtin in BUILTINS.iter().filter(|b| b.data_folder.is_some()) {
        let dir = builtin.default_data_dir().expect("default data folder");
        assert!(dir.is_dir(), "{}", dir.display());
    }
}
