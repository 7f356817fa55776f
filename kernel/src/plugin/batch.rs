//! How the host reads a batch of samples from a dataset plugin: the per-batch data cap and
//! decode budget, the size of each call into the plugin (shrunk from the largest sample seen
//! so that a batch stays under both), and the uniqueness of sample ids across the dataset as
//! far as the host has read it.

use std::collections::HashMap;

use crate::data::{ImageRef, MAX_BATCH_DECODED_BYTES, Sample, Split};

/// The most bytes one batch of samples may carry out of the sandbox (ids, texts, image paths,
/// encoded and raw images together): 128 MiB, about 42 raw 1024x1024 RGB images. The host asks
/// for fewer samples than it was asked for when a batch would exceed it.
pub const MAX_BATCH_BYTES: u64 = 128 << 20;

/// How many samples the first call of a dataset asks for, before any size is known.
const FIRST_ASK: u32 = 8;

/// What one sample costs the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cost {
    /// Bytes carried out of the sandbox.
    pub(crate) carried: u64,
    /// Bytes of decoded pixels its image declares.
    pub(crate) decoded: u64,
}

impl Cost {
    fn plus(self, other: Cost) -> Cost {
        Cost { carried: self.carried + other.carried, decoded: self.decoded + other.decoded }
    }

    /// Whether a batch holding `self` has room for `more`.
    pub(crate) fn fits(self, more: Cost) -> bool {
        let total = self.plus(more);
        total.carried <= MAX_BATCH_BYTES && total.decoded <= MAX_BATCH_DECODED_BYTES
    }

    /// Adds `more` to the batch's cost.
    pub(crate) fn add(&mut self, more: Cost) {
        *self = self.plus(more);
    }
}

/// The bytes `sample` carries out of the sandbox.
pub(crate) fn carried(sample: &Sample) -> u64 {
    let image = match &sample.image {
        None => 0,
        Some(ImageRef::Path(path)) => path.len(),
        Some(ImageRef::Encoded(bytes)) => bytes.len(),
        Some(ImageRef::Raw(px)) => px.data.len(),
    };
    let qa = sample.qa.as_ref().map_or(0, |qa| qa.question.len() + qa.answer.len());
    let attributes: usize = sample.attributes.iter().map(|a| a.key.len() + a.value.len()).sum();
    (sample.id.len() + image + 4 * sample.labels.len() + qa + attributes) as u64
}

/// Sizes the calls into one dataset from the largest sample seen so far.
#[derive(Debug, Default)]
pub(crate) struct Sizing {
    largest: Option<Cost>,
}

impl Sizing {
    /// Takes `cost` into account for the next calls.
    pub(crate) fn observe(&mut self, cost: Cost) {
        let l = self.largest.get_or_insert_with(Cost::default);
        l.carried = l.carried.max(cost.carried);
        l.decoded = l.decoded.max(cost.decoded);
    }

    /// How many samples to ask for next, when `remaining` are still wanted and the batch holds
    /// `held` (0 when the batch is full; at least 1 for an empty batch).
    pub(crate) fn ask(&self, remaining: u32, held: Cost) -> u32 {
        let fit = match self.largest {
            None => u64::from(FIRST_ASK),
            Some(l) => {
                let room = |cap: u64, used: u64, each: u64| cap.saturating_sub(used) / each.max(1);
                room(MAX_BATCH_BYTES, held.carried, l.carried).min(room(
                    MAX_BATCH_DECODED_BYTES,
                    held.decoded,
                    l.decoded,
                ))
            }
        };
        let ask = fit.min(u64::from(remaining)) as u32;
        if held == Cost::default() { ask.max(remaining.min(1)) } else { ask }
    }
}

/// The sample ids read so far from one dataset, each with the one place it belongs to.
#[derive(Debug, Default)]
pub(crate) struct SeenIds(HashMap<Box<str>, (Split, u64)>);

impl SeenIds {
    /// Records that sample `index` of `split` has id `id`; an id already given to another
    /// sample is an error.
    pub(crate) fn check(&mut self, id: &str, split: Split, index: u64) -> Result<(), String> {
        match self.0.get(id) {
            Some(&(s, i)) if (s, i) != (split, index) => {
                Err(format!("sample id `{id}` is given to both {s} sample {i} and {split} sample {index}"))
            }
            Some(_) => Ok(()),
            None => {
                self.0.insert(id.into(), (split, index));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_ask_is_small_and_later_asks_fit_the_cap() {
        let mut sizing = Sizing::default();
        assert_eq!(sizing.ask(64, Cost::default()), FIRST_ASK);
        assert_eq!(sizing.ask(3, Cost::default()), 3);
        // 64 raw 1024x1024 RGB images would carry 192 MiB: 42 fit in 128 MiB.
        let image = Cost { carried: 3 << 20, decoded: 3 << 20 };
        sizing.observe(image);
        assert_eq!(sizing.ask(64, Cost::default()), 42);
        assert_eq!(sizing.ask(64, Cost { carried: 120 << 20, decoded: 0 }), 2);
        assert_eq!(sizing.ask(64, Cost { carried: MAX_BATCH_BYTES, decoded: 0 }), 0, "a full batch asks no more");
        // Encoded images that decode large are bounded by the decode budget instead.
        sizing.observe(Cost { carried: 1 << 20, decoded: 100 << 20 });
        assert_eq!(sizing.ask(64, Cost::default()), 5);
        assert_eq!(sizing.ask(0, Cost::default()), 0);
    }

    #[test]
    fn a_huge_sample_is_still_read_alone() {
        let mut sizing = Sizing::default();
        sizing.observe(Cost { carried: 2 * MAX_BATCH_BYTES, decoded: 0 });
        assert_eq!(sizing.ask(64, Cost::default()), 1);
    }

    #[test]
    fn an_id_belongs_to_one_sample() {
        let mut seen = SeenIds::default();
        seen.check("a", Split::Test, 0).expect("first");
        seen.check("a", Split::Test, 0).expect("the same sample read again");
        let err = seen.check("a", Split::Train, 5).expect_err("twice");
        assert!(err.contains("test sample 0 and train sample 5"), "{err}");
    }
}
