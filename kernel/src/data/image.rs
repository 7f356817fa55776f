//! Image access for samples: paths are resolved strictly inside the dataset's root (the
//! kernel never trusts a plugin's path) and opened only when they name a regular file (without
//! blocking, so a FIFO or a device cannot hang the host); encoded images are decoded with the
//! `image` crate (PNG and JPEG) after their header has been checked against a decode limit.
//! Follows the `image` crate's decoder and limits API
//! (<https://docs.rs/image/0.25/image/trait.ImageDecoder.html>).

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Seek};
use std::path::{Component, Path, PathBuf};

use ::image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::{ImageRef, Pixels};

/// The largest image the kernel decodes, in bytes of decoded pixels as the file's header
/// declares them: width x height x bytes per pixel (a 16-bit RGB pixel is 6 bytes). Checked
/// before decoding, a guard against decompression bombs: 128 MiB is an 8-bit RGB image of
/// 6,600 x 6,600, or a 16-bit grey one of 8,192 x 8,192.
pub const MAX_IMAGE_BYTES: u64 = 128 << 20;

/// The most decoded bytes the images of one batch of samples may declare together (see
/// `plugin::Dataset::samples`, which reads fewer samples to stay under it).
pub const MAX_BATCH_DECODED_BYTES: u64 = 512 << 20;

/// The image formats the kernel decodes.
pub const IMAGE_FORMATS: &str = "PNG, JPEG";

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
    /// Reading the file failed. (The OS error is part of the message, not a `source`, so that
    /// an error chain does not print it twice.)
    #[error("cannot read image {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The path names a folder, a FIFO, a socket or a device: it is refused without being
    /// opened.
    #[error("image {path} is a {kind}, not a regular file")]
    NotAFile {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// The header declares more decoded bytes than [`MAX_IMAGE_BYTES`].
    #[error(
        "image {what} is {width}x{height} at {bytes_per_pixel} bytes a pixel, {bytes} bytes decoded, \
         more than the limit of {MAX_IMAGE_BYTES}"
    )]
    TooLarge {
        /// The file or sample.
        what: String,
        /// Columns.
        width: u32,
        /// Rows.
        height: u32,
        /// Bytes per decoded pixel.
        bytes_per_pixel: u8,
        /// The decoded size.
        bytes: u64,
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
    let root = root.canonicalize().map_err(|error| DataError::Io { path: root.to_owned(), error })?;
    let joined = root.join(rel);
    let resolved = joined.canonicalize().map_err(|error| DataError::Io { path: joined.clone(), error })?;
    if resolved.starts_with(&root) { Ok(resolved) } else { Err(escape()) }
}

/// Loads a sample's image as 8-bit pixels (grey, RGB or RGBA as stored).
pub fn load_image(image: &ImageRef, root: &Path) -> Result<Pixels, DataError> {
    match image {
        ImageRef::Raw(pixels) => Ok(pixels.clone()),
        ImageRef::Encoded(bytes) => decode(Cursor::new(bytes), "(embedded in the sample)"),
        ImageRef::Path(relative) => load_file(&resolve_in_root(root, relative)?),
    }
}

/// Loads an image file named by the user (no root to stay inside).
pub fn load_file(path: &Path) -> Result<Pixels, DataError> {
    decode(BufReader::new(open_regular(path)?), &path.display().to_string())
}

/// The decoded size of a sample's image, in bytes, from its header alone (raw pixels: their
/// length); an image over [`MAX_IMAGE_BYTES`] is an error.
pub fn declared_bytes(image: &ImageRef, root: &Path) -> Result<u64, DataError> {
    match image {
        ImageRef::Raw(pixels) => Ok(pixels.data.len() as u64),
        ImageRef::Encoded(bytes) => Ok(decoder(Cursor::new(bytes), "(embedded in the sample)")?.total_bytes()),
        ImageRef::Path(relative) => {
            let path = resolve_in_root(root, relative)?;
            let file = open_regular(&path)?;
            Ok(decoder(BufReader::new(file), &path.display().to_string())?.total_bytes())
        }
    }
}

/// Opens `path` for reading only if it is a regular file: its type is checked before opening,
/// the open does not block (`O_NONBLOCK` on unix, so a FIFO swapped in meanwhile cannot hang
/// it), and the type is checked again on the open file.
fn open_regular(path: &Path) -> Result<File, DataError> {
    let io = |error| DataError::Io { path: path.to_owned(), error };
    let not_a_file = |t: std::fs::FileType| DataError::NotAFile { path: path.to_owned(), kind: kind(&t) };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(not_a_file(meta.file_type()));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(O_NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_a_file(meta.file_type()));
    }
    Ok(file)
}

/// `O_NONBLOCK` where its value is known without `libc`; elsewhere 0 (the type checks remain).
#[cfg(unix)]
const O_NONBLOCK: i32 = if cfg!(any(target_os = "linux", target_os = "android"))
    && !cfg!(any(target_arch = "mips", target_arch = "mips64", target_arch = "sparc64"))
{
    0o4000
} else if cfg!(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd"
)) {
    0x4
} else {
    0
};

/// What a file that is not a regular file is, in words.
fn kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "device";
        }
    }
    if t.is_dir() { "folder" } else { "special file" }
}

/// A decoder for `reader` whose header has been read and checked against [`MAX_IMAGE_BYTES`].
fn decoder<'a, R: BufRead + Seek + 'a>(reader: R, what: &str) -> Result<impl ImageDecoder + 'a, DataError> {
    let err = |message: String| DataError::Decode { what: what.to_owned(), message };
    let mut reader = ImageReader::new(reader).with_guessed_format().map_err(|e| err(e.to_string()))?;
    // The decoder's own allocations are capped too, as a backstop to the check below.
    let mut limits = Limits::default();
    limits.max_alloc = Some(2 * MAX_IMAGE_BYTES);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(|e| err(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    let bytes = decoder.total_bytes();
    if bytes > MAX_IMAGE_BYTES {
        let bytes_per_pixel = decoder.color_type().bytes_per_pixel();
        return Err(DataError::TooLarge { what: what.to_owned(), width, height, bytes_per_pixel, bytes });
    }
    Ok(decoder)
}

fn decode<R: BufRead + Seek>(reader: R, what: &str) -> Result<Pixels, DataError> {
    let decoder = decoder(reader, what)?;
    let (width, height) = decoder.dimensions();
    let decoded = DynamicImage::from_decoder(decoder)
        .map_err(|e| DataError::Decode { what: what.to_owned(), message: e.to_string() })?;
    let (channels, data) = match decoded.color().channel_count() {
        1 | 2 => (1, decoded.into_luma8().into_raw()),
        3 => (3, decoded.into_rgb8().into_raw()),
        _ => (4, decoded.into_rgba8().into_raw()),
    };
    Ok(Pixels { width, height, channels, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_not_an_image() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let err = load_image(&ImageRef::Path("sub".into()), dir.path()).expect_err("folder");
        assert!(err.to_string().contains("is a folder, not a regular file"), "{err}");
    }

    #[test]
    fn an_os_error_is_in_the_message_once_and_not_a_source() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = load_file(&dir.path().join("missing.png")).expect_err("missing");
        assert!(std::error::Error::source(&err).is_none());
        assert!(err.to_string().contains("No such file"), "{err}");
    }
}
