//! Image preprocessing exactly as a checkpoint's `preprocessor_config.json` says, following
//! transformers' `CLIPImageProcessor` (resize the shortest edge, centre crop) and
//! `SiglipImageProcessor` (resize to a fixed size): convert to RGB, resize with Pillow's
//! filters (`resize.rs`), crop, rescale, normalise, channels first. open_clip checkpoints give
//! the same steps in their `preprocess_cfg` (torchvision's `Resize`, `CenterCrop`, `ToTensor`,
//! `Normalize`; see [`Preprocessor::open_clip`]), and MedCLIP's own processor ([`Preprocessor::medclip`]).

use std::path::Path;

use serde_json::Value;

use super::ModelError;
use super::resize::{Filter, resize};
use crate::data::Pixels;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Resize {
    /// Scale so that the shorter side is this long (aspect kept, longer side truncated).
    ShortestEdge(usize),
    /// Scale to exactly `height × width`.
    Exact(usize, usize),
    /// Leave the size as it is.
    Keep,
}

/// The preprocessing of one checkpoint.
#[derive(Debug, Clone)]
pub struct Preprocessor {
    resize: Resize,
    filter: Filter,
    crop: Option<(usize, usize)>,
    rescale: Option<f64>,
    normalize: Option<([f32; 3], [f32; 3])>,
    /// torchvision's `CenterCrop` offsets (`round((h - ch) / 2)`, half to even) instead of
    /// transformers' (`(h - ch) // 2`).
    round_crop: bool,
    /// MedCLIP's `pad_img` first: the image in grey (Pillow's `L`), centred on a black square of
    /// side `max(this, width, height)`.
    square: Option<usize>,
}

fn get<'a>(json: &'a Value, key: &str) -> Option<&'a Value> {
    json.get(key).filter(|v| !v.is_null())
}

fn size_of(v: &Value) -> Option<(usize, usize)> {
    if let Some(s) = v.as_u64() {
        return Some((s as usize, s as usize));
    }
    let h = v.get("height")?.as_u64()? as usize;
    let w = v.get("width")?.as_u64()? as usize;
    Some((h, w))
}

impl Preprocessor {
    /// Reads `dir/preprocessor_config.json`.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("preprocessor_config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::Format { path: path.clone(), message: format!("invalid JSON: {e}") })?;
        Self::from_json(&json, &path)
    }

    fn from_json(json: &Value, path: &Path) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::Unsupported { path: path.to_owned(), message };
        let flag = |key: &str| get(json, key).and_then(Value::as_bool).unwrap_or(true);
        let resize = if !flag("do_resize") {
            Resize::Keep
        } else {
            let size = get(json, "size").ok_or_else(|| bad("`do_resize` without a `size`".into()))?;
            if let Some(edge) = size.get("shortest_edge").and_then(Value::as_u64) {
                Resize::ShortestEdge(edge as usize)
            } else if let Some((h, w)) = size_of(size).filter(|_| size.is_object()) {
                Resize::Exact(h, w)
            } else if let Some(edge) = size.as_u64() {
                // Older CLIP configs: an integer size means the shortest edge.
                Resize::ShortestEdge(edge as usize)
            } else {
                return Err(bad(format!("unsupported `size` {size}")));
            }
        };
        let code = get(json, "resample").and_then(Value::as_u64).unwrap_or(3);
        let filter = Filter::from_pil(code).ok_or_else(|| bad(format!("resample filter {code} is not implemented")))?;
        let crop = if get(json, "do_center_crop").and_then(Value::as_bool).unwrap_or(false) {
            Some(
                get(json, "crop_size")
                    .and_then(size_of)
                    .ok_or_else(|| bad("`do_center_crop` without a `crop_size`".into()))?,
            )
        } else {
            None
        };
        let rescale =
            flag("do_rescale").then(|| get(json, "rescale_factor").and_then(Value::as_f64).unwrap_or(1.0 / 255.0));
        let triple = |key: &str| -> Result<[f32; 3], ModelError> {
            let v = get(json, key).and_then(Value::as_array).ok_or_else(|| bad(format!("`{key}` missing")))?;
            let vals: Vec<f32> = v.iter().filter_map(Value::as_f64).map(|x| x as f32).collect();
            match vals[..] {
                [a, b, c] => Ok([a, b, c]),
                [a] => Ok([a, a, a]),
                _ => Err(bad(format!("`{key}` needs 3 numbers"))),
            }
        };
        let normalize = if flag("do_normalize") { Some((triple("image_mean")?, triple("image_std")?)) } else { None };
        if let Some((mean, std)) = normalize
            && (mean.iter().any(|m| !m.is_finite()) || std.iter().any(|s| !(s.is_finite() && *s > 0.0)))
        {
            return Err(bad(format!("`image_mean` {mean:?} / `image_std` {std:?}: the std must be finite and > 0")));
        }
        if rescale.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return Err(bad("`rescale_factor` must be finite and > 0".into()));
        }
        Ok(Preprocessor { resize, filter, crop, rescale, normalize, round_crop: false, square: None })
    }

    /// open_clip's evaluation transform (`open_clip/transform.py`, `image_transform` with
    /// `is_train=False`) for a square `size`: `resize_mode` `shortest` (resize the shorter side,
    /// centre crop) or `squash` (resize to `size × size`), `interpolation` `bicubic` or
    /// `bilinear`, then `/255` and `(x - mean) / std`. `path` is named in errors.
    pub(crate) fn open_clip(
        size: usize,
        (resize_mode, interpolation): (&str, &str),
        mean: [f32; 3],
        std: [f32; 3],
        path: &Path,
    ) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::Unsupported { path: path.to_owned(), message };
        let filter = match interpolation {
            "bicubic" => Filter::from_pil(3),
            "bilinear" => Filter::from_pil(2),
            _ => None,
        }
        .ok_or_else(|| {
            bad(format!("preprocess_cfg.interpolation `{interpolation}` (bicubic, bilinear are implemented)"))
        })?;
        let (resize, crop) = match resize_mode {
            "shortest" => (Resize::ShortestEdge(size), Some((size, size))),
            "squash" => (Resize::Exact(size, size), None),
            other => {
                return Err(bad(format!("preprocess_cfg.resize_mode `{other}` (shortest, squash are implemented)")));
            }
        };
        if mean.iter().any(|m| !m.is_finite()) || std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(bad(format!("preprocess_cfg mean {mean:?} / std {std:?}: the std must be finite and > 0")));
        }
        let rescale = Some(1.0 / 255.0);
        Ok(Preprocessor { resize, filter, crop, rescale, normalize: Some((mean, std)), round_crop: true, square: None })
    }

    /// MedCLIP's `MedCLIPFeatureExtractor` (`medclip/dataset.py`, on transformers 4.24's
    /// `CLIPFeatureExtractor`) for a tower of `side` pixels: grey, padded to a black square of
    /// side `max(side, w, h)` (`pad_img`), resized to `side × side` with Pillow's bicubic filter
    /// (an image already that size is kept), `/255`, `(x - mean) / std` with one mean and std,
    /// the grey channel repeated three times (the model's `repeat((1,3,1,1))`).
    pub(crate) fn medclip(side: usize, mean: f32, std: f32) -> Self {
        Preprocessor {
            resize: Resize::Exact(side, side),
            filter: Filter::Bicubic,
            crop: None,
            rescale: Some(1.0 / 255.0),
            normalize: Some(([mean; 3], [std; 3])),
            round_crop: false,
            square: Some(side),
        }
    }

    /// The `(height, width)` of the output for an input of `h × w`.
    fn plan(&self, h: usize, w: usize) -> (usize, usize) {
        match self.resize {
            Resize::Keep => (h, w),
            Resize::Exact(oh, ow) => (oh, ow),
            Resize::ShortestEdge(edge) => {
                // transformers' get_resize_output_image_size(default_to_square=False).
                let (short, long) = if w <= h { (w, h) } else { (h, w) };
                let new_long = edge * long / short;
                if w <= h { (new_long, edge) } else { (edge, new_long) }
            }
        }
    }

    /// Turns an image into the model's input, `3 × H × W` floats.
    pub fn apply(&self, image: &Pixels) -> Result<Vec<f32>, ModelError> {
        let padded;
        let image = match self.square {
            Some(min) => {
                padded = pad_grey_square(image, min)?;
                &padded
            }
            None => image,
        };
        let (w, h) = (image.width as usize, image.height as usize);
        let rgb: Vec<u8> = match image.channels {
            1 => image.data.iter().flat_map(|&g| [g, g, g]).collect(),
            3 => image.data.clone(),
            4 => image.data.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
            c => return Err(ModelError::Input(format!("images with {c} channels are not supported"))),
        };
        let (rh, rw) = self.plan(h, w);
        let resized = if (rh, rw) == (h, w) { rgb } else { resize(&rgb, w, h, 3, rw, rh, self.filter) };
        let (ch, cw) = self.crop.unwrap_or((rh, rw));
        if ch > rh || cw > rw {
            return Err(ModelError::Input(format!(
                "a {h}x{w} image resized to {rh}x{rw} is smaller than the {ch}x{cw} crop"
            )));
        }
        // transformers' center_crop: top = (h - ch) // 2, left = (w - cw) // 2; torchvision
        // rounds (h - ch) / 2 half to even.
        let offset = |d: usize| if self.round_crop && d % 4 == 3 { d / 2 + 1 } else { d / 2 };
        let (top, left) = (offset(rh - ch), offset(rw - cw));
        let mut out = vec![0f32; 3 * ch * cw];
        for c in 0..3 {
            let (mean, std) = self.normalize.map_or((0.0, 1.0), |(m, s)| (m[c], s[c]));
            for y in 0..ch {
                for x in 0..cw {
                    let v = f64::from(resized[((y + top) * rw + x + left) * 3 + c]);
                    let v = self.rescale.map_or(v, |r| v * r) as f32;
                    out[(c * ch + y) * cw + x] = (v - mean) / std;
                }
            }
        }
        Ok(out)
    }

    /// The output `(height, width)` for a square input of side `side` (used to size batches).
    pub fn output_size(&self, side: usize) -> (usize, usize) {
        let (rh, rw) = self.plan(side, side);
        self.crop.unwrap_or((rh, rw))
    }
}

/// `image` in grey (Pillow's `L`: `(19595 R + 38470 G + 7471 B + 2^15) >> 16`, alpha dropped),
/// pasted at `((side - w) / 2, (side - h) / 2)` on a black square of side `max(min, w, h)`.
fn pad_grey_square(image: &Pixels, min: usize) -> Result<Pixels, ModelError> {
    let (w, h) = (image.width as usize, image.height as usize);
    let grey: Vec<u8> = match image.channels {
        1 => image.data.clone(),
        c @ (3 | 4) => image
            .data
            .chunks_exact(usize::from(c))
            .map(|p| {
                ((19595 * u32::from(p[0]) + 38470 * u32::from(p[1]) + 7471 * u32::from(p[2]) + 0x8000) >> 16) as u8
            })
            .collect(),
        c => return Err(ModelError::Input(format!("images with {c} channels are not supported"))),
    };
    let side = min.max(w).max(h);
    let (left, top) = ((side - w) / 2, (side - h) / 2);
    let mut data = vec![0u8; side * side];
    for (y, row) in grey.chunks_exact(w.max(1)).enumerate().take(h) {
        data[(top + y) * side + left..][..w].copy_from_slice(row);
    }
    let side32 = u32::try_from(side).map_err(|_| ModelError::Input(format!("a {w}x{h} image is too large")))?;
    Ok(Pixels { width: side32, height: side32, channels: 1, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_or_missing_std_is_refused() {
        let json = serde_json::json!({
            "do_resize": false, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.0, 0.5],
        });
        let err = Preprocessor::from_json(&json, Path::new("p.json")).unwrap_err().to_string();
        assert!(err.contains("p.json") && err.contains("image_std"), "{err}");
        let json = serde_json::json!({"do_resize": false, "do_rescale": true, "rescale_factor": 0.0,
                                      "do_normalize": false});
        assert!(Preprocessor::from_json(&json, Path::new("p.json")).is_err());
    }
}
