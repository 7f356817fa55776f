//! What a run ran, by content: the SHA-256 of every model's files, every dataset's data folder
//! and plugin component, every metric plugin and the judge (plugin and model), recorded in each
//! header of `predictions.jsonl` and in `results.json`, stated by `report.md`, and compared by
//! `--resume`: a run whose inputs changed under the same paths (replaced weights, another plugin
//! build, edited data) is refused with one line naming what changed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::{DEFAULT_DATASET_PLUGIN, DatasetSpec, RunConfig};
use super::error::RunError;
use crate::eval::dataset::{builtin_dataset_plugin, data_dir};
use crate::plugin::PluginSource;
use crate::util::hex;

/// The content hashes of a run's inputs, by name (hex SHA-256).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Each model's files (a `.gguf` file, or a folder's files), by model name.
    pub models: BTreeMap<String, String>,
    /// Each dataset's data folder (every file under it, by relative path), by dataset name.
    pub data: BTreeMap<String, String>,
    /// Each dataset's plugin component, by dataset name.
    pub dataset_plugins: BTreeMap<String, String>,
    /// Each metric plugin component, by metric entry.
    pub metrics: BTreeMap<String, String>,
    /// The judge plugin component and the judge model, when the run has a judge.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub judge: BTreeMap<String, String>,
}

impl Provenance {
    /// Hashes everything `config` names.
    pub fn of(config: &RunConfig) -> Result<Provenance, RunError> {
        let mut p = Provenance::default();
        for m in &config.models {
            let path = crate::model::resolve(&m.path).unwrap_or_else(|_| PathBuf::from(&m.path));
            p.models.insert(m.name.clone(), model_sha256(&path)?);
        }
        for d in &config.datasets {
            let (plugin, data) = dataset_inputs(d)?;
            p.dataset_plugins.insert(d.name.clone(), component_sha256(&plugin));
            p.data.insert(d.name.clone(), folder_sha256(&data)?);
        }
        for m in &config.metrics {
            let source =
                m.source().map_err(|error| RunError::Metric { context: m.to_string(), error: Box::new(error) })?;
            p.metrics.insert(m.to_string(), component_sha256(&source));
        }
        if let Some(j) = &config.judge {
            p.judge.insert("plugin".into(), component_sha256(&j.source()?));
            p.judge.insert("model".into(), model_sha256(Path::new(&j.model))?);
        }
        Ok(p)
    }

    /// What differs from `old`, as `model `x``, `data of `d``, ... (empty when nothing).
    pub fn changes(&self, old: &Provenance) -> Vec<String> {
        let mut out = Vec::new();
        let mut diff = |what: &str, a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| {
            for (name, hash) in a {
                if b.get(name).is_some_and(|h| h != hash) {
                    out.push(format!("{what} `{name}` (sha256 {} now {})", &b[name][..12], &hash[..12]));
                }
            }
        };
        diff("the files of model", &self.models, &old.models);
        diff("the data of dataset", &self.data, &old.data);
        diff("the plugin of dataset", &self.dataset_plugins, &old.dataset_plugins);
        diff("the metric plugin", &self.metrics, &old.metrics);
        diff("the judge's", &self.judge, &old.judge);
        out
    }
}

/// A dataset's plugin component and data folder.
fn dataset_inputs(d: &DatasetSpec) -> Result<(PluginSource, PathBuf), RunError> {
    let fail = |error| RunError::Dataset { dataset: d.name.clone(), error };
    if let Some(file) = &d.plugin_file {
        let source = PluginSource::from_file(file).map_err(|e| fail(e.into()))?;
        let data = d.data.clone().ok_or_else(|| fail(crate::eval::dataset::OpenError::FileNeedsData))?;
        return Ok((source, data));
    }
    let builtin = builtin_dataset_plugin(d.plugin.as_deref().unwrap_or(DEFAULT_DATASET_PLUGIN)).map_err(fail)?;
    Ok((builtin.source(), data_dir(builtin, d.data.as_deref()).map_err(fail)?))
}

/// SHA-256 of a plugin component's bytes.
fn component_sha256(source: &PluginSource) -> String {
    hex(&Sha256::digest(&source.bytes))
}

/// SHA-256 over every regular file under `dir` (relative paths and contents, in path order).
fn folder_sha256(dir: &Path) -> Result<String, RunError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| RunError::io(&d, e))? {
            let path = e.map_err(|e| RunError::io(&d, e))?.path();
            let meta = std::fs::symlink_metadata(&path).map_err(|e| RunError::io(&path, e))?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f).to_string_lossy().into_owned();
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(model_sha256(&f)?.as_bytes());
    }
    Ok(hex(&h.finalize()))
}

/// SHA-256 of a model file, or of a folder's regular files (names and contents, in name order).
pub fn model_sha256(path: &Path) -> Result<String, RunError> {
    let mut h = Sha256::new();
    if path.is_file() {
        hash_file(&mut h, path)?;
        return Ok(hex(&h.finalize()));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| RunError::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for f in files {
        h.update(f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default().as_bytes());
        h.update([0]);
        hash_file(&mut h, &f)?;
    }
    Ok(hex(&h.finalize()))
}

fn hash_file(h: &mut Sha256, path: &Path) -> Result<(), RunError> {
    let mut f = File::open(path).map_err(|e| RunError::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| RunError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}
