//! Typed access to a judge plugin, and the `generation` import through which a judge asks the
//! kernel's native language model for text.

use std::sync::Arc;

use super::bindings::judge::mvb::plugin::generation;
use super::bindings::judge::{Judge as JudgeWorld, JudgePre};
use super::bindings::types as wit;
use super::check::World;
use super::sandbox::{Sandbox, State};
use super::{PluginError, PluginHost, PluginSource};

/// How a judge asked for text to be generated.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Optional system message.
    pub system: Option<String>,
    /// Token budget.
    pub max_tokens: u32,
    /// 0 for greedy decoding.
    pub temperature: f32,
    /// Stop strings.
    pub stop: Vec<String>,
}

/// A language model the host offers to judges.
pub trait Generator: Send + Sync {
    /// Generates a continuation of `prompt`, or says why not (one line).
    fn generate(&self, prompt: &str, options: &GenerateOptions) -> Result<String, String>;
}

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
        let component = self.component(source)?;
        self.expect_world(source, &component, World::Judge)?;
        let pre = self
            .linkers
            .judge
            .instantiate_pre(&component)
            .and_then(JudgePre::new)
            .map_err(|e| super::check::link_error(source, World::Judge, &e))?;
        let mut sandbox = Sandbox::new(&self.engine, &source.name, None, self.config.limits, generator)?;
        let world = sandbox.run("instantiate", |store| pre.instantiate(store))?;
        let raw = sandbox.run("info", |store| world.mvb_plugin_judge_api().call_info(store))?;
        let info = JudgeInfo {
            name: raw.name,
            description: raw.description,
            min_score: raw.min_score,
            max_score: raw.max_score,
        };
        if !(info.min_score.is_finite() && info.max_score.is_finite() && info.min_score < info.max_score) {
            return Err(PluginError::Malformed {
                plugin: source.name.clone(),
                call: "info".into(),
                message: format!(
                    "score range [{}, {}] is not a finite, non-empty interval",
                    info.min_score, info.max_score
                ),
            });
        }
        Ok(JudgePlugin { sandbox, world, info })
    }
}

impl JudgePlugin {
    /// The judge's info.
    pub fn info(&self) -> &JudgeInfo {
        &self.info
    }

    /// Scores `candidate` against `reference` for `question`.
    pub fn judge(&mut self, question: &str, reference: &str, candidate: &str) -> Result<Verdict, PluginError> {
        let api = self.world.mvb_plugin_judge_api();
        let v = self.sandbox.call("judge", |store| api.call_judge(store, question, reference, candidate))?;
        if !(v.score.is_finite() && v.score >= self.info.min_score && v.score <= self.info.max_score) {
            self.sandbox.retire("judge");
            return Err(PluginError::Malformed {
                plugin: self.sandbox.plugin().to_owned(),
                call: "judge".into(),
                message: format!(
                    "score {} is outside the declared range [{}, {}]",
                    v.score, self.info.min_score, self.info.max_score
                ),
            });
        }
        Ok(Verdict { score: v.score, rationale: v.rationale })
    }
}

impl generation::Host for State {
    fn generate(&mut self, prompt: String, options: generation::GenerateOptions) -> Result<String, wit::Error> {
        let Some(generator) = &self.generator else {
            return Err(wit::Error {
                kind: wit::ErrorKind::Unavailable,
                message: "this run has no judge language model configured".into(),
            });
        };
        let options = GenerateOptions {
            system: options.system,
            max_tokens: options.max_tokens,
            temperature: options.temperature,
            stop: options.stop,
        };
        generator.generate(&prompt, &options).map_err(|message| wit::Error { kind: wit::ErrorKind::Other, message })
    }
}
