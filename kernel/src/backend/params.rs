//! Parameters on a device, uploaded once when a model loads: [`Matrix`] (a `[out, in]`
//! weight: f32 or packed bf16 on the CPU, the device's precision on the GPU), [`Vector`]
//! (biases, norm parameters, embeddings added to activations), and [`Linear`], a layer with an
//! optional unmerged LoRA delta (PEFT's `lora_A`/`lora_B` with `alpha / r`).

use super::cpu::PackedBf16;
use super::cpu::quant::QMatrix;
use super::cuda::{DType, GpuBuf};
use super::error::ensure;
use super::{ComputeError, Device, Kind, Precision};
use crate::tensor::Tensor;

/// A `[rows, cols]` weight on a device.
#[derive(Debug)]
pub struct Matrix {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) data: MatrixData,
}

/// How a matrix is stored.
#[derive(Debug)]
pub(crate) enum MatrixData {
    /// f32 on the host.
    F32(Tensor),
    /// Packed for the CPU's bf16 products.
    Bf16(PackedBf16),
    /// GGML-quantised blocks on the host, multiplied without dequantising (`cpu/quant`).
    Quant(QMatrix),
    /// On the GPU, in its dtype.
    Gpu(GpuBuf),
}

impl Matrix {
    /// `weight` (`[rows, cols]`) on `device`, in the form its products use.
    pub fn new(device: &Device, weight: Tensor) -> Result<Matrix, ComputeError> {
        let (rows, cols) = dims(&weight)?;
        let data = match (&device.kind, device.precision) {
            (Kind::Cpu, Precision::Bf16) => MatrixData::Bf16(PackedBf16::pack(&weight)),
            (Kind::Cpu, _) => MatrixData::F32(weight),
            (Kind::Cuda(g), p) => MatrixData::Gpu(GpuBuf::from_host(g, DType::from(p), weight.data())?),
        };
        Ok(Matrix { rows, cols, data })
    }

    /// `weight` kept in f32 on the host even in bf16 (a lookup table, or a small matrix a
    /// model reads element-wise).
    pub fn table(device: &Device, weight: Tensor) -> Result<Matrix, ComputeError> {
        let (rows, cols) = dims(&weight)?;
        let data = match &device.kind {
            Kind::Cpu => MatrixData::F32(weight),
            Kind::Cuda(g) => MatrixData::Gpu(GpuBuf::from_host(g, DType::from(device.precision), weight.data())?),
        };
        Ok(Matrix { rows, cols, data })
    }

    /// A GGML-quantised weight: kept quantised on the CPU (its products quantise the
    /// activations to 8 bits, as llama.cpp does); dequantised and uploaded on the GPU.
    pub fn quantized(device: &Device, weight: QMatrix) -> Result<Matrix, ComputeError> {
        let (rows, cols) = (weight.rows(), weight.cols());
        match &device.kind {
            Kind::Cpu => Ok(Matrix { rows, cols, data: MatrixData::Quant(weight) }),
            Kind::Cuda(_) => Matrix::new(device, Tensor::new([rows, cols], weight.dequantize())),
        }
    }

    /// Rows (a linear layer's outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (a linear layer's inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Whether the matrix is kept in a GGML block-quantised type (not F32, F16 or BF16).
    pub fn is_quantized(&self) -> bool {
        matches!(&self.data, MatrixData::Quant(q) if !q.ty().is_float())
    }
}

fn dims(t: &Tensor) -> Result<(usize, usize), ComputeError> {
    match t.shape() {
        &[r, c] => Ok((r, c)),
        s => Err(ComputeError::Shape(format!("a weight matrix must be 2-D, got {s:?}"))),
    }
}

/// A vector of parameters on a device.
#[derive(Debug)]
pub struct Vector {
    pub(crate) host: Vec<f32>,
    pub(crate) gpu: Option<GpuBuf>,
}

impl Vector {
    /// Values kept in f32 on every device (norm scales and shifts).
    pub fn f32(device: &Device, values: Vec<f32>) -> Result<Vector, ComputeError> {
        let gpu = match &device.kind {
            Kind::Cuda(g) => Some(GpuBuf::from_host(g, DType::F32, &values)?),
            Kind::Cpu => None,
        };
        Ok(Vector { host: values, gpu })
    }

    /// Values stored like activations (in the GPU's precision): biases, class and position
    /// embeddings.
    pub fn activation(device: &Device, values: Vec<f32>) -> Result<Vector, ComputeError> {
        let gpu = match &device.kind {
            Kind::Cuda(g) => Some(GpuBuf::from_host(g, DType::from(device.precision), &values)?),
            Kind::Cpu => None,
        };
        Ok(Vector { host: values, gpu })
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.host.len()
    }

    /// Whether the vector is empty.
    pub fn is_empty(&self) -> bool {
        self.host.is_empty()
    }

    /// The values (host copy).
    pub fn values(&self) -> &[f32] {
        &self.host
    }
}

/// An unmerged low-rank update `scale · B · A` of a linear layer (`A` `[r, in]`, `B` `[out, r]`).
#[derive(Debug)]
pub struct LoraDelta {
    pub(crate) a: Matrix,
    pub(crate) b: Matrix,
    pub(crate) scale: f32,
}

impl LoraDelta {
    /// `scale · b · a` with `a` `[r, in]` and `b` `[out, r]` (PEFT: `scale = alpha / r`).
    pub fn new(device: &Device, a: Tensor, b: Tensor, scale: f32) -> Result<LoraDelta, ComputeError> {
        let (a, b) = (Matrix::table(device, a)?, Matrix::table(device, b)?);
        ensure!(a.rows == b.cols, "LoRA: A has rank {} but B has {}", a.rows, b.cols);
        Ok(LoraDelta { a, b, scale })
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.a.rows
    }
}

/// `y = x · Wᵀ + b (+ scale · (x · Aᵀ) · Bᵀ)`, PyTorch's `Linear` with an optional LoRA delta.
#[derive(Debug)]
pub struct Linear {
    pub(crate) weight: Matrix,
    pub(crate) bias: Option<Vector>,
    pub(crate) lora: Option<LoraDelta>,
}

impl Linear {
    /// A layer from a `[out, in]` weight and an optional bias of `out` values.
    pub fn new(device: &Device, weight: Tensor, bias: Option<Vec<f32>>) -> Result<Linear, ComputeError> {
        let weight = Matrix::new(device, weight)?;
        Self::from_matrix(device, weight, bias)
    }

    /// A layer over an already prepared weight.
    pub fn from_matrix(device: &Device, weight: Matrix, bias: Option<Vec<f32>>) -> Result<Linear, ComputeError> {
        if let Some(b) = &bias {
            ensure!(b.len() == weight.rows, "bias of {} values for {} outputs", b.len(), weight.rows);
        }
        let bias = bias.map(|b| Vector::activation(device, b)).transpose()?;
        Ok(Linear { weight, bias, lora: None })
    }

    /// Adds an unmerged LoRA delta.
    pub fn with_lora(mut self, lora: LoraDelta) -> Result<Linear, ComputeError> {
        ensure!(
            lora.a.cols == self.weight.cols && lora.b.rows == self.weight.rows,
            "LoRA of {}x{} on a {}x{} layer",
            lora.b.rows,
            lora.a.cols,
            self.weight.rows,
            self.weight.cols
        );
        self.lora = Some(lora);
        Ok(self)
    }

    /// Sets (or clears) the unmerged LoRA delta in place.
    pub fn set_lora(&mut self, lora: Option<LoraDelta>) -> Result<(), ComputeError> {
        if let Some(l) = &lora {
            ensure!(
                l.a.cols == self.weight.cols && l.b.rows == self.weight.rows,
                "LoRA of {}x{} on a {}x{} layer",
                l.b.rows,
                l.a.cols,
                self.weight.rows,
                self.weight.cols
            );
        }
        self.lora = lora;
        Ok(())
    }

    /// Whether an unmerged LoRA delta is attached.
    pub fn has_lora(&self) -> bool {
        self.lora.is_some()
    }

    /// `W += delta` (`[out, in]`): a LoRA update merged into the weight. Needs f32 weights on
    /// the CPU, or the GPU's (read back, updated in f32, stored again in their precision); bf16
    /// weights packed for the CPU are refused (rounded already, a merge would round twice).
    pub fn merge(&mut self, device: &Device, delta: &Tensor) -> Result<(), ComputeError> {
        let (rows, cols) = (self.weight.rows, self.weight.cols);
        ensure!(delta.shape() == [rows, cols], "merge: a {:?} update on a {rows}x{cols} weight", delta.shape());
        match (&mut self.weight.data, &device.kind) {
            (MatrixData::F32(t), _) => {
                t.data_mut().iter_mut().zip(delta.data()).for_each(|(w, d)| *w += d);
                Ok(())
            }
            (MatrixData::Gpu(buf), Kind::Cuda(g)) => {
                let mut host = buf.to_host(g)?;
                host.iter_mut().zip(delta.data()).for_each(|(w, d)| *w += d);
                *buf = GpuBuf::from_host(g, buf.dtype(), &host)?;
                Ok(())
            }
            _ => Err(ComputeError::Unsupported(
                "merging a LoRA needs f32 weights on the CPU or a GPU; leave the adapter unmerged".into(),
            )),
        }
    }

    /// Whether the weight is block-quantised ([`Matrix::is_quantized`]).
    pub fn is_quantized(&self) -> bool {
        self.weight.is_quantized()
    }

    /// Inputs.
    pub fn inputs(&self) -> usize {
        self.weight.cols
    }

    /// Outputs.
    pub fn outputs(&self) -> usize {
        self.weight.rows
    }
}
