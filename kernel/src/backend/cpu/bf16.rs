//! bf16 compute for `Linear` layers: weights packed once into column panels of bf16 pairs,
//! activations rounded to bf16 per call, products accumulated in f32 with AVX-512 BF16
//! (`vdpbf16ps`, Intel SDM vol. 2) in a packed, cache-blocked micro-kernel after BLIS
//! (Van Zee & van de Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS Functionality",
//! 2015). On CPUs without AVX-512 BF16 the same numbers come from the f32 GEMM on
//! bf16-rounded operands, so results do not depend on the machine beyond summation order.

use half::bf16;
use rayon::prelude::*;

use crate::tensor::Tensor;

/// Rows of the micro-tile (12 rows × 2 registers = 24 accumulators).
const MR: usize = 12;
/// Columns of the micro-tile: two 16-lane f32 registers.
const NR: usize = 32;
/// k pairs per cache block: a 16 KiB weight micro-panel stays in L1.
const KC: usize = 128;
/// Rows per L2 block of activations.
const MC: usize = 96;
/// Column panels per parallel task.
const PANELS_PER_TASK: usize = 8;

/// Whether this CPU runs bf16 products natively (AVX-512 F and BF16); without it the bf16
/// path is emulated with f32 arithmetic on bf16-rounded values (same results, no speed-up).
pub fn bf16_native() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A `[n, k]` weight matrix (PyTorch `Linear` layout) rounded to bf16 and laid out for the
/// micro-kernel.
#[derive(Clone)]
pub struct PackedBf16 {
    n: usize,
    k: usize,
    layout: Layout,
}

#[derive(Clone)]
enum Layout {
    /// `[n_panels][pairs][NR]` words, each the bf16 pair `(w[j][2p], w[j][2p+1])` in its low and
    /// high half; columns past `n` and the odd `k`'s last half are zero.
    Panels(Vec<u32>),
    /// The rounded weights widened back to f32, for CPUs without AVX-512 BF16.
    Emulated(Tensor),
}

impl std::fmt::Debug for PackedBf16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.layout {
            Layout::Panels(_) => "avx512-bf16",
            Layout::Emulated(_) => "emulated",
        };
        write!(f, "PackedBf16([{}, {}], {how})", self.n, self.k)
    }
}

fn to_bits(x: f32) -> u32 {
    u32::from(bf16::from_f32(x).to_bits())
}

fn round(x: f32) -> f32 {
    bf16::from_f32(x).to_f32()
}

impl PackedBf16 {
    /// Packs `w` (`[n, k]`).
    pub fn pack(w: &Tensor) -> Self {
        Self::pack_for(w, bf16_native())
    }

    /// Packs `w` for the native micro-kernel, or for emulation.
    fn pack_for(w: &Tensor, native: bool) -> Self {
        let (n, k) = (w.shape()[0], w.cols());
        if !native {
            let data = w.data().iter().map(|&v| round(v)).collect();
            return PackedBf16 { n, k, layout: Layout::Emulated(Tensor::new([n, k], data)) };
        }
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(NR);
        let mut words = vec![0u32; panels * pairs * NR];
        words.par_chunks_mut(pairs * NR).enumerate().for_each(|(jb, panel)| {
            for c in 0..NR.min(n - jb * NR) {
                let row = w.row(jb * NR + c);
                for p in 0..pairs {
                    let lo = to_bits(row[2 * p]);
                    let hi = row.get(2 * p + 1).map_or(0, |&v| to_bits(v));
                    panel[p * NR + c] = lo | (hi << 16);
                }
            }
        });
        PackedBf16 { n, k, layout: Layout::Panels(words) }
    }

    /// Output features.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features.
    pub fn k(&self) -> usize {
        self.k
    }
}

/// `x · wᵀ (+ bias)` in bf16 with f32 accumulation; `x` is `[.., k]`, the result `[.., n]`.
pub fn linear_bf16(x: &Tensor, w: &PackedBf16, bias: Option<&[f32]>) -> Tensor {
    let (m, k, n) = (x.rows(), x.cols(), w.n);
    assert_eq!(k, w.k, "linear_bf16: x has {k} columns, weight has {}", w.k);
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("x has at least one dimension") = n;
    match &w.layout {
        Layout::Emulated(wf) => {
            let xr = Tensor::new(x.shape().to_vec(), x.data().iter().map(|&v| round(v)).collect());
            super::linear(&xr, wf, bias).reshape(shape)
        }
        Layout::Panels(panels) => {
            let mut out = Tensor::zeros(shape);
            if m == 0 || n == 0 {
                return out;
            }
            if k == 0 {
                if let Some(b) = bias {
                    out.data_mut().chunks_mut(n).for_each(|row| row.copy_from_slice(b));
                }
                return out;
            }
            let a = round_rows(x.data(), m, k);
            // SAFETY: `Panels` exists only when `bf16_native()` said the CPU has AVX-512 F and
            // BF16; the buffers have the sizes `gemm` documents.
            unsafe { gemm(&a, panels, m, n, k, bias, out.data_mut()) };
            out
        }
    }
}

/// Rounds `[m, k]` f32 rows to bf16 pairs, `[ceil(m / MR) · MR][ceil(k / 2)]` words with zero
/// padding rows.
fn round_rows(x: &[f32], m: usize, k: usize) -> Vec<u32> {
    let pairs = k.div_ceil(2);
    let mut a = vec![0u32; m.div_ceil(MR) * MR * pairs];
    a.par_chunks_mut(pairs * 16).zip(x.par_chunks(k * 16)).for_each(|(dst, src)| {
        for (d, s) in dst.chunks_mut(pairs).zip(src.chunks(k)) {
            // SAFETY: only reached on the native path (see `linear_bf16`).
            unsafe { kernel::round_row(s, d) };
        }
    });
    a
}

/// A pointer to the output that tasks writing disjoint tiles share.
#[derive(Clone, Copy)]
struct Out(*mut f32);
impl Out {
    /// The element at `offset`.
    ///
    /// # Safety
    /// `offset` must lie inside the output.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: the caller keeps `offset` in bounds.
        unsafe { self.0.add(offset) }
    }
}

// SAFETY: every task writes a disjoint set of (row, column) tiles of the output.
unsafe impl Send for Out {}
// SAFETY: as above.
unsafe impl Sync for Out {}

/// `c[m×n] = a · panelsᵀ (+ bias)`.
///
/// # Safety
/// The CPU must have AVX-512 F and BF16; `a` holds `ceil(m/MR)·MR` rows of `ceil(k/2)` words,
/// `panels` `ceil(n/NR)` panels of `ceil(k/2)·NR` words, `c` at least `m·n` values.
unsafe fn gemm(a: &[u32], panels: &[u32], m: usize, n: usize, k: usize, bias: Option<&[f32]>, c: &mut [f32]) {
    let pairs = k.div_ceil(2);
    let n_panels = n.div_ceil(NR);
    let row_blocks = m.div_ceil(MC);
    let col_groups = n_panels.div_ceil(PANELS_PER_TASK);
    let out = Out(c.as_mut_ptr());
    // As an address, so that the tasks can share it.
    let bias = bias.map(|b| b.as_ptr() as usize);
    (0..row_blocks * col_groups).into_par_iter().for_each(|task| {
        let (ib, jg) = (task / col_groups, task % col_groups);
        let rows = ib * MC..(ib * MC + MC).min(m);
        let panels_here = jg * PANELS_PER_TASK..(jg * PANELS_PER_TASK + PANELS_PER_TASK).min(n_panels);
        for p0 in (0..pairs).step_by(KC) {
            let kc = KC.min(pairs - p0);
            for jb in panels_here.clone() {
                let cols = NR.min(n - jb * NR);
                let b = panels[(jb * pairs + p0) * NR..].as_ptr();
                for i0 in rows.clone().step_by(MR) {
                    let r = MR.min(m - i0);
                    // SAFETY: the tile's rows `i0..i0+r` and columns `jb·NR..+cols` lie inside
                    // `c`; `a` has MR padded rows from `i0`; the panel holds `kc` pairs from `p0`.
                    unsafe {
                        kernel::tile(
                            a.as_ptr().add(i0 * pairs + p0),
                            pairs,
                            b,
                            kc,
                            out.at(i0 * n + jb * NR),
                            n,
                            r,
                            cols,
                            if p0 == 0 { Some(bias.map(|b| (b as *const f32).add(jb * NR))) } else { None },
                        );
                    }
                }
            }
        }
    });
}

#[cfg(target_arch = "x86_64")]
mod kernel {
    use std::arch::x86_64::*;

    use super::{MR, NR, to_bits};

    /// Rounds one row of f32 to bf16 pairs (round to nearest even).
    ///
    /// # Safety
    /// AVX-512 F and BF16 must be available; `dst.len() == src.len().div_ceil(2)`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn round_row(src: &[f32], dst: &mut [u32]) {
        let mut i = 0;
        while i + 32 <= src.len() {
            // SAFETY: 32 values from `i` lie in `src`, 16 words from `i / 2` in `dst`.
            unsafe {
                let lo = _mm512_loadu_ps(src.as_ptr().add(i));
                let hi = _mm512_loadu_ps(src.as_ptr().add(i + 16));
                let packed: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_storeu_si512(dst.as_mut_ptr().add(i / 2).cast(), packed);
            }
            i += 32;
        }
        for p in i / 2..dst.len() {
            let lo = to_bits(src[2 * p]);
            let hi = src.get(2 * p + 1).map_or(0, |&v| to_bits(v));
            dst[p] = lo | (hi << 16);
        }
    }

    /// One MR×NR tile: `c[r×cols] (+)= a[r×2kc] · b[2kc×cols]`. With `init = Some(bias)` the
    /// tile is overwritten with the product plus the bias (if any), otherwise accumulated.
    ///
    /// # Safety
    /// AVX-512 F and BF16 must be available; `a` has MR rows of stride `lda` words with `kc`
    /// readable words each; `b` has `kc·NR` words; `c` has `r ≤ MR` rows of stride `ldc` with
    /// `cols ≤ NR` writable values; a bias has `cols` values.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile(
        a: *const u32,
        lda: usize,
        b: *const u32,
        kc: usize,
        c: *mut f32,
        ldc: usize,
        r: usize,
        cols: usize,
        init: Option<Option<*const f32>>,
    ) {
        let mut acc = [_mm512_setzero_ps(); 2 * MR];
        for p in 0..kc {
            // SAFETY: within the bounds the caller guarantees.
            unsafe {
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR).cast()));
                let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR + 16).cast()));
                for (row, pair) in acc.chunks_exact_mut(2).enumerate() {
                    let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(row * lda + p) as i32));
                    pair[0] = _mm512_dpbf16_ps(pair[0], av, b0);
                    pair[1] = _mm512_dpbf16_ps(pair[1], av, b1);
                }
            }
        }
        let mask = |half: usize| -> __mmask16 {
            let valid = cols.saturating_sub(half * 16).min(16);
            ((1u32 << valid) - 1) as __mmask16
        };
        let masks = [mask(0), mask(1)];
        for (row, pair) in acc.chunks_exact(2).enumerate().take(r) {
            for (h, &v) in pair.iter().enumerate() {
                // SAFETY: masked loads and stores touch only the `cols` valid columns.
                unsafe {
                    let dst = c.add(row * ldc + h * 16);
                    let base = match init {
                        Some(Some(bias)) => _mm512_maskz_loadu_ps(masks[h], bias.add(h * 16)),
                        Some(None) => _mm512_setzero_ps(),
                        None => _mm512_maskz_loadu_ps(masks[h], dst),
                    };
                    _mm512_mask_storeu_ps(dst, masks[h], _mm512_add_ps(base, v));
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod kernel {
    pub(super) unsafe fn round_row(_: &[f32], _: &mut [u32]) {
        unreachable!("the native bf16 path exists only on x86_64")
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile(
        _: *const u32,
        _: usize,
        _: *const u32,
        _: usize,
        _: *mut f32,
        _: usize,
        _: usize,
        _: usize,
        _: Option<Option<*const f32>>,
    ) {
        unreachable!("the native bf16 path exists only on x86_64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random matrix in [-1, 1).
    fn matrix(rows: usize, cols: usize, seed: u64) -> Tensor {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let data = (0..rows * cols)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        Tensor::new([rows, cols], data)
    }

    /// The product of the bf16-rounded operands, accumulated in f64.
    fn reference(x: &Tensor, w: &Tensor, bias: Option<&[f32]>) -> Vec<f64> {
        let (m, k, n) = (x.rows(), x.cols(), w.rows());
        let mut out = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|t| f64::from(round(x.row(i)[t])) * f64::from(round(w.row(j)[t]))).sum();
                out[i * n + j] = dot + bias.map_or(0.0, |b| f64::from(b[j]));
            }
        }
        out
    }

    #[test]
    fn matches_the_rounded_product_at_awkward_shapes() {
        // Odd k, n not a multiple of the panel width, m not a multiple of the tile height,
        // k spanning several cache blocks, with and without bias.
        for &(m, k, n, with_bias) in
            &[(1, 1, 1, true), (13, 7, 33, true), (25, 301, 70, false), (97, 520, 64, true), (5, 64, 257, true)]
        {
            let x = matrix(m, k, 1 + m as u64);
            let w = matrix(n, k, 2 + n as u64);
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01 - 0.3).collect();
            let bias = with_bias.then_some(bias.as_slice());
            let y = linear_bf16(&x, &PackedBf16::pack(&w), bias);
            assert_eq!(y.shape(), &[m, n]);
            let want = reference(&x, &w, bias);
            for (got, want) in y.data().iter().zip(&want) {
                let tol = 1e-5 * (k as f64).sqrt() + 1e-5 * want.abs();
                assert!((f64::from(*got) - want).abs() <= tol, "{m}x{k}x{n}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn emulation_gives_the_native_numbers() {
        let (x, w) = (matrix(30, 130, 5), matrix(45, 130, 6));
        let bias: Vec<f32> = (0..45).map(|j| j as f32 * 0.1).collect();
        let emulated = linear_bf16(&x, &PackedBf16::pack_for(&w, false), Some(&bias));
        let want = reference(&x, &w, Some(&bias));
        for (got, want) in emulated.data().iter().zip(&want) {
            assert!((f64::from(*got) - want).abs() <= 1e-4 + 1e-5 * want.abs(), "{got} vs {want}");
        }
        if bf16_native() {
            let native = linear_bf16(&x, &PackedBf16::pack(&w), Some(&bias));
            for (a, b) in native.data().iter().zip(emulated.data()) {
                assert!((a - b).abs() <= 1e-4 + 1e-5 * b.abs(), "{a} vs {b}");
            }
        } else {
            eprintln!("SKIP native bf16 comparison: this CPU lacks AVX-512 BF16");
        }
    }

    #[test]
    fn stays_within_bf16_error_of_the_f32_product() {
        let (x, w) = (matrix(40, 768, 3), matrix(96, 768, 4));
        let y = linear_bf16(&x, &PackedBf16::pack(&w), None);
        let exact = super::super::linear(&x, &w, None);
        let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
        let diff: Vec<f32> = y.data().iter().zip(exact.data()).map(|(a, b)| a - b).collect();
        let rel = norm(&diff) / norm(exact.data());
        assert!(rel < 1e-2, "relative error {rel}");
        assert!(rel > 0.0, "bf16 rounding must show");
    }
}
