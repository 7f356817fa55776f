//! The paired nonparametric bootstrap of MedVLMBench (arXiv 2506.17337; code:
//! github.com/ubc-tea/MedVLMBench), and a fast binary AUROC kept as a reference for tests and
//! benches (`mvb run` and `mvb zeroshot` score through the metric plugins, [`super::metrics`]).
//! Follows the reference loop
//!
//! ```text
//! rng = np.random.default_rng(42)                     # or the legacy np.random.RandomState(42)
//! for _ in range(1000):
//!     idx = rng.integers(0, n, n)                     # RandomState: rng.randint(0, n, n)
//!     if len(np.unique(y[idx])) < 2: continue          # AUROC undefined: skipped
//!     values.append(sklearn.metrics.roc_auc_score(y[idx], s[idx]))
//! mean(values), np.percentile(values, [2.5, 97.5])
//! ```
//!
//! - The index sets come from [`Pcg64`] (`default_rng`, MedVLMBench's generator, the default)
//!   or [`RandomState`] (numpy's legacy stream, an option), each numpy's bit for bit, so
//!   replicate `r` resamples exactly the samples the Python loop resamples. They depend only on `n` and
//!   the [`BootstrapConfig`]: every model evaluated on a dataset sees the same sets (paired),
//!   and [`paired_difference`] turns two models' replicate values into a CI of their gap.
//! - A replicate whose metric is undefined (a single class for AUROC) is skipped and counted;
//!   mvb reports the count ([`Estimate::skipped`]) instead of hiding it.
//! - Percentiles are `numpy.percentile`'s default (`method="linear"`), the mean is numpy's
//!   (pairwise summation), so the numbers match numpy's to the last bit or nearly.
//! - [`AurocRanking`] sorts the scores once; each replicate is then O(n): its multiplicities
//!   (how often each sample was drawn) weight one pass over the tie groups. The value is the
//!   Mann–Whitney form of scikit-learn's `roc_auc_score` (ties count one half), computed in
//!   exact integer arithmetic and rounded once: scikit-learn's trapezoid sum agrees to ~1e-15.

use serde::{Deserialize, Serialize};

use super::EvalError;
use crate::random::{Pcg64, RandomState};

/// MedVLMBench's replicate count.
pub const DEFAULT_REPLICATES: usize = 1000;
/// MedVLMBench's bootstrap seed.
pub const DEFAULT_SEED: u32 = 42;

/// The random generator the index sets are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    /// `np.random.default_rng(seed)` and `integers(0, n, n)`: MedVLMBench's (the default).
    #[default]
    Pcg64,
    /// The legacy `np.random.RandomState(seed)` and `randint(0, n, n)`.
    RandomState,
}

impl Generator {
    /// How numpy draws one replicate with it.
    pub fn describe(self) -> &'static str {
        match self {
            Generator::Pcg64 => "numpy `default_rng(seed)` (PCG64), `integers(0, n, n)` per replicate",
            Generator::RandomState => "numpy `RandomState(seed)`, `randint(0, n, n)` per replicate",
        }
    }
}

/// How to resample. The seed is a `u32`: numpy's `RandomState` takes exactly the seeds
/// `0..2^32` (`default_rng` takes more, mvb does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Number of replicates (default 1,000).
    pub replicates: usize,
    /// Seed of the one generator all replicates are drawn from (default 42).
    pub seed: u32,
    /// The generator (default PCG64, MedVLMBench's).
    #[serde(default)]
    pub generator: Generator,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig { replicates: DEFAULT_REPLICATES, seed: DEFAULT_SEED, generator: Generator::default() }
    }
}

/// A seeded stream of either generator.
#[derive(Debug, Clone)]
enum Stream {
    Pcg64(Pcg64),
    RandomState(RandomState),
}

/// The bootstrap index sets, one replicate at a time (replicate `r` is the `r`-th
/// `rng.integers(0, n, n)` of one `default_rng(seed)`, or `rng.randint(0, n, n)` of one
/// `RandomState(seed)`), without keeping them all.
#[derive(Debug, Clone)]
pub struct Resampler {
    rng: Stream,
    n: u32,
    remaining: usize,
    buf: Vec<u32>,
}

impl Resampler {
    /// Index sets over `n` samples.
    pub fn new(n: usize, config: &BootstrapConfig) -> Result<Self, EvalError> {
        let n32 = u32::try_from(n).map_err(|_| EvalError::TooManySamples(n))?;
        let rng = match config.generator {
            Generator::Pcg64 => Stream::Pcg64(Pcg64::default_rng(config.seed)),
            Generator::RandomState => Stream::RandomState(RandomState::new(config.seed)),
        };
        Ok(Resampler { rng, n: n32, remaining: config.replicates, buf: vec![0; n] })
    }

    /// The next replicate's indices (`n` of them, each in `0..n`), or `None` after the last.
    #[allow(clippy::should_implement_trait)] // a lending iterator: the slice borrows `self`
    pub fn next(&mut self) -> Option<&[u32]> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // `n == 0`: numpy returns the empty array without drawing, and so does this.
        match &mut self.rng {
            Stream::Pcg64(rng) => rng.integers_below(u64::from(self.n), &mut self.buf),
            Stream::RandomState(rng) => rng.randint_below(self.n, &mut self.buf).ok()?,
        }
        Some(&self.buf)
    }

    /// Replicates not yet drawn.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

/// All index sets at once: `config.replicates` vectors of `n` indices. Identical to
/// `rng = np.random.RandomState(seed); [rng.randint(0, n, n) for _ in range(replicates)]`.
pub fn resample_indices(n: usize, config: &BootstrapConfig) -> Result<Vec<Vec<u32>>, EvalError> {
    let mut resampler = Resampler::new(n, config)?;
    let mut out = Vec::with_capacity(config.replicates);
    while let Some(idx) = resampler.next() {
        out.push(idx.to_vec());
    }
    Ok(out)
}

/// How often each of `counts.len()` samples occurs in `indices` (written into `counts`).
///
/// # Panics
/// When an index is not below `counts.len()`.
pub fn multiplicities(indices: &[u32], counts: &mut [u32]) {
    counts.fill(0);
    for &i in indices {
        counts[i as usize] += 1;
    }
}

/// A bootstrapped statistic. Serialised with `NaN` as `null` (JSON has no NaN).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The statistic on the full set (NaN when it is undefined there).
    #[serde(with = "nan_as_null")]
    pub point: f64,
    /// Mean of the valid replicates (NaN when there is none).
    #[serde(with = "nan_as_null")]
    pub mean: f64,
    /// 2.5th percentile of the valid replicates (NaN when there is none).
    #[serde(with = "nan_as_null")]
    pub lo: f64,
    /// 97.5th percentile of the valid replicates (NaN when there is none).
    #[serde(with = "nan_as_null")]
    pub hi: f64,
    /// Valid replicates.
    pub replicates: usize,
    /// Replicates skipped because the statistic was undefined on them.
    pub skipped: usize,
}

/// Summarises replicate values: `None` (and NaN) marks a replicate where the statistic is
/// undefined, which is skipped and counted. `mean` is numpy's `np.mean`, `lo`/`hi` are
/// `np.percentile(valid, [2.5, 97.5])`; with no valid replicate all three are NaN.
pub fn estimate(point: f64, values: impl IntoIterator<Item = Option<f64>>) -> Estimate {
    let mut valid = Vec::new();
    let mut skipped = 0;
    for v in values {
        match v {
            Some(x) if !x.is_nan() => valid.push(x),
            _ => skipped += 1,
        }
    }
    let replicates = valid.len();
    if valid.is_empty() {
        return Estimate { point, mean: f64::NAN, lo: f64::NAN, hi: f64::NAN, replicates, skipped };
    }
    let mean = pairwise_sum(&valid) / replicates as f64;
    valid.sort_by(f64::total_cmp);
    Estimate { point, mean, lo: percentile(&valid, 2.5), hi: percentile(&valid, 97.5), replicates, skipped }
}

/// The bootstrap of a difference `a - b` between two systems on the same index sets (an RQ
/// gap): `point = point_a - point_b`, and replicate `r` is `a[r] - b[r]`, valid only when both
/// are. `a` and `b` must come from the same [`BootstrapConfig`] and dataset.
pub fn paired_difference(
    point_a: f64,
    a: &[Option<f64>],
    point_b: f64,
    b: &[Option<f64>],
) -> Result<Estimate, EvalError> {
    if a.len() != b.len() {
        return Err(EvalError::LengthMismatch { what: "paired replicate values", left: a.len(), right: b.len() });
    }
    let diffs = a.iter().zip(b).map(|(x, y)| Some((*x)? - (*y)?));
    Ok(estimate(point_a - point_b, diffs))
}

/// `numpy.percentile(sorted, q)` with the default linear method, `q` in percent, on values
/// already sorted ascending. NaN for an empty slice.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    // numpy: quantile = q / 100; virtual index = (n - 1) · quantile.
    let virtual_index = (n - 1) as f64 * (q / 100.0);
    let (below, above, previous) = if virtual_index >= (n - 1) as f64 {
        (n - 1, n - 1, -1.0)
    } else if virtual_index < 0.0 {
        (0, 0, 0.0)
    } else {
        let p = virtual_index.floor();
        (p as usize, p as usize + 1, p)
    };
    // numpy's gamma is taken against the clipped previous index (-1 above the range).
    let t = virtual_index - previous;
    lerp(sorted[below], sorted[above], t)
}

/// numpy's `_lerp`: `a + (b - a)·t`, or `b - (b - a)·(1 - t)` from `t >= 0.5`.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 { b - diff * (1.0 - t) } else { a + diff * t }
}

/// numpy's pairwise summation of float64 (`pairwise_sum_DOUBLE`): blocks of up to 128 summed
/// with 8 accumulators, halves recursively above.
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, v| s + v)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        for chunk in a[8..whole].chunks_exact(8) {
            r.iter_mut().zip(chunk).for_each(|(acc, v)| *acc += v);
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        a[whole..].iter().for_each(|v| res += v);
        res
    } else {
        let mut half = n / 2;
        half -= half % 8;
        pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
    }
}

/// Serialises `f64` with NaN as `null`, and reads `null` back as NaN.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() { s.serialize_none() } else { s.serialize_f64(*v) }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// A statistic's bootstrap: its estimate and the per-replicate values (`None` where undefined),
/// kept for paired differences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bootstrapped {
    /// The summary.
    pub estimate: Estimate,
    /// Replicate `r`'s value, `None` where the statistic is undefined on it.
    pub values: Vec<Option<f64>>,
}

impl Bootstrapped {
    /// Summarises `values` (see [`estimate`]).
    pub fn new(point: f64, values: Vec<Option<f64>>) -> Self {
        Bootstrapped { estimate: estimate(point, values.iter().copied()), values }
    }

    /// The paired bootstrap of `self - other` (see [`paired_difference`]).
    pub fn minus(&self, other: &Bootstrapped) -> Result<Estimate, EvalError> {
        paired_difference(self.estimate.point, &self.values, other.estimate.point, &other.values)
    }
}

/// Binary scores sorted once for repeated AUROCs over reweighted versions of the same samples.
#[derive(Debug, Clone)]
pub struct AurocRanking {
    /// `rank[i]`: where sample `i` stands in the descending score order.
    rank: Vec<u32>,
    /// 1 where the sample at a sorted position is positive.
    positive: Vec<u64>,
    /// Exclusive ends of the groups of tied scores, in sorted positions.
    group_ends: Vec<u32>,
}

impl AurocRanking {
    /// Sorts `scores` (higher means class 1, the positive class; `labels[i]` is `true` for a
    /// positive). Scores must be finite (scikit-learn refuses NaN and infinity too); `-0.0`
    /// and `0.0` tie.
    pub fn new(scores: &[f64], labels: &[bool]) -> Result<Self, EvalError> {
        if scores.len() != labels.len() {
            return Err(EvalError::LengthMismatch {
                what: "scores and labels",
                left: scores.len(),
                right: labels.len(),
            });
        }
        let n = u32::try_from(scores.len()).map_err(|_| EvalError::TooManySamples(scores.len()))?;
        if let Some((index, &value)) = scores.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(EvalError::NotFinite { what: "score", index, value });
        }
        let mut order: Vec<u32> = (0..n).collect();
        order.sort_unstable_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
        let mut rank = vec![0u32; order.len()];
        let mut positive = Vec::with_capacity(order.len());
        let mut group_ends = Vec::new();
        for (k, &i) in order.iter().enumerate() {
            rank[i as usize] = k as u32;
            positive.push(u64::from(labels[i as usize]));
            if k > 0 && scores[i as usize] != scores[order[k - 1] as usize] {
                group_ends.push(k as u32);
            }
        }
        if n > 0 {
            group_ends.push(n);
        }
        Ok(AurocRanking { rank, positive, group_ends })
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.rank.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.rank.is_empty()
    }

    /// The AUROC of the full set; `None` when a class is absent.
    pub fn auroc(&self) -> Option<f64> {
        self.auroc_sorted_counts(|_| 1)
    }

    /// The AUROC with sample `i` counted `counts[i]` times, as scikit-learn's `roc_auc_score`
    /// gives on the expanded set (or with `sample_weight=counts`); `None` when a class has
    /// zero total weight.
    ///
    /// # Panics
    /// When `counts.len()` is not [`len`](Self::len).
    pub fn auroc_counts(&self, counts: &[u32]) -> Option<f64> {
        assert_eq!(counts.len(), self.len(), "one multiplicity per sample");
        let mut sorted = vec![0u32; counts.len()];
        for (&c, &r) in counts.iter().zip(&self.rank) {
            sorted[r as usize] = c;
        }
        self.auroc_sorted_counts(|k| sorted[k])
    }

    /// The AUROC of the resample `indices` (as `roc_auc_score(y[idx], s[idx])`). `scratch` is
    /// reused between calls to avoid allocating.
    ///
    /// # Panics
    /// When an index is out of range.
    pub fn auroc_resample(&self, indices: &[u32], scratch: &mut Vec<u32>) -> Option<f64> {
        scratch.clear();
        scratch.resize(self.len(), 0);
        for &i in indices {
            scratch[self.rank[i as usize] as usize] += 1;
        }
        self.auroc_sorted_counts(|k| scratch[k])
    }

    /// The weighted Mann–Whitney statistic over tie groups, `count(k)` = the multiplicity of
    /// sorted position `k`. With `P`/`N` the positive/negative weights,
    /// `AUC = Σ_groups neg_g · (pos_above + pos_g / 2) / (P·N)`, kept as integers ×2.
    fn auroc_sorted_counts(&self, count: impl Fn(usize) -> u32) -> Option<f64> {
        let (mut pos_above, mut neg_total, mut twice_u) = (0u64, 0u64, 0u64);
        let mut start = 0usize;
        for &end in &self.group_ends {
            let (mut pos, mut all) = (0u64, 0u64);
            for k in start..end as usize {
                let c = u64::from(count(k));
                pos += c * self.positive[k];
                all += c;
            }
            let neg = all - pos;
            twice_u += neg * (2 * pos_above + pos);
            pos_above += pos;
            neg_total += neg;
            start = end as usize;
        }
        if pos_above == 0 || neg_total == 0 {
            return None;
        }
        // Both fit u64 for n < 2^32: 2·P·N <= n²/2.
        Some(twice_u as f64 / (2 * pos_above * neg_total) as f64)
    }
}

/// scikit-learn's `roc_auc_score(labels, scores)` for a binary task (`labels[i]`: sample `i`
/// is positive; higher scores mean positive). `None` when it is undefined: only one class is
/// present, or a score is NaN or infinite (where scikit-learn raises). Use
/// [`AurocRanking::new`] to tell those apart as errors.
///
/// # Panics
/// When `scores` and `labels` differ in length (a programming error).
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len(), "one label per score");
    AurocRanking::new(scores, labels).ok()?.auroc()
}

/// The paired bootstrap of the binary AUROC: the full-set value, and one value per replicate
/// of [`Resampler`] (`None` where the resample holds one class).
pub fn bootstrap_auroc(scores: &[f64], labels: &[bool], config: &BootstrapConfig) -> Result<Bootstrapped, EvalError> {
    let ranking = AurocRanking::new(scores, labels)?;
    let mut resampler = Resampler::new(ranking.len(), config)?;
    let mut scratch = Vec::new();
    let mut values = Vec::with_capacity(config.replicates);
    while let Some(idx) = resampler.next() {
        values.push(ranking.auroc_resample(idx, &mut scratch));
    }
    Ok(Bootstrapped::new(ranking.auroc().unwrap_or(f64::NAN), values))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AUROC by its definition: over all positive/negative pairs, 1 for a correct order,
    /// 1/2 for a tie.
    fn auroc_pairs(scores: &[f64], labels: &[bool]) -> Option<f64> {
        let (mut num, mut pairs) = (0.0, 0.0);
        for (i, &si) in scores.iter().enumerate() {
            for (j, &sj) in scores.iter().enumerate() {
                if labels[i] && !labels[j] {
                    pairs += 1.0;
                    num += if si > sj {
                        1.0
                    } else if si == sj {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        (pairs > 0.0).then(|| num / pairs)
    }

    fn toy(n: usize, seed: u32) -> (Vec<f64>, Vec<bool>) {
        let mut rng = RandomState::new(seed);
        let labels: Vec<bool> = (0..n).map(|_| rng.random_sample() < 0.3).collect();
        // Two decimals: many ties.
        let scores =
            labels.iter().map(|&y| ((rng.random_sample() + if y { 0.3 } else { 0.0 }) * 10.0).round() / 10.0).collect();
        (scores, labels)
    }

    #[test]
    fn auroc_matches_pair_counting() {
        for seed in 0..20 {
            let (scores, labels) = toy(37, seed);
            let got = auroc(&scores, &labels);
            let want = auroc_pairs(&scores, &labels);
            assert_eq!(got.is_some(), want.is_some());
            if let (Some(g), Some(w)) = (got, want) {
                assert!((g - w).abs() < 1e-12, "{g} vs {w}");
            }
        }
    }

    #[test]
    fn auroc_small_cases() {
        // scikit-learn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        assert_eq!(auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Some(0.75));
        assert_eq!(auroc(&[0.5; 4], &[false, true, false, true]), Some(0.5));
        assert_eq!(auroc(&[0.0, -0.0], &[false, true]), Some(0.5));
        assert_eq!(auroc(&[1.0, 2.0], &[false, true]), Some(1.0));
        assert_eq!(auroc(&[1.0, 2.0], &[true, false]), Some(0.0));
        assert_eq!(auroc(&[1.0, 2.0], &[true, true]), None);
        assert_eq!(auroc(&[], &[]), None);
        assert_eq!(auroc(&[1.0, f64::NAN], &[true, false]), None);
        assert!(matches!(AurocRanking::new(&[1.0], &[]), Err(EvalError::LengthMismatch { .. })));
        assert!(matches!(
            AurocRanking::new(&[1.0, f64::NAN], &[true, false]),
            Err(EvalError::NotFinite { index: 1, .. })
        ));
        assert!(AurocRanking::new(&[f64::INFINITY], &[true]).is_err());
    }

    #[test]
    #[should_panic(expected = "one label per score")]
    fn auroc_length_mismatch_panics() {
        auroc(&[1.0], &[]);
    }

    #[test]
    fn counts_and_resamples_equal_the_expanded_set() {
        let (scores, labels) = toy(50, 3);
        let ranking = AurocRanking::new(&scores, &labels).unwrap();
        let mut scratch = Vec::new();
        for idx in
            resample_indices(50, &BootstrapConfig { replicates: 30, seed: 7, ..BootstrapConfig::default() }).unwrap()
        {
            let (s, y): (Vec<f64>, Vec<bool>) = idx.iter().map(|&i| (scores[i as usize], labels[i as usize])).unzip();
            let want = auroc_pairs(&s, &y);
            let mut counts = vec![0; 50];
            multiplicities(&idx, &mut counts);
            assert_eq!(ranking.auroc_counts(&counts), want);
            assert_eq!(ranking.auroc_resample(&idx, &mut scratch), want);
            // Exact rational, rounded once: identical to the direct computation on the copy.
            assert_eq!(auroc(&s, &y), ranking.auroc_counts(&counts));
        }
    }

    #[test]
    fn resampler_is_numpy_randint_loop() {
        // rng = np.random.RandomState(42); [rng.randint(0, 10, 10) for _ in range(3)]
        let legacy = BootstrapConfig { replicates: 3, seed: 42, generator: Generator::RandomState };
        let sets = resample_indices(10, &legacy).unwrap();
        let mut rng = RandomState::new(42);
        for set in &sets {
            let want: Vec<u32> = rng.randint(0, 10, 10).unwrap().into_iter().map(|v| v as u32).collect();
            assert_eq!(set, &want);
        }
        assert_eq!(sets[0], vec![6, 3, 7, 4, 6, 9, 2, 6, 7, 4]);
        // Deterministic: the same sets for every model (paired).
        assert_eq!(sets, resample_indices(10, &legacy).unwrap());
        assert_eq!(resample_indices(0, &BootstrapConfig::default()).unwrap().len(), 1000);
        let mut r =
            Resampler::new(4, &BootstrapConfig { replicates: 2, seed: 0, ..BootstrapConfig::default() }).unwrap();
        assert_eq!(r.remaining(), 2);
        assert!(r.next().is_some() && r.next().is_some() && r.next().is_none());
    }

    #[test]
    fn percentile_is_numpy_linear() {
        let v = [1.0, 2.0, 4.0, 8.0, 16.0];
        // np.percentile([1, 2, 4, 8, 16], [0, 2.5, 50, 97.5, 100]) -> 1, 1.1, 4, 15.2, 16
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!((percentile(&v, 2.5) - 1.1).abs() < 1e-15);
        assert_eq!(percentile(&v, 50.0), 4.0);
        assert!((percentile(&v, 97.5) - 15.2).abs() < 1e-14);
        assert_eq!(percentile(&v, 100.0), 16.0);
        assert_eq!(percentile(&[3.0], 2.5), 3.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn pairwise_sum_is_accurate() {
        for n in [0, 1, 7, 8, 9, 127, 128, 129, 1000, 1001] {
            let v: Vec<f64> = (0..n).map(|i| f64::from(i) * 0.25).collect();
            let want = (0..n).map(|i| i as f64 * 0.25).sum::<f64>(); // exact: multiples of 1/4
            assert_eq!(pairwise_sum(&v), want, "n {n}");
        }
    }

    #[test]
    fn estimate_skips_and_counts() {
        let e = estimate(0.7, [Some(0.5), None, Some(1.0), Some(f64::NAN), Some(0.75)]);
        assert_eq!((e.replicates, e.skipped), (3, 2));
        assert_eq!(e.point, 0.7);
        assert_eq!(e.mean, 0.75);
        assert!((e.lo - (0.5 + 0.25 * 0.05)).abs() < 1e-15);
        assert!((e.hi - (1.0 - 0.25 * 0.05)).abs() < 1e-15);
        let none = estimate(0.5, [None, None]);
        assert!(none.mean.is_nan() && none.lo.is_nan() && none.hi.is_nan());
        assert_eq!((none.replicates, none.skipped), (0, 2));
    }

    #[test]
    fn estimate_serialises_nan_as_null() {
        let e = estimate(f64::NAN, [None]);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"point":null,"mean":null,"lo":null,"hi":null,"replicates":0,"skipped":1}"#);
        let back: Estimate = serde_json::from_str(&json).unwrap();
        assert!(back.point.is_nan() && back.mean.is_nan() && back.skipped == 1);
        let e = estimate(0.5, [Some(0.25), Some(0.75)]);
        assert_eq!(serde_json::from_str::<Estimate>(&serde_json::to_string(&e).unwrap()).unwrap(), e);
    }

    #[test]
    fn paired_difference_needs_both() {
        let a = [Some(0.9), Some(0.8), None, Some(0.7)];
        let b = [Some(0.6), None, Some(0.5), Some(0.6)];
        let d = paired_difference(0.85, &a, 0.55, &b).unwrap();
        assert_eq!((d.replicates, d.skipped), (2, 2));
        assert!((d.point - 0.3).abs() < 1e-15);
        assert!((d.mean - 0.2).abs() < 1e-15);
        assert!(paired_difference(0.0, &a, 0.0, &b[..3]).is_err());
        let x = Bootstrapped::new(0.85, a.to_vec());
        let y = Bootstrapped::new(0.55, b.to_vec());
        assert_eq!(x.minus(&y).unwrap(), d);
    }

    #[test]
    fn bootstrap_auroc_skips_single_class_resamples() {
        // 2 positives in 15: P(no positive drawn) = (13/15)^15 ~ 12%.
        let labels: Vec<bool> = (0..15).map(|i| i == 3 || i == 11).collect();
        let scores: Vec<f64> = (0..15).map(|i| f64::from(i) / 15.0).collect();
        let b = bootstrap_auroc(&scores, &labels, &BootstrapConfig::default()).unwrap();
        assert_eq!(b.values.len(), 1000);
        assert!(b.estimate.skipped > 50 && b.estimate.skipped < 250, "{}", b.estimate.skipped);
        assert_eq!(b.estimate.replicates + b.estimate.skipped, 1000);
        assert_eq!(Some(b.estimate.point), auroc(&scores, &labels));
        for (idx, v) in resample_indices(15, &BootstrapConfig::default()).unwrap().iter().zip(&b.values) {
            let (s, y): (Vec<f64>, Vec<bool>) = idx.iter().map(|&i| (scores[i as usize], labels[i as usize])).unzip();
            assert_eq!(*v, auroc(&s, &y));
        }
    }
}
