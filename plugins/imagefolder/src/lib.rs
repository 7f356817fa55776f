//! mvb dataset plugin `imagefolder`: a diagnosis dataset laid out as folders, for data that
//! needs no code of its own (the layout of torchvision's `ImageFolder` and of Hugging Face's
//! `imagefolder` loader):
//!
//! ```text
//! DIR/train/CLASS/*.png        DIR/validation/CLASS/*.jpg        DIR/test/CLASS/*.png
//! ```
//!
//! Splits are the sub-folders `train`, `validation` (or `val`) and `test`; any may be absent.
//! The classes are the class folder names of all splits together, sorted (label 0 is the first
//! name), so the same class has the same label in every split. Images are files ending in
//! `.png`, `.jpg`, `.jpeg`, `.bmp`, `.gif`, `.tif`, `.tiff` or `.webp` (any case), in name order;
//! other files are skipped. A sample's id is its path, such as `test/pneumonia/0001.png`.
//! The dataset is served as `imagefolder`.

use mvb_dataset_common::{
    DatasetInfo, Error, Image, Loaded, Modality, Sample, Single, SingleOf, Task, corrupt, fs, serve, split_named,
};

const NAME: &str = "imagefolder";
const IMAGE_EXTENSIONS: [&str; 9] = ["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "ppm"];

/// The split folders present, each with its slot (0 train, 1 validation, 2 test).
fn split_folders() -> Result<Vec<(usize, String)>, Error> {
    let mut found: Vec<(usize, String)> = Vec::new();
    for folder in fs::list("", false)? {
        let Some(split) = split_named(&folder) else { continue };
        let slot = mvb_dataset_common::slot(split);
        if let Some((_, other)) = found.iter().find(|(s, _)| *s == slot) {
            return Err(corrupt(format!("both `{other}/` and `{folder}/` name the same split; keep one")));
        }
        found.push((slot, folder));
    }
    found.sort();
    Ok(found)
}

fn is_image(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| IMAGE_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

struct ImageFolder;

impl Single for ImageFolder {
    const NAME: &'static str = NAME;

    /// The data folder itself, when a split folder holds a class folder.
    fn locate() -> Option<&'static str> {
        let folders = split_folders().unwrap_or_default();
        folders.iter().any(|(_, f)| fs::list(f, false).is_ok_and(|c| !c.is_empty())).then_some("")
    }

    fn read(_base: &str) -> Result<Loaded, Error> {
        let folders = split_folders()?;
        let mut classes: Vec<String> = Vec::new();
        for (_, folder) in &folders {
            classes.extend(fs::list(folder, false)?);
        }
        classes.sort();
        classes.dedup();
        if classes.is_empty() {
            return Err(corrupt("no class folders: expected `train/CLASS/`, `validation/CLASS/` or `test/CLASS/`"));
        }
        let mut splits: [Vec<Sample>; 3] = Default::default();
        for (slot, folder) in &folders {
            for class in fs::list(folder, false)? {
                let label = classes.iter().position(|c| *c == class).unwrap_or_default() as u32;
                let dir = fs::join(folder, &class);
                for file in fs::list(&dir, true)?.into_iter().filter(|f| is_image(f)) {
                    let path = fs::join(&dir, &file);
                    splits[*slot].push(Sample {
                        id: path.clone(),
                        image: Some(Image::Path(path)),
                        labels: vec![label],
                        qa: None,
                        attributes: Vec::new(),
                    });
                }
            }
        }
        Loaded::new(info(classes), splits)
    }
}

fn info(class_names: Vec<String>) -> DatasetInfo {
    mvb_dataset_common::info(
        NAME,
        "Images in split/class folders (imagefolder layout); classes are the folder names, sorted",
        Task::Diagnosis,
        Modality::Other,
        class_names,
        "unknown",
        "",
    )
}

serve!(SingleOf<ImageFolder>);
