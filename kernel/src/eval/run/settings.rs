//! The `[judge]` and `[lora]` sections of a run configuration (`config.rs` reads them; the
//! judging and FT-LoRA units run by them): the judge's model and plugin, and MedVLMBench's FT-LoRA
//! hyper-parameters (`model/clip_base.py` of github.com/ubc-tea/MedVLMBench) as defaults.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::RunError;
use crate::plugin::{Builtin, PluginSource};
use crate::train::LoraConfig;
use crate::train::lora::LoraShape;

/// The built-in judge used when `[judge]` names none.
pub const DEFAULT_JUDGE: &str = "gpt-score";

/// `[judge]` of a run configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSettings {
    /// The judge's language model: a `.gguf` file or a Hugging Face folder.
    pub model: String,
    /// A built-in judge plugin (default `gpt-score`) or a judge plugin file (`.wasm`).
    #[serde(default = "default_judge")]
    pub plugin: String,
    /// Ask the judge to constrain its model's replies (always parseable; beyond the original).
    #[serde(default)]
    pub constrained: bool,
    /// Run without the judge, after one notice, when `model` does not exist (the embedded
    /// default's SmolLM2, fetched by `tools/fetch_smollm2.sh`). Not recorded.
    #[serde(default, skip_serializing)]
    pub optional: bool,
}

fn default_judge() -> String {
    DEFAULT_JUDGE.to_owned()
}

impl JudgeSettings {
    /// `constrained` or `free-form`.
    pub fn mode(&self) -> &'static str {
        if self.constrained { "constrained" } else { "free-form" }
    }

    /// The judge plugin's component.
    pub fn source(&self) -> Result<PluginSource, RunError> {
        if self.plugin.ends_with(".wasm") {
            return PluginSource::from_file(Path::new(&self.plugin))
                .map_err(|error| RunError::Judge { context: format!("judge plugin {}", self.plugin), error });
        }
        Builtin::find(&self.plugin)
            .filter(|b| b.world == crate::plugin::World::Judge)
            .map(Builtin::source)
            .ok_or_else(|| RunError::Usage(format!("[judge] plugin `{}` is not a built-in judge", self.plugin)))
    }

    /// Makes relative paths absolute against `base`.
    pub(super) fn resolve_paths(&mut self, base: &Path) {
        if Path::new(&self.model).is_relative() {
            self.model = base.join(&self.model).display().to_string();
        }
        if self.plugin.ends_with(".wasm") && Path::new(&self.plugin).is_relative() {
            self.plugin = base.join(&self.plugin).display().to_string();
        }
    }
}

/// `[lora]` of a run configuration; the defaults are MedVLMBench's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraSettings {
    /// LoRA rank.
    pub r: usize,
    /// `lora_alpha`.
    pub alpha: f32,
    /// `lora_dropout`.
    pub dropout: f32,
    /// AdamW learning rate.
    pub lr: f64,
    /// Passes over the training split.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Seed of the head, the LoRA initialisation, the order and the dropout masks.
    pub seed: u32,
}

impl Default for LoraSettings {
    fn default() -> Self {
        let c = LoraConfig::default();
        LoraSettings {
            r: c.lora.r,
            alpha: c.lora.alpha,
            dropout: c.lora.dropout,
            lr: c.lr,
            epochs: c.epochs,
            batch_size: c.batch_size,
            weight_decay: c.weight_decay,
            seed: c.seed,
        }
    }
}

impl From<LoraSettings> for LoraConfig {
    fn from(s: LoraSettings) -> Self {
        LoraConfig {
            lora: LoraShape { r: s.r, alpha: s.alpha, dropout: s.dropout },
            lr: s.lr,
            epochs: s.epochs,
            batch_size: s.batch_size,
            weight_decay: s.weight_decay,
            seed: s.seed,
        }
    }
}

impl LoraSettings {
    /// What makes the settings unusable, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.r == 0 || self.epochs == 0 || self.batch_size == 0 {
            return Some("lora `r`, `epochs` and `batch_size` must be at least 1".into());
        }
        let finite = |v: f64| v.is_finite() && v >= 0.0;
        if !(finite(self.lr) && finite(self.weight_decay) && finite(f64::from(self.alpha))) {
            return Some("lora `lr`, `weight_decay` and `alpha` must be finite and >= 0".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Some(format!("lora `dropout` must be in [0, 1), got {}", self.dropout));
        }
        None
    }
}
