//! Weight rows of the 32-element block types (Q8_0, Q4_0, Q4_1) interleaved in groups of eight,
//! the layout the SIMD product kernels read (`x86_packed.rs`): one 32-bit lane per row, so a
//! block's integer dots need no horizontal sums. In the spirit of llama.cpp's repacked "x8" CPU
//! layouts; the layout below is our own.
//!
//! The packed matrix is a sequence of tiles, group-major: tile `(g, j)` holds block `j` of rows
//! `8g..8g+8` (rows past the end are zeros, scale 0):
//! - bytes 0..16: the eight rows' scales `d` (f16, row order);
//! - Q4_1 only, bytes 16..32: the eight rows' minimums `m` (f16);
//! - then the quants in 32-byte chunks whose byte `4l + b` belongs to row `l`:
//!   Q4_0/Q4_1, four chunks `c`: low nibble = element `8c + b`, high nibble = element `8c + 4 + b`;
//!   Q8_0, eight chunks `s`: the byte is element `4s + b` (i8).

use super::{GgmlType, QK, QMatrix};

/// Rows per group (one 256-bit register holds four bytes of each).
pub const ROWS: usize = 8;

/// The packed types as const-generic tags of the SIMD kernels over this layout.
pub(super) const T_Q8_0: u8 = 0;
pub(super) const T_Q4_0: u8 = 1;
pub(super) const T_Q4_1: u8 = 2;

/// A [`QMatrix`] of Q8_0, Q4_0 or Q4_1 in the interleaved layout.
pub struct Packed {
    ty: GgmlType,
    groups: usize,
    nb: usize,
    tile: usize,
    bytes: Box<[u8]>,
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed({:?}, {} groups x {} blocks)", self.ty, self.groups, self.nb)
    }
}

/// Bytes of one tile of `ty`, or `None` for a type without a packed layout.
pub fn tile_bytes(ty: GgmlType) -> Option<usize> {
    match ty {
        GgmlType::Q4_0 => Some(16 + 128),
        GgmlType::Q4_1 => Some(32 + 128),
        GgmlType::Q8_0 => Some(16 + 256),
        _ => None,
    }
}

/// Element `i` (0..32) of a 16-byte ggml nibble block: low nibbles first, then high nibbles.
#[inline(always)]
pub(crate) fn nibble(qs: &[u8], i: usize) -> u8 {
    if i < 16 { qs[i] & 0xF } else { qs[i - 16] >> 4 }
}

impl Packed {
    /// Packs `w`, or `None` when its type has no packed layout.
    pub fn pack(w: &QMatrix) -> Option<Packed> {
        let ty = w.ty();
        let tile = tile_bytes(ty)?;
        let (nb, groups) = (w.cols() / QK, w.rows().div_ceil(ROWS));
        let mut bytes = vec![0u8; groups * nb * tile].into_boxed_slice();
        let bs = ty.block_bytes();
        let quants = if ty == GgmlType::Q4_1 { 32 } else { 16 };
        for (i, row) in (0..w.rows()).map(|i| (i, w.row(i))) {
            let (g, l) = (i / ROWS, i % ROWS);
            for (j, b) in row.chunks_exact(bs).enumerate() {
                let t = &mut bytes[(g * nb + j) * tile..(g * nb + j + 1) * tile];
                t[2 * l..2 * l + 2].copy_from_slice(&b[0..2]);
                if ty == GgmlType::Q4_1 {
                    t[16 + 2 * l..18 + 2 * l].copy_from_slice(&b[2..4]);
                }
                let q = &mut t[quants..];
                match ty {
                    GgmlType::Q8_0 => {
                        for (e, &v) in b[2..34].iter().enumerate() {
                            q[(e / 4) * 32 + 4 * l + e % 4] = v;
                        }
                    }
                    _ => {
                        let src = &b[bs - 16..];
                        for c in 0..4 {
                            for k in 0..4 {
                                let (lo, hi) = (nibble(src, 8 * c + k), nibble(src, 8 * c + 4 + k));
                                q[c * 32 + 4 * l + k] = lo | (hi << 4);
                            }
                        }
                    }
                }
            }
        }
        Some(Packed { ty, groups, nb, tile, bytes })
    }

    /// The block type.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }
    /// Groups of eight rows (the last one padded with zero rows).
    pub fn groups(&self) -> usize {
        self.groups
    }
    /// Blocks per row.
    pub fn nb(&self) -> usize {
        self.nb
    }
    /// Bytes per tile.
    pub fn tile(&self) -> usize {
        self.tile
    }
    /// The tiles of group `g` (`nb` tiles, empty when out of range).
    pub fn group(&self, g: usize) -> &[u8] {
        let n = self.nb * self.tile;
        self.bytes.get(g * n..(g + 1) * n).unwrap_or(&[])
    }
}
