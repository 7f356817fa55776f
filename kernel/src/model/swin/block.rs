//! One Swin Transformer block (transformers' `SwinLayer`): layer norm, (shifted-)window
//! multi-head self-attention with the learned relative position bias, a residual add, layer
//! norm, MLP, a residual add. Windows are a permutation of the tokens (cyclic shift by
//! `window / 2` on odd blocks, then window partition), so the block gathers rows into windows,
//! attends within each window with the bias (plus the shifted-window mask) added to the scores,
//! and gathers the rows back.

use crate::backend::{Array, Device, Heads, Linear, Vector};
use crate::model::nn::{Inference, LayerNorm, Mlp, Site, linear, stacked};
use crate::model::{ModelError, Weights};

/// The mask value transformers adds between tokens of different regions of a shifted window.
const MASKED: f32 = -100.0;

/// Where a block's windows lie on a `side × side` feature map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// The feature map's side.
    pub side: usize,
    /// The window's side (the configured one, clipped to the map as transformers does).
    pub window: usize,
    /// The cyclic shift (0 on even blocks and where the window covers the map).
    pub shift: usize,
}

impl Geometry {
    /// transformers' `set_shift_and_window_size`: a map no larger than the window is one window,
    /// unshifted; otherwise odd blocks shift by half a window.
    pub fn new(side: usize, window: usize, odd: bool) -> Geometry {
        if side <= window {
            Geometry { side, window: side, shift: 0 }
        } else {
            Geometry { side, window, shift: if odd { window / 2 } else { 0 } }
        }
    }

    fn windows(&self) -> usize {
        (self.side / self.window).pow(2)
    }

    fn tokens(&self) -> usize {
        self.window * self.window
    }

    /// Per window-ordered row (window row, window column, row and column inside the window),
    /// the map position it reads: the map rolled by `-shift` on both axes, then partitioned.
    fn order(&self) -> Vec<usize> {
        let (s, w, n) = (self.side, self.window, self.side / self.window);
        let mut rows = Vec::with_capacity(s * s);
        for (wy, wx) in (0..n).flat_map(|y| (0..n).map(move |x| (y, x))) {
            for (iy, ix) in (0..w).flat_map(|y| (0..w).map(move |x| (y, x))) {
                rows.push(((wy * w + iy + self.shift) % s) * s + (wx * w + ix + self.shift) % s);
            }
        }
        rows
    }

    /// The shifted-window mask, `[windows, tokens, tokens]`: 0 between tokens of one region of
    /// the rolled map (3 bands per axis, as transformers' `get_attn_mask`), -100 otherwise.
    fn mask(&self) -> Vec<f32> {
        let (s, w, sh) = (self.side, self.window, self.shift);
        let band = |i: usize| usize::from(i >= s - w) + usize::from(i >= s - sh);
        let mut mask = Vec::with_capacity(self.windows() * self.tokens().pow(2));
        let n = s / w;
        for (wy, wx) in (0..n).flat_map(|y| (0..n).map(move |x| (y, x))) {
            let regions: Vec<usize> = (0..w * w).map(|t| band(wy * w + t / w) * 3 + band(wx * w + t % w)).collect();
            for &a in &regions {
                mask.extend(regions.iter().map(|&b| if a == b { 0.0 } else { MASKED }));
            }
        }
        mask
    }
}

/// A Swin block with its window layout and precomputed score bias.
#[derive(Debug)]
pub(crate) struct Block {
    before: LayerNorm,
    qkv: Linear,
    out: Linear,
    after: LayerNorm,
    mlp: Mlp,
    heads: usize,
    geometry: Geometry,
    /// `[groups, heads, tokens, tokens]`: the relative position bias, plus the mask of window
    /// `g` when shifted (groups = windows), else one group.
    bias: Vector,
    groups: usize,
    /// Map position of each window-ordered row, and its inverse.
    order: Vec<usize>,
    inverse: Vec<usize>,
}

/// The shape of a block: width, heads, MLP activation, layer norm epsilon, qkv bias.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockShape {
    pub dim: usize,
    pub heads: usize,
    pub act: crate::backend::cpu::Activation,
    pub eps: f32,
    pub qkv_bias: bool,
}

impl Block {
    /// Loads `{p}.layernorm_before`, `{p}.attention.self.{query,key,value}`,
    /// `{p}.attention.self.relative_position_bias_table`, `{p}.attention.output.dense`,
    /// `{p}.layernorm_after`, `{p}.intermediate.dense` and `{p}.output.dense`.
    pub fn load(w: &Weights, dev: &Device, p: &str, s: BlockShape, geometry: Geometry) -> Result<Self, ModelError> {
        let hidden = w.shape(&format!("{p}.intermediate.dense.weight")).map_or(4 * s.dim, |sh| sh[0]);
        let table_name = format!("{p}.attention.self.relative_position_bias_table");
        let table = w.tensor(&table_name, &[(2 * geometry.window - 1).pow(2), s.heads])?;
        let (bias, groups) = Self::score_bias(table.data(), s.heads, geometry);
        let order = geometry.order();
        let mut inverse = vec![0; order.len()];
        order.iter().enumerate().for_each(|(i, &r)| inverse[r] = i);
        Ok(Block {
            before: LayerNorm::load(w, dev, &format!("{p}.layernorm_before"), s.dim, s.eps)?,
            qkv: stacked(w, dev, &format!("{p}.attention.self"), &["query", "key", "value"], s.dim, s.qkv_bias)?,
            out: linear(w, dev, &format!("{p}.attention.output.dense"), s.dim, s.dim, true)?,
            after: LayerNorm::load(w, dev, &format!("{p}.layernorm_after"), s.dim, s.eps)?,
            mlp: Mlp {
                fc1: linear(w, dev, &format!("{p}.intermediate.dense"), s.dim, hidden, true)?,
                fc2: linear(w, dev, &format!("{p}.output.dense"), hidden, s.dim, true)?,
                act: s.act,
            },
            heads: s.heads,
            bias: Vector::f32(dev, bias)?,
            groups,
            geometry,
            order,
            inverse,
        })
    }

    /// The relative position bias `table[index(i, j), h]` (transformers'
    /// `relative_position_index`: `(Δy + w − 1)·(2w − 1) + Δx + w − 1`), per window plus its
    /// shifted-window mask when shifted: `([groups, heads, n, n], groups)`.
    fn score_bias(table: &[f32], heads: usize, g: Geometry) -> (Vec<f32>, usize) {
        let (w, n) = (g.window, g.tokens());
        let mut rel = Vec::with_capacity(heads * n * n);
        for h in 0..heads {
            for i in 0..n {
                for j in 0..n {
                    let dy = (i / w + w - 1) - j / w;
                    let dx = (i % w + w - 1) - j % w;
                    rel.push(table[(dy * (2 * w - 1) + dx) * heads + h]);
                }
            }
        }
        if g.shift == 0 {
            return (rel, 1);
        }
        let mask = g.mask();
        let mut bias = Vec::with_capacity(g.windows() * rel.len());
        for m in mask.chunks(n * n) {
            for r in rel.chunks(n * n) {
                bias.extend(r.iter().zip(m).map(|(a, b)| a + b));
            }
        }
        (bias, g.windows())
    }

    /// `rows` (the map positions of one image) for every batch element.
    fn batched(rows: &[usize], batch: usize) -> Vec<usize> {
        let per = rows.len();
        (0..batch).flat_map(|b| rows.iter().map(move |&r| b * per + r)).collect()
    }

    /// Runs the block over `x` (`[batch, side², dim]`), in place.
    pub fn forward(&self, dev: &Device, x: &mut Array) -> Result<(), ModelError> {
        let (batch, dim) = (x.shape()[0], x.cols());
        let (windows, n) = (batch * self.geometry.windows(), self.geometry.tokens());
        let h = self.before.forward(dev, x)?;
        let h = dev.gather_rows(&h, &Self::batched(&self.order, batch))?.reshape([windows, n, dim])?;
        let qkv = dev.linear(&h, &self.qkv)?;
        let view =
            |part: usize| Heads { array: &qkv, col: part * dim, heads: self.heads, head_dim: dim / self.heads, len: n };
        let a = dev.attention_biased((view(0), view(1), view(2)), &self.bias, self.groups)?;
        let a = dev.gather_rows(&a, &Self::batched(&self.inverse, batch))?;
        dev.linear_add(&a, &self.out, x)?;
        let h = self.after.forward(dev, x)?;
        self.mlp.forward_add_with(dev, &h, x, [Site::Fc1(0), Site::Fc2(0)], &mut Inference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_a_permutation_and_the_mask_matches_transformers_regions() {
        let g = Geometry::new(8, 4, true);
        assert_eq!(g, Geometry { side: 8, window: 4, shift: 2 });
        let mut seen = g.order();
        seen.sort_unstable();
        assert_eq!(seen, (0..64).collect::<Vec<_>>());
        // The first window of the rolled map is one region; the last has four.
        let mask = g.mask();
        assert!(mask[..256].iter().all(|&m| m == 0.0));
        assert_eq!(mask[3 * 256..].iter().filter(|&&m| m == 0.0).count(), 4 * 16);
        assert_eq!(Geometry::new(4, 4, true), Geometry { side: 4, window: 4, shift: 0 });
        assert_eq!(Geometry::new(2, 4, false), Geometry { side: 2, window: 2, shift: 0 });
    }
}
