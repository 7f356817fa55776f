//! Returning a batch's pixels without copying them inside the plugin.
//!
//! `samples` gives each image an empty `data` and records a [`Loan`]: where the batch's images
//! lie, back to back, in the decompressed array. The `samples` export is wit-bindgen's, wrapped
//! (module [`api`]): once wit-bindgen has lowered the batch into the canonical ABI's flat form
//! (<https://github.com/WebAssembly/component-model/blob/main/design/mvp/CanonicalABI.md>),
//! the wrapper writes each image's address and length in the array into the lowered
//! `pixels.data` fields, so the host copies the pixels straight out of the array. The
//! post-return wrapper puts the empty lists back before wit-bindgen's post-return frees the
//! batch, so that frees exactly what wit-bindgen allocated.
//!
//! Why this is sound:
//! - No Rust value is made to own or alias the array: the wrapper stores addresses, which only
//!   the host reads, into the lowered batch. `SplitData::pixels` stays the only owner of the
//!   bytes, and nothing writes them after `open`.
//! - The lowered batch is memory that wit-bindgen allocated and left for the host to read until
//!   post-return. The wrapper writes into it only at fields whose layout it checks first (the
//!   tags, the image's size, the empty list it expects), and fails loudly if any differs.
//! - The host reads the lent bytes before post-return, and the component model lets it call
//!   into the instance again (to drop the dataset, or to ask for another batch) only after
//!   post-return: while they are read, the array is alive and unchanged.
//! - The post-return wrapper restores exactly the fields it changed, so wit-bindgen's
//!   post-return sees the empty lists it lowered, which free nothing.

use std::cell::Cell;
use std::mem::size_of;

/// Images lent to the batch being returned: `count` images of `width × height × channels`
/// bytes each, back to back from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loan {
    start: *const u8,
    count: usize,
    width: u32,
    height: u32,
    channels: u8,
}

impl Loan {
    /// A loan of `pixels`, whole images of `width × height × channels` bytes; `None` when it
    /// holds none, or a partial one.
    pub fn new(pixels: &[u8], width: u32, height: u32, channels: u8) -> Option<Self> {
        let image = width as usize * height as usize * usize::from(channels);
        if image == 0 || pixels.is_empty() || !pixels.len().is_multiple_of(image) {
            return None;
        }
        Some(Loan { start: pixels.as_ptr(), count: pixels.len() / image, width, height, channels })
    }

    fn image_len(&self) -> usize {
        self.width as usize * self.height as usize * usize::from(self.channels)
    }
}

thread_local! {
    /// The loan `samples` made for the batch it is returning; the export wrapper takes it.
    static PENDING: Cell<Option<Loan>> = const { Cell::new(None) };
    /// How many images of the returned batch are lent, until its post-return.
    static LENT: Cell<usize> = const { Cell::new(0) };
}

/// Lends `loan`'s images to the batch that the current `samples` call returns.
///
/// # Safety
/// The images are the batch's, in order, each returned as `raw` pixels with an empty `data`;
/// the lent bytes stay alive and unchanged until the batch's post-return.
pub unsafe fn lend(loan: Loan) {
    PENDING.set(Some(loan));
}

/// Offsets in the flat form of `result<list<sample>, error>`, as wit-bindgen lays it out for
/// `wit/` (pointers and lengths are `P` bytes: 4 on wasm32). The result is a tag byte, then
/// the list's pointer and length. A `sample` is `id` (string: pointer, length), `image`
/// (option tag at `2P`; the `image` variant's tag at `3P`, its payload at `4P`), then
/// `labels`, `qa` and `attributes`, `8 + 17P` bytes in all. `raw`'s `pixels` record is
/// `width: u32`, `height: u32`, `channels: u8`, then `data` (pointer, length) aligned to `P`.
mod layout {
    use super::size_of;

    const P: usize = size_of::<*const u8>();
    pub const RESULT_OK: u8 = 0;
    pub const LIST_PTR: usize = P;
    pub const LIST_LEN: usize = 2 * P;
    pub const SAMPLE_SIZE: usize = 8 + 17 * P;
    pub const IMAGE_TAG: usize = 2 * P;
    pub const IMAGE_SOME: u8 = 1;
    pub const IMAGE_KIND: usize = 3 * P;
    pub const IMAGE_RAW: u8 = 2;
    pub const WIDTH: usize = 4 * P;
    pub const HEIGHT: usize = 4 + 4 * P;
    pub const CHANNELS: usize = 8 + 4 * P;
    pub const DATA_PTR: usize = 8 + 5 * P;
    pub const DATA_LEN: usize = 8 + 6 * P;
}

/// The samples of a lowered `samples` result, or `None` for an error.
///
/// # Safety
/// `ret` is the return area of a `samples` call that wit-bindgen lowered, before its
/// post-return.
unsafe fn lowered_samples(ret: *mut u8) -> Option<(*mut u8, usize)> {
    // SAFETY: the return area holds the tag, the list pointer and its length (the caller's
    // contract), aligned as written by wit-bindgen.
    unsafe {
        if ret.read() != layout::RESULT_OK {
            return None;
        }
        let list = ret.add(layout::LIST_PTR).cast::<*mut u8>().read();
        let len = ret.add(layout::LIST_LEN).cast::<usize>().read();
        Some((list, len))
    }
}

/// Whether lowered sample `s` is a `raw` image of `loan`'s size with an empty `data`.
///
/// # Safety
/// `s` points to a lowered `sample` (see [`lowered_samples`]).
unsafe fn holds_empty_raw_image(s: *mut u8, loan: &Loan) -> bool {
    // SAFETY: every offset is a field of the lowered sample, read with its own type.
    unsafe {
        s.add(layout::IMAGE_TAG).read() == layout::IMAGE_SOME
            && s.add(layout::IMAGE_KIND).read() == layout::IMAGE_RAW
            && s.add(layout::WIDTH).cast::<u32>().read() == loan.width
            && s.add(layout::HEIGHT).cast::<u32>().read() == loan.height
            && s.add(layout::CHANNELS).read() == loan.channels
            && s.add(layout::DATA_LEN).cast::<usize>().read() == 0
    }
}

/// Points the lowered images of the batch at `ret` to `loan`'s bytes.
///
/// # Safety
/// As [`lowered_samples`]; `loan` was made from an array that stays alive and unchanged until
/// the batch's post-return.
unsafe fn apply(ret: *mut u8, loan: Loan) {
    // SAFETY: the caller's contract.
    let Some((list, len)) = (unsafe { lowered_samples(ret) }) else { return };
    // SAFETY: the list holds `len` lowered samples of `SAMPLE_SIZE` bytes each.
    let sample = |k: usize| unsafe { list.add(k * layout::SAMPLE_SIZE) };
    // SAFETY: each `sample(k)` is a lowered sample.
    let fits = len == loan.count && (0..len).all(|k| unsafe { holds_empty_raw_image(sample(k), &loan) });
    assert!(fits, "the lowered batch is not laid out as `lend` expects (has wit/ changed?)");
    let image = loan.image_len();
    for k in 0..len {
        // SAFETY: `k < count`, so image `k` lies in the lent slice; the `data` fields are those
        // of a lowered sample, checked above. The host reads the `image` bytes at `data`, which
        // stay alive and unchanged meanwhile (the caller's contract).
        unsafe {
            let data = loan.start.add(k * image);
            sample(k).add(layout::DATA_PTR).cast::<*const u8>().write(data);
            sample(k).add(layout::DATA_LEN).cast::<usize>().write(image);
        }
    }
    LENT.set(len);
}

/// Puts back the empty `data` lists that [`apply`] replaced in the batch at `ret`.
///
/// # Safety
/// As [`lowered_samples`], for the batch that `apply` last changed.
unsafe fn restore(ret: *mut u8) {
    let lent = LENT.replace(0);
    // SAFETY: the caller's contract.
    let Some((list, len)) = (unsafe { lowered_samples(ret) }) else { return };
    for k in 0..lent.min(len) {
        // SAFETY: the `data` fields of lowered sample `k`, which `apply` wrote.
        unsafe {
            let s = list.add(k * layout::SAMPLE_SIZE);
            s.add(layout::DATA_PTR).cast::<*mut u8>().write(std::ptr::dangling_mut());
            s.add(layout::DATA_LEN).cast::<usize>().write(0);
        }
    }
}

/// wit-bindgen's export glue for `dataset-api`, with `samples` and its post-return wrapped;
/// `lib.rs` exports the interface through it.
pub mod api {
    pub use crate::exports::mvb::plugin::dataset_api::*;

    use crate::exports::mvb::plugin::dataset_api as generated;

    /// The `samples` export: wit-bindgen's, in a batch of the call arena, then the loan applied
    /// to the lowered batch.
    ///
    /// # Safety
    /// As wit-bindgen's: called by the component's export, with the canonical ABI's arguments.
    pub unsafe fn _export_method_dataset_samples_cabi<T: GuestDataset>(
        handle: *mut u8,
        split: i32,
        start: i64,
        count: i32,
    ) -> *mut u8 {
        super::PENDING.set(None);
        super::LENT.set(0);
        // The batch, and its lowered copy, come from the call arena.
        let batch = crate::batch_scope();
        // SAFETY: the caller's contract, forwarded.
        let ret = unsafe { generated::_export_method_dataset_samples_cabi::<T>(handle, split, start, count) };
        drop(batch);
        if let Some(loan) = super::PENDING.take() {
            // SAFETY: `ret` was just lowered; the loan is of the dataset's array, which the host
            // cannot drop (nor call in at all) before post-return.
            unsafe { super::apply(ret, loan) };
        }
        ret
    }

    /// The `samples` post-return: the lent lists emptied again, then wit-bindgen's.
    ///
    /// # Safety
    /// As wit-bindgen's: called once, with what the `samples` export returned.
    pub unsafe fn __post_return_method_dataset_samples<T: GuestDataset>(ret: *mut u8) {
        // SAFETY: the caller's contract; the batch is the last one `apply` changed.
        unsafe { super::restore(ret) };
        // SAFETY: the caller's contract, forwarded, with the batch as wit-bindgen lowered it.
        unsafe { generated::__post_return_method_dataset_samples::<T>(ret) }
    }
}

#[cfg(test)]
mod tests {
    //! The `samples` export end to end, as the host sees it: wit-bindgen's lowering, the loan,
    //! the host's read and the post-return. It needs Miri, whose addresses fit the 32 bits in
    //! which wit-bindgen passes a resource handle, and Miri's aliasing checks off, because
    //! wit-bindgen 0.61's own code fails them (it frees each lowered string through a pointer
    //! taken from a shared slice). Miri still checks every read, write and free against the
    //! live allocations, which is where a loan could go wrong. In `plugins/`:
    //! `MIRIFLAGS=-Zmiri-disable-stacked-borrows cargo +nightly miri test -p mvb-plugin-medmnist -- --ignored`

    use super::*;
    use crate::{MedMnist, SplitData, catalog};

    /// Split `test` as the canonical ABI passes it.
    const TEST_SPLIT: i32 = 2;

    fn dataset(n: usize) -> MedMnist {
        let image = 3 * 2;
        let pixels = (0..n * image).map(|j| (j / image * 16 + j % image) as u8).collect();
        let labels = (0..n).map(|i| vec![(i % 2) as u32]).collect();
        let mut splits: [SplitData; 3] = Default::default();
        splits[2] = SplitData { pixels, labels };
        let info = catalog::info("synthetic", None, 1, &splits);
        MedMnist { info, width: 3, height: 2, channels: 1, splits, vqa: None }
    }

    /// Calls the `samples` export and reads the batch as the host does: each image's bytes.
    ///
    /// # Safety
    /// `rep` is a live dataset resource's representation.
    unsafe fn call(rep: *mut u8, start: i64, count: i32) -> (*mut u8, Option<Vec<Vec<u8>>>) {
        // SAFETY: the caller's contract; the split and range are plain values.
        let ret = unsafe { api::_export_method_dataset_samples_cabi::<MedMnist>(rep, TEST_SPLIT, start, count) };
        // SAFETY: `ret` was just lowered.
        let images = unsafe { lowered_samples(ret) }.map(|(list, len)| {
            (0..len)
                .map(|k| {
                    // SAFETY: lowered sample `k`'s `data` list, valid until post-return.
                    unsafe {
                        let s = list.add(k * layout::SAMPLE_SIZE);
                        let data = s.add(layout::DATA_PTR).cast::<*const u8>().read();
                        let len = s.add(layout::DATA_LEN).cast::<usize>().read();
                        std::slice::from_raw_parts(data, len).to_vec()
                    }
                })
                .collect()
        });
        (ret, images)
    }

    #[test]
    #[ignore = "run under Miri (see the module documentation)"]
    fn the_host_reads_lent_pixels_and_post_return_frees_only_what_was_allocated() {
        let rep = Box::into_raw(Box::new(Some(dataset(10)))).cast::<u8>();
        assert!(rep as usize <= u32::MAX as usize, "the handle does not fit 32 bits (run under Miri)");
        for (start, count) in [(0, 4), (4, 4), (8, 4), (0, 10), (10, 4)] {
            // SAFETY: `rep` is live until the end of the test.
            let (ret, images) = unsafe { call(rep, start, count) };
            let images = images.expect("a batch");
            assert_eq!(images.len(), (count as usize).min(10 - start as usize));
            for (k, image) in images.iter().enumerate() {
                let i = start as usize + k;
                assert_eq!(image, &(0..6).map(|j| (i * 16 + j) as u8).collect::<Vec<_>>());
            }
            // SAFETY: once, with what the export returned.
            unsafe { api::__post_return_method_dataset_samples::<MedMnist>(ret) };
        }
        // An error lends nothing.
        // SAFETY: as above.
        let (ret, images) = unsafe { call(rep, 11, 4) };
        assert!(images.is_none());
        // SAFETY: as above.
        unsafe { api::__post_return_method_dataset_samples::<MedMnist>(ret) };
        // SAFETY: made above, no longer borrowed.
        drop(unsafe { Box::from_raw(rep.cast::<Option<MedMnist>>()) });
    }
}
