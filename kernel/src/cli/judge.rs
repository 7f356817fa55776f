//! `mvb judge`: one judgement of a candidate answer by a judge plugin (`gpt-score` by default)
//! asking a local language model, as `mvb run` makes them for open VQA questions.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use mvb::backend::{DeviceRequest, Precision};
use mvb::eval::run::judging::LocalModel;
use mvb::eval::run::settings::{DEFAULT_JUDGE, JudgeSettings};
use mvb::model::causal::CausalLm;
use mvb::plugin::{ErrorKind, JudgeOptions, PluginHost};

#[derive(Debug, Args)]
pub(crate) struct JudgeArgs {
    /// The judge's language model: a `.gguf` file or a Hugging Face folder.
    #[arg(long)]
    model: PathBuf,
    /// The question.
    #[arg(long)]
    question: String,
    /// The reference (true) answer.
    #[arg(long)]
    reference: String,
    /// The answer to judge.
    #[arg(long)]
    candidate: String,
    /// A built-in judge plugin or a judge plugin file (`.wasm`).
    #[arg(long, default_value = DEFAULT_JUDGE)]
    plugin: String,
    /// Constrain the model's reply so that it always parses (beyond the original protocol).
    #[arg(long)]
    constrained: bool,
    /// Where the model runs: `cpu`, `cuda` or `auto`.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    device: DeviceRequest,
    /// Arithmetic: f32, bf16 or f16 (GPU only).
    #[arg(long, value_name = "TYPE")]
    precision: Option<Precision>,
}

pub(crate) fn run(host: &PluginHost, args: &JudgeArgs) -> anyhow::Result<()> {
    let settings = JudgeSettings {
        model: args.model.display().to_string(),
        plugin: args.plugin.clone(),
        constrained: args.constrained,
        optional: false,
    };
    let source = settings.source()?;
    let device = args.device.resolve(args.precision)?;
    let lm =
        CausalLm::load(&args.model, &device, false).with_context(|| format!("loading {}", args.model.display()))?;
    let mut judge = host.judge(&source, Some(Arc::new(LocalModel(lm))))?;
    let options = JudgeOptions { constrained: args.constrained };
    match judge.judge(&args.question, &args.reference, &args.candidate, options) {
        Ok(v) => {
            let info = judge.info();
            println!("score: {} (of {} to {}; {} mode)", v.score, info.min_score, info.max_score, settings.mode());
            println!("model calls: {}", v.model_calls);
            println!("rationale: {}", v.rationale);
            Ok(())
        }
        Err(e) if e.kind() == Some(ErrorKind::Undefined) => {
            anyhow::bail!("no verdict ({} mode): {e}", settings.mode())
        }
        Err(e) => Err(e.into()),
    }
}
