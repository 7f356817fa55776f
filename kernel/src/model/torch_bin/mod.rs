//! PyTorch `.bin` / `.pt` checkpoints in the zip layout `torch.save` has written since torch 1.6
//! (`torch/serialization.py`): `<name>/data.pkl`, a pickle of the state dict whose tensors
//! name their storages by persistent id, and `<name>/data/<key>`, each storage's raw
//! little-endian bytes, stored uncompressed. The pickle is read by [`pickle`], a restricted
//! unpickler that runs nothing; storages are located in the memory map, never copied. The
//! legacy pre-1.6 format (a bare pickle stream) is refused with a clear error.

mod pickle;

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;

use safetensors::Dtype;
use zip::{CompressionMethod, ZipArchive};

use super::ModelError;
use pickle::{TensorRef, Value};

/// The largest `data.pkl` read (a state dict's pickle is a few MB even for 10 GB shards).
const MAX_PICKLE_BYTES: u64 = 256 << 20;

/// How many times its storage a non-contiguous view (an `expand`ed or `as_strided` tensor) may
/// cover, so that a few bytes cannot ask for gigabytes once gathered.
const MAX_VIEW_GROWTH: usize = 64;

/// One tensor of the archive: where its bytes are in the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Located {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Byte offset of the first element in the file.
    pub start: usize,
    /// End of the bytes it may touch: the tensor's end when contiguous, else the storage's end.
    pub end: usize,
    /// Element strides when the tensor is not a contiguous row-major view.
    pub strides: Option<Vec<usize>>,
}

/// Reads the tensors of the torch zip archive `file` (`path`, for errors).
pub(crate) fn read(path: &Path, file: &[u8]) -> Result<Vec<(String, Located)>, ModelError> {
    let err = |message: String| ModelError::Format { path: path.to_owned(), message };
    if !file.starts_with(b"PK\x03\x04") {
        return Err(if file.first() == Some(&0x80) {
            ModelError::Unsupported {
                path: path.to_owned(),
                message: "a legacy (pre-1.6, non-zip) torch.save file; mvb reads the zip format torch has \
                          written since 1.6: load it in PyTorch and save it again (or save_pretrained it \
                          with safe_serialization=True)"
                    .into(),
            }
        } else {
            err("not a PyTorch checkpoint (no zip archive signature)".into())
        });
    }
    let mut zip = ZipArchive::new(Cursor::new(file))
        .map_err(|e| err(format!("not a readable zip archive (truncated or damaged?): {e}")))?;
    let prefix = archive_prefix(&zip).map_err(err)?;
    check_byteorder(&mut zip, &prefix).map_err(err)?;
    let pkl = format!("{prefix}/data.pkl");
    let mut data = Vec::new();
    zip.by_name(&pkl)
        .and_then(|f| Ok(f.take(MAX_PICKLE_BYTES + 1).read_to_end(&mut data)?))
        .map_err(|e| err(format!("cannot read {pkl}: {e}")))?;
    if data.len() as u64 > MAX_PICKLE_BYTES {
        return Err(err(format!("{pkl} is larger than {MAX_PICKLE_BYTES} bytes")));
    }
    let value = pickle::load(&data).map_err(|e| err(format!("{pkl}, byte {}: {}", e.offset, e.message)))?;
    let mut storages = Storages { zip, prefix, file_len: file.len(), found: HashMap::new() };
    let mut out = Vec::new();
    for (name, tensor) in state_dict(&value).map_err(err)? {
        let located = storages.locate(&name, tensor).map_err(err)?;
        out.push((name, located));
    }
    Ok(out)
}

/// The archive's top folder: the one holding `data.pkl` (torch names it after the file).
fn archive_prefix(zip: &ZipArchive<Cursor<&[u8]>>) -> Result<String, String> {
    let mut found = zip
        .file_names_raw()
        .filter_map(|n| std::str::from_utf8(n).ok()?.strip_suffix("/data.pkl"))
        .filter(|p| !p.contains('/'));
    match (found.next(), found.next()) {
        (Some(p), None) => Ok(p.to_owned()),
        (None, _) => Err("a zip archive without `<name>/data.pkl`: not a torch.save checkpoint (a TorchScript \
                          or other archive?)"
            .into()),
        (Some(_), Some(_)) => Err("a zip archive with several `*/data.pkl`; expected one".into()),
    }
}

fn check_byteorder(zip: &mut ZipArchive<Cursor<&[u8]>>, prefix: &str) -> Result<(), String> {
    let name = format!("{prefix}/byteorder");
    if zip.index_for_name(&name).is_none() {
        return Ok(()); // Written since torch 1.13; older archives are little-endian.
    }
    let mut order = String::new();
    zip.by_name(&name)
        .and_then(|f| Ok(f.take(64).read_to_string(&mut order)?))
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    match order.trim() {
        "little" => Ok(()),
        other => Err(format!("{name} says `{other}`; only little-endian checkpoints are read")),
    }
}

/// The `(name, tensor)` pairs of the unpickled state dict (or of its `state_dict` entry, as
/// training checkpoints nest it). Entries that are not tensors (version numbers) are skipped.
fn state_dict(value: &Value) -> Result<Vec<(String, &TensorRef)>, String> {
    let Some(pairs) = value.pairs() else {
        return Err("the pickle holds no dict of tensors".into());
    };
    let mut out = Vec::new();
    let mut nested = None;
    for (k, v) in pairs {
        match (k, v) {
            (Value::Str(name), Value::Tensor(t)) => out.push((name.clone(), t)),
            (Value::Str(name), inner @ Value::Dict(_)) if name == "state_dict" => nested = Some(inner),
            _ => {}
        }
    }
    match nested {
        Some(inner) if out.is_empty() => state_dict(inner),
        _ => Ok(out),
    }
}

/// The archive's storages, found on first use.
struct Storages<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
    prefix: String,
    file_len: usize,
    /// Storage key → byte range in the file.
    found: HashMap<String, (usize, usize)>,
}

impl Storages<'_> {
    fn range(&mut self, key: &str) -> Result<(usize, usize), String> {
        if let Some(&r) = self.found.get(key) {
            return Ok(r);
        }
        let name = format!("{}/data/{key}", self.prefix);
        let Some(index) = self.zip.index_for_name(&name) else {
            return Err(format!("storage `{name}` is missing from the archive"));
        };
        let entry = self.zip.by_index_raw(index).map_err(|e| format!("cannot read storage `{name}`: {e}"))?;
        if entry.compression() != CompressionMethod::Stored {
            return Err(format!(
                "storage `{name}` is compressed ({}); torch.save stores storages uncompressed",
                entry.compression()
            ));
        }
        let start = entry.data_start().and_then(|s| usize::try_from(s).ok());
        let len = usize::try_from(entry.size()).ok();
        match (start, len) {
            (Some(start), Some(len)) if start.checked_add(len).is_some_and(|end| end <= self.file_len) => {
                self.found.insert(key.to_owned(), (start, start + len));
                Ok((start, start + len))
            }
            _ => Err(format!("storage `{name}` runs past the end of the file (truncated?)")),
        }
    }

    fn locate(&mut self, name: &str, t: &TensorRef) -> Result<Located, String> {
        let (start, end) = self.range(&t.storage.key)?;
        let elem = t.storage.dtype.bitsize() / 8;
        let storage = format!("{}/data/{}", self.prefix, t.storage.key);
        if t.storage.numel.checked_mul(elem) != Some(end - start) {
            return Err(format!(
                "storage `{storage}` holds {} bytes, but the pickle says {} elements of {:?} ({} bytes)",
                end - start,
                t.storage.numel,
                t.storage.dtype,
                t.storage.numel.saturating_mul(elem)
            ));
        }
        let outside = || format!("tensor `{name}` reaches past the end of its storage `{storage}`");
        let count = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(outside)?;
        if count > 0 {
            let last = t
                .shape
                .iter()
                .zip(&t.strides)
                .try_fold(t.offset, |a, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| a.checked_add(x)))
                .ok_or_else(outside)?;
            if last >= t.storage.numel {
                return Err(outside());
            }
        }
        let first = start + t.offset.min(t.storage.numel) * elem;
        let contiguous = row_major(&t.shape, &t.strides);
        if !contiguous && count > (t.storage.numel.saturating_mul(MAX_VIEW_GROWTH)).max(1 << 20) {
            return Err(format!(
                "tensor `{name}` is a view of {count} elements over a storage of {}; refused (at most \
                 {MAX_VIEW_GROWTH}x its storage is read)",
                t.storage.numel
            ));
        }
        Ok(Located {
            dtype: t.storage.dtype,
            shape: t.shape.clone(),
            start: first,
            end: if contiguous { first + count * elem } else { end },
            strides: (!contiguous).then(|| t.strides.clone()),
        })
    }
}

/// Whether `strides` lay `shape` out contiguously in row-major order (size-1 dims ignored).
fn row_major(shape: &[usize], strides: &[usize]) -> bool {
    let mut expected = 1;
    for (&d, &s) in shape.iter().zip(strides).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected *= d;
    }
    true
}
