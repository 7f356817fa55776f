//! A minimal dense tensor: f32, row-major, contiguous, on the host. Models keep activations
//! in it; the backend (`backend::cpu`, later `backend::cuda`) computes on it.

use std::fmt;

/// A dense row-major f32 tensor.
#[derive(Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor{:?}", self.shape)
    }
}

impl Tensor {
    /// Wraps `data` as a tensor of `shape`.
    ///
    /// # Panics
    /// When `data.len()` is not the product of `shape` (a programming error, not user input).
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<f32>) -> Self {
        let shape = shape.into();
        assert_eq!(shape.iter().product::<usize>(), data.len(), "tensor data does not fill shape {shape:?}");
        Tensor { shape, data }
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Vec<usize>>) -> Self {
        let shape = shape.into();
        let n = shape.iter().product();
        Tensor { shape, data: vec![0.0; n] }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the tensor, returning its elements.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// The size of the last dimension.
    pub fn cols(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    /// The number of rows: the product of all dimensions but the last.
    pub fn rows(&self) -> usize {
        let cols = self.cols();
        self.data.len().checked_div(cols).unwrap_or(0)
    }

    /// Row `i` of the tensor viewed as `rows × cols`.
    pub fn row(&self, i: usize) -> &[f32] {
        let c = self.cols();
        &self.data[i * c..(i + 1) * c]
    }

    /// Row `i`, mutable.
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        let c = self.cols();
        &mut self.data[i * c..(i + 1) * c]
    }

    /// The same elements under another shape.
    ///
    /// # Panics
    /// When the element counts differ (a programming error).
    pub fn reshape(mut self, shape: impl Into<Vec<usize>>) -> Self {
        let shape = shape.into();
        assert_eq!(shape.iter().product::<usize>(), self.data.len(), "cannot reshape {:?} to {shape:?}", self.shape);
        self.shape = shape;
        self
    }

    /// The index of the first NaN or infinity, if any (by blocks of sixteen, which vectorise).
    pub fn first_non_finite(&self) -> Option<usize> {
        let bad = |v: &f32| !v.is_finite();
        let block = self.data.chunks(16).position(|c| c.iter().fold(false, |any, v| any | bad(v)))?;
        self.data[block * 16..].iter().position(bad).map(|i| block * 16 + i)
    }

    /// Each row scaled to unit L2 norm (rows of zeros stay zero).
    pub fn l2_normalized(&self) -> Tensor {
        let mut out = self.clone();
        let c = self.cols();
        for row in out.data.chunks_mut(c.max(1)) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Tensor;

    #[test]
    fn first_non_finite_names_the_first_bad_value() {
        for len in [1, 15, 16, 17, 100] {
            for at in 0..len {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut v = vec![1.5f32; len];
                    v[at] = bad;
                    if at + 3 < len {
                        v[at + 3] = f32::NAN;
                    }
                    assert_eq!(Tensor::new([len], v).first_non_finite(), Some(at));
                }
            }
            assert_eq!(Tensor::new([len], vec![f32::MAX; len]).first_non_finite(), None);
        }
    }
}
