//! The byte-level GGUF parser: a bounds-checked cursor over the map, metadata values (every type,
//! nested arrays up to a fixed depth), tensor infos and data-section layout (spec: ggml `docs/gguf.md`).

use super::{GgufError, GgufFile, TensorInfo, Value};
use crate::backend::cpu::quant::GgmlType;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// ggml's limit on tensor dimensions.
const MAX_DIMS: u32 = 4;
/// Nesting limit for arrays of arrays.
const MAX_DEPTH: usize = 4;
const DEFAULT_ALIGNMENT: usize = 32;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a PathBuf,
    v1: bool,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| GgufError::Truncated {
            path: self.path.clone(),
            what: what(),
            offset: self.pos,
            len: self.buf.len(),
        })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    /// A count or length: u64 (u32 in version 1), converted to usize.
    fn len(&mut self, what: &dyn Fn() -> String) -> Result<usize, GgufError> {
        let v = if self.v1 { self.u32(what)? as u64 } else { self.u64(what)? };
        usize::try_from(v).map_err(|_| self.truncated(what))
    }
    fn truncated(&self, what: &dyn Fn() -> String) -> GgufError {
        GgufError::Truncated { path: self.path.clone(), what: what(), offset: self.pos, len: self.buf.len() }
    }
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let n = self.len(what)?;
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::Metadata {
            path: self.path.clone(),
            key: what(),
            msg: "string is not valid UTF-8".into(),
        })
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

pub(super) fn parse(path: PathBuf, map: Arc<memmap2::Mmap>) -> Result<GgufFile, GgufError> {
    let buf: &[u8] = &map;
    let mut c = Cursor { buf, pos: 0, path: &path, v1: false };
    let magic =
        c.take(4, &|| "magic".into()).map_err(|_| GgufError::BadMagic { path: path.clone(), magic: buf.to_vec() })?;
    if magic != b"GGUF" {
        return Err(GgufError::BadMagic { path: path.clone(), magic: magic.to_vec() });
    }
    let version = c.u32(&|| "version".into())?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version { path: path.clone(), version });
    }
    let n_tensors = c.len(&|| "tensor count".into())?;
    let n_kv = c.len(&|| "metadata count".into())?;
    let (metadata, index) = read_metadata(&mut c, n_kv)?;
    let alignment = match index.get("general.alignment").map(|&i| &metadata[i].1) {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_u64().and_then(|a| usize::try_from(a).ok()) {
            Some(a) if a.is_power_of_two() => a,
            _ => {
                let msg = format!("must be a power of two, found {v:?}");
                return Err(GgufError::Metadata { path: path.clone(), key: "general.alignment".into(), msg });
            }
        },
    };
    let infos = read_tensor_infos(&mut c, n_tensors)?;
    let data_offset = c.pos.div_ceil(alignment).checked_mul(alignment).filter(|&d| d <= buf.len());
    let data_offset = data_offset.ok_or_else(|| c.truncated(&|| "data section".into()))?;
    let mut tensors = Vec::with_capacity(infos.len());
    let mut by_name = HashMap::with_capacity(infos.len());
    for (name, ne, type_id, offset) in infos {
        let t = locate(&path, buf.len(), data_offset, alignment, name, ne, type_id, offset)?;
        if by_name.insert(t.name.clone(), tensors.len()).is_some() {
            return Err(GgufError::Tensor { path, name: t.name, msg: "duplicate tensor name".into() });
        }
        tensors.push(t);
    }
    Ok(GgufFile { path, map: map.clone(), version, metadata, index, tensors, by_name, alignment, data_offset })
}

type Metadata = (Vec<(String, Value)>, HashMap<String, usize>);

fn read_metadata(c: &mut Cursor<'_>, n_kv: usize) -> Result<Metadata, GgufError> {
    // Each pair takes at least 8 + 4 + 1 bytes: never trust the count for the allocation.
    let mut metadata = Vec::with_capacity(n_kv.min(c.remaining() / 13));
    let mut index = HashMap::new();
    for i in 0..n_kv {
        let key = c.string(&|| format!("metadata key #{i}"))?;
        let ty = c.u32(&|| format!("metadata {key}: value type"))?;
        let value = read_value(c, ty, &key, 0)?;
        if index.insert(key.clone(), metadata.len()).is_some() {
            return Err(GgufError::Metadata { path: c.path.clone(), key, msg: "duplicate key".into() });
        }
        metadata.push((key, value));
    }
    Ok((metadata, index))
}

fn read_value(c: &mut Cursor<'_>, ty: u32, key: &str, depth: usize) -> Result<Value, GgufError> {
    let what = || format!("metadata {key}");
    Ok(match ty {
        0 => Value::U8(c.array::<1>(&what)?[0]),
        1 => Value::I8(c.array::<1>(&what)?[0] as i8),
        2 => Value::U16(u16::from_le_bytes(c.array(&what)?)),
        3 => Value::I16(i16::from_le_bytes(c.array(&what)?)),
        4 => Value::U32(u32::from_le_bytes(c.array(&what)?)),
        5 => Value::I32(i32::from_le_bytes(c.array(&what)?)),
        6 => Value::F32(f32::from_le_bytes(c.array(&what)?)),
        7 => match c.array::<1>(&what)?[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            b => return Err(meta_err(c, key, format!("invalid bool byte {b}"))),
        },
        8 => Value::String(c.string(&what)?),
        9 => read_array(c, key, depth)?,
        10 => Value::U64(u64::from_le_bytes(c.array(&what)?)),
        11 => Value::I64(i64::from_le_bytes(c.array(&what)?)),
        12 => Value::F64(f64::from_le_bytes(c.array(&what)?)),
        t => return Err(meta_err(c, key, format!("unknown value type {t}"))),
    })
}

fn read_array(c: &mut Cursor<'_>, key: &str, depth: usize) -> Result<Value, GgufError> {
    if depth >= MAX_DEPTH {
        return Err(meta_err(c, key, format!("arrays nested deeper than {MAX_DEPTH}")));
    }
    let ety = c.u32(&|| format!("metadata {key}: array element type"))?;
    let n = c.len(&|| format!("metadata {key}: array length"))?;
    // Every element takes at least one byte, so a count beyond the remaining bytes is corrupt.
    if n > c.remaining() {
        return Err(c.truncated(&|| format!("metadata {key}: array of {n} elements")));
    }
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(read_value(c, ety, key, depth + 1)?);
    }
    Ok(Value::Array(items))
}

fn meta_err(c: &Cursor<'_>, key: &str, msg: String) -> GgufError {
    GgufError::Metadata { path: c.path.clone(), key: key.into(), msg }
}

type RawInfo = (String, Vec<u64>, u32, u64);

fn read_tensor_infos(c: &mut Cursor<'_>, n: usize) -> Result<Vec<RawInfo>, GgufError> {
    // Each info takes at least 8 + 4 + 4 + 8 bytes.
    let mut infos = Vec::with_capacity(n.min(c.remaining() / 24));
    for i in 0..n {
        let name = c.string(&|| format!("tensor info #{i}: name"))?;
        let what = || format!("tensor {name}: info");
        let n_dims = c.u32(&what)?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(GgufError::Tensor { path: c.path.clone(), name, msg: format!("{n_dims} dimensions (1..=4)") });
        }
        let ne = (0..n_dims).map(|_| if c.v1 { c.u32(&what).map(u64::from) } else { c.u64(&what) });
        let ne = ne.collect::<Result<Vec<u64>, _>>()?;
        let type_id = c.u32(&what)?;
        let offset = c.u64(&what)?;
        infos.push((name, ne, type_id, offset));
    }
    Ok(infos)
}

/// Checks a tensor's dims, type and offset and computes its absolute byte range.
#[allow(clippy::too_many_arguments)]
fn locate(
    path: &Path,
    file_len: usize,
    data_offset: usize,
    alignment: usize,
    name: String,
    ne: Vec<u64>,
    type_id: u32,
    offset: u64,
) -> Result<TensorInfo, GgufError> {
    let err = |msg: String| GgufError::Tensor { path: path.to_path_buf(), name: name.clone(), msg };
    let dims: Vec<usize> = ne
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()
        .ok_or_else(|| err(format!("dims {ne:?} too large")))?;
    let numel = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= isize::MAX as usize);
    let numel = numel.ok_or_else(|| err(format!("dims {ne:?} overflow")))?;
    let shape: Vec<usize> = dims.iter().rev().copied().collect();
    let range = match GgmlType::from_id(type_id) {
        Err(_) => None,
        Ok(ty) => {
            let rows = numel.checked_div(dims[0]).unwrap_or(0);
            let bytes = ty.matrix_bytes(rows, dims[0]).map_err(|e| err(e.to_string()))?;
            let off = usize::try_from(offset).map_err(|_| err(format!("offset {offset} too large")))?;
            if !off.is_multiple_of(alignment) {
                return Err(err(format!("offset {off} is not a multiple of the alignment {alignment}")));
            }
            let start = data_offset.checked_add(off);
            let end = start.and_then(|s| s.checked_add(bytes)).filter(|&e| e <= file_len);
            let end = end.ok_or_else(|| {
                err(format!("data (offset {off}, {bytes} bytes) runs past the end of the file ({file_len} bytes)"))
            })?;
            Some(data_offset + off..end)
        }
    };
    Ok(TensorInfo { name, shape, type_id, range })
}
