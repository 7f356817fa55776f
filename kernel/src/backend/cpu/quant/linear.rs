//! `out[m x rows] = x[m x cols] · Wᵀ` with W kept in its ggml type, parallel over output rows (rayon).
//!
//! Quantised W: the activations are quantised once to 8-bit blocks ([`QActs`]) and each weight row
//! is read once per tile of up to 16 activation rows, so a batch reuses every weight block.
//! Float W (F32/F16/BF16): f32 activations, the weight row converted to f32 once per tile.

use super::acts::QActs;
#[cfg(target_arch = "x86_64")]
use super::packed::{Packed, ROWS};
#[cfg(target_arch = "x86_64")]
use super::x86_lanes::{LANES, LaneActs, Unpacked, group_lanes, store_transposed};
use super::{GgmlType, QMatrix, QuantError, scalar};
use rayon::prelude::*;
#[cfg(target_arch = "x86_64")]
use std::ops::Range;

/// Kernel implementation; [`Kernel::detect`] picks the best one for this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Portable scalar code (the definition of the results).
    Scalar,
    /// x86-64 SIMD at the given level.
    #[cfg(target_arch = "x86_64")]
    X86(super::x86::X86Level),
}

impl Kernel {
    /// The fastest kernel this CPU supports (run-time feature detection).
    pub fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if let Some(level) = super::x86::best_level() {
            return Kernel::X86(level);
        }
        Kernel::Scalar
    }

    /// Every kernel this CPU can run (for tests comparing them).
    pub fn available() -> Vec<Kernel> {
        let mut v = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        for level in [super::x86::X86Level::Avx2, super::x86::X86Level::Avx512Vnni, super::x86::X86Level::AvxVnni] {
            if super::x86::supports(level) {
                v.push(Kernel::X86(level));
            }
        }
        v
    }

    fn supported(self) -> bool {
        match self {
            Kernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::X86(level) => super::x86::supports(level),
        }
    }
}

/// `out[m x rows] = x[m x cols] · Wᵀ` with the best kernel for this CPU.
pub fn linear(x: &[f32], m: usize, w: &QMatrix, out: &mut [f32]) -> Result<(), QuantError> {
    linear_with(Kernel::detect(), x, m, w, out)
}

/// [`linear`] with an explicit kernel (an unsupported one falls back to scalar).
pub fn linear_with(kernel: Kernel, x: &[f32], m: usize, w: &QMatrix, out: &mut [f32]) -> Result<(), QuantError> {
    check_len("x", m.checked_mul(w.cols()), x.len())?;
    if w.ty().is_float() {
        check_len("out", m.checked_mul(w.rows()), out.len())?;
        return linear_float(kernel, x, m, w, out);
    }
    let acts = QActs::quantize(x, m, w.cols())?;
    linear_q_with(kernel, &acts, w, out)
}

/// [`linear`] into a new `[m x rows]` vector, through [`linear_many`] for a quantised `w` (which
/// leaves out the zero fill where the packed products write every element).
pub fn linear_vec(x: &[f32], m: usize, w: &QMatrix) -> Result<Vec<f32>, QuantError> {
    check_len("x", m.checked_mul(w.cols()), x.len())?;
    if w.ty().is_float() {
        let mut out = vec![0f32; m * w.rows()];
        linear(x, m, w, &mut out)?;
        return Ok(out);
    }
    let acts = QActs::quantize(x, m, w.cols())?;
    Ok(linear_many(&acts, &[w])?.pop().unwrap_or_default())
}

/// `out = acts · Wᵀ` for activations quantised once and shared by several matrices (q, k, v).
pub fn linear_q(acts: &QActs, w: &QMatrix, out: &mut [f32]) -> Result<(), QuantError> {
    linear_q_with(Kernel::detect(), acts, w, out)
}

fn check_len(what: &'static str, expected: Option<usize>, got: usize) -> Result<(), QuantError> {
    let expected = expected.ok_or(QuantError::Shape { what, expected: usize::MAX, got })?;
    if expected != got {
        return Err(QuantError::Shape { what, expected, got });
    }
    Ok(())
}

/// Output pointer shared by the row tasks; each task writes a disjoint set of columns of `out`.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint elements (distinct weight rows) and the pointer outlives the scope.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Splits `rows` into chunks for rayon: at least ~64 KiB of weights or 8 rows per task, about 4 per thread.
fn chunk_rows(rows: usize, row_bytes: usize, m: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let min_rows = (65536 / (row_bytes * m.max(1)).max(1)).max(8);
    rows.div_ceil(threads * 4).max(min_rows).min(rows.max(1))
}

/// [`linear_q`] with an explicit kernel.
pub fn linear_q_with(kernel: Kernel, acts: &QActs, w: &QMatrix, out: &mut [f32]) -> Result<(), QuantError> {
    let (rows, m) = (w.rows(), acts.m());
    if w.ty().is_float() {
        return Err(QuantError::Shape { what: "linear_q needs a quantised matrix; cols", expected: 0, got: w.cols() });
    }
    check_len("activation row length", Some(w.cols()), acts.cols())?;
    check_len("out", m.checked_mul(rows), out.len())?;
    let kernel = if kernel.supported() { kernel } else { Kernel::Scalar };
    #[cfg(target_arch = "x86_64")]
    if let (Kernel::X86(level), Some(p)) = (kernel, w.packed().filter(|_| kernel != Kernel::Scalar)) {
        linear_packed(level, acts, rows, p, out);
        return Ok(());
    }
    let ptr = OutPtr(out.as_mut_ptr());
    let chunk = chunk_rows(rows, w.row_bytes(), m);
    let rb = w.row_bytes();
    (0..rows.div_ceil(chunk)).into_par_iter().for_each(|c| {
        let (i0, i1) = (c * chunk, ((c + 1) * chunk).min(rows));
        let wb = &w.bytes()[i0 * rb..i1 * rb];
        let mut tmp = vec![0f32; (i1 - i0) * m.min(TILE)];
        for r0 in (0..m).step_by(TILE) {
            let n = (m - r0).min(TILE);
            dot_rows(kernel, w.ty(), wb, rb, acts, r0, n, &mut tmp[..(i1 - i0) * n]);
            for t in 0..n {
                let dst = (r0 + t) * rows;
                for (k, i) in (i0..i1).enumerate() {
                    // SAFETY: r0 + t < m and i < rows, so the index is inside `out` (length m * rows,
                    // checked above); only this task writes columns i0..i1.
                    unsafe { *ptr.get().add(dst + i) = tmp[k * n + t] };
                }
            }
        }
    });
    Ok(())
}

/// Activation rows per pass over the weights.
const TILE: usize = 16;

/// Activation rows per task of a packed product: a block's quantised rows (about 2 KiB each at
/// 1,536 columns) stay in L2 while every weight group passes over them.
const ROW_BLOCK: usize = 64;

/// [`linear_q_with`] for a packed matrix.
#[cfg(target_arch = "x86_64")]
fn linear_packed(level: super::x86::X86Level, acts: &QActs, rows: usize, p: &Packed, out: &mut [f32]) {
    let ptr = OutPtr(out.as_mut_ptr());
    packed_products(level, acts, &[(p, rows, ptr)]);
}

/// `out = acts · Wᵀ` for several quantised matrices of one input width (q, k and v; gate and
/// up), the outputs `[m, rows]` of each. Where every matrix has a packed form, in one parallel
/// region (the threads wake once); otherwise one [`linear_q`] after another. Either way the
/// activations are quantised once, by the caller.
pub fn linear_many(acts: &QActs, ws: &[&QMatrix]) -> Result<Vec<Vec<f32>>, QuantError> {
    for w in ws {
        check_len("activation row length", Some(w.cols()), acts.cols())?;
    }
    #[cfg(target_arch = "x86_64")]
    if let Kernel::X86(level) = Kernel::detect() {
        let packs: Option<Vec<&Packed>> = ws.iter().map(|w| w.packed()).collect();
        if let Some(packs) = packs {
            let lens: Vec<usize> = ws.iter().map(|w| acts.m() * w.rows()).collect();
            // Not zero-filled first: the packed products write every element.
            let mut outs: Vec<Vec<f32>> = lens.iter().map(|&n| Vec::with_capacity(n)).collect();
            let jobs: Vec<_> =
                packs.iter().zip(ws).zip(&mut outs).map(|((&p, w), o)| (p, w.rows(), OutPtr(o.as_mut_ptr()))).collect();
            packed_products(level, acts, &jobs);
            for (out, n) in outs.iter_mut().zip(lens) {
                // SAFETY: the capacity is `n` and `packed_products` wrote all `m x rows` elements
                // (every task's block of rows and columns, together covering the output).
                unsafe { out.set_len(n) };
            }
            return Ok(outs);
        }
    }
    let mut outs: Vec<Vec<f32>> = ws.iter().map(|w| vec![0f32; acts.m() * w.rows()]).collect();
    for (w, out) in ws.iter().zip(&mut outs) {
        linear_q(acts, w, out)?;
    }
    Ok(outs)
}

/// The packed products of `jobs` (matrix, its rows, its `[m, rows]` output): tasks over (matrix,
/// block of activation rows, chunk of groups of eight weight rows); each group's tiles are read
/// once per pass of `TILE_ROWS` activation rows (they stay in L1 across the passes).
#[cfg(target_arch = "x86_64")]
fn packed_products(level: super::x86::X86Level, acts: &QActs, jobs: &[(&Packed, usize, OutPtr)]) {
    let m = acts.m();
    let blocks = m.div_ceil(ROW_BLOCK);
    // (job, chunk size, first task) of each job.
    let mut plan = Vec::with_capacity(jobs.len());
    let mut tasks = 0;
    for (j, (p, _, _)) in jobs.iter().enumerate() {
        let chunk = chunk_rows(p.groups(), p.nb() * p.tile(), m.min(ROW_BLOCK));
        plan.push((j, chunk, tasks));
        tasks += p.groups().div_ceil(chunk) * blocks;
    }
    let lanes = (level == super::x86::X86Level::Avx512Vnni && m >= LANES_MIN).then(|| LaneActs::new(acts));
    (0..tasks).into_par_iter().for_each(|task| {
        let &(j, chunk, first) = plan.iter().rev().find(|(_, _, first)| *first <= task).unwrap_or(&plan[0]);
        let (p, rows, ptr) = jobs[j];
        let chunks = p.groups().div_ceil(chunk);
        let local = task - first;
        let (c, block) = (local % chunks, local / chunks);
        let groups = c * chunk..((c + 1) * chunk).min(p.groups());
        let act_rows = block * ROW_BLOCK..((block + 1) * ROW_BLOCK).min(m);
        match &lanes {
            Some(la) => lane_task(la, (p, rows, ptr), groups, act_rows),
            None => packed_task(level, acts, (p, rows, ptr), groups, act_rows),
        }
    });
}

/// Activation rows from which the AVX-512 products put rows in lanes (`x86_lanes.rs`), the
/// rest of a chunk of sixteen padded with zero rows. Below it the 8-row kernel is as fast or
/// faster (`cargo bench --bench quant` with each threshold, Q4_1, one thread: level at m = 12,
/// ahead at m = 4 and 8).
#[cfg(target_arch = "x86_64")]
const LANES_MIN: usize = 12;

/// One task of [`packed_products`] with rows in lanes: weight groups `groups` against activation
/// rows `act_rows` (whole chunks of [`LANES`] but at the end of the batch).
#[cfg(target_arch = "x86_64")]
fn lane_task(la: &LaneActs, (p, rows, ptr): (&Packed, usize, OutPtr), groups: Range<usize>, act_rows: Range<usize>) {
    let chunks = act_rows.start / LANES..act_rows.end.div_ceil(LANES);
    let mut res = vec![[[0f32; LANES]; ROWS]; chunks.len()];
    let mut w = Unpacked::default();
    for g in groups.clone() {
        let (i0, cnt) = (g * ROWS, (rows - g * ROWS).min(ROWS));
        let next = (g + 1 < groups.end).then_some(g + 1);
        // SAFETY: AVX-512 VNNI is present (the caller chose this path for that level); the
        // kernel checks the shapes.
        let done = unsafe { group_lanes(p, g, la, chunks.clone(), next, &mut w, &mut res) };
        for (chunk, res) in chunks.clone().zip(&res) {
            let (r0, n) = (chunk * LANES, (act_rows.end - chunk * LANES).min(LANES));
            if done && n == LANES && cnt == ROWS {
                // SAFETY: AVX-512 F is present (this path's level); rows r0..r0 + 16 by columns
                // i0..i0 + 8 lie inside the output and belong to this task (as in `store`).
                unsafe { store_transposed(res, ptr.get().add(r0 * rows + i0), rows) };
            } else {
                store((ptr, rows), (r0, n), (i0, cnt), done, |t, l| res[l][t]);
            }
        }
    }
}

/// One task of [`packed_products`]: weight groups `groups` against activation rows `act_rows`.
#[cfg(target_arch = "x86_64")]
fn packed_task(
    level: super::x86::X86Level,
    acts: &QActs,
    (p, rows, ptr): (&Packed, usize, OutPtr),
    groups: Range<usize>,
    act_rows: Range<usize>,
) {
    use super::x86_packed::{TILE_ROWS, group_dots};
    let mut res = [[0f32; ROWS]; TILE_ROWS];
    for g in groups {
        let (i0, cnt) = (g * ROWS, (rows - g * ROWS).min(ROWS));
        for r0 in act_rows.clone().step_by(TILE_ROWS) {
            let n = (act_rows.end - r0).min(TILE_ROWS);
            // SAFETY: `level` is supported (checked by the caller); the kernel checks the shapes.
            let done = unsafe { group_dots(level, p, g, acts, r0, n, &mut res) };
            store((ptr, rows), (r0, n), (i0, cnt), done, |t, l| res[t][l]);
        }
    }
}

/// Writes one task's block of results into the `[m, rows]` output: activation rows `r0..r0 + n`
/// by weight rows `i0..i0 + cnt`, `value(t, l)` for activation row `r0 + t` and weight row
/// `i0 + l`, or NaN where the kernel refused the shapes (`done` false). The caller's rows and
/// columns lie inside the output and belong to its task alone.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn store(
    (ptr, rows): (OutPtr, usize),
    (r0, n): (usize, usize),
    (i0, cnt): (usize, usize),
    done: bool,
    value: impl Fn(usize, usize) -> f32,
) {
    for t in 0..n {
        for l in 0..cnt {
            let dst = (r0 + t) * rows + i0 + l;
            // SAFETY: r0 + t < m and i0 + l < rows, so `dst` is inside the output (length
            // m * rows, checked by the callers); only this task writes these rows of these
            // columns.
            unsafe { *ptr.get().add(dst) = if done { value(t, l) } else { f32::NAN } };
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dot_rows(kernel: Kernel, ty: GgmlType, w: &[u8], rb: usize, acts: &QActs, r0: usize, n: usize, out: &mut [f32]) {
    match kernel {
        Kernel::Scalar => scalar::dot_rows(ty, w, rb, acts, r0, n, out),
        // SAFETY: `kernel.supported()` was checked by the caller; the kernel checks the row length
        // against `acts.cols` and falls back to scalar code on any mismatch.
        #[cfg(target_arch = "x86_64")]
        Kernel::X86(level) => unsafe { super::x86::dot_rows(level, ty, w, rb, acts, r0, n, out) },
    }
}

fn linear_float(kernel: Kernel, x: &[f32], m: usize, w: &QMatrix, out: &mut [f32]) -> Result<(), QuantError> {
    let (rows, cols) = (w.rows(), w.cols());
    let kernel = if kernel.supported() { kernel } else { Kernel::Scalar };
    let ptr = OutPtr(out.as_mut_ptr());
    let chunk = chunk_rows(rows, w.row_bytes(), m);
    (0..rows.div_ceil(chunk)).into_par_iter().for_each(|c| {
        let mut wrow = vec![0f32; cols];
        for i in c * chunk..((c + 1) * chunk).min(rows) {
            scalar::float_row(w.ty(), w.row(i), &mut wrow);
            for r in 0..m {
                let xr = &x[r * cols..(r + 1) * cols];
                let v = match kernel {
                    Kernel::Scalar => scalar::dot_f32(&wrow, xr),
                    // SAFETY: the CPU supports the level (checked above).
                    #[cfg(target_arch = "x86_64")]
                    Kernel::X86(_) => unsafe { super::x86::dot_f32_avx2(&wrow, xr) },
                };
                // SAFETY: r < m, i < rows: inside `out` (checked length m * rows); column i is this task's.
                unsafe { *ptr.get().add(r * rows + i) = v };
            }
        }
    });
    Ok(())
}
