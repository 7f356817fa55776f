//! The third-party template in `plugins/template` builds from scratch, passes `plugin check`,
//! and its image paths are confined to its data folder by the host.

use std::path::Path;

use mvb::data::{ImageRef, Split, load_image};
use mvb::plugin::{PluginError, PluginSource, World, WorldInfo};

use crate::common::{build_plugin, host, root};

fn template() -> PluginSource {
    let wasm = build_plugin(&root().join("plugins/template/Cargo.toml"), "mvb-plugin-template");
    PluginSource::from_file(&wasm).expect("readable")
}

fn write_png(path: &Path, w: u32, h: u32) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
    img.save(path).expect("png");
}

fn scene(rows: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data");
    std::fs::write(data.join("classes.txt"), "healthy\nsick\n").expect("classes");
    std::fs::write(data.join("labels.csv"), format!("split,path,label\n{rows}")).expect("labels");
    write_png(&data.join("images/a.png"), 5, 3);
    write_png(&data.join("images/b.png"), 4, 4);
    write_png(&data.join("images/c.png"), 1, 1);
    write_png(&dir.path().join("outside.png"), 2, 2);
    dir
}

#[test]
fn the_template_builds_and_passes_the_check() {
    let dir = scene("test,images/a.png,0\ntest,images/b.png,1\ntrain,images/c.png,1\n");
    let data = dir.path().join("data");
    let report = host().check(&template(), Some(World::Dataset), Some(&data)).expect("the template passes");
    let WorldInfo::Dataset(Some(catalog)) = report.info else { panic!("a catalog was expected") };
    let (name, info) = &catalog[0];
    assert_eq!(name, "template");
    let info = info.as_ref().expect("opens");
    assert_eq!(info.class_names, ["healthy", "sick"]);
    assert_eq!((info.splits.train, info.splits.test), (1, 2));

    let mut ds = host().dataset(&template(), Some(&data)).expect("starts").into_dataset("template").expect("opens");
    let samples = ds.samples(Split::Test, 0, 10).expect("samples");
    assert_eq!(samples.iter().map(|s| s.labels[0]).collect::<Vec<_>>(), [0, 1]);
    let px = load_image(samples[0].image.as_ref().expect("image"), &data).expect("decodes");
    assert_eq!((px.width, px.height, px.channels), (5, 3, 3));
}

#[test]
fn a_path_leaving_the_data_folder_is_refused() {
    // The template refuses it itself; the host's own check is unit-tested in `plugin::convert`.
    let dir = scene("test,../outside.png,0\n");
    let err = host()
        .dataset(&template(), Some(&dir.path().join("data")))
        .expect("starts")
        .open("template")
        .expect_err("escaping path");
    assert!(matches!(err, PluginError::Failed { .. }) && err.to_string().contains("../outside.png"), "{err}");
    let err =
        load_image(&ImageRef::Path("../outside.png".into()), &dir.path().join("data")).expect_err("host refuses too");
    assert!(err.to_string().contains("not inside the dataset folder"), "{err}");
}

#[test]
fn a_link_leaving_the_data_folder_is_refused() {
    let dir = scene("test,images/link.png,0\n");
    let data = dir.path().join("data");
    std::os::unix::fs::symlink(dir.path().join("outside.png"), data.join("images/link.png")).expect("symlink");
    let err = load_image(&ImageRef::Path("images/link.png".into()), &data).expect_err("link out");
    assert!(err.to_string().contains("not inside the dataset folder"), "{err}");
}

#[test]
fn a_malformed_row_names_file_and_line() {
    let dir = scene("test,images/a.png,0\ntest,images/b.png\n");
    let err = host()
        .dataset(&template(), Some(&dir.path().join("data")))
        .expect("starts")
        .open("template")
        .expect_err("bad row");
    assert!(err.to_string().contains("labels.csv") && err.to_string().contains('3'), "{err}");
}
