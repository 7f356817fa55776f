//! The CUDA backend: every `cuda/*.cu` compiles with NVRTC for sm_80 and sm_90 (CI installs
//! NVRTC from PyPI and sets `MVB_REQUIRE_NVRTC=1`, so there this test fails instead of skipping),
//! and device-parameterised parity checks: the same kernel and model checks run on the CPU
//! backend (always) and on CUDA (skipped, with a `SKIP cuda` line, where no GPU can start), each
//! on fresh random inputs (the seed is printed on failure), with outputs poisoned with NaN before
//! every launch, against f64 CPU references: relative error (largest difference over largest
//! magnitude) at most 1e-4 for f32 and 1e-2 for bf16/f16; NaN never passes.

use mvb::backend::cpu::{self, Activation, AttentionMask};
use mvb::backend::cuda::attention::{self as attn, AttnArgs, AttnKernel, AttnShape, Layout};
use mvb::backend::cuda::lora::{self, LoraArgs, LoraShape, Segments, SgmvKernel};
use mvb::backend::cuda::reference;
use mvb::backend::cuda::{CudaError, DType, Gpu, GpuBuf, GpuInts, compile, elementwise, gemm, span};
use mvb::backend::{Device, DeviceRequest, Precision};
use mvb::model::ContrastiveModel;
use mvb::tensor::Tensor;

use crate::common::{Dev, Rng, assert_close, mvb, on_each_device, poisoned, root, upload};

// ---------------------------------------------------------------------------------------------
// NVRTC
// ---------------------------------------------------------------------------------------------

#[test]
fn nvrtc_compiles_every_kernel_for_sm80_and_sm90() {
    let required = std::env::var("MVB_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
    if let Err(e) = compile::nvrtc_available() {
        assert!(!required, "MVB_REQUIRE_NVRTC=1 but {e}");
        eprintln!("SKIP nvrtc compile check: {e}");
        return;
    }
    let (major, minor) = compile::nvrtc_version().expect("nvrtc version");
    for (file, source) in compile::SOURCES {
        for arch in ["sm_80", "sm_90"] {
            let compiled = compile::compile(file, source, arch, true).unwrap_or_else(|e| panic!("{e}"));
            assert!(!compiled.is_ptx && !compiled.image.is_empty(), "{file} {arch}: no CUBIN");
            for name in compile::kernel_names(file) {
                assert!(
                    compiled.image.windows(name.len()).any(|w| w == name.as_bytes()),
                    "{file} {arch}: the wrappers launch `{name}`, which is not in the CUBIN"
                );
            }
            let report = compile::resource_report(&compiled.log);
            eprintln!("nvrtc {major}.{minor} {file} {arch}: {} kernels, {} bytes", report.len(), compiled.image.len());
            for line in &report {
                eprintln!("  {line}");
            }
        }
    }
}

#[test]
fn includes_are_expanded() {
    let src = compile::expand_includes("#include \"common.cuh\"\nint x;\n");
    assert!(src.contains("mma16816") && src.ends_with("int x;\n") && !src.contains("#include \"common.cuh\""));
}

// ---------------------------------------------------------------------------------------------
// Without a GPU: typed errors, CPU fallback, no panic
// ---------------------------------------------------------------------------------------------

#[test]
fn device_requests_parse_and_resolve() {
    assert_eq!("cpu".parse::<DeviceRequest>(), Ok(DeviceRequest::Cpu));
    assert_eq!("CUDA".parse::<DeviceRequest>(), Ok(DeviceRequest::Cuda));
    assert_eq!("auto".parse::<DeviceRequest>(), Ok(DeviceRequest::Auto));
    assert!("tpu".parse::<DeviceRequest>().is_err());
    assert!(!DeviceRequest::Cpu.resolve(None).expect("resolves").is_cuda());
    assert_eq!(DeviceRequest::Cpu.resolve(Some(Precision::Bf16)).expect("resolves").tag(), "cpu-bf16");
    assert_eq!(DeviceRequest::Auto.resolve(None).expect("resolves").is_cuda(), Gpu::get().is_ok());
    assert_eq!("BF16".parse::<Precision>(), Ok(Precision::Bf16));
    assert!("f8".parse::<Precision>().is_err());
    assert!(Device::cpu_with(Precision::F16).is_err(), "f16 is GPU-only");
}

#[test]
fn a_missing_gpu_is_an_error_not_a_panic() {
    match Gpu::get() {
        Ok(gpu) => eprintln!("GPU present: {} (sm_{}{})", gpu.name(), gpu.capability().0, gpu.capability().1),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            let err = Device::cuda(Precision::Bf16).expect_err("no GPU here");
            assert!(
                matches!(
                    err,
                    CudaError::LibraryMissing { .. }
                        | CudaError::NoDevice(_)
                        | CudaError::Unsupported { .. }
                        | CudaError::Driver(_)
                        | CudaError::Panicked(_)
                ),
                "{err}"
            );
        }
    }
}

#[test]
fn zeroshot_with_device_cuda_falls_back_or_matches_the_cpu() {
    let args = ["zeroshot", "--model", "data/models/demo-specialist", "--dataset", "breastmnist", "--limit", "32"];
    let (ok, cpu_out, stderr) = mvb(&args);
    assert!(ok, "{stderr}");
    let with = |device: &str, precision: &str| {
        let mut a = args.to_vec();
        a.extend(["--device", device, "--precision", precision]);
        mvb(&a)
    };
    let (ok, out, stderr) = with("cuda", "f32");
    assert!(ok, "{stderr}");
    if Gpu::get().is_err() {
        assert_eq!(stderr.lines().filter(|l| l.contains("CUDA unavailable")).count(), 1, "{stderr}");
        assert_eq!(out, cpu_out);
    } else {
        // On a GPU: same prompts, same printed metrics to within f32 rounding of the 4th decimal.
        assert_eq!(out.lines().count(), cpu_out.lines().count(), "{out}");
    }
    let (ok, _, stderr) = with("auto", "bf16");
    assert!(ok, "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// The safe API: views too short, of the wrong type, or indices outside are refused
// ---------------------------------------------------------------------------------------------

#[test]
fn span_is_the_extent_a_kernel_reaches() {
    assert_eq!(span(4, &[(3, 10)]), Some(24));
    assert_eq!(span(4, &[(3, 10), (2, 100)]), Some(124));
    assert_eq!(span(4, &[(0, 10)]), Some(0));
    assert_eq!(span(0, &[(3, 10)]), Some(0));
    assert_eq!(span(2, &[(usize::MAX, 2)]), None);
}

fn check_views_are_checked(dev: &Dev) {
    let Dev::Cuda(gpu) = dev else { return };
    let shape_error = |what: &str, r: Result<(), CudaError>| {
        assert!(matches!(r, Err(CudaError::Shape(_))), "{what}: {r:?}");
    };
    let (rows, cols) = (10, 8);
    let x = upload(gpu, DType::Bf16, &vec![1.0; rows * cols]);
    let gamma = upload(gpu, DType::F32, &[1.0; 8]);
    let mut y = GpuBuf::alloc(gpu, DType::Bf16, rows * cols - 1).expect("alloc");
    let r = elementwise::layer_norm(gpu, x.view(), y.view_mut(), gamma.view(), gamma.view(), rows, cols, 1e-5);
    shape_error("a short output", r);
    let mut y = GpuBuf::alloc(gpu, DType::F32, rows * cols).expect("alloc");
    let r = elementwise::layer_norm(gpu, x.view(), y.view_mut(), gamma.view(), gamma.view(), rows, cols, 1e-5);
    shape_error("an output of another type", r);
    let mut y = GpuBuf::alloc(gpu, DType::Bf16, rows * cols).expect("alloc");
    let r = elementwise::layer_norm(gpu, x.view(), y.view_mut(), x.view(), x.view(), rows, cols, 1e-5);
    shape_error("bf16 norm parameters", r);
    assert!(x.slice(75, 6).is_err() && x.slice(usize::MAX, 2).is_err(), "a slice past the end");
    let rows_idx = GpuInts::from_host(gpu, &[0, 10]).expect("indices");
    shape_error("a gather past the rows", elementwise::gather_rows(gpu, x.view(), y.view_mut(), &rows_idx, cols));
    let negative = GpuInts::from_host(gpu, &[-1]).expect("indices");
    shape_error("a negative row", elementwise::scatter_rows(gpu, y.view_mut(), x.view(), &negative, cols));
    let (a, b) = (gemm::Operand::n(x.view(), cols), gemm::Operand::t(x.view(), cols));
    shape_error("a product past A", gemm::gemm(gpu, (rows + 1, rows, cols), a, b, y.view_mut(), rows, 1.0, 0.0));
    let s = AttnShape { batch: 1, heads: 2, kv_heads: 2, q_len: 5, kv_len: 5, head_dim: 8, causal: false };
    let lay = Layout::interleaved(5, 16, 8);
    let args = AttnArgs {
        q: x.view(),
        k: x.slice(0, 79).expect("slice"),
        v: x.view(),
        layouts: [lay; 4],
        key_mask: None,
        shape: s,
        scale: None,
    };
    shape_error("attention keys past their view", attn::attention(gpu, &args, y.view_mut(), None));
    let mask = GpuInts::from_host(gpu, &[1; 4]).expect("mask");
    let args = AttnArgs { k: x.view(), key_mask: Some(&mask), ..args };
    shape_error("a short key mask", attn::attention(gpu, &args, y.view_mut(), None));
}

#[test]
fn views_are_checked_before_launching() {
    on_each_device("views", check_views_are_checked);
}

// ---------------------------------------------------------------------------------------------
// Attention
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct AttnCase {
    shape: AttnShape,
    head_major: bool,
    key_mask: bool,
}

fn case(
    batch: usize,
    heads: usize,
    kv_heads: usize,
    q_len: usize,
    kv_len: usize,
    dim: usize,
    causal: bool,
) -> AttnCase {
    AttnCase {
        shape: AttnShape { batch, heads, kv_heads, q_len, kv_len, head_dim: dim, causal },
        head_major: false,
        key_mask: false,
    }
}

fn attention_cases() -> Vec<AttnCase> {
    let mut cases = vec![
        case(2, 2, 2, 50, 50, 64, false),   // ViT-B/32 tokens
        case(1, 2, 2, 197, 197, 64, false), // ViT-B/16 tokens: a partial last tile
        case(1, 1, 1, 65, 65, 80, false),
        case(1, 2, 2, 130, 130, 128, true),
        case(1, 2, 2, 1, 77, 64, true),    // decoding one token after a 76-token cache
        case(2, 4, 2, 20, 100, 128, true), // grouped-query, a chunk after a cache
        case(3, 2, 2, 1, 37, 16, false),   // a pooling probe, a small head (CUDA-core kernel)
        case(2, 2, 2, 33, 33, 8, true),    // the tiny test models' heads
    ];
    let mut masked = case(2, 2, 2, 77, 77, 64, true);
    masked.key_mask = true;
    cases.push(masked);
    let mut hm = case(2, 3, 3, 70, 70, 64, false);
    hm.head_major = true;
    cases.push(hm);
    cases
}

fn layouts(c: &AttnCase) -> [Layout; 4] {
    let s = &c.shape;
    let d = s.head_dim;
    if c.head_major {
        [
            Layout::head_major(s.heads, s.q_len, d),
            Layout::head_major(s.kv_heads, s.kv_len, d),
            Layout::head_major(s.kv_heads, s.kv_len, d),
            Layout::head_major(s.heads, s.q_len, d),
        ]
    } else {
        [
            Layout::interleaved(s.q_len, s.heads * d, d),
            Layout::interleaved(s.kv_len, s.kv_heads * d, d),
            Layout::interleaved(s.kv_len, s.kv_heads * d, d),
            Layout::interleaved(s.q_len, s.heads * d, d),
        ]
    }
}

fn check_attention(dev: &Dev) {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    for c in attention_cases() {
        let s = c.shape;
        let (nq, nkv) = (s.batch * s.q_len * s.heads * s.head_dim, s.batch * s.kv_len * s.kv_heads * s.head_dim);
        let (q, k, v) = (rng.vec(nq, 1.5), rng.vec(nkv, 1.5), rng.vec(nkv, 1.0));
        // A padding mask that hides the tail of the second sequence (and a whole row's keys
        // never: the first key stays visible).
        let mask: Option<Vec<i32>> = c.key_mask.then(|| {
            (0..s.batch * s.kv_len).map(|i| i32::from(i / s.kv_len == 0 || i % s.kv_len < s.kv_len - 9)).collect()
        });
        let scale = 1.0 / (s.head_dim as f32).sqrt();
        let lay = layouts(&c);
        match dev {
            Dev::Cpu => {
                // The CPU backend reads interleaved heads (grouped-query and cached decoding included).
                if c.head_major {
                    continue;
                }
                let want = reference::attention((&q, &k, &v), lay, &s, mask.as_deref(), scale, nq);
                let keys: Option<Vec<u32>> = mask.as_ref().map(|m| m.iter().map(|&x| x as u32).collect());
                let operand = |data: &[f32], heads: usize, len: usize| {
                    let row = heads * s.head_dim;
                    let (data, batch_stride) = (data.to_vec(), len * row);
                    (data, row, batch_stride, heads, len)
                };
                let (qd, qr, qb, qh, ql) = operand(&q, s.heads, s.q_len);
                let (kd, kr, kb, kh, kl) = operand(&k, s.kv_heads, s.kv_len);
                let (vd, vr, vb, vh, vl) = operand(&v, s.kv_heads, s.kv_len);
                fn op(
                    data: &[f32],
                    row_stride: usize,
                    batch_stride: usize,
                    heads: usize,
                    len: usize,
                ) -> cpu::Operand<'_> {
                    let head_stride = row_stride / heads;
                    cpu::Operand { data, offset: 0, row_stride, head_stride, batch_stride, heads, len }
                }
                let got = cpu::attention(
                    op(&qd, qr, qb, qh, ql),
                    op(&kd, kr, kb, kh, kl),
                    op(&vd, vr, vb, vh, vl),
                    s.batch,
                    s.head_dim,
                    AttentionMask { causal: s.causal, keys: keys.as_deref() },
                );
                assert_close(&format!("cpu attention {c:?}"), &got, &want, 1e-4, seed);
            }
            Dev::Cuda(gpu) => {
                for dtype in [DType::F32, DType::Bf16, DType::F16] {
                    let (qr, kr, vr) = (dtype.round(&q), dtype.round(&k), dtype.round(&v));
                    let want = reference::attention((&qr, &kr, &vr), lay, &s, mask.as_deref(), scale, nq);
                    let (qb, kb, vb) = (upload(gpu, dtype, &q), upload(gpu, dtype, &k), upload(gpu, dtype, &v));
                    let mb = mask.as_ref().map(|m| GpuInts::from_host(gpu, m).expect("mask"));
                    let mut kernels = vec![AttnKernel::Simt];
                    if dtype != DType::F32 && matches!(s.head_dim, 64 | 80 | 128) {
                        kernels.push(AttnKernel::Mma);
                    }
                    let args = AttnArgs {
                        q: qb.view(),
                        k: kb.view(),
                        v: vb.view(),
                        layouts: lay,
                        key_mask: mb.as_ref(),
                        shape: s,
                        scale: None,
                    };
                    for kernel in kernels {
                        let mut ob = poisoned(gpu, dtype, nq);
                        attn::attention(gpu, &args, ob.view_mut(), Some(kernel)).expect("launch");
                        let got = ob.to_host(gpu).expect("download");
                        assert_close(&format!("cuda {dtype} {kernel:?} {c:?}"), &got, &want, dtype.tolerance(), seed);
                    }
                    // The unfused path (head-major, multi-head) must agree too: it is the benchmark's baseline.
                    if c.head_major && s.kv_heads == s.heads {
                        let mut ob = poisoned(gpu, dtype, nq);
                        let mut scratch = attn::UnfusedScratch::new(gpu, dtype, &s).expect("scratch");
                        let qkv = (qb.view(), kb.view(), vb.view());
                        attn::attention_unfused(gpu, qkv, ob.view_mut(), &s, &mut scratch).expect("unfused");
                        let got = ob.to_host(gpu).expect("download");
                        assert_close(&format!("cuda unfused {dtype} {c:?}"), &got, &want, dtype.tolerance(), seed);
                    }
                    // The unfused path on any layout (a decoder's baseline): grouped heads and
                    // cached decoding included, no padding mask.
                    if !c.key_mask {
                        let mut ob = poisoned(gpu, dtype, nq);
                        attn::attention_unfused_strided(gpu, &args, ob.view_mut()).expect("unfused strided");
                        let got = ob.to_host(gpu).expect("download");
                        let what = format!("cuda unfused strided {dtype} {c:?}");
                        assert_close(&what, &got, &want, dtype.tolerance(), seed);
                    }
                }
            }
        }
    }
}

#[test]
fn attention_matches_the_reference_on_each_device() {
    on_each_device("attention", check_attention);
}

// ---------------------------------------------------------------------------------------------
// LoRA
// ---------------------------------------------------------------------------------------------

/// A LoRA case: (d_in, d_out, rank, segment lengths, adapter per segment, adapters stacked).
type LoraCase = (usize, usize, usize, Vec<usize>, Vec<i32>, usize);

fn check_lora(dev: &Dev) {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let cases: [LoraCase; 4] = [
        (64, 96, 8, vec![37], vec![0], 1),
        (128, 64, 16, vec![5, 70, 1, 20], vec![1, 0, -1, 2], 3),
        (80, 48, 4, vec![3], vec![0], 1),
        (40, 24, 3, vec![2, 9], vec![1, 0], 2), // sizes the tensor-core kernel does not take
    ];
    for (d_in, d_out, r, lens, adapters, n_adapters) in cases {
        let mut starts = vec![0usize];
        for l in &lens {
            starts.push(starts.last().copied().unwrap_or(0) + l);
        }
        let rows = *starts.last().unwrap_or(&0);
        let x = rng.vec(rows * d_in, 1.0);
        let w = rng.vec(d_out * d_in, 0.2);
        let a = rng.vec(n_adapters * r * d_in, 0.2);
        let b = rng.vec(n_adapters * d_out * r, 0.2);
        let scale = 16.0 / r as f32;
        let what = format!("lora d_in {d_in} d_out {d_out} r {r} segments {lens:?} adapters {adapters:?}");
        match dev {
            Dev::Cpu => {
                let want = reference::lora(&x, &w, &a, &b, (d_in, d_out, r), scale, &starts, &adapters);
                // The CPU path: the backend's GEMM for each product, per segment.
                let mut y =
                    cpu::linear(&Tensor::new([rows, d_in], x.clone()), &Tensor::new([d_out, d_in], w.clone()), None);
                for (s, &ad) in adapters.iter().enumerate() {
                    if ad < 0 || starts[s] == starts[s + 1] {
                        continue;
                    }
                    let (lo, hi) = (starts[s], starts[s + 1]);
                    let xs = Tensor::new([hi - lo, d_in], x[lo * d_in..hi * d_in].to_vec());
                    let ad = ad as usize;
                    let t =
                        cpu::linear(&xs, &Tensor::new([r, d_in], a[ad * r * d_in..(ad + 1) * r * d_in].to_vec()), None);
                    let d = cpu::linear(
                        &t,
                        &Tensor::new([d_out, r], b[ad * d_out * r..(ad + 1) * d_out * r].to_vec()),
                        None,
                    );
                    for (yv, dv) in y.data_mut()[lo * d_out..hi * d_out].iter_mut().zip(d.data()) {
                        *yv += scale * dv;
                    }
                }
                assert_close(&format!("cpu {what}"), y.data(), &want, 1e-4, seed);
            }
            Dev::Cuda(gpu) => {
                for dtype in [DType::F32, DType::Bf16] {
                    let (xr, wr, ar, br) = (dtype.round(&x), dtype.round(&w), dtype.round(&a), dtype.round(&b));
                    let want = reference::lora(&xr, &wr, &ar, &br, (d_in, d_out, r), scale, &starts, &adapters);
                    let segs = Segments::new(gpu, &starts, &adapters).expect("segments");
                    let shape = LoraShape { d_in, d_out, rank: r, adapters: n_adapters };
                    let (xb, wb, ab, bb) = (
                        upload(gpu, dtype, &x),
                        upload(gpu, dtype, &w),
                        upload(gpu, dtype, &a),
                        upload(gpu, dtype, &b),
                    );
                    let mut kernels = vec![Some(SgmvKernel::Simt)];
                    if dtype != DType::F32 && d_in % 8 == 0 && r % 8 == 0 {
                        kernels.push(Some(SgmvKernel::Mma));
                    }
                    let args = LoraArgs { x: xb.view(), w: wb.view(), a: ab.view(), b: bb.view(), scale };
                    for kernel in kernels {
                        let (mut yb, mut tb) = (poisoned(gpu, dtype, rows * d_out), poisoned(gpu, dtype, rows * r));
                        lora::lora_fused(gpu, &args, (yb.view_mut(), tb.view_mut()), &shape, &segs, kernel)
                            .expect("fused");
                        let got = yb.to_host(gpu).expect("download");
                        assert_close(
                            &format!("cuda fused {dtype} {kernel:?} {what}"),
                            &got,
                            &want,
                            dtype.tolerance(),
                            seed,
                        );
                    }
                    let (mut yb, mut tb, mut db) = (
                        poisoned(gpu, dtype, rows * d_out),
                        poisoned(gpu, dtype, rows * r),
                        poisoned(gpu, dtype, rows * d_out),
                    );
                    let out = (yb.view_mut(), tb.view_mut(), db.view_mut());
                    lora::lora_unfused(gpu, &args, out, &shape, &segs).expect("unfused");
                    let got = yb.to_host(gpu).expect("download");
                    assert_close(&format!("cuda unfused {dtype} {what}"), &got, &want, dtype.tolerance(), seed);
                }
            }
        }
    }
}

#[test]
fn lora_matches_the_reference_on_each_device() {
    on_each_device("lora", check_lora);
}

// ---------------------------------------------------------------------------------------------
// Element-wise kernels
// ---------------------------------------------------------------------------------------------

fn check_elementwise(dev: &Dev) {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let (rows, cols) = (37, 200);
    let x = rng.vec(rows * cols, 3.0);
    let gamma = rng.vec(cols, 1.0);
    let beta = rng.vec(cols, 0.5);
    let bias = rng.vec(cols, 0.5);
    // f64 definitions.
    let (gamma_ref, beta_ref) = (&gamma, &beta);
    let ln_want: Vec<f32> = x
        .chunks(cols)
        .flat_map(|row| {
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / cols as f64;
            let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / cols as f64;
            let inv = 1.0 / (var + 1e-5).sqrt();
            row.iter()
                .enumerate()
                .map(move |(i, &v)| ((f64::from(v) - mean) * inv) as f32 * gamma_ref[i] + beta_ref[i])
                .collect::<Vec<_>>()
        })
        .collect();
    let x_tensor = Tensor::new([rows, cols], x.clone());
    let acts = [Activation::Gelu, Activation::GeluTanh, Activation::QuickGelu];
    match dev {
        Dev::Cpu => {
            let got = cpu::layer_norm(&x_tensor, &gamma, &beta, 1e-5);
            assert_close("cpu layer_norm", got.data(), &ln_want, 1e-4, seed);
        }
        Dev::Cuda(gpu) => {
            for dtype in [DType::F32, DType::Bf16, DType::F16] {
                let xr = dtype.round(&x);
                let xb = upload(gpu, dtype, &x);
                let tol = dtype.tolerance();
                // layer norm
                let want = cpu::layer_norm(&Tensor::new([rows, cols], xr.clone()), &gamma, &beta, 1e-5);
                let mut yb = poisoned(gpu, dtype, rows * cols);
                let (g, bt) = (upload(gpu, DType::F32, &gamma), upload(gpu, DType::F32, &beta));
                elementwise::layer_norm(gpu, xb.view(), yb.view_mut(), g.view(), bt.view(), rows, cols, 1e-5)
                    .expect("ln");
                assert_close(
                    &format!("cuda {dtype} layer_norm"),
                    &yb.to_host(gpu).expect("dl"),
                    want.data(),
                    tol,
                    seed,
                );
                // bias + activation
                let br = dtype.round(&bias);
                for act in acts {
                    let mut want = Tensor::new([rows, cols], xr.clone());
                    cpu::add_assign(&mut want, &br);
                    cpu::activate(&mut want, act);
                    let mut yb = upload(gpu, dtype, &x);
                    let bb = upload(gpu, dtype, &bias);
                    elementwise::bias_act(gpu, yb.view_mut(), Some(bb.view()), rows, cols, Some(act)).expect("act");
                    assert_close(
                        &format!("cuda {dtype} {act:?}"),
                        &yb.to_host(gpu).expect("dl"),
                        want.data(),
                        tol,
                        seed,
                    );
                }
                // softmax
                let mut want = xr.clone();
                cpu::softmax_rows(&mut want, cols);
                let mut sb = upload(gpu, dtype, &x);
                elementwise::softmax(gpu, sb.view_mut(), rows, cols, 1.0, false, rows).expect("softmax");
                assert_close(&format!("cuda {dtype} softmax"), &sb.to_host(gpu).expect("dl"), &want, tol, seed);
                // casts round-trip
                let f = upload(gpu, DType::F32, &x);
                let mut t = poisoned(gpu, dtype, x.len());
                elementwise::cast_from_f32(gpu, f.view(), t.view_mut(), x.len()).expect("cast");
                let mut back = poisoned(gpu, DType::F32, x.len());
                elementwise::cast_to_f32(gpu, t.view(), back.view_mut(), x.len()).expect("cast back");
                assert_eq!(back.to_host(gpu).expect("dl"), xr, "cuda {dtype} casts (seed {seed})");
            }
        }
    }
}

#[test]
fn elementwise_kernels_match_the_cpu_on_each_device() {
    on_each_device("elementwise", check_elementwise);
}

// ---------------------------------------------------------------------------------------------
// Whole models
// ---------------------------------------------------------------------------------------------

fn check_models(dev: &Dev) {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    for fixture in ["tiny-clip", "tiny-siglip", "tiny-clip-bf16"] {
        let dir = root().join("tests/fixtures").join(fixture);
        let reference = ContrastiveModel::load_dir(&dir, &Device::cpu()).expect("loads");
        let side = reference.image_size();
        let batch = 3;
        let pixels = rng.vec(batch * 3 * side * side, 2.0);
        let texts: Vec<String> =
            ["a photo of a lung", "an x-ray", "a retina with some longer prompt text"].map(String::from).to_vec();
        let img_want = reference.image_features_from_pixels(&pixels, batch).expect("image");
        let txt_want = reference.text_features(&texts).expect("text");
        let precisions = match dev {
            Dev::Cpu => vec![Precision::F32],
            Dev::Cuda(_) => vec![Precision::F32, Precision::Bf16],
        };
        for precision in precisions {
            let device = match dev {
                Dev::Cpu => Device::cpu(),
                Dev::Cuda(_) => Device::cuda(precision).expect("the GPU started once"),
            };
            let model = ContrastiveModel::load_dir(&dir, &device).expect("loads on the device");
            let tag = device.tag();
            // A whole tower in bf16 rounds every activation between ops (as transformers in bf16
            // does): 3e-2, the bound of the CPU's bf16 path; one op alone is held to 1e-2.
            let tol = if precision == Precision::F32 { precision.tolerance() } else { 3e-2 };
            let img = model.image_features_from_pixels(&pixels, batch).expect("image features");
            assert_close(&format!("{tag} {fixture} image"), img.data(), img_want.data(), tol, seed);
            let txt = model.text_features(&texts).expect("text features");
            assert_close(&format!("{tag} {fixture} text"), txt.data(), txt_want.data(), tol, seed);
        }
    }
}

#[test]
fn contrastive_models_match_the_cpu_on_each_device() {
    on_each_device("models", check_models);
}
