//! `mvb generate`: text from a decoder (a Hugging Face folder or a GGUF file) or a LLaVA model
//! with `--image`, streamed as it is generated; the prompt becomes one user turn of the model's
//! chat template unless `--raw`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use mvb::backend::{DeviceRequest, Precision};
use mvb::data::load_file;
use mvb::model::causal::CausalLm;
use mvb::model::generate::GenerateOptions;
use mvb::model::llava::{self, Llava};

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// A decoder: a `.gguf` file, or a folder in Hugging Face layout (LlamaForCausalLM,
    /// Qwen2ForCausalLM, MistralForCausalLM, LlavaForConditionalGeneration).
    #[arg(long)]
    model: PathBuf,
    /// The prompt.
    #[arg(long)]
    prompt: String,
    /// An image (PNG or JPEG) for a vision-language model (LLaVA); with `--raw` the prompt must
    /// hold `<image>` itself.
    #[arg(long)]
    image: Option<PathBuf>,
    /// New tokens at most.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// 0 for greedy decoding (the default, MedVLMBench's setting).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Nucleus sampling threshold (with a temperature above 0).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A string that ends the reply (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Send the prompt as is, without the chat template.
    #[arg(long)]
    raw: bool,
    /// Run a GGUF's weights dequantised to f32 (the reference path).
    #[arg(long)]
    dequantize: bool,
    /// Where the model runs: `cpu`, `cuda` or `auto`.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    device: DeviceRequest,
    /// Arithmetic: f32, bf16 or f16 (GPU only).
    #[arg(long, value_name = "TYPE")]
    precision: Option<Precision>,
}

pub(crate) fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    if !(args.temperature >= 0.0 && args.temperature.is_finite() && args.top_p > 0.0 && args.top_p <= 1.0) {
        anyhow::bail!("--temperature must be >= 0 and --top-p in (0, 1]");
    }
    let device = args.device.resolve(args.precision)?;
    let opts = GenerateOptions {
        max_new_tokens: args.max_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        eos: Vec::new(),
        stop: args.stop.clone(),
    };
    let mut out = std::io::stdout().lock();
    let mut failed = None;
    let on_text = |_: usize, delta: &str| {
        if failed.is_none() {
            failed = out.write_all(delta.as_bytes()).and_then(|()| out.flush()).err();
        }
    };
    let loading = || format!("loading model {}", args.model.display());
    if llava::is_llava(&args.model) {
        let image = args.image.as_ref().context("this is a vision-language model: give it an --image")?;
        let pixels = load_file(image)?;
        let model = Llava::load_dir(&args.model, &device).with_context(loading)?;
        let prompt = model.prompt(&args.prompt, args.raw)?;
        model.generate(&[prompt], &[pixels], &opts, on_text)?;
    } else {
        if let Some(image) = &args.image {
            anyhow::bail!("--image {}: {} is a text-only model", image.display(), args.model.display());
        }
        let lm = CausalLm::load(&args.model, &device, args.dequantize).with_context(loading)?;
        let prompt = lm.prompt(&args.prompt, args.raw)?;
        lm.generate(&[prompt], &opts, on_text)?;
    }
    if failed.is_none() {
        let _ = writeln!(out);
    }
    Ok(())
}
