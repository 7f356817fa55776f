//! ggml tensor types, quantised matrices and the quantised CPU matrix product.
//!
//! Block layouts follow ggml's `ggml-common.h` (block_q8_0, block_q4_0, block_q4_1, block_q4_K,
//! block_q6_K) as documented by the python `gguf` package (`gguf/quants.py`); the kernels are our own.
//! Module layout: [`dequant`] is the reference path, [`acts`] quantises activations to 8-bit blocks,
//! [`scalar`] defines the exact arithmetic of the quantised dot products, [`x86`] (k-quants) and
//! [`x86_packed`] (32-element blocks, over the interleaved rows of [`packed`]) implement the same
//! arithmetic with AVX2 / AVX-512 VNNI, [`x86_lanes`] too for batches (activation rows in the
//! lanes of 512-bit registers), and [`linear`](mod@linear) runs it in parallel over output rows.

pub mod acts;
pub mod dequant;
pub mod linear;
pub mod packed;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86;
#[cfg(target_arch = "x86_64")]
pub mod x86_lanes;
#[cfg(target_arch = "x86_64")]
pub mod x86_packed;

use std::ops::Range;
use std::sync::{Arc, OnceLock};

pub use acts::QActs;
pub use linear::{Kernel, linear, linear_q, linear_vec, linear_with};

/// Errors of the quantised kernels (shapes, unsupported types, byte counts).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum QuantError {
    #[error("ggml type {id} ({name}) is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)")]
    UnsupportedType { id: u32, name: &'static str },
    #[error("{ty:?}: row length {cols} is not a multiple of the block length {block}")]
    RaggedRow { ty: GgmlType, cols: usize, block: usize },
    #[error("{ty:?} matrix {rows}x{cols}: expected {expected} bytes of data, got {got}")]
    DataLength { ty: GgmlType, rows: usize, cols: usize, expected: usize, got: usize },
    #[error("shape {rows}x{cols} of {ty:?} overflows the address space")]
    Overflow { ty: GgmlType, rows: usize, cols: usize },
    #[error("linear: {what}: expected {expected} values, got {got}")]
    Shape { what: &'static str, expected: usize, got: usize },
}

/// The ggml tensor types this crate reads and multiplies.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q4_K,
    Q6_K,
}

/// Elements per super-block of the k-quants.
pub const QK_K: usize = 256;
/// Elements per block of the 32-element formats (and of the activation blocks).
pub const QK: usize = 32;

impl GgmlType {
    /// All supported types.
    pub const ALL: [GgmlType; 8] =
        [Self::F32, Self::F16, Self::BF16, Self::Q8_0, Self::Q4_0, Self::Q4_1, Self::Q4_K, Self::Q6_K];

    /// The type for ggml's numeric id (`enum ggml_type`), or a typed error naming the unsupported type.
    pub fn from_id(id: u32) -> Result<Self, QuantError> {
        Ok(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            12 => Self::Q4_K,
            14 => Self::Q6_K,
            30 => Self::BF16,
            _ => return Err(QuantError::UnsupportedType { id, name: ggml_type_name(id) }),
        })
    }

    /// ggml's numeric id.
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q8_0 => 8,
            Self::Q4_K => 12,
            Self::Q6_K => 14,
            Self::BF16 => 30,
        }
    }

    /// Elements per block.
    pub fn block_len(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::BF16 => 1,
            Self::Q8_0 | Self::Q4_0 | Self::Q4_1 => QK,
            Self::Q4_K | Self::Q6_K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
            Self::Q8_0 => 34,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q4_K => 144,
            Self::Q6_K => 210,
        }
    }

    /// True for the unquantised float types.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F16 | Self::BF16)
    }

    /// Bytes of a row of `cols` elements; errors when `cols` is not a whole number of blocks.
    pub fn row_bytes(self, cols: usize) -> Result<usize, QuantError> {
        let block = self.block_len();
        if !cols.is_multiple_of(block) {
            return Err(QuantError::RaggedRow { ty: self, cols, block });
        }
        Ok(cols / block * self.block_bytes())
    }

    /// Bytes of a `rows x cols` matrix (checked).
    pub fn matrix_bytes(self, rows: usize, cols: usize) -> Result<usize, QuantError> {
        self.row_bytes(cols)?.checked_mul(rows).ok_or(QuantError::Overflow { ty: self, rows, cols })
    }
}

/// Names of ggml type ids, for error messages about types we do not support.
pub fn ggml_type_name(id: u32) -> &'static str {
    const NAMES: [&str; 40] = [
        "F32",
        "F16",
        "Q4_0",
        "Q4_1",
        "Q4_2(removed)",
        "Q4_3(removed)",
        "Q5_0",
        "Q5_1",
        "Q8_0",
        "Q8_1",
        "Q2_K",
        "Q3_K",
        "Q4_K",
        "Q5_K",
        "Q6_K",
        "Q8_K",
        "IQ2_XXS",
        "IQ2_XS",
        "IQ3_XXS",
        "IQ1_S",
        "IQ4_NL",
        "IQ3_S",
        "IQ2_S",
        "IQ4_XS",
        "I8",
        "I16",
        "I32",
        "I64",
        "F64",
        "IQ1_M",
        "BF16",
        "Q4_0_4_4(removed)",
        "Q4_0_4_8(removed)",
        "Q4_0_8_8(removed)",
        "TQ1_0",
        "TQ2_0",
        "IQ4_NL_4_4(removed)",
        "IQ4_NL_4_8(removed)",
        "IQ4_NL_8_8(removed)",
        "MXFP4",
    ];
    NAMES.get(id as usize).copied().unwrap_or("unknown")
}

/// Bytes of a matrix: borrowed from a shared memory map, or owned.
#[derive(Clone)]
pub enum QData {
    /// A byte range of a memory-mapped file, kept alive by the `Arc`.
    Mapped(Arc<memmap2::Mmap>, Range<usize>),
    /// Bytes owned by the matrix (for example a row-permuted copy).
    Owned(Arc<[u8]>),
}

impl QData {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            // The range was checked against the map's length when the QData was built (see QMatrix::new).
            QData::Mapped(map, range) => map.get(range.clone()).unwrap_or(&[]),
            QData::Owned(bytes) => bytes,
        }
    }
}

impl std::fmt::Debug for QData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QData::Mapped(_, r) => write!(f, "Mapped({r:?})"),
            QData::Owned(b) => write!(f, "Owned({} bytes)", b.len()),
        }
    }
}

/// A weight matrix in ggml layout: `rows` (outputs) rows of `cols` (inputs) elements, blocks along the row.
#[derive(Clone, Debug)]
pub struct QMatrix {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    data: QData,
    /// The interleaved copy the SIMD kernels read, made on first use (shared by clones).
    packed: Arc<OnceLock<Option<packed::Packed>>>,
}

impl QMatrix {
    /// Builds a matrix, checking that `data` holds exactly `rows x cols` elements of `ty`.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, data: QData) -> Result<Self, QuantError> {
        let expected = ty.matrix_bytes(rows, cols)?;
        let got = match &data {
            QData::Mapped(map, r) if r.start <= r.end && r.end <= map.len() => r.len(),
            QData::Mapped(..) => usize::MAX,
            QData::Owned(b) => b.len(),
        };
        if got != expected {
            return Err(QuantError::DataLength { ty, rows, cols, expected, got });
        }
        Ok(Self { ty, rows, cols, data, packed: Arc::default() })
    }

    /// Builds a matrix that owns `bytes`.
    pub fn from_bytes(ty: GgmlType, rows: usize, cols: usize, bytes: Vec<u8>) -> Result<Self, QuantError> {
        Self::new(ty, rows, cols, QData::Owned(bytes.into()))
    }

    pub fn ty(&self) -> GgmlType {
        self.ty
    }
    /// Output features.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Input features.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// The raw bytes, `rows * row_bytes()` long.
    pub fn bytes(&self) -> &[u8] {
        self.data.bytes()
    }
    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.bytes().len().checked_div(self.rows).unwrap_or(0)
    }
    /// The bytes of row `i` (empty when out of range).
    pub fn row(&self, i: usize) -> &[u8] {
        let rb = self.row_bytes();
        self.bytes().get(i * rb..(i + 1) * rb).unwrap_or(&[])
    }

    /// The rows interleaved for the SIMD kernels (Q8_0, Q4_0, Q4_1; `None` for other types),
    /// packed on the first call.
    pub fn packed(&self) -> Option<&packed::Packed> {
        self.packed.get_or_init(|| packed::Packed::pack(self)).as_ref()
    }

    /// The matrix as f32, row-major `[rows, cols]` (the reference path).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.rows * self.cols];
        if self.cols > 0 {
            for (i, dst) in out.chunks_exact_mut(self.cols).enumerate() {
                dequant::dequantize_row(self.ty, self.row(i), dst);
            }
        }
        out
    }

    /// The matrix with its rows reordered: row `i` of the result is row `perm[i]` of `self`.
    /// Quantisation blocks run along a row, so this moves whole row byte-runs and is exact.
    pub fn permute_rows(&self, perm: &[usize]) -> Result<QMatrix, QuantError> {
        if perm.len() != self.rows {
            return Err(QuantError::Shape { what: "row permutation", expected: self.rows, got: perm.len() });
        }
        let rb = self.row_bytes();
        let mut bytes = Vec::with_capacity(self.bytes().len());
        for &src in perm {
            if src >= self.rows {
                return Err(QuantError::Shape { what: "row permutation index", expected: self.rows, got: src });
            }
            bytes.extend_from_slice(self.row(src));
        }
        debug_assert_eq!(bytes.len(), rb * self.rows);
        QMatrix::from_bytes(self.ty, self.rows, self.cols, bytes)
    }
}
