//! Quantised kernels: `linear` against `dequantize` + an f64 product, every SIMD kernel against the
//! scalar definition bit for bit, and row permutation.
//!
//! Error bound: the weights are used exactly, so the only approximation is the 8-bit activation
//! quantisation: each activation moves by at most half a step, `amax_b / 254` for its 32-block `b`.
//! Hence `|y - y_ref| <= sum_b amax_b/254 * sum_{i in b} |w_i|` (+ f32 rounding, 1e-5 relative to
//! `sum |w_i x_i|`), checked per output.

use super::Rng;
use half::{bf16, f16};
use mvb::backend::cpu::quant::linear::linear_many;
use mvb::backend::cpu::quant::{GgmlType, Kernel, QActs, QMatrix, linear_q, linear_with};

fn f16b(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_bits().to_le_bytes()
}

/// A random matrix of `ty`: random quants and small positive f16 scales.
fn random_matrix(ty: GgmlType, rows: usize, cols: usize, rng: &mut Rng) -> QMatrix {
    let nblocks = rows * cols / ty.block_len();
    let mut bytes = Vec::new();
    for _ in 0..nblocks {
        let start = bytes.len();
        match ty {
            GgmlType::F32 => bytes.extend(rng.normal().to_le_bytes()),
            GgmlType::F16 => bytes.extend(f16b(rng.normal())),
            GgmlType::BF16 => bytes.extend(bf16::from_f32(rng.normal()).to_bits().to_le_bytes()),
            GgmlType::Q8_0 | GgmlType::Q4_0 => bytes.extend(f16b(0.01 + 0.02 * rng.unit())),
            GgmlType::Q4_1 | GgmlType::Q4_K => {
                bytes.extend(f16b(0.005 + 0.02 * rng.unit()));
                bytes.extend(f16b(if ty == GgmlType::Q4_1 { -0.1 * rng.unit() } else { 0.01 * rng.unit() }));
            }
            GgmlType::Q6_K => {}
        }
        while bytes.len() < start + ty.block_bytes() {
            bytes.push(rng.byte());
        }
        if ty == GgmlType::Q6_K {
            let d = f16b(0.0005 + 0.002 * rng.unit());
            bytes[start + 208..start + 210].copy_from_slice(&d);
        }
    }
    QMatrix::from_bytes(ty, rows, cols, bytes).expect("a quantised matrix")
}

fn check_bound(ty: GgmlType, w: &[f32], x: &[f32], cols: usize, got: f32, what: &str) {
    let (mut y, mut mag, mut bound) = (0f64, 0f64, 0f64);
    for b in 0..cols / 32 {
        let xs = &x[b * 32..b * 32 + 32];
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs())) as f64;
        let wsum: f64 = w[b * 32..b * 32 + 32].iter().map(|v| v.abs() as f64).sum();
        bound += if ty.is_float() { 0.0 } else { amax / 254.0 * wsum };
        for i in 0..32 {
            y += w[b * 32 + i] as f64 * xs[i] as f64;
            mag += (w[b * 32 + i] as f64 * xs[i] as f64).abs();
        }
    }
    let tol = bound * 1.0001 + 1e-5 * mag + 1e-30;
    assert!((got as f64 - y).abs() <= tol, "{what}: got {got}, reference {y}, bound {tol}");
}

#[test]
fn linear_matches_dequantised_product_within_the_activation_bound() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for ty in GgmlType::ALL {
        let col_sizes: &[usize] = if ty.block_len() == 256 { &[256, 768] } else { &[32, 544, 576] };
        for &cols in col_sizes {
            for &rows in &[1usize, 7, 37] {
                let w = random_matrix(ty, rows, cols, &mut rng);
                let wd = w.dequantize();
                for m in [1usize, 3, 8, 12, 16, 19, 70] {
                    let x: Vec<f32> = (0..m * cols).map(|_| rng.normal()).collect();
                    let mut reference = vec![0f32; m * rows];
                    linear_with(Kernel::Scalar, &x, m, &w, &mut reference).expect("test input");
                    for r in 0..m {
                        for i in 0..rows {
                            let what = format!("{ty:?} {rows}x{cols} m={m} out[{r},{i}]");
                            let (wr, xr) = (&wd[i * cols..(i + 1) * cols], &x[r * cols..(r + 1) * cols]);
                            check_bound(ty, wr, xr, cols, reference[r * rows + i], &what);
                        }
                    }
                    for kernel in Kernel::available() {
                        let mut out = vec![f32::NAN; m * rows];
                        linear_with(kernel, &x, m, &w, &mut out).expect("test input");
                        let same = out.iter().zip(&reference).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{ty:?} {rows}x{cols} m={m}: {kernel:?} differs from scalar");
                    }
                }
            }
        }
    }
    println!("kernels compared with scalar: {:?}", Kernel::available());
}

#[test]
fn shared_activations_and_shape_errors() {
    let mut rng = Rng(7);
    let w = random_matrix(GgmlType::Q4_1, 5, 64, &mut rng);
    let x: Vec<f32> = (0..2 * 64).map(|_| rng.normal()).collect();
    let acts = QActs::quantize(&x, 2, 64).expect("test input");
    let (mut a, mut b) = (vec![0f32; 10], vec![0f32; 10]);
    linear_q(&acts, &w, &mut a).expect("test input");
    linear_with(Kernel::detect(), &x, 2, &w, &mut b).expect("test input");
    assert_eq!(a, b);
    assert!(linear_with(Kernel::detect(), &x[1..], 2, &w, &mut b).is_err());
    assert!(linear_with(Kernel::detect(), &x, 2, &w, &mut b[1..]).is_err());
    assert!(QMatrix::from_bytes(GgmlType::Q4_1, 5, 64, vec![0; 10]).is_err());
    assert!(QMatrix::from_bytes(GgmlType::Q4_K, 1, 100, vec![0; 10]).is_err());
    assert!(GgmlType::from_id(13).unwrap_err().to_string().contains("Q5_K"));
}

#[test]
fn several_matrices_in_one_region_equal_one_at_a_time() {
    // q, k and v (or gate and up) of one input in one parallel region: each output is exactly
    // the one-matrix product's, for row counts that are and are not whole groups of eight; a
    // K-quant (no packed form) takes the one-at-a-time path.
    let mut rng = Rng(13);
    for (ty, cols) in [(GgmlType::Q4_0, 128), (GgmlType::Q4_1, 128), (GgmlType::Q8_0, 128), (GgmlType::Q4_K, 256)] {
        let ws: Vec<QMatrix> = [72, 21, 21].iter().map(|&r| random_matrix(ty, r, cols, &mut rng)).collect();
        for m in [1, 3, 16, 70] {
            let x: Vec<f32> = (0..m * cols).map(|_| rng.normal()).collect();
            let acts = QActs::quantize(&x, m, cols).expect("test input");
            let refs: Vec<&QMatrix> = ws.iter().collect();
            let many = linear_many(&acts, &refs).expect("test input");
            for (w, got) in ws.iter().zip(&many) {
                let mut want = vec![0f32; m * w.rows()];
                linear_q(&acts, w, &mut want).expect("test input");
                assert_eq!(got, &want, "{ty:?}, {m} rows, {} outputs", w.rows());
            }
        }
    }
    let other = random_matrix(GgmlType::Q8_0, 8, 64, &mut rng);
    let acts = QActs::quantize(&vec![0.5; 128], 1, 128).expect("test input");
    assert!(linear_many(&acts, &[&other]).is_err(), "a matrix of another width is refused");
}

#[test]
fn activation_quantisation_is_the_same_on_every_path() {
    let mut rng = Rng(11);
    for k in 0..500 {
        let x: [f32; 32] = std::array::from_fn(|i| match (i + k) % 9 {
            0 => 0.0,
            1 => -rng.normal() * 1e-30,
            _ => rng.normal() * (k as f32 + 1.0),
        });
        let mut a = [0i8; 32];
        let (d, ys) = mvb::backend::cpu::quant::acts::quantize_block_scalar(&x, &mut a);
        assert_eq!(a.iter().map(|&v| v as i32).sum::<i32>(), ys);
        assert!(a.iter().all(|&q| (-127..=127).contains(&q)));
        #[cfg(target_arch = "x86_64")]
        if mvb::backend::cpu::quant::acts::has_avx2() {
            let mut b = [0i8; 32];
            // SAFETY: AVX2/FMA/F16C checked just above.
            let (d2, ys2) = unsafe { mvb::backend::cpu::quant::acts::quantize_block_avx2(&x, &mut b) };
            assert_eq!((a, d.to_bits(), ys), (b, d2.to_bits(), ys2), "block {k}");
        }
    }
}
