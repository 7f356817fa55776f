//! Image resampling identical to Pillow's `Image.resize` for 8-bit images (its
//! `libImaging/Resample.c`: separable convolution, horizontal pass first, filter support
//! scaled when downsampling, fixed-point coefficients with 22 fractional bits, results
//! rounded and clamped to 8 bits after each pass). Transformers' image processors resize
//! through Pillow, so bit-exact agreement here is what makes preprocessing match theirs; the
//! `image` crate's filters differ in rounding and support.

/// Pillow's resampling filters, by the numbers transformers stores in `resample`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `2`: bilinear (triangle), support 1.
    Bilinear,
    /// `3`: bicubic with a = −0.5, support 2.
    Bicubic,
    /// `1`: Lanczos with a = 3.
    Lanczos,
}

impl Filter {
    /// Maps a PIL resample code.
    pub fn from_pil(code: u64) -> Option<Filter> {
        match code {
            1 => Some(Filter::Lanczos),
            2 => Some(Filter::Bilinear),
            3 => Some(Filter::Bicubic),
            _ => None,
        }
    }

    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bilinear => (1.0 - x).max(0.0),
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                let sinc = |t: f64| {
                    if t == 0.0 {
                        1.0
                    } else {
                        let p = t * std::f64::consts::PI;
                        p.sin() / p
                    }
                };
                if x < 3.0 { sinc(x) * sinc(x / 3.0) } else { 0.0 }
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output index: first input index, and fixed-point weights of the inputs used.
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    weights: Vec<Vec<i32>>,
}

fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // Pillow truncates `center ± support + 0.5` with a C cast.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let count = xmax.saturating_sub(xmin);
        let raw: Vec<f64> =
            (0..count).map(|x| filter.weight((x as f64 + xmin as f64 - center + 0.5) / filter_scale)).collect();
        let total: f64 = raw.iter().sum();
        let fixed = raw
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                let v = w * f64::from(1u32 << PRECISION_BITS);
                if v < 0.0 { (v - 0.5) as i32 } else { (v + 0.5) as i32 }
            })
            .collect();
        bounds.push((xmin, count));
        weights.push(fixed);
    }
    Coefficients { bounds, weights }
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes interleaved 8-bit pixels (`channels` per pixel) from `w×h` to `ow×oh`.
pub fn resize(src: &[u8], w: usize, h: usize, channels: usize, ow: usize, oh: usize, filter: Filter) -> Vec<u8> {
    let horizontal = ow != w;
    let vertical = oh != h;
    let cx = coefficients(w, ow, filter);
    let cy = coefficients(h, oh, filter);
    // Pillow runs the horizontal pass only over the rows the vertical pass will read.
    let (first, last) = if vertical {
        let (f, _) = cy.bounds[0];
        let (l, n) = cy.bounds[oh - 1];
        (f, l + n)
    } else {
        (0, h)
    };
    let (tmp, tw, row0) = if horizontal {
        let rows = last - first;
        let mut tmp = vec![0u8; ow * rows * channels];
        for y in 0..rows {
            let src_row = &src[(y + first) * w * channels..(y + first + 1) * w * channels];
            for (xx, ((xmin, count), k)) in cx.bounds.iter().zip(&cx.weights).enumerate() {
                for c in 0..channels {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (x, &kw) in k.iter().enumerate().take(*count) {
                        acc += i64::from(src_row[(x + xmin) * channels + c]) * i64::from(kw);
                    }
                    tmp[(y * ow + xx) * channels + c] = clip8(acc);
                }
            }
        }
        (tmp, ow, first)
    } else {
        (src.to_vec(), w, 0)
    };
    if !vertical {
        return tmp;
    }
    let mut out = vec![0u8; tw * oh * channels];
    for (yy, ((ymin, count), k)) in cy.bounds.iter().zip(&cy.weights).enumerate() {
        for x in 0..tw {
            for c in 0..channels {
                let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                for (y, &kw) in k.iter().enumerate().take(*count) {
                    acc += i64::from(tmp[((y + ymin - row0) * tw + x) * channels + c]) * i64::from(kw);
                }
                out[(yy * tw + x) * channels + c] = clip8(acc);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_size_is_a_copy() {
        let src: Vec<u8> = (0..48).map(|i| i as u8 * 5).collect();
        assert_eq!(resize(&src, 4, 4, 3, 4, 4, Filter::Bicubic), src);
    }

    #[test]
    fn constant_images_stay_constant() {
        let src = vec![77u8; 28 * 28];
        for f in [Filter::Bilinear, Filter::Bicubic, Filter::Lanczos] {
            assert!(resize(&src, 28, 28, 1, 32, 32, f).iter().all(|&v| v == 77));
            assert!(resize(&src, 28, 28, 1, 9, 13, f).iter().all(|&v| v == 77));
        }
    }
}
