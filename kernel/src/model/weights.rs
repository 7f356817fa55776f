//! Checkpoint tensors from safetensors files (single or sharded through
//! `model.safetensors.index.json`, <https://huggingface.co/docs/safetensors>), or, when a
//! folder has none, from PyTorch `pytorch_model.bin` zip checkpoints (single or sharded through
//! `pytorch_model.bin.index.json`, read by [`super::torch_bin`]); memory-mapped, converted to
//! f32 on read.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use super::ModelError;
use crate::tensor::Tensor;

/// A tensor's dtype, shape and where its bytes are in the file.
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Byte offset of the first element.
    start: usize,
    /// End of the bytes it may touch (the tensor's end when contiguous).
    end: usize,
    /// Element strides of a non-contiguous view (PyTorch checkpoints only).
    strides: Option<Vec<usize>>,
}

struct Shard {
    path: PathBuf,
    map: Mmap,
    tensors: HashMap<String, Entry>,
}

/// The single-file and index names of each checkpoint format, in order of preference.
const LAYOUTS: [(&str, &str); 2] =
    [("model.safetensors", "model.safetensors.index.json"), ("pytorch_model.bin", "pytorch_model.bin.index.json")];

/// The tensors of one checkpoint.
pub struct Weights {
    shards: Vec<Shard>,
    /// Tensor name → shard index.
    names: HashMap<String, usize>,
    /// What to name in "missing tensor" errors.
    origin: PathBuf,
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Weights({}, {} tensors)", self.origin.display(), self.names.len())
    }
}

impl Weights {
    /// Opens `model.safetensors`, or the shards listed by `model.safetensors.index.json`, in
    /// `dir`; failing both, `pytorch_model.bin` or the shards of `pytorch_model.bin.index.json`.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let found = LAYOUTS.iter().find_map(|(single, index)| {
            let (single, index) = (dir.join(single), dir.join(index));
            if single.is_file() {
                Some(Ok((vec![single.clone()], single)))
            } else if index.is_file() {
                Some(index_files(dir, &index).map(|files| (files, index)))
            } else {
                None
            }
        });
        let Some(found) = found else {
            return Err(ModelError::NotFound {
                spec: dir.display().to_string(),
                reason: "no model.safetensors, pytorch_model.bin or their .index.json in it".into(),
            });
        };
        let (files, origin) = found?;
        Self::from_files(files, origin)
    }

    /// Opens the given checkpoint files (safetensors, or PyTorch zip checkpoints for any other
    /// extension); `origin` is what "missing tensor" errors name.
    pub fn from_files(files: Vec<PathBuf>, origin: PathBuf) -> Result<Self, ModelError> {
        let mut shards = Vec::with_capacity(files.len());
        let mut names = HashMap::new();
        for path in files {
            let shard = Shard::open(path)?;
            for name in shard.tensors.keys() {
                names.insert(name.clone(), shards.len());
            }
            shards.push(shard);
        }
        Ok(Weights { shards, names, origin })
    }

    /// Whether the checkpoint has `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// The checkpoint file (or index) errors name.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// Every tensor name, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// The shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        let shard = &self.shards[*self.names.get(name)?];
        shard.tensors.get(name).map(|e| e.shape.as_slice())
    }

    /// Reads `name` as f32, checking that its shape is `expected`.
    pub fn tensor(&self, name: &str, expected: &[usize]) -> Result<Tensor, ModelError> {
        let Some(&i) = self.names.get(name) else {
            return Err(self.missing(name));
        };
        let shard = &self.shards[i];
        let entry = &shard.tensors[name];
        let (dtype, shape) = (&entry.dtype, &entry.shape);
        if shape.as_slice() != expected {
            return Err(ModelError::Shape {
                name: name.into(),
                file: shard.path.clone(),
                found: shape.clone(),
                expected: expected.to_vec(),
            });
        }
        let dtype_err =
            || ModelError::Dtype { name: name.into(), file: shard.path.clone(), dtype: format!("{dtype:?}") };
        if !matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64) {
            return Err(dtype_err());
        }
        let bytes = shard.bytes(entry).ok_or_else(|| ModelError::Format {
            path: shard.path.clone(),
            message: format!("tensor `{name}` reaches past the end of the file"),
        })?;
        let data: Vec<f32> = match dtype {
            Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
                .collect(),
            _ => return Err(dtype_err()),
        };
        if data.len() != expected.iter().product::<usize>() {
            return Err(ModelError::Format {
                path: shard.path.clone(),
                message: format!("tensor `{name}` holds {} values for shape {shape:?}", data.len()),
            });
        }
        Ok(Tensor::new(expected.to_vec(), data))
    }

    /// The error for a tensor the architecture needs but the checkpoint lacks.
    pub fn missing(&self, name: &str) -> ModelError {
        ModelError::MissingTensor { name: name.into(), file: self.origin.clone() }
    }

    /// Reads a tensor and returns its values as a plain vector (biases, norms).
    pub fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        Ok(self.tensor(name, &[len])?.into_data())
    }

    /// The dtype of the first floating-point tensor found, for reporting (`F32`, `BF16`, ...).
    pub fn dtype(&self) -> Option<String> {
        self.shards
            .iter()
            .flat_map(|s| s.tensors.values())
            .map(|e| e.dtype)
            .find(|d| matches!(d, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64))
            .map(|d| format!("{d:?}"))
    }
}

/// The files an `.index.json` lists in its `weight_map`, sorted, each once.
fn index_files(dir: &Path, index: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let text = std::fs::read_to_string(index).map_err(|source| ModelError::Io { path: index.to_owned(), source })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ModelError::Format { path: index.to_owned(), message: format!("invalid JSON: {e}") })?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| ModelError::Format { path: index.to_owned(), message: "no `weight_map` object".into() })?;
    let mut files: Vec<PathBuf> = map.values().filter_map(|v| v.as_str()).map(|f| dir.join(f)).collect();
    files.sort();
    files.dedup();
    Ok(files)
}

impl Shard {
    fn open(path: PathBuf) -> Result<Self, ModelError> {
        let file = std::fs::File::open(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        // SAFETY: the map is read-only and private to this process; a checkpoint changed by
        // another process while mvb runs is outside what mvb can defend against, as in every
        // program that memory-maps its inputs.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| ModelError::Io { path: path.clone(), source })?;
        let tensors = if path.extension().is_some_and(|e| e == "safetensors") {
            safetensors_entries(&path, &map)?
        } else {
            super::torch_bin::read(&path, &map)?
                .into_iter()
                .map(|(name, t)| {
                    (name, Entry { dtype: t.dtype, shape: t.shape, start: t.start, end: t.end, strides: t.strides })
                })
                .collect()
        };
        Ok(Shard { path, map, tensors })
    }

    /// The tensor's bytes in row-major order: borrowed when contiguous, gathered through its
    /// strides when not; `None` when they fall outside the file.
    fn bytes(&self, e: &Entry) -> Option<Cow<'_, [u8]>> {
        let region = self.map.get(e.start..e.end)?;
        let Some(strides) = &e.strides else { return Some(Cow::Borrowed(region)) };
        let elem = e.dtype.bitsize() / 8;
        let count: usize = e.shape.iter().product();
        let mut out = Vec::with_capacity(count * elem);
        let mut index = vec![0usize; e.shape.len()];
        for _ in 0..count {
            let at: usize = index.iter().zip(strides).map(|(i, s)| i * s).sum::<usize>() * elem;
            out.extend_from_slice(region.get(at..at + elem)?);
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < e.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Some(Cow::Owned(out))
    }
}

fn safetensors_entries(path: &Path, map: &[u8]) -> Result<HashMap<String, Entry>, ModelError> {
    let (header_len, metadata) = SafeTensors::read_metadata(map).map_err(|e| ModelError::Format {
        path: path.to_owned(),
        message: format!("not a valid safetensors file: {e}"),
    })?;
    let header = 8 + header_len;
    Ok(metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| {
            let (start, end) = info.data_offsets;
            let entry = Entry {
                dtype: info.dtype,
                shape: info.shape.clone(),
                start: header + start,
                end: header + end,
                strides: None,
            };
            (name, entry)
        })
        .collect())
}
