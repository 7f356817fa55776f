//! Kernel benchmarks on the GPU (`mvb bench kernels`, `benches/kernels.rs`): the fused kernels
//! next to their unfused cuBLAS paths in the same run, both next to the device's measured dense
//! bf16 GEMM rate (the end-to-end ViT-B/16 row, which needs a model, is added by the CLI). Times
//! come from CUDA events around `iters` back-to-back launches after warm-up launches.

use cudarc::driver::sys::CUevent_flags;

use super::attention::{self as attn, AttnArgs, AttnKernel, AttnShape, Layout};
use super::gemm::{Operand, gemm};
use super::lora::{self, LoraArgs, LoraShape, Segments, SgmvKernel};
use super::{CudaError, DType, Gpu, GpuBuf};

/// Mean milliseconds per call of `f` over `iters` calls, after `warmup` calls.
pub fn time_ms(
    gpu: &Gpu,
    warmup: usize,
    iters: usize,
    mut f: impl FnMut() -> Result<(), CudaError>,
) -> Result<f64, CudaError> {
    for _ in 0..warmup {
        f()?;
    }
    let ctx = gpu.context();
    let (start, end) =
        (ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?, ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?);
    start.record(gpu.stream())?;
    for _ in 0..iters.max(1) {
        f()?;
    }
    end.record(gpu.stream())?;
    end.synchronize()?;
    Ok(f64::from(start.elapsed_ms(&end)?) / iters.max(1) as f64)
}

/// Deterministic pseudo-random values in [-0.5, 0.5) (cheap to make for large buffers).
pub fn pattern(n: usize, salt: usize) -> Vec<f32> {
    (0..n).map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(salt * 40_503)) % 1000) as f32 / 1000.0 - 0.5).collect()
}

/// The dense bf16 GEMM rate (`n×n×n`, cuBLAS), TFLOP/s.
pub fn dense_gemm_tflops(gpu: &Gpu, n: usize) -> Result<f64, CudaError> {
    let dt = DType::Bf16;
    let a = GpuBuf::from_host(gpu, dt, &pattern(n * n, 1))?;
    let b = GpuBuf::from_host(gpu, dt, &pattern(n * n, 2))?;
    let mut c = GpuBuf::alloc(gpu, dt, n * n)?;
    let ms = time_ms(gpu, 3, 10, || {
        gemm(gpu, (n, n, n), Operand::n(a.view(), n), Operand::t(b.view(), n), c.view_mut(), n, 1.0, 0.0)
    })?;
    Ok(2.0 * (n as f64).powi(3) / (ms * 1e-3) / 1e12)
}

/// One measured path.
#[derive(Debug, Clone, Copy)]
pub struct Measure {
    /// Milliseconds per call.
    pub ms: f64,
    /// Useful TFLOP/s.
    pub tflops: f64,
    /// GB/s over the bytes that must move at least once.
    pub gbs: f64,
}

impl Measure {
    fn new(ms: f64, flops: f64, bytes: f64) -> Measure {
        Measure { ms, tflops: flops / (ms * 1e-3) / 1e12, gbs: bytes / (ms * 1e-3) / 1e9 }
    }
}

/// A fused path next to its unfused path.
#[derive(Debug, Clone)]
pub struct Row {
    /// `attention` or `lora`.
    pub op: &'static str,
    /// The shape, in words.
    pub shape: String,
    /// The fused kernel(s).
    pub fused: Measure,
    /// cuBLAS GEMMs + separate softmax / adds.
    pub unfused: Measure,
}

impl Row {
    /// Unfused time over fused time.
    pub fn speedup(&self) -> f64 {
        self.unfused.ms / self.fused.ms
    }
}

/// Head-major operands for attention at `shape` (deterministic values) and the output.
#[derive(Debug)]
pub struct AttnInputs {
    q: GpuBuf,
    k: GpuBuf,
    v: GpuBuf,
    o: GpuBuf,
    shape: AttnShape,
}

impl AttnInputs {
    /// Allocates and fills q, k, v and the output in `dt`.
    pub fn new(gpu: &Gpu, dt: DType, s: &AttnShape) -> Result<Self, CudaError> {
        let (nq, nkv) = (s.batch * s.heads * s.q_len * s.head_dim, s.batch * s.heads * s.kv_len * s.head_dim);
        Ok(AttnInputs {
            q: GpuBuf::from_host(gpu, dt, &pattern(nq, 3))?,
            k: GpuBuf::from_host(gpu, dt, &pattern(nkv, 4))?,
            v: GpuBuf::from_host(gpu, dt, &pattern(nkv, 5))?,
            o: GpuBuf::alloc(gpu, dt, nq)?,
            shape: *s,
        })
    }

    /// The fused kernel (`kernel`, or the one [`attn::attention`] picks) on these operands.
    pub fn fused(&mut self, gpu: &Gpu, kernel: Option<AttnKernel>) -> Result<(), CudaError> {
        let s = self.shape;
        let lq = Layout::head_major(s.heads, s.q_len, s.head_dim);
        let lkv = Layout::head_major(s.heads, s.kv_len, s.head_dim);
        let args = AttnArgs {
            q: self.q.view(),
            k: self.k.view(),
            v: self.v.view(),
            layouts: [lq, lkv, lkv, lq],
            key_mask: None,
            shape: s,
            scale: None,
        };
        attn::attention(gpu, &args, self.o.view_mut(), kernel)
    }

    /// The unfused path on these operands.
    pub fn unfused(&mut self, gpu: &Gpu, scratch: &mut attn::UnfusedScratch) -> Result<(), CudaError> {
        let qkv = (self.q.view(), self.k.view(), self.v.view());
        attn::attention_unfused(gpu, qkv, self.o.view_mut(), &self.shape, scratch)
    }
}

/// Fused and unfused attention at `shape` (head-major operands, bf16).
pub fn attention_row(gpu: &Gpu, shape: AttnShape, iters: usize) -> Result<Row, CudaError> {
    let dt = DType::Bf16;
    let s = shape;
    let mut inputs = AttnInputs::new(gpu, dt, &s)?;
    let fused = time_ms(gpu, 3, iters, || inputs.fused(gpu, None))?;
    let mut scratch = attn::UnfusedScratch::new(gpu, dt, &s)?;
    let unfused = time_ms(gpu, 3, iters, || inputs.unfused(gpu, &mut scratch))?;
    let (flops, bytes) = (s.flops(), s.bytes(dt));
    Ok(Row {
        op: "attention",
        shape: format!(
            "{} b{} h{} d{} seq {}{}",
            if s.causal { "causal" } else { "encoder" },
            s.batch,
            s.heads,
            s.head_dim,
            s.q_len,
            if s.kv_len != s.q_len { format!(" kv {}", s.kv_len) } else { String::new() }
        ),
        fused: Measure::new(fused, flops, bytes),
        unfused: Measure::new(unfused, flops, bytes),
    })
}

/// Operands for one LoRA layer: `tokens` rows split evenly over `adapters` (at most one per row),
/// deterministic values, the output, the scratch of both paths.
#[derive(Debug)]
pub struct LoraInputs {
    inputs: [GpuBuf; 4],
    y: GpuBuf,
    t: GpuBuf,
    delta: GpuBuf,
    /// The row segments and their adapters.
    pub segments: Segments,
    /// The layer's sizes.
    pub shape: LoraShape,
}

impl LoraInputs {
    /// Allocates and fills the operands in `dt` for a `d × d` layer of rank `rank`.
    pub fn new(gpu: &Gpu, dt: DType, tokens: usize, d: usize, rank: usize, adapters: usize) -> Result<Self, CudaError> {
        let shape = LoraShape { d_in: d, d_out: d, rank, adapters };
        let used = adapters.min(tokens);
        let mut starts: Vec<usize> = (0..=used).map(|i| i * tokens / used).collect();
        starts.dedup();
        let ids: Vec<i32> = (0..starts.len() - 1).map(|i| i as i32).collect();
        Ok(LoraInputs {
            inputs: [
                GpuBuf::from_host(gpu, dt, &pattern(tokens * d, 6))?,
                GpuBuf::from_host(gpu, dt, &pattern(d * d, 7))?,
                GpuBuf::from_host(gpu, dt, &pattern(adapters * rank * d, 8))?,
                GpuBuf::from_host(gpu, dt, &pattern(adapters * d * rank, 9))?,
            ],
            y: GpuBuf::alloc(gpu, dt, tokens * d)?,
            t: GpuBuf::alloc(gpu, dt, tokens * rank)?,
            delta: GpuBuf::alloc(gpu, dt, tokens * d)?,
            segments: Segments::new(gpu, &starts, &ids)?,
            shape,
        })
    }

    /// How many adapters the rows actually use.
    pub fn adapters_used(&self) -> usize {
        self.segments.iter().count()
    }

    /// The fused path (`kernel`, or the SGMV kernel it picks) on these operands.
    pub fn fused(&mut self, gpu: &Gpu, kernel: Option<SgmvKernel>) -> Result<(), CudaError> {
        let args = lora_args(&self.inputs);
        let out = (self.y.view_mut(), self.t.view_mut());
        lora::lora_fused(gpu, &args, out, &self.shape, &self.segments, kernel)
    }

    /// The unfused path on these operands.
    pub fn unfused(&mut self, gpu: &Gpu) -> Result<(), CudaError> {
        let args = lora_args(&self.inputs);
        let out = (self.y.view_mut(), self.t.view_mut(), self.delta.view_mut());
        lora::lora_unfused(gpu, &args, out, &self.shape, &self.segments)
    }
}

/// The arguments over `[x, w, a, b]` (scale 2).
fn lora_args([x, w, a, b]: &[GpuBuf; 4]) -> LoraArgs<'_> {
    LoraArgs { x: x.view(), w: w.view(), a: a.view(), b: b.view(), scale: 2.0 }
}

/// Fused (cuBLAS + SGMV) and unfused LoRA for `tokens` rows split evenly over `adapters`.
pub fn lora_row(
    gpu: &Gpu,
    tokens: usize,
    d: usize,
    rank: usize,
    adapters: usize,
    iters: usize,
) -> Result<Row, CudaError> {
    let dt = DType::Bf16;
    let mut inputs = LoraInputs::new(gpu, dt, tokens, d, rank, adapters)?;
    let fused = time_ms(gpu, 3, iters, || inputs.fused(gpu, None))?;
    let unfused = time_ms(gpu, 3, iters, || inputs.unfused(gpu))?;
    let (used, shape) = (inputs.adapters_used(), inputs.shape);
    let (flops, bytes) = (shape.flops(tokens), shape.bytes(tokens, used, dt));
    Ok(Row {
        op: "lora",
        shape: format!("tokens {tokens} d {d} r {rank} adapters {used}"),
        fused: Measure::new(fused, flops, bytes),
        unfused: Measure::new(unfused, flops, bytes),
    })
}

/// The attention shapes of the issue: ViT encoders (batch 64, 12 heads, head dim 64) and
/// decoders (causal, head dim 128); `quick` keeps one of each.
pub fn attention_shapes(quick: bool) -> Vec<AttnShape> {
    let vit =
        |seq| AttnShape { batch: 64, heads: 12, kv_heads: 12, q_len: seq, kv_len: seq, head_dim: 64, causal: false };
    let dec =
        |seq| AttnShape { batch: 2, heads: 32, kv_heads: 32, q_len: seq, kv_len: seq, head_dim: 128, causal: true };
    if quick {
        return vec![vit(197), dec(1024)];
    }
    let mut v: Vec<AttnShape> = [50, 197, 577, 1025].into_iter().map(vit).collect();
    v.extend([512, 1024, 2048, 4096].into_iter().map(dec));
    v
}

/// The LoRA shapes: (tokens, d, rank, adapters).
pub fn lora_shapes(quick: bool) -> Vec<(usize, usize, usize, usize)> {
    if quick {
        return vec![(16, 768, 16, 1), (4096, 4096, 64, 4)];
    }
    let mut v = Vec::new();
    for tokens in [1, 16, 256, 4096] {
        for d in [768, 4096] {
            for rank in [8, 16, 64, 128] {
                for adapters in [1, 4] {
                    v.push((tokens, d, rank, adapters));
                }
            }
        }
    }
    v
}

/// The whole suite as a Markdown table (the device, the dense rate, fused next to unfused).
pub fn run_suite(gpu: &Gpu, quick: bool, mut progress: impl FnMut(&str)) -> Result<String, CudaError> {
    let iters = if quick { 5 } else { 20 };
    let dense = dense_gemm_tflops(gpu, 8192)?;
    progress(&format!("dense bf16 GEMM 8192^3: {dense:.1} TFLOP/s"));
    let mut out = String::new();
    let (major, minor) = gpu.capability();
    out.push_str(&format!(
        "device: {} (sm_{major}{minor}); dense bf16 GEMM (cuBLAS, 8192^3): {dense:.1} TFLOP/s\n\n",
        gpu.name()
    ));
    out.push_str("| op | shape | fused ms | fused TFLOP/s | fused GB/s | % of dense GEMM | unfused ms | unfused TFLOP/s | speedup |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    let mut line = |r: &Row| {
        let text = format!(
            "| {} | {} | {:.4} | {:.1} | {:.0} | {:.0}% | {:.4} | {:.1} | {:.2}x |\n",
            r.op,
            r.shape,
            r.fused.ms,
            r.fused.tflops,
            r.fused.gbs,
            100.0 * r.fused.tflops / dense,
            r.unfused.ms,
            r.unfused.tflops,
            r.speedup()
        );
        progress(text.trim_end());
        out.push_str(&text);
    };
    for s in attention_shapes(quick) {
        line(&attention_row(gpu, s, iters)?);
    }
    for (tokens, d, r, a) in lora_shapes(quick) {
        line(&lora_row(gpu, tokens, d, r, a, iters)?);
    }
    Ok(out)
}
