//! Typed access to a judge plugin. The `generation` import through which a judge asks the
//! kernel's native language model for text is served by `state` with a `generation::Generator`.

use std::sync::Arc;

use super::bindings::judge::Judge as JudgeWorld;
use super::bindings::judge::exports::mvb::plugin::judge_api::JudgeOptions as WitJudgeOptions;
use super::error::PluginError;
use super::generation::Generator;
use super::host::PluginHost;
use super::sandbox::Sandbox;
use super::source::PluginSource;
use super::text;

/// What a judge says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeInfo {
    /// Machine name.
    pub name: String,
    /// How it scores.
    pub description: String,
    /// Lowest score.
    pub min_score: f64,
    /// Highest score.
    pub max_score: f64,
}

/// A judge's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The score, within the judge's range.
    pub score: f64,
    /// Why.
    pub rationale: String,
    /// How many times the judge asked the model (0: decided without it).
    pub model_calls: u32,
}

/// How the host asks a judge to work (`judge-options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JudgeOptions {
    /// Ask for constrained replies.
    pub constrained: bool,
}

/// A running judge plugin instance.
pub struct JudgePlugin {
    sandbox: Sandbox,
    world: JudgeWorld,
    info: JudgeInfo,
}

impl std::fmt::Debug for JudgePlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JudgePlugin").field("info", &self.info).finish_non_exhaustive()
    }
}

impl PluginHost {
    /// Starts a judge plugin; `generator` serves its `generate` calls (without one they fail
    /// with `unavailable`).
    pub fn judge(
        &self,
        source: &PluginSource,
        generator: Option<Arc<dyn Generator>>,
    ) -> Result<JudgePlugin, PluginError> {
        let (mut sandbox, world) = self.start::<JudgeWorld>(source, None, generator)?;
        let raw = sandbox.run("info", |store| world.mvb_plugin_judge_api().call_info(store))?;
        if let Err(message) = text::identifier("judge name", &raw.name, text::MAX_NAME_BYTES) {
            return Err(sandbox.malformed("info", message));
        }
        let info = JudgeInfo {
            name: raw.name,
            description: text::free_text(&raw.description, text::MAX_LINE_BYTES),
            min_score: raw.min_score,
            max_score: raw.max_score,
        };
        if !(info.min_score.is_finite() && info.max_score.is_finite() && info.min_score < info.max_score) {
            let message =
                format!("score range [{}, {}] is not a finite, non-empty interval", info.min_score, info.max_score);
            return Err(sandbox.malformed("info", message));
        }
        Ok(JudgePlugin { sandbox, world, info })
    }
}

impl JudgePlugin {
    /// The judge's info.
    pub fn info(&self) -> &JudgeInfo {
        &self.info
    }

    /// Scores `candidate` against `reference` for `question`. A judge that found no verdict
    /// fails with kind `undefined` (see `PluginError::kind`).
    pub fn judge(
        &mut self,
        question: &str,
        reference: &str,
        candidate: &str,
        options: JudgeOptions,
    ) -> Result<Verdict, PluginError> {
        let api = self.world.mvb_plugin_judge_api();
        let options = WitJudgeOptions { constrained: options.constrained };
        let v = self.sandbox.call("judge", |store| api.call_judge(store, question, reference, candidate, options))?;
        if !(v.score.is_finite() && v.score >= self.info.min_score && v.score <= self.info.max_score) {
            let message = format!(
                "score {} is outside the declared range [{}, {}]",
                v.score, self.info.min_score, self.info.max_score
            );
            return Err(self.sandbox.malformed("judge", message));
        }
        // The rationale reaches reports and terminals: escaped and bounded like any plugin text.
        let rationale = text::free_text(&v.rationale, text::MAX_LINE_BYTES);
        Ok(Verdict { score: v.score, rationale, model_calls: v.model_calls })
    }
}
