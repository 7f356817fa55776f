//! Reads of the data folder, mounted read-only at `/data` by the host (`plugins/README.md`, the
//! sandbox), with errors that name the file relative to that folder.

use crate::{Error, ErrorKind, corrupt, error};

/// Where the host mounts the data folder.
pub const DATA: &str = "/data";

/// `/data/<rel>`.
pub fn full(rel: &str) -> String {
    if rel.is_empty() { DATA.to_owned() } else { format!("{DATA}/{rel}") }
}

/// Whether `rel` exists as a file.
pub fn is_file(rel: &str) -> bool {
    std::path::Path::new(&full(rel)).is_file()
}

/// Whether `rel` exists as a folder.
pub fn is_dir(rel: &str) -> bool {
    std::path::Path::new(&full(rel)).is_dir()
}

fn io_error(rel: &str, e: &std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => error(ErrorKind::NotFound, format!("`{rel}` is missing from the data folder")),
        _ => error(ErrorKind::Io, format!("cannot read `{rel}`: {e}")),
    }
}

/// The bytes of the file `rel`.
pub fn read_bytes(rel: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(full(rel)).map_err(|e| io_error(rel, &e))
}

/// The text of the file `rel` (UTF-8, a leading byte-order mark dropped).
pub fn read_text(rel: &str) -> Result<String, Error> {
    let bytes = read_bytes(rel)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        corrupt(format!("`{rel}` line {line}: not valid UTF-8 text"))
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

/// The entries of the folder `rel` (names only, sorted); `files` keeps files, else folders.
pub fn list(rel: &str, files: bool) -> Result<Vec<String>, Error> {
    let entries = std::fs::read_dir(full(rel)).map_err(|e| io_error(rel, &e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(rel, &e))?;
        let kind = entry.file_type().map_err(|e| io_error(rel, &e))?;
        let keep = if files { kind.is_file() } else { kind.is_dir() };
        if let (true, Some(name)) = (keep, entry.file_name().to_str())
            && !name.starts_with('.')
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The file `rel`, opened for reading (for formats read in parts, such as zip archives).
pub fn open(rel: &str) -> Result<std::fs::File, Error> {
    std::fs::File::open(full(rel)).map_err(|e| io_error(rel, &e))
}

/// The file names of folders, each listed once when first asked about: checking many files
/// of few folders this way costs one system call per folder rather than one per file (the
/// sandbox makes each call dear).
#[derive(Debug, Default)]
pub struct Listing(std::collections::HashMap<String, std::collections::HashSet<String>>);

impl Listing {
    /// Whether the folder `folder` holds the file `name` (a missing folder holds none).
    pub fn contains(&mut self, folder: &str, name: &str) -> bool {
        let names = self
            .0
            .entry(folder.to_owned())
            .or_insert_with(|| list(folder, true).unwrap_or_default().into_iter().collect());
        names.contains(name)
    }
}

/// The first of `candidates` (folders relative to the data folder) holding the file `marker`.
pub fn locate(candidates: &[&'static str], marker: &str) -> Option<&'static str> {
    candidates.iter().copied().find(|base| is_file(&join(base, marker)))
}

/// `a/b`, or `b` when `a` is empty.
pub fn join(a: &str, b: &str) -> String {
    if a.is_empty() { b.to_owned() } else { format!("{a}/{b}") }
}

/// Refuses a path the host would refuse (absolute, `..`, `\`), naming where it was found.
pub fn check_relative(path: &str, at: impl FnOnce() -> String) -> Result<(), Error> {
    if path.is_empty() || path.starts_with('/') || path.contains('\\') || path.split('/').any(|p| p == "..") {
        return Err(corrupt(format!(
            "{}: path `{path}` must be relative to the data folder, with `/` separators and no `..`",
            at()
        )));
    }
    Ok(())
}
