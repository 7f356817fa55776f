//! The training operations of the compute layer (`backend/grad.rs`), each on fresh random inputs
//! (the seed is printed on failure): on the CPU (the reference, itself checked against torch
//! autograd in `lora_train.rs` and against finite differences in `cpu/grad.rs`), then on CUDA
//! when a GPU starts (else a `SKIP cuda <op>` line) in f32, within 1e-5 relative of the CPU,
//! and in bf16, within the bf16 bound (attention backward: 3e-2, its recomputed probabilities
//! and their gradient are stored in bf16). Inputs are rounded to bf16 first, so that every
//! device sees the same operands. Bad shapes are errors on every device.

use mvb::backend::cpu::Activation;
use mvb::backend::cuda::DType;
use mvb::backend::{Array, ComputeError, Device, Heads, Linear, Precision, Vector};
use mvb::tensor::Tensor;

use crate::common::{Dev, Rng, assert_close, on_each_device};

/// The f32 bound of a GPU result against the CPU's.
const F32_TOL: f32 = 1e-5;

/// `n` random values in [-scale, scale), rounded to bf16.
fn values(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    DType::Bf16.round(&rng.vec(n, scale))
}

fn array(device: &Device, shape: &[usize], values: &[f32]) -> Result<Array, ComputeError> {
    device.upload(Tensor::new(shape.to_vec(), values.to_vec()))
}

fn host(device: &Device, x: &Array) -> Result<Vec<f32>, ComputeError> {
    Ok(x.to_tensor(device)?.into_data())
}

/// Runs `op` on the CPU, then on CUDA in f32 (within [`F32_TOL`] of the CPU) and bf16 (within
/// `bf16_tol`).
fn check(name: &str, seed: u64, bf16_tol: f32, op: impl Fn(&Device) -> Result<Vec<f32>, ComputeError>) {
    let run = |device: &Device| op(device).unwrap_or_else(|e| panic!("{name} on {}: {e} (seed {seed})", device.tag()));
    let cpu = run(&Device::cpu());
    assert!(cpu.iter().all(|v| v.is_finite()), "cpu {name}: not finite (seed {seed})");
    on_each_device(name, |dev| {
        if let Dev::Cuda(_) = dev {
            for (precision, tol) in [(Precision::F32, F32_TOL), (Precision::Bf16, bf16_tol)] {
                let device = Device::cuda(precision).expect("the GPU started once");
                assert_close(&format!("{} {name}", device.tag()), &run(&device), &cpu, tol, seed);
            }
        }
    });
}

#[test]
fn grad_matmul_with_every_transpose() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let (m, k, n) = (1 + rng.below(40), 1 + rng.below(70), 1 + rng.below(40));
        let a = values(&mut rng, m * k, 1.0);
        let b = values(&mut rng, k * n, 1.0);
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        check(&format!("matmul ta={ta} tb={tb}"), seed, 1e-2, |d| {
            let c = d.matmul(&array(d, &a_shape, &a)?, ta, &array(d, &b_shape, &b)?, tb, 0.75)?;
            assert_eq!(c.shape(), [m, n]);
            host(d, &c)
        });
    }
}

#[test]
fn grad_linear_backward() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let (batch, seq, inp, out) = (2, 1 + rng.below(9), 1 + rng.below(60), 1 + rng.below(60));
    let w = values(&mut rng, out * inp, 0.5);
    let bias = values(&mut rng, out, 0.5);
    let dy = values(&mut rng, batch * seq * out, 1.0);
    check("linear_backward", seed, 1e-2, |d| {
        let l = Linear::new(d, Tensor::new([out, inp], w.clone()), Some(bias.clone()))?;
        let dx = d.linear_backward(&array(d, &[batch, seq, out], &dy)?, &l)?;
        assert_eq!(dx.shape(), [batch, seq, inp]);
        host(d, &dx)
    });
}

#[test]
fn grad_layer_norm_backward() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    for cols in [1 + rng.below(31), 32 + rng.below(100), 768] {
        let rows = 1 + rng.below(20);
        let x: Vec<f32> = values(&mut rng, rows * cols, 2.0).iter().map(|v| v + 0.5).collect();
        let gamma = values(&mut rng, cols, 1.0);
        let dy = values(&mut rng, rows * cols, 1.0);
        check(&format!("layer_norm_backward cols={cols}"), seed, 1e-2, |d| {
            let g = Vector::f32(d, gamma.clone())?;
            let dx = d.layer_norm_backward(&array(d, &[rows, cols], &x)?, &g, 1e-5, &array(d, &[rows, cols], &dy)?)?;
            host(d, &dx)
        });
    }
}

#[test]
fn grad_activation_backward() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let n = 1 + rng.below(3000);
    let x = values(&mut rng, n, 4.0);
    let dy = values(&mut rng, n, 1.0);
    for act in [Activation::Gelu, Activation::GeluTanh, Activation::QuickGelu, Activation::Silu] {
        check(&format!("activate_backward {act:?}"), seed, 1e-2, |d| {
            host(d, &d.activate_backward(&array(d, &[n], &x)?, &array(d, &[n], &dy)?, act)?)
        });
    }
}

/// `(dQ, dK, dV)` flattened into one vector.
fn attention_grads(
    d: &Device,
    q: Heads<'_>,
    k: Heads<'_>,
    v: Heads<'_>,
    dout: &[f32],
) -> Result<Vec<f32>, ComputeError> {
    let shape = [q.batch(), q.len, q.heads * q.head_dim];
    let (dq, dk, dv) = d.attention_backward(q, k, v, &array(d, &shape, dout)?)?;
    assert_eq!(dq.shape(), shape);
    assert_eq!(dk.shape(), [k.batch(), k.len, k.heads * k.head_dim]);
    let mut all = host(d, &dq)?;
    all.extend(host(d, &dk)?);
    all.extend(host(d, &dv)?);
    Ok(all)
}

#[test]
fn grad_attention_backward_packed_qkv_and_pooling_queries() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let (batch, heads, dim, seq) = (1 + rng.below(3), 1 + rng.below(4), 1 + rng.below(40), 1 + rng.below(60));
    let w = heads * dim;
    // A CLIP layer: q, k and v are the three parts of one `[batch, seq, 3w]` projection.
    let qkv = values(&mut rng, batch * seq * 3 * w, 1.5);
    let dout = values(&mut rng, batch * seq * w, 1.0);
    check(&format!("attention_backward qkv b={batch} h={heads} d={dim} s={seq}"), seed, 3e-2, |d| {
        let x = array(d, &[batch, seq, 3 * w], &qkv)?;
        let part = |i: usize| Heads { array: &x, col: i * w, heads, head_dim: dim, len: seq };
        attention_grads(d, part(0), part(1), part(2), &dout)
    });
    // SigLIP's pooling: one query per batch element against the `[batch, seq, 2w]` keys and values.
    let queries = values(&mut rng, batch * w, 1.5);
    let kv = values(&mut rng, batch * seq * 2 * w, 1.5);
    let dout = values(&mut rng, batch * w, 1.0);
    check(&format!("attention_backward pooling b={batch} h={heads} d={dim} s={seq}"), seed, 3e-2, |d| {
        let (q, x) = (array(d, &[batch, 1, w], &queries)?, array(d, &[batch, seq, 2 * w], &kv)?);
        let part = |i: usize| Heads { array: &x, col: i * w, heads, head_dim: dim, len: seq };
        let q = Heads { array: &q, col: 0, heads, head_dim: dim, len: 1 };
        attention_grads(d, q, part(0), part(1), &dout)
    });
}

#[test]
fn grad_columns_products_sums_and_copies() {
    let mut rng = Rng::fresh();
    let seed = rng.seed();
    let (batch, seq) = (1 + rng.below(4), 1 + rng.below(30));
    let rows = batch * seq;
    let widths = [1 + rng.below(50), 1 + rng.below(50), 1 + rng.below(50)];
    let parts: Vec<Vec<f32>> = widths.iter().map(|&c| values(&mut rng, rows * c, 1.0)).collect();
    let cols: usize = widths.iter().sum();
    let y = values(&mut rng, rows * cols, 1.0);
    let mask = values(&mut rng, rows * cols, 2.0);
    check("concat_cols, add_cols, mul, sum_batches, copy", seed, 1e-2, |d| {
        let arrays = (0..3).map(|i| array(d, &[batch, seq, widths[i]], &parts[i])).collect::<Result<Vec<_>, _>>()?;
        let cat = d.concat_cols(&arrays.iter().collect::<Vec<_>>())?;
        assert_eq!(cat.shape(), [batch, seq, cols]);
        let mut out = host(d, &cat)?;
        let mut ya = array(d, &[batch, seq, cols], &y)?;
        d.add_cols(&mut ya, widths[0], &arrays[1])?;
        d.mul(&mut ya, &array(d, &[batch, seq, cols], &mask)?)?;
        out.extend(host(d, &ya)?);
        let summed = d.sum_batches(&ya)?;
        assert_eq!(summed.shape(), [seq, cols]);
        out.extend(host(d, &summed)?);
        out.extend(host(d, &d.copy(&ya)?)?);
        Ok(out)
    });
}

/// One head of 3 over the first position of `x`.
fn heads(x: &Array) -> Heads<'_> {
    Heads { array: x, col: 0, heads: 1, head_dim: 3, len: 1 }
}

/// Shape errors of the training operations on `d`.
fn bad_shapes(d: &Device) -> Vec<(&'static str, Result<(), ComputeError>)> {
    let a = || array(d, &[2, 3], &[0.0; 6]);
    let mut out = Vec::new();
    out.push(("matmul", a().and_then(|x| d.matmul(&x, false, &x, false, 1.0).map(drop))));
    out.push((
        "add_cols",
        a().and_then(|mut y| {
            let src = array(d, &[2, 2], &[0.0; 4])?;
            d.add_cols(&mut y, 2, &src)
        }),
    ));
    out.push(("mul", a().and_then(|mut x| d.mul(&mut x, &array(d, &[5], &[0.0; 5])?))));
    out.push(("sum_batches", a().and_then(|x| d.sum_batches(&x).map(drop))));
    out.push((
        "layer_norm_backward",
        a().and_then(|x| d.layer_norm_backward(&x, &Vector::f32(d, vec![1.0; 2])?, 1e-5, &x).map(drop)),
    ));
    out.push((
        "attention_backward",
        array(d, &[1, 2, 3], &[0.0; 6]).and_then(|x| {
            let dout = array(d, &[1, 2, 3], &[0.0; 6])?;
            d.attention_backward(heads(&x), heads(&x), heads(&x), &dout).map(drop)
        }),
    ));
    out
}

#[test]
fn grad_bad_shapes_are_errors_not_panics() {
    on_each_device("grad bad shapes", |dev| {
        let d = dev.f32_device();
        for (what, r) in bad_shapes(&d) {
            assert!(matches!(r, Err(ComputeError::Shape(_))), "{what} on {}: {r:?}", d.tag());
        }
    });
}
