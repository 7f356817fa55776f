//! The image-feature cache of `mvb run`: `<out>/cache/<model>--<dataset>--<split>.safetensors`,
//! the features of one split with its sample ids and labels, keyed by a fingerprint of the
//! content hashes (SHA-256) of the checkpoint files, the plugin and the data folder as the run's
//! provenance records them, the split, the limit and the mvb version, and
//! holding a SHA-256 of its content that is verified on every read. A stale, unreadable or
//! damaged file is recomputed (a damaged one with a notice); a failed write costs only a
//! recompute next time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::config::DatasetSpec;
use super::error::RunError;
use crate::data::Split;
use crate::eval::zeroshot::{self, Encoded};
use crate::model::ContrastiveModel;
use crate::plugin::Dataset;
use crate::tensor::Tensor;
use crate::util::{hex, write_atomic};

/// The folder of the feature cache inside the output folder.
pub const CACHE_DIR: &str = "cache";

/// Which features: a model's name, a dataset, one of its splits and a limit.
#[derive(Debug, Clone)]
pub(super) struct Request<'a> {
    /// The model's name in the configuration.
    pub model: &'a str,
    /// The dataset.
    pub dataset: &'a DatasetSpec,
    /// The split.
    pub split: Split,
    /// At most this many samples.
    pub limit: Option<u64>,
    /// The content hashes of the model, data folder and plugin (the run's provenance).
    pub inputs: Inputs,
}

/// The SHA-256 of each input the features depend on, as the run's provenance records them.
#[derive(Debug, Clone, Default)]
pub(super) struct Inputs {
    /// The model's files.
    pub model: Option<String>,
    /// Every file of the dataset's data folder.
    pub data: Option<String>,
    /// The dataset plugin's component.
    pub plugin: Option<String>,
}

/// The features of `request`, from the cache in `dir` when its fingerprint matches, else
/// encoded (calling `status` with the images encoded so far) and cached.
pub(super) fn features(
    dir: &Path,
    model: &ContrastiveModel,
    dataset: &mut Dataset,
    request: Request<'_>,
    status: &mut dyn FnMut(String),
) -> Result<Encoded, RunError> {
    let Request { model: name, dataset: spec, split, limit, ref inputs } = request;
    let file = dir.join(format!("{}--{}--{split}.safetensors", file_safe(name), file_safe(&spec.name)));
    let fp = fingerprint(model, dataset, (split, limit), inputs);
    if let Some(encoded) = read(&file, &fp) {
        return Ok(encoded);
    }
    let context = format!("{name} on {} {split}", spec.name);
    let encoded = zeroshot::encode_split(model, dataset, split, limit, |done, total| {
        status(format!("{context}: encoding {done}/{total} images"));
    })
    .map_err(|error| RunError::ZeroShot { context: context.clone(), error })?;
    if encoded.ids.is_empty() {
        return Err(RunError::Usage(format!("{context}: the split is empty")));
    }
    std::fs::create_dir_all(dir).map_err(|e| RunError::io(dir, e))?;
    if let Err(e) = write(&file, &fp, &encoded) {
        tracing::warn!("cannot cache features: {e}");
    }
    Ok(encoded)
}

/// A file-name-safe form of `name`.
fn file_safe(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    if safe == name { safe } else { format!("{safe}-{}", &hex(&Sha256::digest(name.as_bytes()))[..8]) }
}

/// What the features of one split depend on: the content of the model, data and plugin
/// (SHA-256, not names, sizes or times: a byte changed in any of them is a new key), the dataset,
/// split and limit, the mvb version, and the device and precision when not the CPU's.
fn fingerprint(
    model: &ContrastiveModel,
    dataset: &Dataset,
    (split, limit): (Split, Option<u64>),
    inputs: &Inputs,
) -> String {
    let mut h = Sha256::new();
    let mut part = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    part("mvb image features v2");
    part(env!("CARGO_PKG_VERSION"));
    for hash in [&inputs.model, &inputs.data, &inputs.plugin] {
        part(hash.as_deref().unwrap_or("unknown"));
    }
    part(dataset.plugin());
    part(&dataset.info().name);
    part(split.as_str());
    part(&limit.map_or("all".to_owned(), |l| l.to_string()));
    if model.compute_tag() != "cpu" {
        part(&model.compute_tag());
    }
    hex(&h.finalize())
}

/// Reads cached features; `None` when absent, stale or unreadable.
fn read(file: &Path, fingerprint: &str) -> Option<Encoded> {
    let bytes = std::fs::read(file).ok()?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).ok()?;
    let meta = meta.metadata().as_ref()?;
    if meta.get("fingerprint").map(String::as_str) != Some(fingerprint) {
        return None;
    }
    let ids: Vec<String> = serde_json::from_str(meta.get("ids")?).ok()?;
    let labels: Vec<Vec<u32>> = serde_json::from_str(meta.get("labels")?).ok()?;
    let st = safetensors::SafeTensors::deserialize(&bytes).ok()?;
    let view = st.tensor("features").ok()?;
    if meta.get("sha256").map(String::as_str)
        != Some(checksum(view.data(), meta.get("ids")?, meta.get("labels")?).as_str())
    {
        tracing::warn!("{}: cached features fail their checksum; recomputing them", file.display());
        return None;
    }
    let shape = view.shape().to_vec();
    if view.dtype() != safetensors::Dtype::F32 || shape.len() != 2 || shape[0] != ids.len() || labels.len() != ids.len()
    {
        return None;
    }
    let data: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Some(Encoded { ids, labels, features: Tensor::new(shape, data) })
}

/// Writes features with their fingerprint, ids and labels (atomically).
fn write(file: &Path, fingerprint: &str, encoded: &Encoded) -> Result<(), RunError> {
    let fail = |e: &dyn std::fmt::Display| RunError::Usage(format!("{}: {e}", file.display()));
    let bytes: Vec<u8> = encoded.features.data().iter().flat_map(|v| v.to_le_bytes()).collect();
    let shape = encoded.features.shape().to_vec();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, &bytes).map_err(|e| fail(&e))?;
    let ids = serde_json::to_string(&encoded.ids).map_err(|e| fail(&e))?;
    let labels = serde_json::to_string(&encoded.labels).map_err(|e| fail(&e))?;
    let metadata = HashMap::from([
        ("fingerprint".to_owned(), fingerprint.to_owned()),
        ("sha256".to_owned(), checksum(&bytes, &ids, &labels)),
        ("ids".to_owned(), ids),
        ("labels".to_owned(), labels),
    ]);
    let out = safetensors::serialize(vec![("features", view)], Some(metadata)).map_err(|e| fail(&e))?;
    write_atomic(file, &out).map_err(|e| RunError::io(file, e))
}

/// The SHA-256 of a cache entry's feature bytes, ids and labels.
fn checksum(features: &[u8], ids: &str, labels: &str) -> String {
    let mut h = Sha256::new();
    for part in [features, ids.as_bytes(), labels.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex(&h.finalize())
}

/// Where features are cached for a run writing into `out`.
pub(super) fn cache_dir(out: &Path) -> PathBuf {
    out.join(CACHE_DIR)
}
