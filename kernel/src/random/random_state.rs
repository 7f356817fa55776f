//! numpy's legacy `np.random.RandomState`, bit for bit: the MT19937 Mersenne Twister seeded as
//! `RandomState(seed)` seeds it, and the legacy samplers mvb needs (`randint`, `random_sample`,
//! `uniform`, `shuffle`, `permutation`). Follows numpy's `mtrand.pyx`, `_bounded_integers.pyx`,
//! `mt19937.c` and `distributions.c` (numpy 2.x; the legacy stream is frozen by numpy's
//! compatibility policy). The expected sequences in the tests were printed by numpy itself
//! (`tools/make_rng_fixtures.py`).
//!
//! What numpy does, and so what this does:
//! - `RandomState(seed)` with an integer seed in `0..2^32` runs the reference `init_genrand`
//!   (Knuth's multiplier 1812433253), not `init_by_array` (that is only for array seeds).
//! - `randint(low, high, size)` (default dtype int64) draws on the closed range
//!   `[0, high - low - 1]` by masked rejection: with `mask` the smallest `2^k - 1` covering the
//!   range, draw `next_u32() & mask` (ranges below `2^32 - 1`) or `next_u64() & mask` (wider
//!   ranges, `next_u64 = hi << 32 | lo`) until the value fits. A range of exactly `2^32` takes
//!   `next_u32()` as is; a single-value range draws nothing.
//! - `random_sample()` is `((a >> 5) · 2^26 + (b >> 6)) / 2^53` of two 32-bit draws.
//! - `shuffle` is Fisher–Yates from the last element down, `j = random_interval(i)` (masked
//!   rejection as above, on `[0, i]`); `permutation(n)` shuffles `0..n`.

use std::fmt;

/// `randint` over an integer range `[low, high)` with nothing in it (numpy: "low >= high").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("empty range: low {low} >= high {high}")]
pub struct EmptyRange {
    /// Inclusive lower bound.
    pub low: i64,
    /// Exclusive upper bound.
    pub high: i64,
}

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A numpy-compatible legacy random stream: `RandomState::new(s)` yields what
/// `np.random.RandomState(s)` yields, call for call.
#[derive(Clone)]
pub struct RandomState {
    key: Box<[u32; N]>,
    pos: usize,
}

impl fmt::Debug for RandomState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RandomState").field("pos", &self.pos).finish_non_exhaustive()
    }
}

/// The smallest `2^k - 1` that is `>= max`.
fn mask_for(max: u64) -> u64 {
    let mut mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    mask
}

impl RandomState {
    /// `np.random.RandomState(seed)`. numpy accepts exactly the seeds `0..=2^32 - 1`, which is
    /// what `u32` holds.
    pub fn new(seed: u32) -> Self {
        let mut key = Box::new([0u32; N]);
        let mut s = seed;
        for (pos, k) in key.iter_mut().enumerate() {
            *k = s;
            s = 1_812_433_253u32.wrapping_mul(s ^ (s >> 30)).wrapping_add(pos as u32 + 1);
        }
        RandomState { key, pos: N }
    }

    /// Regenerates the whole state block (`mt19937_gen`).
    fn generate(&mut self) {
        let key = &mut self.key;
        let twist = |upper: u32, lower: u32| {
            let y = (upper & UPPER_MASK) | (lower & LOWER_MASK);
            (y >> 1) ^ (0u32.wrapping_sub(y & 1) & MATRIX_A)
        };
        for i in 0..N - M {
            key[i] = key[i + M] ^ twist(key[i], key[i + 1]);
        }
        for i in N - M..N - 1 {
            key[i] = key[i + M - N] ^ twist(key[i], key[i + 1]);
        }
        key[N - 1] = key[M - 1] ^ twist(key[N - 1], key[0]);
        self.pos = 0;
    }

    /// The next raw 32-bit output (tempered), as `mt19937_next32`.
    pub fn next_u32(&mut self) -> u32 {
        if self.pos == N {
            self.generate();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Two 32-bit outputs as one 64-bit value, the first one high (`mt19937_next64`).
    pub fn next_u64(&mut self) -> u64 {
        let hi = u64::from(self.next_u32());
        (hi << 32) | u64::from(self.next_u32())
    }

    /// `random_sample()`: a double uniform on `[0, 1)` with 53 random bits.
    pub fn random_sample(&mut self) -> f64 {
        let a = self.next_u32() >> 5;
        let b = self.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) / 9_007_199_254_740_992.0
    }

    /// `uniform(low, high)`: `low + (high - low) · random_sample()`, one draw.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.random_sample()
    }

    /// One value on the closed range `[0, rng]` by numpy's masked rejection
    /// (`random_bounded_uint64_fill` with `use_masked`), for `0 < rng < 2^32 - 1`.
    fn masked_u32(&mut self, rng: u32, mask: u32) -> u32 {
        loop {
            let v = self.next_u32() & mask;
            if v <= rng {
                return v;
            }
        }
    }

    /// Fills `out` with `off + [0, rng]` values exactly as numpy's `random_bounded_uint64_fill`
    /// (masked) does; `rng` is the inclusive width.
    fn bounded_fill(&mut self, off: u64, rng: u64, out: &mut [u64]) {
        if rng == 0 {
            out.fill(off);
        } else if rng == u64::from(u32::MAX) {
            out.iter_mut().for_each(|o| *o = off.wrapping_add(u64::from(self.next_u32())));
        } else if rng < u64::from(u32::MAX) {
            let (r, mask) = (rng as u32, mask_for(rng) as u32);
            out.iter_mut().for_each(|o| *o = off.wrapping_add(u64::from(self.masked_u32(r, mask))));
        } else if rng == u64::MAX {
            out.iter_mut().for_each(|o| *o = off.wrapping_add(self.next_u64()));
        } else {
            let mask = mask_for(rng);
            for o in out.iter_mut() {
                let v = loop {
                    let v = self.next_u64() & mask;
                    if v <= rng {
                        break v;
                    }
                };
                *o = off.wrapping_add(v);
            }
        }
    }

    /// `randint(low, high, size)` with numpy's default dtype (int64): `size` integers on
    /// `[low, high)`. As numpy, an empty `size` returns at once (drawing nothing) and otherwise
    /// `low >= high` is an error.
    pub fn randint(&mut self, low: i64, high: i64, size: usize) -> Result<Vec<i64>, EmptyRange> {
        if size == 0 {
            return Ok(Vec::new());
        }
        if low >= high {
            return Err(EmptyRange { low, high });
        }
        // numpy works on the closed interval [low, high - 1], offsets as uint64.
        let rng = (high - 1).wrapping_sub(low) as u64;
        let mut out = vec![0u64; size];
        self.bounded_fill(low as u64, rng, &mut out);
        Ok(out.into_iter().map(|v| v as i64).collect())
    }

    /// The values of `randint(0, n, out.len())` written into `out` (no allocation): what the
    /// bootstrap uses for its index sets. `n == 0` with a non-empty `out` is an error, as in
    /// numpy.
    pub fn randint_below(&mut self, n: u32, out: &mut [u32]) -> Result<(), EmptyRange> {
        if out.is_empty() {
            return Ok(());
        }
        match n {
            0 => Err(EmptyRange { low: 0, high: 0 }),
            1 => {
                out.fill(0);
                Ok(())
            }
            _ => {
                // n - 1 < 2^32 - 1 always: the masked 32-bit path.
                let rng = n - 1;
                let mask = mask_for(u64::from(rng)) as u32;
                out.iter_mut().for_each(|o| *o = self.masked_u32(rng, mask));
                Ok(())
            }
        }
    }

    /// numpy's `random_interval(max)`: a value on `[0, max]` by masked rejection (32-bit draws
    /// while `max` fits 32 bits, 64-bit draws above).
    pub fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mask = mask_for(max);
        if max <= u64::from(u32::MAX) {
            loop {
                let v = u64::from(self.next_u32()) & mask;
                if v <= max {
                    return v;
                }
            }
        }
        loop {
            let v = self.next_u64() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `shuffle(x)` of a 1-D array: in place, as numpy shuffles it.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.interval(i as u64) as usize;
            x.swap(i, j);
        }
    }

    /// `permutation(n)`: `0..n` shuffled.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        self.shuffle(&mut v);
        v
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // the generated tables of tuples
mod tests {
    use super::*;

    /// Compares a sequence with its numpy summary: first and last values and an exact
    /// order-sensitive checksum `Σ (i + 1) · v`.
    fn check_summary<T: Copy + PartialEq + fmt::Debug>(got: &[T], first: &[T], last: &[T], sum: i128, what: &str)
    where
        i128: From<T>,
    {
        assert_eq!(&got[..first.len()], first, "{what}: first values");
        assert_eq!(&got[got.len() - last.len()..], last, "{what}: last values");
        let checksum: i128 = got.iter().enumerate().map(|(i, &v)| (i as i128 + 1) * i128::from(v)).sum();
        assert_eq!(checksum, sum, "{what}: checksum");
    }

    #[test]
    fn seeding_matches_init_genrand() {
        // numpy: RandomState(42).get_state()[1][:3], pos 624.
        let r = RandomState::new(42);
        assert_eq!(&r.key[..3], &[42, 3_107_752_595, 1_895_908_407]);
        assert_eq!(r.pos, N);
        // The reference MT19937 (init_genrand(5489)) starts with 3499211612.
        assert_eq!(RandomState::new(5489).next_u32(), 3_499_211_612);
    }

    #[test]
    fn raw_outputs_match_numpy() {
        for &(seed, first, last, sum) in RAW_U32 {
            let mut r = RandomState::new(seed);
            let got: Vec<u32> = (0..COUNT).map(|_| r.next_u32()).collect();
            check_summary(&got, first, last, sum as i128, &format!("raw, seed {seed}"));
        }
    }

    #[test]
    fn randint_matches_numpy() {
        for &(seed, low, high, first, last, sum) in RANDINT {
            let what = format!("seed {seed} randint({low}, {high})");
            let mut r = RandomState::new(seed);
            // Two calls on one state: the second starts where the first left off.
            let mut got = r.randint(low, high, COUNT / 2).unwrap();
            got.extend(r.randint(low, high, COUNT - COUNT / 2).unwrap());
            check_summary(&got, first, last, sum, &what);
            if let (0, Ok(n)) = (low, u32::try_from(high)) {
                let mut r = RandomState::new(seed);
                let mut out = vec![0u32; COUNT];
                r.randint_below(n, &mut out[..COUNT / 2]).unwrap();
                r.randint_below(n, &mut out[COUNT / 2..]).unwrap();
                let out: Vec<i64> = out.into_iter().map(i64::from).collect();
                assert_eq!(out, got, "{what}: randint_below");
            }
        }
    }

    #[test]
    fn random_sample_matches_numpy_bits() {
        for &(seed, first, last, sum_bits) in RANDOM_SAMPLE {
            let mut r = RandomState::new(seed);
            let got: Vec<f64> = (0..COUNT).map(|_| r.random_sample()).collect();
            let bits: Vec<u64> = got.iter().map(|v| v.to_bits()).collect();
            assert_eq!(&bits[..first.len()], first, "seed {seed}");
            assert_eq!(&bits[COUNT - last.len()..], last, "seed {seed}");
            assert_eq!(got.iter().fold(0.0, |a, b| a + b).to_bits(), sum_bits, "seed {seed}");
            assert!(got.iter().all(|v| (0.0..1.0).contains(v)));
        }
    }

    #[test]
    fn permutation_matches_numpy() {
        for &(seed, n, first, last, sum) in PERMUTATION {
            let mut r = RandomState::new(seed);
            let got: Vec<i64> = r.permutation(n).into_iter().map(|v| v as i64).collect();
            let first: Vec<i64> = first.iter().map(|&v| v as i64).collect();
            let last: Vec<i64> = last.iter().map(|&v| v as i64).collect();
            check_summary(&got, &first, &last, sum as i128, &format!("seed {seed} permutation({n})"));
            let mut sorted = got.clone();
            sorted.sort_unstable();
            assert!(sorted.iter().enumerate().all(|(i, &v)| v == i as i64));
        }
    }

    #[test]
    fn mixed_stream_matches_numpy() {
        // uniform, permutation, randint interleaved on one state, as the probe and the
        // bootstrap use it.
        let mut r = RandomState::new(42);
        let u: Vec<u64> = (0..5).map(|_| r.uniform(-0.5, 0.5).to_bits()).collect();
        assert_eq!(u, MIXED_UNIFORM);
        assert_eq!(r.permutation(7), MIXED_PERMUTATION);
        assert_eq!(r.randint(-3, 1000, 6).unwrap(), MIXED_RANDINT);
        assert_eq!(r.random_sample().to_bits(), MIXED_LAST);
    }

    #[test]
    fn degenerate_ranges() {
        let mut r = RandomState::new(0);
        assert_eq!(r.randint(0, 0, 0).unwrap(), Vec::<i64>::new());
        assert!(matches!(r.randint(3, 3, 2), Err(EmptyRange { low: 3, high: 3 })));
        assert!(r.randint_below(0, &mut [0u32; 1]).is_err());
        // A single-value range draws nothing: the stream is untouched.
        assert_eq!(r.randint(7, 8, 4).unwrap(), vec![7; 4]);
        let mut out = [9u32; 3];
        r.randint_below(1, &mut out).unwrap();
        assert_eq!(out, [0; 3]);
        assert_eq!(r.permutation(0), Vec::<usize>::new());
        assert_eq!(r.permutation(1), vec![0]);
        assert_eq!(r.next_u32(), RandomState::new(0).next_u32());
    }

    /// A literal sequence of the generated tables.
    type Seq<T> = &'static [T];

    // BEGIN GENERATED by tools/make_rng_fixtures.py
    /// (seed, first, last, checksum) of the first COUNT raw 32-bit outputs.
    const COUNT: usize = 1500;
    const RAW_U32: &[(u32, Seq<u32>, Seq<u32>, u128)] = &[
        (
            0,
            &[2357136044, 2546248239, 3071714933, 3626093760, 2588848963, 3684848379],
            &[3090745027, 2613888336, 4150613312, 1410376833, 2180278066, 3447536480],
            2394713064138545,
        ),
        (
            42,
            &[1608637542, 3421126067, 4083286876, 787846414, 3143890026, 3348747335],
            &[2334541773, 286126900, 3893268071, 983656551, 2681081778, 2331520038],
            2417966702431494,
        ),
        (
            4294967295,
            &[419326371, 479346978, 3918654476, 2416749639, 3388880820, 2260532800],
            &[3589082948, 3391790918, 4044987765, 326153399, 2553343528, 3191189008],
            2394559732035220,
        ),
    ];
    /// (seed, low, high, first, last, checksum) of `randint(low, high, COUNT // 2)` called
    /// twice on one state (COUNT values in all).
    const RANDINT: &[(u32, i64, i64, Seq<i64>, Seq<i64>, i128)] = &[
        (0, 0, 1, &[0, 0, 0, 0, 0, 0], &[0, 0, 0, 0, 0, 0], 0),
        (0, 0, 2, &[0, 1, 1, 0, 1, 1], &[1, 0, 0, 1, 0, 0], 573143),
        (0, 0, 3, &[0, 1, 0, 1, 1, 2], &[0, 0, 0, 2, 2, 2], 1099574),
        (0, 0, 624, &[559, 192, 359, 9, 277, 599], &[506, 431, 110, 234, 577, 594], 346453720),
        (0, 0, 10000, &[2732, 9845, 3264, 4859, 9225, 7891], &[4280, 6834, 986, 8715, 2668, 3211], 5520710817),
        (
            0,
            0,
            2147483648,
            &[209652396, 398764591, 924231285, 1478610112, 441365315, 1537364731],
            &[943261379, 466404688, 2003129664, 1410376833, 32794418, 1300052832],
            1210678627460913,
        ),
        (
            0,
            0,
            4294967296,
            &[2357136044, 2546248239, 3071714933, 3626093760, 2588848963, 3684848379],
            &[3090745027, 2613888336, 4150613312, 1410376833, 2180278066, 3447536480],
            2394713064138545,
        ),
        (
            0,
            0,
            4294967297,
            &[2546248239, 1277901399, 243580376, 1171049868, 2051556033, 3488238119],
            &[1982421286, 245704599, 1183955933, 2895522130, 3569498499, 1223347046],
            2451253096217048,
        ),
        (
            0,
            0,
            1099511627776,
            &[741280623151, 506137267392, 291447657211, 841157541223, 41332891347, 91845220082],
            &[946552975151, 209420415351, 855238400629, 291942223483, 855340583230, 861997943077],
            594507125581845126,
        ),
        (0, -7, 5, &[-2, -7, -4, 4, -4, 0], &[-7, -5, -5, -2, -2, -6], -2022853),
        (
            0,
            -4611686018427387904,
            4611686018427387904,
            &[
                -3711235831533098449,
                -642142871786238784,
                -2716036421228801285,
                -3783737528391729817,
                3203365596207111891,
                -1920414613809735950,
            ],
            &[
                4303161803203161903,
                -4050415909352902281,
                -1039966720335390091,
                -2541039249569034629,
                -3830207273645012674,
                -410606257836865243,
            ],
            123412358623177933230726,
        ),
        (42, 0, 1, &[0, 0, 0, 0, 0, 0], &[0, 0, 0, 0, 0, 0], 0),
        (42, 0, 2, &[0, 1, 0, 0, 0, 1], &[1, 0, 1, 1, 0, 0], 551820),
        (42, 0, 3, &[2, 0, 2, 2, 0, 0], &[2, 1, 1, 1, 2, 0], 1104115),
        (42, 0, 624, &[102, 435, 270, 106, 71, 20], &[454, 272, 235, 520, 500, 116], 341386208),
        (42, 0, 10000, &[7270, 860, 5390, 5191, 5734, 6265], &[686, 8476, 4811, 8954, 5346, 5043], 5657219828),
        (
            42,
            0,
            2147483648,
            &[1608637542, 1273642419, 1935803228, 787846414, 996406378, 1201263687],
            &[187058125, 286126900, 1745784423, 983656551, 533598130, 184036390],
            1195687729466630,
        ),
        (
            42,
            0,
            4294967296,
            &[1608637542, 3421126067, 4083286876, 787846414, 3143890026, 3348747335],
            &[2334541773, 286126900, 3893268071, 983656551, 2681081778, 2331520038],
            2417966702431494,
        ),
        (
            42,
            0,
            4294967297,
            &[3421126067, 787846414, 3348747335, 2563451924, 1914837113, 429389014],
            &[4090815122, 3776740906, 1359570433, 2153992504, 304476999, 1343737037],
            2382200731435788,
        ),
        (
            42,
            0,
            1099511627776,
            &[441507790259, 395924837646, 458615280711, 810017303572, 440001501305, 902372521174],
            &[421630258119, 470911278029, 316793971649, 745178738440, 10919368788, 111460751687],
            626526723702462205,
        ),
        (42, -7, 5, &[-1, -4, 3, 0, -3, -1], &[-7, 1, 3, 0, 2, 1], -1872219),
        (
            42,
            -4611686018427387904,
            4611686018427387904,
            &[
                2297359619001564595,
                3702525538111689998,
                -332153208042826681,
                -2791758168952460268,
                -1733650121047795591,
                -1734094960886025002,
            ],
            &[
                -2703396305373287481,
                -1508707603281093683,
                -2407478248756452415,
                3938269976453787400,
                2394125007750453332,
                2090636809281476935,
            ],
            -4733881181354263898371,
        ),
        (4294967295, 0, 1, &[0, 0, 0, 0, 0, 0], &[0, 0, 0, 0, 0, 0], 0),
        (4294967295, 0, 2, &[1, 0, 0, 1, 0, 0], &[0, 0, 1, 1, 0, 0], 538986),
        (4294967295, 0, 3, &[2, 0, 0, 0, 2, 2], &[2, 1, 1, 0, 1, 1], 1121527),
        (4294967295, 0, 624, &[419, 290, 12, 71, 576, 214], &[45, 561, 562, 212, 211, 73], 352567858),
        (4294967295, 0, 10000, &[290, 4310, 506, 2687, 5874, 3611], &[630, 4944, 6241, 9915, 6545, 7764], 5817969246),
        (
            4294967295,
            0,
            2147483648,
            &[419326371, 479346978, 1771170828, 269265991, 1241397172, 113049152],
            &[1441599300, 1244307270, 1897504117, 326153399, 405859880, 1043705360],
            1218610571292308,
        ),
        (
            4294967295,
            0,
            4294967296,
            &[419326371, 479346978, 3918654476, 2416749639, 3388880820, 2260532800],
            &[3589082948, 3391790918, 4044987765, 326153399, 2553343528, 3191189008],
            2394559732035220,
        ),
        (
            4294967295,
            0,
            4294967297,
            &[2416749639, 2260532800, 3309765114, 2987145323, 2804808791, 3338648997],
            &[3498193695, 3763372674, 455609749, 2650249118, 4221777994, 611301048],
            2446451207840699,
        ),
        (
            4294967295,
            0,
            1099511627776,
            &[700559016226, 53956357191, 775354646080, 922432766458, 933225791264, 547627168379],
            &[131748323476, 682201670090, 614634210509, 521918046163, 758664546652, 45157656857],
            627541496617471116,
        ),
        (4294967295, -7, 5, &[-4, -5, 0, -3, -7, -1], &[3, -7, 2, -7, -5, -7], -1844427),
        (
            4294967295,
            -4611686018427387904,
            4611686018427387904,
            &[
                -2810692968152678110,
                2995434765878602823,
                720074238920031808,
                553468687576138234,
                -4280757374008459488,
                4049169820214588027,
            ],
            &[
                -3020129611333771116,
                1119766413672931786,
                -3606426111773391667,
                613062916798504915,
                1736382506597239132,
                968393811809741081,
            ],
            1611825245170384997516,
        ),
    ];
    /// (seed, first, last) `random_sample()` bit patterns of COUNT draws, and the bits of
    /// their left-to-right sum.
    const RANDOM_SAMPLE: &[(u32, Seq<u64>, Seq<u64>, u64)] = &[
        (
            0,
            &[
                4603118492128842408,
                4604617072673064755,
                4603604429377014091,
                4603083090945086965,
                4601303506303651574,
                4603992916519131995,
            ],
            &[
                4607031772176961724,
                4584427067368994976,
                4596144034518590884,
                4592752885059787208,
                4586266123650032192,
                4597373254312742032,
            ],
            4649822453086202304,
        ),
        (
            42,
            &[
                4600418734876611052,
                4606738492737443412,
                4604768434832435025,
                4603567455797980336,
                4594789184218210692,
                4594788315199799116,
            ],
            &[
                4603610601265855663,
                4604193945366429551,
                4603755092528173455,
                4602021186329700728,
                4600513232310289090,
                4605951437750292581,
            ],
            4649799802758878686,
        ),
        (
            4294967295,
            &[
                4591699549773514784,
                4606393233629524657,
                4605282217728078841,
                4605200867372899335,
                4580827980389662592,
                4606907752655388105,
            ],
            &[
                4603455946305519490,
                4605477379922038151,
                4603169668711855891,
                4598773913762523902,
                4605778462015207717,
                4605403467539704996,
            ],
            4649834028567519134,
        ),
    ];
    /// (seed, n, first, last, checksum) of `permutation(n)`.
    const PERMUTATION: &[(u32, usize, Seq<usize>, Seq<usize>, u128)] = &[
        (0, 2, &[1, 0], &[1, 0], 1),
        (0, 10, &[2, 8, 4, 9, 1, 6], &[1, 6, 7, 3, 0, 5], 230),
        (0, 624, &[356, 299, 424, 313, 428, 52], &[599, 277, 9, 359, 192, 559], 60362664),
        (0, 10000, &[9394, 898, 2398, 5906, 2343, 8225], &[7891, 9225, 4859, 3264, 9845, 2732], 249247434393),
        (42, 2, &[1, 0], &[1, 0], 1),
        (42, 10, &[8, 1, 5, 0, 7, 2], &[7, 2, 9, 4, 3, 6], 254),
        (42, 624, &[446, 496, 215, 212, 479, 501], &[20, 71, 106, 270, 435, 102], 60992970),
        (42, 10000, &[6252, 4684, 1731, 4742, 4521, 6340], &[6265, 5734, 5191, 5390, 860, 7270], 251669401337),
        (4294967295, 2, &[0, 1], &[0, 1], 2),
        (4294967295, 10, &[6, 9, 5, 1, 8, 0], &[8, 0, 7, 4, 2, 3], 212),
        (4294967295, 624, &[2, 130, 608, 185, 19, 521], &[214, 576, 71, 12, 290, 419], 61659468),
        (4294967295, 10000, &[717, 5523, 2741, 7427, 6861, 5656], &[3611, 5874, 2687, 506, 4310, 290], 248810622825),
    ];
    /// RandomState(42): 5 × uniform(-0.5, 0.5) (bits), permutation(7), randint(-3, 1000, 6),
    /// random_sample() (bits), in that order on one state.
    const MIXED_UNIFORM: &[u64] =
        &[13817060225737382952, 4601790967047498920, 4597526482929687876, 4591773513665832320, 13823240274063585086];
    const MIXED_PERMUTATION: &[usize] = &[4, 1, 0, 3, 5, 6, 2];
    const MIXED_RANDINT: &[i64] = &[868, 660, 127, 658, 305, 766];
    const MIXED_LAST: u64 = 4604678406348762071;
    // END GENERATED
}
