//! `mvb bench encoder`: image-encoder throughput on random weights at real ViT shapes, on
//! this machine's CPU (the figure `tools/bench_vs_torch.py` compares with PyTorch).

use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use mvb::backend::{DeviceRequest, Precision};
use mvb::model::synthetic::{VitShape, write_random_clip};
use mvb::model::{Config, Weights, clip::Clip};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Arch {
    /// CLIP ViT-B/32, 224 px.
    B32,
    /// CLIP ViT-B/16, 224 px.
    B16,
}

#[derive(Debug, Args)]
pub(crate) struct EncoderArgs {
    /// The architecture.
    #[arg(long, value_enum, default_value = "b32")]
    arch: Arch,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Timed passes (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Store the random weights as bf16 (they are upcast to f32 on load).
    #[arg(long)]
    bf16: bool,
    /// The precision of the matrix products: f32 (the reference) or bf16 (bf16 operands, f32
    /// accumulation; AVX-512 BF16 where the CPU has it).
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// Where it runs: `cpu` or `cuda` (the GPU is synchronised before each clock stops).
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    device: DeviceRequest,
}

pub(crate) fn encoder(args: &EncoderArgs) -> anyhow::Result<()> {
    let shape = match args.arch {
        Arch::B32 => VitShape::B32,
        Arch::B16 => VitShape::B16,
    };
    let dir =
        random_clip_dir(format!("mvb-bench-{:?}-{}-{}", args.arch, args.bf16, std::process::id()), shape, args.bf16)?;
    let precision = args.precision;
    let device = args.device.resolve(Some(precision))?;
    let model = Weights::open(&dir).and_then(|w| Clip::load(&w, &device, &Config::open(&dir)?));
    let _ = std::fs::remove_dir_all(&dir);
    let model = model?;
    let n = args.batch * 3 * shape.image * shape.image;
    let pixels: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0).collect();
    let mut times = Vec::with_capacity(args.iters);
    for i in 0..=args.iters {
        let t = Instant::now();
        std::hint::black_box(model.image_features(&device, &pixels, args.batch)?);
        device.synchronize()?;
        if i > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let ips = args.batch as f64 / median;
    println!(
        "mvb {:?} {} {} batch {} threads {}: median {:.3} s/batch, {:.2} img/s, {:.1} GFLOP/s",
        args.arch,
        device.tag(),
        precision.name(),
        args.batch,
        rayon::current_num_threads(),
        median,
        ips,
        ips * shape.flops_per_image() / 1e9
    );
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct DecoderArgs {
    /// A decoder: a `.gguf` file or a Hugging Face folder.
    #[arg(long)]
    model: std::path::PathBuf,
    /// Prompt tokens per sequence.
    #[arg(long, default_value_t = 128)]
    prompt: usize,
    /// New tokens per sequence (greedy, no early stop).
    #[arg(long, default_value_t = 128)]
    new: usize,
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    batch: Vec<usize>,
    /// Run a GGUF's weights dequantised to f32.
    #[arg(long)]
    dequantize: bool,
    /// Timed runs of each measurement (after one warm-up when more than one); medians reported.
    #[arg(long, default_value_t = 1)]
    iters: usize,
    /// Where it runs: `cpu` or `cuda`.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    device: DeviceRequest,
    /// Arithmetic on the GPU: f32, bf16 or f16.
    #[arg(long, value_name = "TYPE")]
    precision: Option<Precision>,
    /// Attention on the GPU: the fused kernel, or the unfused cuBLAS-only baseline.
    #[arg(long, value_enum, default_value_t = AttentionPath::Fused)]
    attention: AttentionPath,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AttentionPath {
    /// FlashAttention-2 style fused kernel (`cuda/attention.cu`).
    Fused,
    /// cuBLAS `Q·Kᵀ`, a softmax kernel, cuBLAS `P·V` (the score matrix in memory).
    Unfused,
}

/// `mvb bench decoder`: prefill and decode tokens/s at each batch size, greedy, on the CPU or
/// the GPU (each step reads its logits back, so every clock stops after the device finished).
pub(crate) fn decoder(args: &DecoderArgs) -> anyhow::Result<()> {
    use mvb::model::causal::CausalLm;
    use mvb::model::generate::{Continue, GenerateOptions, Prompt, generate};
    let device = args.device.resolve(args.precision)?;
    let lm = CausalLm::load(&args.model, &device, args.dequantize)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let vocab = lm.model.config().vocab as u32;
    let gpu = device.gpu();
    if let Some(gpu) = gpu {
        gpu.set_unfused_attention(args.attention == AttentionPath::Unfused);
    } else if args.attention == AttentionPath::Unfused {
        anyhow::bail!("--attention unfused is a GPU baseline: use it with --device cuda");
    }
    for &batch in &args.batch {
        let prompts: Vec<Prompt> = (0..batch)
            .map(|b| {
                Prompt::text((0..args.prompt).map(|i| ((i * 7919 + b * 104_729) as u32 % (vocab - 1)) + 1).collect())
            })
            .collect();
        let prefill_only = GenerateOptions { max_new_tokens: 1, eos: vec![u32::MAX], ..GenerateOptions::default() };
        let opts = GenerateOptions { max_new_tokens: args.new + 1, ..prefill_only.clone() };
        let time = |opts: &GenerateOptions| -> anyhow::Result<f64> {
            let t = Instant::now();
            generate(&lm.model, &device, &prompts, opts, |_, _| Continue::Yes)?;
            Ok(t.elapsed().as_secs_f64())
        };
        // One run gives both: the prompts' first tokens come from the prefill's logits, every
        // later one from a decoding step, so the clock is read at the first token and at the end.
        let split = |opts: &GenerateOptions| -> anyhow::Result<(f64, f64)> {
            let t = Instant::now();
            let mut first = None;
            generate(&lm.model, &device, &prompts, opts, |_, _| {
                first.get_or_insert_with(Instant::now);
                Continue::Yes
            })?;
            let first = first.unwrap_or_else(Instant::now);
            Ok(((first - t).as_secs_f64(), first.elapsed().as_secs_f64().max(1e-9)))
        };
        if args.iters > 1 {
            split(&opts)?;
        }
        let (mut prefills, mut decodes) = (Vec::new(), Vec::new());
        for _ in 0..args.iters.max(1) {
            let (prefill, decode) = split(&opts)?;
            prefills.push(prefill);
            decodes.push(decode);
        }
        let (prefill, decode) = (median(&mut prefills), median(&mut decodes));
        // The attention calls' GPU time in one more (untimed) run: events around each call.
        let share = match gpu {
            Some(gpu) => {
                gpu.time_attention(true);
                let measured = (|| -> anyhow::Result<(f64, f64)> {
                    let prefill = time(&prefill_only)?;
                    let in_prefill = gpu.attention_ms()?;
                    let full = time(&opts)?;
                    Ok((gpu.attention_ms()? - in_prefill, (full - prefill) * 1e3))
                })();
                gpu.time_attention(false);
                let (in_decode, decode_ms) = measured?;
                format!(
                    ", attention {:.1} of {:.1} decode ms ({:.1}%)",
                    in_decode,
                    decode_ms,
                    100.0 * in_decode / decode_ms
                )
            }
            None => String::new(),
        };
        println!(
            "mvb decoder {} {} batch {batch} threads {}: prefill {:.1} tok/s ({} tokens in {:.3} s), decode {:.1} tok/s ({} steps in {:.3} s)",
            args.model.display(),
            device.tag(),
            rayon::current_num_threads(),
            (batch * args.prompt) as f64 / prefill,
            batch * args.prompt,
            prefill,
            (batch * args.new) as f64 / decode,
            args.new,
            decode,
        );
        if !share.is_empty() {
            println!("mvb decoder attention ({:?}) batch {batch}{share}", args.attention);
        }
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[derive(Debug, Args)]
pub(crate) struct LoraArgs {
    /// The architecture of the random CLIP whose image tower trains.
    #[arg(long, value_enum, default_value = "b32")]
    arch: Arch,
    /// Images per optimizer step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Timed steps (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Where it runs: `cpu` or `cuda`.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    device: DeviceRequest,
}

/// `mvb bench lora`: FT-LoRA training steps (forward, backward, AdamW) on a random CLIP image
/// tower at a real ViT shape, MedVLMBench's settings (r 8, alpha 32, dropout 0.05, every linear
/// layer and the position embedding), f32 (`tools/bench_lora_vs_torch.py` runs PyTorch + PEFT
/// next to it).
pub(crate) fn lora(args: &LoraArgs) -> anyhow::Result<()> {
    use mvb::model::ContrastiveModel;
    use mvb::train::{Head, LoraConfig, Trainer, lora::Adapter, lora::LoraShape, targets};
    let shape = match args.arch {
        Arch::B32 => VitShape::B32,
        Arch::B16 => VitShape::B16,
    };
    let dir = random_clip_dir(format!("mvb-bench-lora-{:?}-{}", args.arch, std::process::id()), shape, false)?;
    let device = args.device.resolve(Some(Precision::F32))?;
    let model = ContrastiveModel::load_dir(&dir, &device);
    let _ = std::fs::remove_dir_all(&dir);
    let model = model?;
    let side = shape.image;
    let adapter = Adapter::init(LoraShape::default(), &targets(&model), 1);
    let dim = model.image_features_from_pixels(&vec![0.0; 3 * side * side], 1)?.cols();
    let head = Head { classes: 2, dim, weight: vec![0.01; 2 * dim], bias: vec![0.0; 2] };
    let config = LoraConfig { batch_size: args.batch, ..LoraConfig::default() };
    let mut trainer = Trainer::new(&model, adapter, head, vec![1.0, 1.0], config)?;
    let pixels: Vec<f32> = (0..args.batch * 3 * side * side).map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0).collect();
    let labels: Vec<u32> = (0..args.batch as u32).map(|i| i % 2).collect();
    let mut times = Vec::with_capacity(args.steps);
    for i in 0..=args.steps.max(1) {
        let t = Instant::now();
        trainer.step(&pixels, &labels)?;
        device.synchronize()?;
        if i > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let step = median(&mut times);
    println!(
        "mvb lora {:?} {} f32 batch {} threads {}: median {:.3} s/step, {:.2} samples/s",
        args.arch,
        device.tag(),
        args.batch,
        rayon::current_num_threads(),
        step,
        args.batch as f64 / step
    );
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct PeakArgs {
    /// Seconds to measure.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
}

/// `mvb bench peak`: this CPU's measured f32 FMA peak over the rayon threads (the denominator
/// of the benchmarks' "fraction of peak").
pub(crate) fn peak(args: &PeakArgs) -> anyhow::Result<()> {
    let gflops = mvb::backend::cpu::probe::fma_peak_gflops(args.seconds);
    println!("mvb fma peak threads {}: {gflops:.1} GFLOP/s (f32)", rayon::current_num_threads());
    Ok(())
}

/// A random CLIP checkpoint written into a new folder `name` under the temporary directory,
/// the folder removed again when writing fails (a full disk).
fn random_clip_dir(name: String, shape: VitShape, bf16: bool) -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(name);
    if let Err(e) = write_random_clip(&dir, shape, bf16) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e).context("writing the random checkpoint");
    }
    Ok(dir)
}
