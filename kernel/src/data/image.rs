//! Image access for samples: paths are resolved strictly inside the dataset's root (the
//! kernel never trusts a plugin's path), encoded images are decoded with the `image` crate.

use std::path::{Component, Path, PathBuf};

use super::{ImageRef, Pixels};

/// The largest image the kernel decodes, in pixels (a guard against decompression bombs).
const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// Why an image could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The path is absolute, contains `..`, or leaves the root through a link.
    #[error("image path `{path}` is not inside the dataset folder {root}")]
    PathEscape {
        /// The offending path, as the plugin gave it.
        path: String,
        /// The dataset's root.
        root: PathBuf,
    },
    /// Reading the file failed.
    #[error("cannot read image {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a decodable image.
    #[error("cannot decode image {what}: {message}")]
    Decode {
        /// The file or sample.
        what: String,
        /// What the decoder said.
        message: String,
    },
}

/// Resolves `relative` inside `root`: rejects absolute paths and `..`, then follows links and
/// checks that the result still lies under `root`.
pub fn resolve_in_root(root: &Path, relative: &str) -> Result<PathBuf, DataError> {
    let escape = || DataError::PathEscape { path: relative.to_owned(), root: root.to_owned() };
    let rel = Path::new(relative);
    if relative.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(escape());
    }
    let root = root.canonicalize().map_err(|source| DataError::Io { path: root.to_owned(), source })?;
    let joined = root.join(rel);
    let resolved = joined.canonicalize().map_err(|source| DataError::Io { path: joined.clone(), source })?;
    if resolved.starts_with(&root) { Ok(resolved) } else { Err(escape()) }
}

/// Loads a sample's image as 8-bit pixels (grey, RGB or RGBA as stored).
pub fn load_image(image: &ImageRef, root: &Path) -> Result<Pixels, DataError> {
    match image {
        ImageRef::Raw(pixels) => Ok(pixels.clone()),
        ImageRef::Encoded(bytes) => decode(bytes, "(embedded in the sample)"),
        ImageRef::Path(relative) => {
            let path = resolve_in_root(root, relative)?;
            let bytes = std::fs::read(&path).map_err(|source| DataError::Io { path: path.clone(), source })?;
            decode(&bytes, &path.display().to_string())
        }
    }
}

/// Loads an image file named by the user (no root to stay inside).
pub fn load_file(path: &Path) -> Result<Pixels, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_owned(), source })?;
    decode(&bytes, &path.display().to_string())
}

fn decode(bytes: &[u8], what: &str) -> Result<Pixels, DataError> {
    let err = |message: String| DataError::Decode { what: what.to_owned(), message };
    let reader =
        ::image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| err(e.to_string()))?;
    let (w, h) = reader.into_dimensions().map_err(|e| err(e.to_string()))?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(err(format!("{w}x{h} is larger than the {MAX_PIXELS}-pixel limit")));
    }
    let decoded = ::image::load_from_memory(bytes).map_err(|e| err(e.to_string()))?;
    let (channels, data) = match decoded.color().channel_count() {
        1 | 2 => (1, decoded.into_luma8().into_raw()),
        3 => (3, decoded.into_rgb8().into_raw()),
        _ => (4, decoded.into_rgba8().into_raw()),
    };
    Ok(Pixels { width: w, height: h, channels, data })
}
