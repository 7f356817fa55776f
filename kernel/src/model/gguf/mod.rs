//! GGUF reader (format versions 2 and 3), memory-mapped.
//!
//! Follows the GGUF specification (ggml `docs/gguf.md`): little-endian header `GGUF`, version,
//! tensor count, metadata count; metadata key/value pairs; tensor infos (name, dims in ggml `ne`
//! order, type, offset); data section at the next multiple of `general.alignment` (default 32).
//! Every count, length and offset is checked against the file length, so a truncated or hostile
//! file gives a [`GgufError`], never a panic.

mod error;
pub mod names;
pub mod params;
mod parse;
pub mod tokenizer;

pub use error::GgufError;
pub use names::{gguf_to_hf_name, hf_to_gguf_name, qk_unpermute_rows};
pub use params::{LlamaParams, RopeScaling};

use crate::backend::cpu::quant::{GgmlType, QData, QMatrix, dequant};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    /// The value as u64 when it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
    /// The value as i64 when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }
    /// The value as f64 (floats, and integers).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        if let Value::Bool(b) = self { Some(*b) } else { None }
    }
    pub fn as_str(&self) -> Option<&str> {
        if let Value::String(s) = self { Some(s) } else { None }
    }
    pub fn as_array(&self) -> Option<&[Value]> {
        if let Value::Array(a) = self { Some(a) } else { None }
    }
    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
        }
    }
}

/// One tensor of the file.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions in PyTorch order (`[out, in]` for a matrix): ggml's `ne` reversed.
    pub shape: Vec<usize>,
    /// ggml type id as stored; see [`TensorInfo::ty`].
    pub type_id: u32,
    /// Absolute byte range in the file (known only for supported types).
    pub range: Option<std::ops::Range<usize>>,
}

impl TensorInfo {
    /// The tensor's type, or an error when this crate does not support it.
    pub fn ty(&self) -> Result<GgmlType, crate::backend::cpu::quant::QuantError> {
        GgmlType::from_id(self.type_id)
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// An open GGUF file: parsed metadata and tensor infos over a shared memory map.
pub struct GgufFile {
    path: PathBuf,
    map: Arc<memmap2::Mmap>,
    version: u32,
    metadata: Vec<(String, Value)>,
    index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    alignment: usize,
    data_offset: usize,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and parses `path` (memory-mapped).
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| GgufError::Io { path: path.clone(), source };
        let file = std::fs::File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only; like every mmap-based model loader we assume the file is
        // not truncated or rewritten by another process while it is open.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        parse::parse(path, Arc::new(map))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn version(&self) -> u32 {
        self.version
    }
    /// Alignment of the data section and of each tensor's offset.
    pub fn alignment(&self) -> usize {
        self.alignment
    }
    /// Absolute file offset of the data section.
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }
    /// All metadata in file order.
    pub fn metadata_all(&self) -> &[(String, Value)] {
        &self.metadata
    }
    /// One metadata value.
    pub fn metadata(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }
    /// All tensors in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    /// One tensor's info.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    fn key_err(&self, key: &str, expected: &'static str) -> GgufError {
        match self.metadata(key) {
            None => GgufError::MissingKey { path: self.path.clone(), key: key.to_string() },
            Some(v) => {
                GgufError::KeyType { path: self.path.clone(), key: key.to_string(), expected, found: v.type_name() }
            }
        }
    }

    /// A non-negative integer that fits u32.
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        let v = self.metadata(key).and_then(Value::as_u64);
        v.and_then(|v| u32::try_from(v).ok()).ok_or_else(|| self.key_err(key, "u32"))
    }
    /// A non-negative integer that fits usize.
    pub fn get_usize(&self, key: &str) -> Result<usize, GgufError> {
        let v = self.metadata(key).and_then(Value::as_u64);
        v.and_then(|v| usize::try_from(v).ok()).ok_or_else(|| self.key_err(key, "usize"))
    }
    /// A float (f32 or f64, converted to f32).
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        match self.metadata(key) {
            Some(Value::F32(v)) => Ok(*v),
            Some(Value::F64(v)) => Ok(*v as f32),
            _ => Err(self.key_err(key, "f32")),
        }
    }
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        self.metadata(key).and_then(Value::as_bool).ok_or_else(|| self.key_err(key, "bool"))
    }
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        self.metadata(key).and_then(Value::as_str).ok_or_else(|| self.key_err(key, "string"))
    }
    /// An array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        let arr = self.metadata(key).and_then(Value::as_array).ok_or_else(|| self.key_err(key, "array of strings"))?;
        arr.iter().map(|v| v.as_str().ok_or_else(|| self.key_err(key, "array of strings"))).collect()
    }
    /// An array of integers that fit i32.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>, GgufError> {
        let arr = self.metadata(key).and_then(Value::as_array).ok_or_else(|| self.key_err(key, "array of i32"))?;
        let one = |v: &Value| v.as_i64().and_then(|x| i32::try_from(x).ok());
        arr.iter().map(|v| one(v).ok_or_else(|| self.key_err(key, "array of i32"))).collect()
    }
    /// An array of floats.
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>, GgufError> {
        let arr = self.metadata(key).and_then(Value::as_array).ok_or_else(|| self.key_err(key, "array of f32"))?;
        arr.iter().map(|v| v.as_f64().map(|x| x as f32).ok_or_else(|| self.key_err(key, "array of f32"))).collect()
    }

    fn tensor_or_err(&self, name: &str) -> Result<(&TensorInfo, GgmlType, std::ops::Range<usize>), GgufError> {
        let t = self.tensor(name).ok_or_else(|| GgufError::NoTensor { path: self.path.clone(), name: name.into() })?;
        let ty = t.ty().map_err(|e| self.quant_err(name, e))?;
        let range = t.range.clone().ok_or_else(|| self.tensor_err(name, "no data range".into()))?;
        Ok((t, ty, range))
    }

    pub(crate) fn tensor_err(&self, name: &str, msg: String) -> GgufError {
        GgufError::Tensor { path: self.path.clone(), name: name.into(), msg }
    }
    fn quant_err(&self, name: &str, source: crate::backend::cpu::quant::QuantError) -> GgufError {
        GgufError::Quant { path: self.path.clone(), name: name.into(), source }
    }

    /// The raw bytes of a tensor.
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], GgufError> {
        let (_, _, range) = self.tensor_or_err(name)?;
        self.map.get(range).ok_or_else(|| self.tensor_err(name, "data outside the file".into()))
    }

    /// A 2-D tensor as a matrix borrowing the map (`rows` = PyTorch dim 0 = outputs).
    pub fn matrix(&self, name: &str) -> Result<QMatrix, GgufError> {
        let (t, ty, range) = self.tensor_or_err(name)?;
        let [rows, cols] = t.shape[..] else {
            return Err(self.tensor_err(name, format!("expected a 2-D tensor, shape is {:?}", t.shape)));
        };
        QMatrix::new(ty, rows, cols, QData::Mapped(self.map.clone(), range)).map_err(|e| self.quant_err(name, e))
    }

    /// A tensor dequantised to f32, with its shape (PyTorch order).
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), GgufError> {
        let (t, ty, range) = self.tensor_or_err(name)?;
        let bytes = self.map.get(range).ok_or_else(|| self.tensor_err(name, "data outside the file".into()))?;
        let n = t.numel();
        let cols = t.shape.last().copied().unwrap_or(1);
        let mut out = vec![0f32; n];
        if n > 0 {
            let rb = ty.row_bytes(cols).map_err(|e| self.quant_err(name, e))?;
            for (src, dst) in bytes.chunks_exact(rb).zip(out.chunks_exact_mut(cols)) {
                dequant::dequantize_row(ty, src, dst);
            }
        }
        Ok((t.shape.clone(), out))
    }

    /// The row order that brings GGUF tensor `name` into Hugging Face order (llama q/k), if any.
    fn hf_row_order(&self, name: &str, rows: usize, p: &LlamaParams) -> Result<Option<Vec<usize>>, GgufError> {
        if !names::is_rope_permuted(&p.arch, name) {
            return Ok(None);
        }
        let heads = if name.contains(".attn_q.") { p.num_heads } else { p.num_kv_heads };
        let perm = qk_unpermute_rows(rows, heads)
            .ok_or_else(|| self.tensor_err(name, format!("{rows} rows do not split into {heads} rope heads")))?;
        Ok(Some(perm))
    }

    fn gguf_name_of(&self, hf_name: &str) -> Result<String, GgufError> {
        hf_to_gguf_name(hf_name).ok_or_else(|| GgufError::NoTensor { path: self.path.clone(), name: hf_name.into() })
    }

    /// The matrix for a Hugging Face tensor name (`model.layers.0.self_attn.q_proj.weight`), in
    /// Hugging Face row order: llama q/k rows are un-permuted (an owned copy), others borrow the map.
    pub fn hf_matrix(&self, hf_name: &str, p: &LlamaParams) -> Result<QMatrix, GgufError> {
        let name = self.gguf_name_of(hf_name)?;
        let m = self.matrix(&name)?;
        match self.hf_row_order(&name, m.rows(), p)? {
            None => Ok(m),
            Some(perm) => m.permute_rows(&perm).map_err(|e| self.quant_err(&name, e)),
        }
    }

    /// A tensor by Hugging Face name, dequantised, in Hugging Face order (see [`GgufFile::hf_matrix`]).
    pub fn hf_tensor_f32(&self, hf_name: &str, p: &LlamaParams) -> Result<(Vec<usize>, Vec<f32>), GgufError> {
        let name = self.gguf_name_of(hf_name)?;
        let (shape, v) = self.tensor_f32(&name)?;
        let Some(perm) = self.hf_row_order(&name, shape[0], p)? else { return Ok((shape, v)) };
        let cols = v.len() / shape[0].max(1);
        let mut out = Vec::with_capacity(v.len());
        for &src in &perm {
            out.extend_from_slice(&v[src * cols..(src + 1) * cols]);
        }
        Ok((shape, out))
    }

    /// The shared memory map (for callers that build their own views).
    pub fn map(&self) -> &Arc<memmap2::Mmap> {
        &self.map
    }
}
