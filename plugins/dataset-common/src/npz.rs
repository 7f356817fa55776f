//! One array of an `.npz` file (a zip of NumPy `.npy` files, as `numpy.savez` and
//! `numpy.savez_compressed` write them; the format of NumPy's `lib/format.py`), read with the
//! `zip` and `npyz` crates as the `medmnist` plugin reads its files, and turned into the 8-bit
//! picture the host receives. Built with the feature `npz`.

use crate::{Error, ErrorKind, Image, Pixels, corrupt, error, fs};

/// An array's shape and values.
#[derive(Debug)]
pub struct Array {
    /// The dimensions, outermost first (C order).
    pub shape: Vec<u64>,
    /// The values, in C order.
    pub values: Values,
}

/// An array's values: bytes as stored, any other number type widened to `f64`.
#[derive(Debug)]
pub enum Values {
    /// `uint8` values.
    U8(Vec<u8>),
    /// `float16/32/64` or integer values.
    F64(Vec<f64>),
}

/// Reads the array `key` of the `.npz` file `file` (relative to the data folder).
pub fn read(file: &str, key: &str) -> Result<Array, Error> {
    // Opened, not read whole: only the wanted member is read (GF3300's files also hold a
    // 200×200×200 OCT volume).
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(fs::open(file)?))
        .map_err(|e| corrupt(format!("`{file}` is not a readable .npz (zip) file: {e}")))?;
    let entry = format!("{key}.npy");
    let names: Vec<String> =
        zip.file_names().flatten().filter_map(|n| n.strip_suffix(".npy").map(str::to_owned)).collect();
    let mut reader = match zip.by_name(&entry) {
        Ok(reader) => reader,
        Err(zip::result::ZipError::FileNotFound) => {
            let message = format!("`{file}` has no array `{key}` (it holds: {})", names.join(", "));
            return Err(error(ErrorKind::NotFound, message));
        }
        Err(e) => return Err(corrupt(format!("`{file}`: cannot read `{entry}`: {e}"))),
    };
    let bad = |what: String| corrupt(format!("`{file}`, array `{key}`: {what}"));
    let npy = npyz::NpyFile::new(&mut reader).map_err(|e| bad(format!("not a valid .npy array: {e}")))?;
    let shape = npy.shape().to_vec();
    if npy.order() == npyz::Order::Fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(bad("is stored in Fortran order; save it in C order".into()));
    }
    let descr = npy.dtype().descr();
    let npyz::DType::Plain(ty) = npy.dtype() else { return Err(bad(format!("has the record type {descr}"))) };
    let values = match (ty.type_char(), ty.size_field()) {
        (npyz::TypeChar::Uint, 1) => Values::U8(npy.into_vec::<u8>().map_err(|e| bad(e.to_string()))?),
        (npyz::TypeChar::Float, 4) => Values::F64(widen(npy.into_vec::<f32>(), &bad)?),
        (npyz::TypeChar::Float, 8) => Values::F64(npy.into_vec::<f64>().map_err(|e| bad(e.to_string()))?),
        (npyz::TypeChar::Int, 2) => Values::F64(widen(npy.into_vec::<i16>(), &bad)?),
        (npyz::TypeChar::Uint, 2) => Values::F64(widen(npy.into_vec::<u16>(), &bad)?),
        (npyz::TypeChar::Int, 4) => Values::F64(widen(npy.into_vec::<i32>(), &bad)?),
        _ => return Err(bad(format!("has the type {descr}; expected uint8, int16/32, uint16 or float32/64"))),
    };
    // The zip reader checks the member's CRC-32 at its end: read to it, so that a damaged file
    // is an error rather than a changed pixel.
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| bad(format!("fails its checksum: {e}")))?;
    let len = match &values {
        Values::U8(v) => v.len(),
        Values::F64(v) => v.len(),
    };
    if len as u64 != shape.iter().product::<u64>() {
        return Err(bad(format!("holds {len} values for the shape {shape:?}")));
    }
    Ok(Array { shape, values })
}

fn widen<T: Into<f64>>(values: std::io::Result<Vec<T>>, bad: &impl Fn(String) -> Error) -> Result<Vec<f64>, Error> {
    Ok(values.map_err(|e| bad(e.to_string()))?.into_iter().map(Into::into).collect())
}

impl Array {
    /// The array as a picture: `H×W` is grey, `H×W×C` with C in 1, 3, 4 has C channels. Bytes
    /// are kept; other values go through `scale` and are cut to 0 to 255 after truncation
    /// toward zero (NumPy's `astype(uint8)` for values in range).
    pub fn picture(self, file: &str, key: &str, scale: impl Fn(f64) -> f64) -> Result<Image, Error> {
        let (height, width, channels) = match self.shape[..] {
            [h, w] => (h, w, 1),
            [h, w, c] if matches!(c, 1 | 3 | 4) => (h, w, c),
            _ => {
                return Err(corrupt(format!(
                    "`{file}`, array `{key}`: the shape {:?} is no picture (H×W or H×W×C, C in 1, 3, 4)",
                    self.shape
                )));
            }
        };
        let too_big = || corrupt(format!("`{file}`, array `{key}`: the shape {:?} is too large", self.shape));
        let (width, height) =
            (u32::try_from(width).map_err(|_| too_big())?, u32::try_from(height).map_err(|_| too_big())?);
        if width == 0 || height == 0 {
            return Err(corrupt(format!("`{file}`, array `{key}`: the picture is empty ({:?})", self.shape)));
        }
        let data = match self.values {
            Values::U8(bytes) => bytes,
            // `as` saturates at 0 and 255 and makes NaN 0.
            Values::F64(values) => values.into_iter().map(|v| scale(v) as u8).collect(),
        };
        Ok(Image::Raw(Pixels { width, height, channels: channels as u8, data }))
    }
}
