//! Checkpoint tensors from safetensors files (single or sharded through
//! `model.safetensors.index.json`), memory-mapped, converted to f32 on read
//! (<https://huggingface.co/docs/safetensors>).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use super::ModelError;
use crate::tensor::Tensor;

/// A tensor's dtype, shape and byte range within the data section.
type Entry = (Dtype, Vec<usize>, (usize, usize));

struct Shard {
    path: PathBuf,
    map: Mmap,
    header: usize,
    tensors: HashMap<String, Entry>,
}

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
    /// Opens `model.safetensors`, or the shards listed by `model.safetensors.index.json`, in `dir`.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let (files, origin) = if single.is_file() {
            (vec![single.clone()], single)
        } else if index.is_file() {
            let text =
                std::fs::read_to_string(&index).map_err(|source| ModelError::Io { path: index.clone(), source })?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| ModelError::Format { path: index.clone(), message: format!("invalid JSON: {e}") })?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| ModelError::Format { path: index.clone(), message: "no `weight_map` object".into() })?;
            let mut files: Vec<PathBuf> = map.values().filter_map(|v| v.as_str()).map(|f| dir.join(f)).collect();
            files.sort();
            files.dedup();
            (files, index)
        } else {
            return Err(ModelError::NotFound {
                spec: dir.display().to_string(),
                reason: "no model.safetensors or model.safetensors.index.json in it".into(),
            });
        };
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

    /// The shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        let shard = &self.shards[*self.names.get(name)?];
        shard.tensors.get(name).map(|(_, s, _)| s.as_slice())
    }

    /// Reads `name` as f32, checking that its shape is `expected`.
    pub fn tensor(&self, name: &str, expected: &[usize]) -> Result<Tensor, ModelError> {
        let Some(&i) = self.names.get(name) else {
            return Err(self.missing(name));
        };
        let shard = &self.shards[i];
        let (dtype, shape, (start, end)) = &shard.tensors[name];
        if shape.as_slice() != expected {
            return Err(ModelError::Shape {
                name: name.into(),
                file: shard.path.clone(),
                found: shape.clone(),
                expected: expected.to_vec(),
            });
        }
        let bytes = &shard.map[shard.header + start..shard.header + end];
        let data: Vec<f32> = match dtype {
            Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => {
                return Err(ModelError::Dtype {
                    name: name.into(),
                    file: shard.path.clone(),
                    dtype: format!("{other:?}"),
                });
            }
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
        self.shards.iter().flat_map(|s| s.tensors.values()).map(|(d, _, _)| format!("{d:?}")).next()
    }
}

impl Shard {
    fn open(path: PathBuf) -> Result<Self, ModelError> {
        let file = std::fs::File::open(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        // SAFETY: the map is read-only and private to this process; a checkpoint changed by
        // another process while mvb runs is outside what mvb can defend against, as in every
        // program that memory-maps its inputs.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| ModelError::Io { path: path.clone(), source })?;
        let (header_len, metadata) = SafeTensors::read_metadata(&map).map_err(|e| ModelError::Format {
            path: path.clone(),
            message: format!("not a valid safetensors file: {e}"),
        })?;
        let tensors = metadata
            .tensors()
            .into_iter()
            .map(|(name, info)| (name, (info.dtype, info.shape.clone(), info.data_offsets)))
            .collect();
        Ok(Shard { path, map, header: 8 + header_len, tensors })
    }
}
