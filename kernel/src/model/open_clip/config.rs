//! Reading `open_clip_config.json` (open_clip's `model_cfg` with its `vision_cfg` and
//! `text_cfg`, and `preprocess_cfg`; `open_clip/model.py` `CLIPVisionCfg`/`CLIPTextCfg`,
//! `open_clip/transform.py` `PreprocessCfg`). Missing keys take open_clip's defaults; a key of
//! the wrong type, or a setting mvb does not implement, is an error naming the file and key.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::model::{ModelError, Preprocessor};

/// The file's name in a checkpoint folder.
pub const FILE: &str = "open_clip_config.json";

/// open_clip's `OPENAI_DATASET_MEAN` and `OPENAI_DATASET_STD`, its preprocessing defaults
/// (written as open_clip writes them; they round to the same f32).
#[allow(clippy::excessive_precision)]
const OPENAI_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
#[allow(clippy::excessive_precision)]
const OPENAI_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// The parsed `open_clip_config.json`.
#[derive(Debug)]
pub struct OpenClipConfig {
    /// The file, for messages.
    pub path: PathBuf,
    model: Value,
    preprocess: Value,
}

/// One section: `vision_cfg` or `text_cfg`.
#[derive(Debug, Clone, Copy)]
pub struct Section<'a> {
    name: &'static str,
    json: &'a Value,
    path: &'a Path,
}

impl OpenClipConfig {
    /// Reads `dir/open_clip_config.json`.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::Format { path: path.clone(), message: format!("invalid JSON: {e}") })?;
        let model = json
            .get("model_cfg")
            .filter(|m| m.is_object())
            .cloned()
            .ok_or_else(|| ModelError::Format { path: path.clone(), message: "no `model_cfg` object".into() })?;
        let preprocess = json.get("preprocess_cfg").cloned().unwrap_or(Value::Null);
        let config = OpenClipConfig { path, model, preprocess };
        for key in ["vision_cfg", "text_cfg"] {
            if !config.model.get(key).is_some_and(Value::is_object) {
                return Err(config.format(format!("no `model_cfg.{key}` object")));
            }
        }
        Ok(config)
    }

    /// A malformed-file error.
    pub fn format(&self, message: String) -> ModelError {
        ModelError::Format { path: self.path.clone(), message }
    }

    /// A not-implemented error.
    pub fn unsupported(&self, message: String) -> ModelError {
        ModelError::Unsupported { path: self.path.clone(), message }
    }

    /// `model_cfg.embed_dim` (required).
    pub fn embed_dim(&self) -> Result<usize, ModelError> {
        self.model
            .get("embed_dim")
            .and_then(Value::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| self.format("`model_cfg.embed_dim` is missing or not a positive integer".into()))
    }

    /// `model_cfg.quick_gelu` (default false): QuickGELU instead of GELU in open_clip's own towers.
    pub fn quick_gelu(&self) -> Result<bool, ModelError> {
        self.model_section().flag("quick_gelu", false)
    }

    /// Refuses model-level settings mvb does not implement.
    pub fn check_model(&self) -> Result<(), ModelError> {
        if self.model_section().has("init_logit_bias") {
            return Err(self.unsupported(
                "`model_cfg.init_logit_bias` (a SigLIP-style open_clip model) is not implemented".into(),
            ));
        }
        Ok(())
    }

    fn model_section(&self) -> Section<'_> {
        Section { name: "model_cfg", json: &self.model, path: &self.path }
    }

    /// `model_cfg.vision_cfg`.
    pub fn vision(&self) -> Section<'_> {
        Section { name: "model_cfg.vision_cfg", json: &self.model["vision_cfg"], path: &self.path }
    }

    /// `model_cfg.text_cfg`.
    pub fn text(&self) -> Section<'_> {
        Section { name: "model_cfg.text_cfg", json: &self.model["text_cfg"], path: &self.path }
    }

    /// The preprocessing of `preprocess_cfg` for an image tower of side `size`.
    pub fn preprocessor(&self, size: usize) -> Result<Preprocessor, ModelError> {
        let p = Section { name: "preprocess_cfg", json: &self.preprocess, path: &self.path };
        let triple = |key: &str, default: [f32; 3]| -> Result<[f32; 3], ModelError> {
            let Some(v) = p.get(key) else { return Ok(default) };
            let vals: Option<Vec<f32>> =
                v.as_array().map(|a| a.iter().filter_map(Value::as_f64).map(|x| x as f32).collect());
            match vals.as_deref() {
                Some(&[a, b, c]) => Ok([a, b, c]),
                Some(&[a]) => Ok([a, a, a]),
                _ => Err(p.bad(key, "3 numbers")),
            }
        };
        let (mean, std) = (triple("mean", OPENAI_MEAN)?, triple("std", OPENAI_STD)?);
        if let Some(s) = p.get("size").and_then(Value::as_u64).filter(|&s| s as usize != size) {
            return Err(self.format(format!("`preprocess_cfg.size` {s} differs from the image tower's {size}")));
        }
        let modes = (p.string("resize_mode", "shortest")?, p.string("interpolation", "bicubic")?);
        Preprocessor::open_clip(size, (&modes.0, &modes.1), mean, std, &self.path)
    }
}

impl<'a> Section<'a> {
    /// The value of `key`, `None` when absent or `null`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.json.get(key).filter(|v| !v.is_null())
    }

    /// Whether `key` is present (even `null`).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn bad(&self, key: &str, expected: &str) -> ModelError {
        ModelError::Format { path: self.path.to_owned(), message: format!("`{}.{key}` must be {expected}", self.name) }
    }

    /// A non-negative integer `key`, or `default`.
    pub fn uint(&self, key: &str, default: usize) -> Result<usize, ModelError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_u64().map(|v| v as usize).ok_or_else(|| self.bad(key, "a non-negative integer")),
        }
    }

    /// A boolean `key`, or `default`.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ModelError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.bad(key, "true or false")),
        }
    }

    /// A string `key`, or `default`.
    pub fn string(&self, key: &str, default: &str) -> Result<String, ModelError> {
        match self.get(key) {
            None => Ok(default.to_owned()),
            Some(v) => v.as_str().map(str::to_owned).ok_or_else(|| self.bad(key, "a string")),
        }
    }

    /// The square image side `key` (an integer, or two equal integers), or `default`.
    pub fn side(&self, key: &str, default: usize) -> Result<usize, ModelError> {
        match self.get(key).and_then(Value::as_array) {
            Some(a) => match a.iter().map(Value::as_u64).collect::<Option<Vec<_>>>().as_deref() {
                Some(&[h, w]) if h == w => Ok(h as usize),
                _ => Err(self.bad(key, "an integer or two equal integers (square images)")),
            },
            None => self.uint(key, default),
        }
    }

    /// Refuses `key` unless absent, `null`, `false`, empty, or one of `allowed` strings.
    pub fn require_str(&self, key: &str, allowed: &[&str]) -> Result<(), ModelError> {
        let ok = match self.get(key) {
            None | Some(Value::Bool(false)) => true,
            Some(Value::String(s)) => s.is_empty() || allowed.contains(&s.as_str()),
            Some(Value::Object(o)) => o.is_empty(),
            Some(_) => false,
        };
        if ok {
            return Ok(());
        }
        Err(ModelError::Unsupported {
            path: self.path.to_owned(),
            message: format!("`{}.{key}` = {} is not implemented", self.name, self.json[key]),
        })
    }

    /// Refuses each of `keys` unless absent, `null`, `false` or empty.
    pub fn require_off(&self, keys: &[&str]) -> Result<(), ModelError> {
        keys.iter().try_for_each(|k| self.require_str(k, &[]))
    }

    /// The layer-norm epsilon of `norm_kwargs.eps`, or `default`.
    pub fn eps(&self, default: f32) -> Result<f32, ModelError> {
        let Some(kw) = self.get("norm_kwargs") else { return Ok(default) };
        let obj = kw.as_object().ok_or_else(|| self.bad("norm_kwargs", "an object"))?;
        if let Some(k) = obj.keys().find(|k| *k != "eps") {
            return Err(ModelError::Unsupported {
                path: self.path.to_owned(),
                message: format!("`{}.norm_kwargs.{k}` is not implemented (only eps)", self.name),
            });
        }
        obj.get("eps").map_or(Ok(default), |e| {
            e.as_f64().map(|e| e as f32).ok_or_else(|| self.bad("norm_kwargs", "{\"eps\": number}"))
        })
    }
}
