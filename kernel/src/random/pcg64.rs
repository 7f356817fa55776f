//! numpy's `np.random.default_rng(seed)` bit for bit: the PCG64 generator (XSL-RR output of a
//! 128-bit LCG) seeded through `SeedSequence` (numpy/random/bit_generator.pyx, _pcg64.pyx,
//! pcg64.h), and `Generator.integers(0, n, n)` (Lemire's bounded integers on 32-bit draws,
//! numpy/random/src/distributions/distributions.c), which is how MedVLMBench draws its bootstrap
//! replicates (`tests/it/bootstrap.rs` checks the index sets against numpy).

/// `SeedSequence`'s hashing constants.
const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;
const POOL_SIZE: usize = 4;

/// PCG's 128-bit multiplier.
const MULTIPLIER: u128 = (0x2360_ed05_1fc6_5da4 << 64) | 0x4385_df64_9fcc_f645;

fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut v = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(MULT_A);
    v = v.wrapping_mul(*hash_const);
    v ^ (v >> XSHIFT)
}

fn mix(x: u32, y: u32) -> u32 {
    let r = MIX_MULT_L.wrapping_mul(x).wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    r ^ (r >> XSHIFT)
}

/// `SeedSequence(seed).generate_state(4, np.uint64)`.
fn seed_state(seed: u32) -> [u64; 4] {
    let entropy = [seed];
    let mut hash_const = INIT_A;
    let mut pool = [0u32; POOL_SIZE];
    for (i, p) in pool.iter_mut().enumerate() {
        *p = hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash_const);
    }
    for src in 0..POOL_SIZE {
        for dst in 0..POOL_SIZE {
            if src != dst {
                pool[dst] = mix(pool[dst], hashmix(pool[src], &mut hash_const));
            }
        }
    }
    let mut hash_const = INIT_B;
    let mut words = [0u32; 8];
    for (i, w) in words.iter_mut().enumerate() {
        let mut v = pool[i % POOL_SIZE] ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_B);
        v = v.wrapping_mul(hash_const);
        *w = v ^ (v >> XSHIFT);
    }
    std::array::from_fn(|i| u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32))
}

/// numpy's PCG64 bit generator with its 32-bit buffer.
#[derive(Debug, Clone)]
pub struct Pcg64 {
    state: u128,
    inc: u128,
    /// The high half of the last 64-bit draw, when a 32-bit draw used only the low half.
    spare: Option<u32>,
}

impl Pcg64 {
    /// `np.random.default_rng(seed)`'s bit generator.
    pub fn default_rng(seed: u32) -> Self {
        let s = seed_state(seed);
        let initstate = (u128::from(s[0]) << 64) | u128::from(s[1]);
        let initseq = (u128::from(s[2]) << 64) | u128::from(s[3]);
        let mut rng = Pcg64 { state: 0, inc: (initseq << 1) | 1, spare: None };
        rng.step();
        rng.state = rng.state.wrapping_add(initstate);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(MULTIPLIER).wrapping_add(self.inc);
    }

    /// Skips `delta` 64-bit draws in O(log delta) steps (the LCG jump-ahead of Brown, "Random
    /// number generation with arbitrary strides", 1994, as numpy's `advance`); a pending
    /// 32-bit half is dropped.
    pub fn advance(&mut self, mut delta: u128) {
        let (mut mult, mut plus) = (MULTIPLIER, self.inc);
        let (mut acc_mult, mut acc_plus) = (1u128, 0u128);
        while delta > 0 {
            if delta & 1 == 1 {
                acc_mult = acc_mult.wrapping_mul(mult);
                acc_plus = acc_plus.wrapping_mul(mult).wrapping_add(plus);
            }
            plus = mult.wrapping_add(1).wrapping_mul(plus);
            mult = mult.wrapping_mul(mult);
            delta >>= 1;
        }
        self.state = acc_mult.wrapping_mul(self.state).wrapping_add(acc_plus);
        self.spare = None;
    }

    /// The next 64-bit output (XSL-RR).
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let x = ((self.state >> 64) as u64) ^ (self.state as u64);
        x.rotate_right((self.state >> 122) as u32)
    }

    /// The next 32-bit output: the low half of a 64-bit draw, then its high half.
    pub fn next_u32(&mut self) -> u32 {
        if let Some(high) = self.spare.take() {
            return high;
        }
        let next = self.next_u64();
        self.spare = Some((next >> 32) as u32);
        next as u32
    }

    /// `Generator.integers(0, n, size=out.len())` for `1 <= n <= 2^32` (`int64` results, in
    /// range `0..n`), written as `u32`. `n == 1` draws nothing, as numpy.
    pub fn integers_below(&mut self, n: u64, out: &mut [u32]) {
        let rng = n.saturating_sub(1);
        if rng == 0 {
            out.fill(0);
            return;
        }
        if rng == u64::from(u32::MAX) {
            out.iter_mut().for_each(|o| *o = self.next_u32());
            return;
        }
        let excl = rng + 1;
        for o in out.iter_mut() {
            let mut m = u64::from(self.next_u32()) * excl;
            let mut leftover = m & 0xffff_ffff;
            if leftover < excl {
                let threshold = (u64::from(u32::MAX) - rng) % excl;
                while leftover < threshold {
                    m = u64::from(self.next_u32()) * excl;
                    leftover = m & 0xffff_ffff;
                }
            }
            *o = (m >> 32) as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_equals_stepping() {
        for delta in [0u128, 1, 2, 7, 1000, 65_537] {
            let (mut a, mut b) = (Pcg64::default_rng(42), Pcg64::default_rng(42));
            for _ in 0..delta {
                a.next_u64();
            }
            b.advance(delta);
            assert_eq!(a.next_u64(), b.next_u64(), "delta {delta}");
        }
    }
}
