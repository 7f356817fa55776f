//! The kernel's own view of datasets: the types a dataset plugin's answers are turned into
//! (after validation), and image loading confined to a dataset's root folder.

mod image;
mod types;

pub use image::{
    DataError, IMAGE_FORMATS, MAX_BATCH_DECODED_BYTES, MAX_IMAGE_BYTES, declared_bytes, load_file, load_image,
    resolve_in_root,
};
pub use types::{AnswerKind, Attribute, DatasetInfo, ImageRef, Modality, Pixels, Qa, Sample, Split, SplitSizes, Task};
