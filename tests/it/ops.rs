//! The compute layer's operations (`mvb::backend::ops`), each on fresh random inputs (the seed
//! is printed on failure): on the CPU, in f32 and bf16, against a naive f64 reference written
//! here; on CUDA (when a GPU starts, else a `SKIP cuda <op>` line), in f32 and bf16, against the
//! CPU's f32 result; all within `Precision::tolerance()` (relative error: largest difference over
//! largest magnitude; NaN never passes). Inputs are rounded to bf16 first, so that every device
//! sees the same operands and the bound measures its arithmetic. Bad shapes give a
//! `ComputeError`, never a panic, on every device.

use mvb::backend::cpu::Activation;
use mvb::backend::cuda::DType;
use mvb::backend::{Array, ComputeError, Device, Heads, Linear, LoraDelta, Mask, Matrix, Precision, Vector};
use mvb::tensor::Tensor;

use crate::common::{Dev, Rng, assert_close, on_each_device};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `n` random values in [-scale, scale), rounded to bf16 (exact on every device).
fn values(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    DType::Bf16.round(&rng.vec(n, scale))
}

/// Runs `op` on the CPU in f32 (within 1e-4 of `want`, the f64 reference) and bf16 (within
/// 1e-2), then on CUDA in f32 and bf16 against the CPU's f32 result.
fn check(name: &str, seed: u64, want: &[f32], op: impl Fn(&Device) -> Result<Vec<f32>, ComputeError>) {
    let run = |device: &Device| op(device).unwrap_or_else(|e| panic!("{name} on {}: {e} (seed {seed})", device.tag()));
    let cpu = run(&Device::cpu());
    on_each_device(name, |dev| match dev {
        Dev::Cpu => {
            assert_close(&format!("cpu {name}"), &cpu, want, Precision::F32.tolerance(), seed);
            let bf16 = Device::cpu_with(Precision::Bf16).expect("bf16 on the CPU");
            assert_close(&format!("cpu-bf16 {name}"), &run(&bf16), want, Precision::Bf16.tolerance(), seed);
        }
        Dev::Cuda(_) => {
            for precision in [Precision::F32, Precision::Bf16] {
                let device = Device::cuda(precision).expect("the GPU started once");
                let got = run(&device);
                assert_close(&format!("{} {name}", device.tag()), &got, &cpu, precision.tolerance(), seed);
            }
        }
    });
}

/// `values` as a `shape` array on `device`.
fn array(device: &Device, shape: &[usize], values: &[f32]) -> Result<Array, ComputeError> {
    device.upload(Tensor::new(shape.to_vec(), values.to_vec()))
}

/// The elements of `x`, on the host.
fn host(device: &Device, x: &Array) -> Result<Vec<f32>, ComputeError> {
    Ok(x.to_tensor(device)?.into_data())
}

/// `x · Wᵀ` in f64 for `x` `[rows, inp]` and `w` `[out, inp]`.
fn matmul_t(x: &[f32], w: &[f32], rows: usize, inp: usize, out: usize) -> Vec<f64> {
    let mut y = vec![0f64; rows * out];
    for r in 0..rows {
        for o in 0..out {
            y[r * out + o] = (0..inp).map(|i| f64::from(x[r * inp + i]) * f64::from(w[o * inp + i])).sum();
        }
    }
    y
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

// ---------------------------------------------------------------------------------------------
// Products
// ---------------------------------------------------------------------------------------------

#[test]
fn linear_with_and_without_bias_and_with_lora() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let (batch, seq, inp, out, rank, scale) = (2, 5, 24, 16, 4, 2.0);
    let rows = batch * seq;
    let x = values(&mut rng, rows * inp, 1.0);
    let w = values(&mut rng, out * inp, 0.3);
    let bias = values(&mut rng, out, 0.5);
    let (a, b) = (values(&mut rng, rank * inp, 0.3), values(&mut rng, out * rank, 0.3));
    let base = matmul_t(&x, &w, rows, inp, out);
    let biased: Vec<f64> = base.iter().enumerate().map(|(i, v)| v + f64::from(bias[i % out])).collect();
    let delta = matmul_t(&to_f32(&matmul_t(&x, &a, rows, inp, rank)), &b, rows, rank, out);
    let lora: Vec<f64> = biased.iter().zip(&delta).map(|(v, d)| v + f64::from(scale) * d).collect();
    let layer = |d: &Device, with_bias: bool, with_lora: bool| -> Result<Linear, ComputeError> {
        let l = Linear::new(d, Tensor::new([out, inp], w.clone()), with_bias.then(|| bias.clone()))?;
        if !with_lora {
            return Ok(l);
        }
        l.with_lora(LoraDelta::new(d, Tensor::new([rank, inp], a.clone()), Tensor::new([out, rank], b.clone()), scale)?)
    };
    for (name, with_bias, with_lora, want) in
        [("linear", false, false, &base), ("linear+bias", true, false, &biased), ("linear+lora", true, true, &lora)]
    {
        check(name, seed, &to_f32(want), |d| {
            let y = d.linear(&array(d, &[batch, seq, inp], &x)?, &layer(d, with_bias, with_lora)?)?;
            assert_eq!(y.shape(), [batch, seq, out]);
            host(d, &y)
        });
    }
    let y0 = values(&mut rng, rows * out, 1.0);
    let want: Vec<f32> = lora.iter().zip(&y0).map(|(v, y)| (v + f64::from(*y)) as f32).collect();
    check("linear_add", seed, &want, |d| {
        let mut y = array(d, &[rows, out], &y0)?;
        d.linear_add(&array(d, &[rows, inp], &x)?, &layer(d, true, true)?, &mut y)?;
        host(d, &y)
    });
}

// ---------------------------------------------------------------------------------------------
// Row-wise and element-wise operations
// ---------------------------------------------------------------------------------------------

#[test]
fn layer_norm_and_rms_norm() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let (rows, cols, eps) = (7, 96, 1e-5);
    let x = values(&mut rng, rows * cols, 3.0);
    let (gamma, beta) = (values(&mut rng, cols, 1.0), values(&mut rng, cols, 0.5));
    let mut ln = Vec::new();
    let mut rms = Vec::new();
    for row in x.chunks(cols) {
        let r: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
        let mean = r.iter().sum::<f64>() / cols as f64;
        let var = r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / cols as f64;
        let mean_sq = r.iter().map(|v| v * v).sum::<f64>() / cols as f64;
        for (i, v) in r.iter().enumerate() {
            let (g, b) = (f64::from(gamma[i]), f64::from(beta[i]));
            ln.push(((v - mean) / (var + f64::from(eps)).sqrt() * g + b) as f32);
            rms.push((v / (mean_sq + f64::from(eps)).sqrt() * g) as f32);
        }
    }
    check("layer_norm", seed, &ln, |d| {
        let (g, b) = (Vector::f32(d, gamma.clone())?, Vector::f32(d, beta.clone())?);
        host(d, &d.layer_norm(&array(d, &[rows, cols], &x)?, &g, &b, eps)?)
    });
    check("rms_norm", seed, &rms, |d| {
        host(d, &d.rms_norm(&array(d, &[rows, cols], &x)?, &Vector::f32(d, gamma.clone())?, eps)?)
    });
}

/// An activation in f64, from its definition.
fn act_ref(act: Activation, x: f64) -> f64 {
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    match act {
        Activation::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        Activation::GeluTanh => {
            0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044_715 * x.powi(3))).tanh())
        }
        Activation::QuickGelu => x * sigmoid(1.702 * x),
        Activation::Silu => x * sigmoid(x),
    }
}

#[test]
fn activations_silu_mul_and_adds() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let shape = [2, 3, 40];
    let n = 2 * 3 * 40;
    let (x, y) = (values(&mut rng, n, 4.0), values(&mut rng, n, 2.0));
    for act in [Activation::Gelu, Activation::GeluTanh, Activation::QuickGelu, Activation::Silu] {
        let want: Vec<f32> = x.iter().map(|&v| act_ref(act, f64::from(v)) as f32).collect();
        check(&format!("activate {act:?}"), seed, &want, |d| {
            let mut a = array(d, &shape, &x)?;
            d.activate(&mut a, act)?;
            host(d, &a)
        });
    }
    let want: Vec<f32> =
        x.iter().zip(&y).map(|(&g, &u)| (act_ref(Activation::Silu, f64::from(g)) * f64::from(u)) as f32).collect();
    check("silu_mul", seed, &want, |d| {
        let mut gate = array(d, &shape, &x)?;
        d.silu_mul(&mut gate, &array(d, &shape, &y)?)?;
        host(d, &gate)
    });
    let want: Vec<f32> = x.iter().zip(&y).map(|(&a, &b)| (f64::from(a) + f64::from(b)) as f32).collect();
    check("add", seed, &want, |d| {
        let mut a = array(d, &shape, &x)?;
        d.add(&mut a, &array(d, &shape, &y)?)?;
        host(d, &a)
    });
    let period = 3 * 40;
    let pos = values(&mut rng, period, 1.0);
    let want: Vec<f32> =
        x.iter().enumerate().map(|(i, &a)| (f64::from(a) + f64::from(pos[i % period])) as f32).collect();
    check("add_periodic", seed, &want, |d| {
        let mut a = array(d, &shape, &x)?;
        d.add_periodic(&mut a, &Vector::activation(d, pos.clone())?)?;
        host(d, &a)
    });
}

// ---------------------------------------------------------------------------------------------
// Rows: embeddings, gathers, scatters, KV-cache writes
// ---------------------------------------------------------------------------------------------

#[test]
fn embedding_gather_scatter_and_write_positions() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let (vocab, width) = (11, 12);
    let table = values(&mut rng, vocab * width, 1.0);
    let ids = [3u32, 0, 10, 3, 7];
    let want: Vec<f32> = ids.iter().flat_map(|&i| table[i as usize * width..][..width].to_vec()).collect();
    check("embedding", seed, &want, |d| {
        let t = Matrix::table(d, Tensor::new([vocab, width], table.clone()))?;
        let e = d.embedding(&t, &ids)?;
        assert_eq!(e.shape(), [ids.len(), width]);
        host(d, &e)
    });

    let (rows, cols) = (4 * 5, 6);
    let x = values(&mut rng, rows * cols, 1.0);
    let picks = [19usize, 0, 7, 7, rng.below(rows)];
    let want: Vec<f32> = picks.iter().flat_map(|&r| x[r * cols..][..cols].to_vec()).collect();
    check("gather_rows", seed, &want, |d| host(d, &d.gather_rows(&array(d, &[4, 5, cols], &x)?, &picks)?));

    let targets = [8usize, 1, 4];
    let src = values(&mut rng, targets.len() * cols, 2.0);
    let mut want = x.clone();
    for (i, &r) in targets.iter().enumerate() {
        want[r * cols..][..cols].copy_from_slice(&src[i * cols..][..cols]);
    }
    check("scatter_rows", seed, &want, |d| {
        let mut a = array(d, &[rows, cols], &x)?;
        d.scatter_rows(&mut a, &targets, &array(d, &[targets.len(), cols], &src)?)?;
        host(d, &a)
    });

    let (batch, cap, n, start) = (2, 8, 3, 4);
    let cache = values(&mut rng, batch * cap * cols, 1.0);
    let new = values(&mut rng, batch * n * cols, 1.0);
    let mut want = cache.clone();
    for b in 0..batch {
        for p in 0..n {
            let (dst, from) = (((b * cap) + start + p) * cols, (b * n + p) * cols);
            want[dst..dst + cols].copy_from_slice(&new[from..from + cols]);
        }
    }
    check("write_positions", seed, &want, |d| {
        let mut c = array(d, &[batch, cap, cols], &cache)?;
        d.write_positions(&mut c, start, &array(d, &[batch, n, cols], &new)?)?;
        host(d, &c)
    });
}

/// The CPU's KV caches (`Device::kv_cache`: head-major, f16 for block-quantised decoders):
/// writes put each head's positions together and round to f16, and attention over an f16 cache
/// equals attention over an f32 head-major cache of the rounded values and over a
/// `[batch, capacity, width]` one, to the bit, on the decode loops (one query) and the blocked
/// path (several); f32 operations refuse an f16 cache by name.
#[test]
fn kv_caches_are_head_major_and_f16_is_attention_over_the_rounded_values() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let d = Device::cpu();
    let (batch, cap, heads, kv_heads, dim) = (2, 24, 6, 2, 64);
    let width = kv_heads * dim;
    for (q_len, start) in [(1, 17), (9, 0)] {
        let len = start + q_len;
        let kv = [values(&mut rng, batch * len * width, 2.0), values(&mut rng, batch * len * width, 2.0)];
        let rounded = kv.clone().map(|x| x.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect::<Vec<_>>());
        let write = |mut cache: Array, x: &[f32]| {
            d.write_positions(&mut cache, 0, &array(&d, &[batch, len, width], x).unwrap()).unwrap();
            cache
        };
        let half = kv.each_ref().map(|x| write(d.kv_cache(batch, cap, (kv_heads, dim), true).unwrap(), x));
        let full = rounded.each_ref().map(|x| write(d.kv_cache(batch, cap, (kv_heads, dim), false).unwrap(), x));
        let rows = rounded.each_ref().map(|x| write(d.zeros([batch, cap, width]).unwrap(), x));
        let stored = full[0].to_tensor(&d).unwrap();
        assert_eq!(stored.shape(), [batch, kv_heads, cap, dim], "head-major (seed {seed})");
        let (b, p, h) = (1, len - 1, 1);
        let at = |i: usize| stored.data()[((b * kv_heads + h) * cap + p) * dim + i];
        assert!((0..dim).all(|i| at(i) == rounded[0][(b * len + p) * width + h * dim + i]), "placed (seed {seed})");
        assert_eq!(half[0].to_tensor(&d).unwrap().data(), stored.data(), "rounded on write (seed {seed})");
        let q = array(&d, &[batch, q_len, heads * dim], &values(&mut rng, batch * q_len * heads * dim, 1.0)).unwrap();
        let mut keys = vec![1u32; batch * len];
        keys[1] = 0;
        let mask = Mask { causal: true, keys: Some(&keys) };
        let attend = |[k, v]: &[Array; 2]| {
            let qh = heads_of(&q, 0, heads, dim, q_len);
            let out = d.attention(qh, heads_of(k, 0, kv_heads, dim, len), heads_of(v, 0, kv_heads, dim, len), mask);
            out.unwrap().to_tensor(&d).unwrap().into_data()
        };
        let want = attend(&rows);
        for (got, what) in [(attend(&half), "f16"), (attend(&full), "f32")] {
            let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{what} cache, {q_len} queries (seed {seed})");
        }
    }
    let cache = d.kv_cache(1, 4, (1, 8), true).unwrap();
    let err = d.rms_norm(&cache, &Vector::f32(&d, vec![1.0; 8]).unwrap(), 1e-6).unwrap_err().to_string();
    assert!(err.contains("f16 KV cache"), "{err}");
    let view = heads_of(&cache, 0, 2, 4, 4);
    let err = d.attention(view, view, view, Mask::NONE).unwrap_err().to_string();
    assert!(err.contains("not the cache"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Rotary embeddings
// ---------------------------------------------------------------------------------------------

/// transformers' `apply_rotary_pos_emb`: `x·cos + rotate_half(x)·sin` per head, with
/// `cos = cat(cos(θ), cos(θ))`, `θ = position · inv_freq`, `rotate_half(x) = cat(−x₂, x₁)`.
fn rope_ref(x: &[f32], cols: usize, positions: &[u32], inv_freq: &[f32]) -> Vec<f32> {
    let half = inv_freq.len();
    let mut out = Vec::with_capacity(x.len());
    for (row, &pos) in x.chunks(cols).zip(positions) {
        for head in row.chunks(2 * half) {
            for i in 0..2 * half {
                let theta = f64::from(pos) * f64::from(inv_freq[i % half]);
                let rotated = if i < half { -f64::from(head[i + half]) } else { f64::from(head[i - half]) };
                out.push((f64::from(head[i]) * theta.cos() + rotated * theta.sin()) as f32);
            }
        }
    }
    out
}

#[test]
fn rope_matches_rotate_half() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let (batch, seq, heads, half) = (2, 5, 3, 4);
    let cols = heads * 2 * half;
    let x = values(&mut rng, batch * seq * cols, 1.0);
    // Positions after a 7-token cache, as a decoder's new tokens have.
    let positions: Vec<u32> = (0..batch * seq).map(|r| 7 + (r % seq) as u32).collect();
    let inv_freq: Vec<f32> = (0..half).map(|i| 10_000f32.powf(-((2 * i) as f32) / (2 * half) as f32)).collect();
    let want = rope_ref(&x, cols, &positions, &inv_freq);
    check("rope", seed, &want, |d| {
        let mut a = array(d, &[batch, seq, cols], &x)?;
        d.rope(&mut a, &positions, &inv_freq)?;
        host(d, &a)
    });
}

// ---------------------------------------------------------------------------------------------
// Attention
// ---------------------------------------------------------------------------------------------

/// One attention check: queries `[batch, q_len, heads·dim]`; keys and values either in their own
/// arrays `[batch, cap, kv_heads·dim]` (a KV cache: the first `kv_len` positions are used) or, with
/// `packed`, columns of one `[batch, seq, (heads + 2·kv_heads)·dim]` projection next to the queries.
#[derive(Debug, Clone, Copy)]
struct AttnCase {
    batch: usize,
    heads: usize,
    kv_heads: usize,
    q_len: usize,
    kv_len: usize,
    cap: usize,
    dim: usize,
    causal: bool,
    key_mask: bool,
    packed: bool,
}

fn attention_cases() -> Vec<AttnCase> {
    let plain = AttnCase {
        batch: 2,
        heads: 2,
        kv_heads: 2,
        q_len: 9,
        kv_len: 9,
        cap: 9,
        dim: 16,
        causal: false,
        key_mask: false,
        packed: false,
    };
    vec![
        plain,
        // A decoder's 3 new tokens after an 8-token cache of capacity 16.
        AttnCase { q_len: 3, kv_len: 11, cap: 16, causal: true, ..plain },
        // Padding hides the tail of the second sequence (CLIP's text tower: causal + padding).
        AttnCase { q_len: 12, kv_len: 12, cap: 12, key_mask: true, ..plain },
        AttnCase { q_len: 12, kv_len: 12, cap: 12, key_mask: true, causal: true, ..plain },
        // Grouped-query heads read in place from one packed projection (head dim 64: the GPU's
        // tensor-core kernel in bf16), causal, with padding.
        AttnCase {
            heads: 4,
            kv_heads: 2,
            q_len: 10,
            kv_len: 10,
            cap: 10,
            dim: 64,
            causal: true,
            key_mask: true,
            packed: true,
            ..plain
        },
        // Decoding one token with 4 query heads over 1 cached key/value head.
        AttnCase { batch: 1, heads: 4, kv_heads: 1, q_len: 1, kv_len: 13, cap: 20, causal: true, ..plain },
    ]
}

/// `heads` heads of `head_dim` from column `col` of `array`, over its first `len` positions.
fn heads_of(array: &Array, col: usize, heads: usize, head_dim: usize, len: usize) -> Heads<'_> {
    Heads { array, col, heads, head_dim, len }
}

/// The f64 reference on dense `[batch, len, heads, dim]` queries, keys and values.
fn attention_ref(c: &AttnCase, (q, k, v): (&[f32], &[f32], &[f32]), mask: Option<&[u32]>) -> Vec<f32> {
    let (d, group, offset, scale) = (c.dim, c.heads / c.kv_heads, c.kv_len - c.q_len, 1.0 / (c.dim as f64).sqrt());
    let at = |x: &[f32], b: usize, len: usize, pos: usize, heads: usize, h: usize| -> Vec<f64> {
        x[((b * len + pos) * heads + h) * d..][..d].iter().map(|&e| f64::from(e)).collect()
    };
    let mut out = Vec::with_capacity(c.batch * c.q_len * c.heads * d);
    for b in 0..c.batch {
        for i in 0..c.q_len {
            for h in 0..c.heads {
                let qv = at(q, b, c.q_len, i, c.heads, h);
                let visible = |j: usize| !(c.causal && j > i + offset) && mask.is_none_or(|m| m[b * c.kv_len + j] != 0);
                let scores: Vec<f64> = (0..c.kv_len)
                    .map(|j| {
                        let kj = at(k, b, c.kv_len, j, c.kv_heads, h / group);
                        let dot: f64 = qv.iter().zip(&kj).map(|(x, y)| x * y).sum();
                        if visible(j) { dot * scale } else { f64::NEG_INFINITY }
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|&s| (s - max).exp()).collect();
                let sum: f64 = weights.iter().sum();
                let mut acc = vec![0f64; d];
                for (j, w) in weights.iter().enumerate() {
                    let vj = at(v, b, c.kv_len, j, c.kv_heads, h / group);
                    acc.iter_mut().zip(&vj).for_each(|(a, x)| *a += w * x);
                }
                out.extend(acc.iter().map(|a| (a / sum) as f32));
            }
        }
    }
    out
}

/// Columns `from..from + width` of the first `len` of `cap` positions of `[batch, cap, row]`.
fn columns(x: &[f32], (batch, cap, row): (usize, usize, usize), len: usize, from: usize, width: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(batch * len * width);
    for b in 0..batch {
        for p in 0..len {
            out.extend_from_slice(&x[(b * cap + p) * row + from..][..width]);
        }
    }
    out
}

fn check_attention_case(c: AttnCase, rng: &mut Rng, seed: u64) {
    let d = c.dim;
    let (qw, kvw) = (c.heads * d, c.kv_heads * d);
    let row = qw + 2 * kvw;
    // Packed: one projection [batch, seq, q | k | v]; else q [batch, q_len, qw] and k, v caches.
    let (q, k, v) = if c.packed {
        (values(rng, c.batch * c.q_len * row, 1.5), Vec::new(), Vec::new())
    } else {
        let kv_n = c.batch * c.cap * kvw;
        (values(rng, c.batch * c.q_len * qw, 1.5), values(rng, kv_n, 1.5), values(rng, kv_n, 1.0))
    };
    let mask: Option<Vec<u32>> = c.key_mask.then(|| {
        (0..c.batch * c.kv_len).map(|i| u32::from(i / c.kv_len == 0 || i % c.kv_len < c.kv_len - 5)).collect()
    });
    let dense = if c.packed {
        let dims = (c.batch, c.q_len, row);
        (
            columns(&q, dims, c.q_len, 0, qw),
            columns(&q, dims, c.q_len, qw, kvw),
            columns(&q, dims, c.q_len, qw + kvw, kvw),
        )
    } else {
        let dims = (c.batch, c.cap, kvw);
        (q.clone(), columns(&k, dims, c.kv_len, 0, kvw), columns(&v, dims, c.kv_len, 0, kvw))
    };
    let want = attention_ref(&c, (&dense.0, &dense.1, &dense.2), mask.as_deref());
    check(&format!("attention {c:?}"), seed, &want, |dev| {
        let m = Mask { causal: c.causal, keys: mask.as_deref() };
        let out = if c.packed {
            let p = array(dev, &[c.batch, c.q_len, row], &q)?;
            let (hq, hk) = (heads_of(&p, 0, c.heads, d, c.q_len), heads_of(&p, qw, c.kv_heads, d, c.q_len));
            dev.attention(hq, hk, heads_of(&p, qw + kvw, c.kv_heads, d, c.q_len), m)?
        } else {
            let qa = array(dev, &[c.batch, c.q_len, qw], &q)?;
            let (ka, va) = (array(dev, &[c.batch, c.cap, kvw], &k)?, array(dev, &[c.batch, c.cap, kvw], &v)?);
            let (hk, hv) = (heads_of(&ka, 0, c.kv_heads, d, c.kv_len), heads_of(&va, 0, c.kv_heads, d, c.kv_len));
            dev.attention(Heads::all(&qa, c.heads)?, hk, hv, m)?
        };
        assert_eq!(out.shape(), [c.batch, c.q_len, qw]);
        host(dev, &out)
    });
}

#[test]
fn attention_with_masks_a_kv_cache_and_grouped_heads() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    for c in attention_cases() {
        check_attention_case(c, &mut rng, seed);
    }
}

// ---------------------------------------------------------------------------------------------
// ViT inputs
// ---------------------------------------------------------------------------------------------

#[test]
fn patches_and_vit_tokens() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let (batch, image, patch) = (2, 8, 4);
    let g = image / patch;
    let k = 3 * patch * patch;
    let pixels = values(&mut rng, batch * 3 * image * image, 2.0);
    let mut want = Vec::new();
    for b in 0..batch {
        for (gy, gx) in (0..g).flat_map(|y| (0..g).map(move |x| (y, x))) {
            for (c, ky, kx) in (0..3).flat_map(|c| (0..patch).flat_map(move |y| (0..patch).map(move |x| (c, y, x)))) {
                want.push(pixels[((b * 3 + c) * image + gy * patch + ky) * image + gx * patch + kx]);
            }
        }
    }
    check("patches", seed, &want, |d| {
        let p = d.patches(&pixels, batch, image, patch)?;
        assert_eq!(p.shape(), [batch, g * g, k]);
        host(d, &p)
    });

    let (n, w) = (g * g, 12);
    let patches = values(&mut rng, batch * n * w, 1.0);
    let class = values(&mut rng, w, 1.0);
    for with_class in [true, false] {
        let seq = n + usize::from(with_class);
        let positions = values(&mut rng, seq * w, 1.0);
        let mut want = Vec::new();
        for b in 0..batch {
            for t in 0..seq {
                for e in 0..w {
                    let base = if with_class && t == 0 {
                        class[e]
                    } else {
                        patches[(b * n + t - usize::from(with_class)) * w + e]
                    };
                    want.push((f64::from(base) + f64::from(positions[t * w + e])) as f32);
                }
            }
        }
        check(&format!("vit_tokens class {with_class}"), seed, &want, |d| {
            let first = with_class.then(|| Vector::activation(d, class.clone())).transpose()?;
            let x = d.vit_tokens(
                &array(d, &[batch, n, w], &patches)?,
                first.as_ref(),
                &Vector::activation(d, positions.clone())?,
            )?;
            assert_eq!(x.shape(), [batch, seq, w]);
            host(d, &x)
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Bad shapes
// ---------------------------------------------------------------------------------------------

fn is_shape_error<T>(what: &str, r: Result<T, ComputeError>) {
    match r {
        Err(ComputeError::Shape(_)) => {}
        Err(e) => panic!("{what}: {e} is not a shape error"),
        Ok(_) => panic!("{what}: accepted"),
    }
}

/// Every operation refuses operands that do not fit, before touching them.
fn bad_shapes(d: &Device) -> Result<(), ComputeError> {
    let z = |shape: &[usize]| d.zeros(shape.to_vec());
    let layer = Linear::new(d, Tensor::zeros([4, 6]), Some(vec![0.0; 4]))?;
    is_shape_error("linear with a wrong width", d.linear(&z(&[3, 5])?, &layer));
    is_shape_error("linear_add into a wrong shape", d.linear_add(&z(&[3, 6])?, &layer, &mut z(&[3, 5])?));
    is_shape_error("a bias of the wrong length", Linear::new(d, Tensor::zeros([4, 6]), Some(vec![0.0; 3])));
    let lora = LoraDelta::new(d, Tensor::zeros([2, 5]), Tensor::zeros([4, 2]), 1.0)?;
    is_shape_error("a LoRA of the wrong width", Linear::new(d, Tensor::zeros([4, 6]), None)?.with_lora(lora));
    is_shape_error("a LoRA of mismatched ranks", LoraDelta::new(d, Tensor::zeros([2, 6]), Tensor::zeros([4, 3]), 1.0));
    let gamma = Vector::f32(d, vec![1.0; 5])?;
    is_shape_error("layer_norm parameters", d.layer_norm(&z(&[2, 6])?, &gamma, &gamma, 1e-5));
    is_shape_error("rms_norm parameters", d.rms_norm(&z(&[2, 6])?, &gamma, 1e-5));
    is_shape_error("add of two shapes", d.add(&mut z(&[2, 6])?, &z(&[6, 2])?));
    is_shape_error("silu_mul of two shapes", d.silu_mul(&mut z(&[2, 6])?, &z(&[2, 5])?));
    is_shape_error("add_periodic", d.add_periodic(&mut z(&[2, 6])?, &gamma));
    let table = Matrix::table(d, Tensor::zeros([11, 4]))?;
    is_shape_error("an out-of-vocabulary id", d.embedding(&table, &[0, 11]));
    is_shape_error("gather past the rows", d.gather_rows(&z(&[3, 4])?, &[3]));
    is_shape_error("scatter past the rows", d.scatter_rows(&mut z(&[3, 4])?, &[3], &z(&[1, 4])?));
    is_shape_error("scatter of the wrong width", d.scatter_rows(&mut z(&[3, 4])?, &[0], &z(&[1, 5])?));
    is_shape_error("rope over odd heads", d.rope(&mut z(&[2, 6])?, &[0, 1], &[1.0, 0.5]));
    is_shape_error("rope positions", d.rope(&mut z(&[2, 8])?, &[0], &[1.0, 0.5]));
    is_shape_error("a KV write past the capacity", d.write_positions(&mut z(&[1, 4, 8])?, 3, &z(&[1, 2, 8])?));
    is_shape_error("patches of a partial grid", d.patches(&[0.0; 3 * 10 * 10], 1, 10, 4));
    is_shape_error("patches of missing pixels", d.patches(&[0.0; 5], 1, 8, 4));
    is_shape_error("vit tokens positions", d.vit_tokens(&z(&[1, 4, 6])?, None, &Vector::activation(d, vec![0.0; 6])?));
    let (q, kv) = (z(&[1, 4, 3 * 8])?, z(&[1, 4, 2 * 8])?);
    fn heads(a: &Array, h: usize) -> Heads<'_> {
        heads_of(a, 0, h, 8, 4)
    }
    is_shape_error(
        "attention with mismatched heads",
        d.attention(heads(&q, 3), heads(&kv, 2), heads(&kv, 2), Mask::NONE),
    );
    let wide = Heads { head_dim: 6, ..heads(&kv, 2) };
    is_shape_error("attention with mismatched head sizes", d.attention(heads(&q, 3), wide, wide, Mask::NONE));
    let past = Heads { col: 8, ..heads(&kv, 2) };
    is_shape_error("heads past the columns", d.attention(heads(&q, 2), past, past, Mask::NONE));
    let long = Heads { len: 5, ..heads(&kv, 2) };
    is_shape_error("heads past the positions", d.attention(heads(&kv, 2), long, long, Mask::NONE));
    let short = Heads { len: 2, ..heads(&kv, 2) };
    let causal = Mask { causal: true, keys: None };
    is_shape_error("causal with more queries than keys", d.attention(heads(&kv, 2), short, short, causal));
    let keys = Mask { causal: false, keys: Some(&[1, 1, 1]) };
    is_shape_error("a key mask of the wrong length", d.attention(heads(&kv, 2), heads(&kv, 2), heads(&kv, 2), keys));
    is_shape_error("a reshape that loses elements", z(&[2, 6])?.reshape([5, 2]));
    Ok(())
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    on_each_device("bad shapes", |dev| {
        let devices = match dev {
            Dev::Cpu => vec![Device::cpu(), Device::cpu_with(Precision::Bf16).expect("bf16")],
            Dev::Cuda(_) => {
                [Precision::F32, Precision::Bf16].map(|p| Device::cuda(p).expect("the GPU started once")).to_vec()
            }
        };
        for d in devices {
            bad_shapes(&d).unwrap_or_else(|e| panic!("{}: setting up: {e}", d.tag()));
        }
    });
}
