//! Swin Transformer image towers (transformers' `SwinModel`,
//! <https://github.com/huggingface/transformers/blob/main/src/transformers/models/swin/modeling_swin.py>):
//! a `p×p` patch embedding with a layer norm, stages of (shifted-)window attention blocks with
//! patch merging between them, a final layer norm and average pooling (`pooler_output`). Weights
//! by the tensor names of transformers 4.x checkpoints (`attention.self.query`, ...), as
//! `microsoft/swin-tiny-patch4-window7-224` and MedCLIP ([`crate::model::medclip`]) ship them; written once
//! on the compute layer, it runs on the CPU or the GPU.

mod block;

use serde_json::Value;

use super::config::Config;
use super::nn::{LayerNorm, linear};
use super::patch::PatchEmbedding;
use super::{ModelError, Weights};
use crate::backend::cpu::Activation;
use crate::backend::{Array, Device, Linear, Vector};
use block::{Block, BlockShape, Geometry};

/// `SwinConfig`'s fields mvb reads, with transformers' defaults (`microsoft/swin-tiny-patch4-window7-224`).
#[derive(Debug, Clone, PartialEq)]
pub struct SwinConfig {
    /// Square input side.
    pub image_size: usize,
    /// Patch side.
    pub patch_size: usize,
    /// Width of the first stage (doubled by each patch merging).
    pub embed_dim: usize,
    /// Blocks per stage.
    pub depths: Vec<usize>,
    /// Attention heads per stage.
    pub num_heads: Vec<usize>,
    /// Window side.
    pub window_size: usize,
    /// MLP activation.
    pub act: Activation,
    /// Epsilon of the block and final layer norms (the embedding and merging norms use 1e-5).
    pub eps: f32,
    /// Learned absolute position embeddings after the patch embedding.
    pub absolute_positions: bool,
    /// Biases on the query, key and value projections.
    pub qkv_bias: bool,
}

impl Default for SwinConfig {
    fn default() -> Self {
        SwinConfig {
            image_size: 224,
            patch_size: 4,
            embed_dim: 96,
            depths: vec![2, 2, 6, 2],
            num_heads: vec![3, 6, 12, 24],
            window_size: 7,
            act: Activation::Gelu,
            eps: 1e-5,
            absolute_positions: false,
            qkv_bias: true,
        }
    }
}

impl SwinConfig {
    /// Reads a `SwinConfig` from `config.json` (missing keys take the defaults).
    pub fn from_config(config: &Config) -> Result<Self, ModelError> {
        let (json, d) = (&config.json, SwinConfig::default());
        let bad = |message: String| ModelError::Format { path: config.path.clone(), message };
        let uint = |key: &str, default: usize| json.get(key).and_then(Value::as_u64).map_or(default, |v| v as usize);
        let list = |key: &str, default: &[usize]| -> Result<Vec<usize>, ModelError> {
            match json.get(key) {
                None | Some(Value::Null) => Ok(default.to_vec()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_u64().map(|v| v as usize).ok_or_else(|| bad(format!("`{key}` must hold integers"))))
                    .collect(),
                Some(_) => Err(bad(format!("`{key}` must be a list of integers"))),
            }
        };
        let act_name = json.get("hidden_act").and_then(Value::as_str).unwrap_or("gelu");
        let act = Activation::from_hf(act_name).ok_or_else(|| ModelError::Unsupported {
            path: config.path.clone(),
            message: format!("hidden_act `{act_name}` is not implemented"),
        })?;
        if uint("num_channels", 3) != 3 {
            return Err(bad("num_channels must be 3".into()));
        }
        Ok(SwinConfig {
            image_size: uint("image_size", d.image_size),
            patch_size: uint("patch_size", d.patch_size),
            embed_dim: uint("embed_dim", d.embed_dim),
            depths: list("depths", &d.depths)?,
            num_heads: list("num_heads", &d.num_heads)?,
            window_size: uint("window_size", d.window_size),
            act,
            eps: json.get("layer_norm_eps").and_then(Value::as_f64).map_or(d.eps, |v| v as f32),
            absolute_positions: json.get("use_absolute_embeddings").and_then(Value::as_bool).unwrap_or(false),
            qkv_bias: json.get("qkv_bias").and_then(Value::as_bool).unwrap_or(true),
        })
    }

    /// The width of the last stage (`num_features`).
    pub fn out_dim(&self) -> usize {
        self.embed_dim << self.depths.len().saturating_sub(1)
    }

    /// Checks what mvb supports: stage and head counts agree, widths divide into heads, and
    /// every map divides into windows and halves evenly (transformers would pad).
    fn check(&self) -> Result<(), ModelError> {
        let fail = |m: String| Err(ModelError::Input(format!("Swin configuration: {m}")));
        if self.depths.is_empty() || self.depths.len() != self.num_heads.len() {
            return fail(format!("{} depths for {} head counts", self.depths.len(), self.num_heads.len()));
        }
        if self.patch_size == 0 || !self.image_size.is_multiple_of(self.patch_size) || self.window_size == 0 {
            return fail(format!(
                "image {} in patches of {}, window {}",
                self.image_size, self.patch_size, self.window_size
            ));
        }
        let mut side = self.image_size / self.patch_size;
        for (i, &heads) in self.num_heads.iter().enumerate() {
            let dim = self.embed_dim << i;
            if heads == 0 || !dim.is_multiple_of(heads) {
                return fail(format!("stage {i}: width {dim} is not divisible by {heads} heads"));
            }
            let window = self.window_size.min(side);
            let last = i + 1 == self.depths.len();
            if !side.is_multiple_of(window) || (!last && !side.is_multiple_of(2)) {
                return fail(format!(
                    "stage {i}: a {side}x{side} map does not divide into {window}-windows and halves (padding is not supported)"
                ));
            }
            side /= 2;
        }
        Ok(())
    }
}

/// One stage: its blocks and the patch merging after it (all but the last stage).
#[derive(Debug)]
struct Stage {
    blocks: Vec<Block>,
    merge: Option<(LayerNorm, Linear)>,
    side: usize,
}

impl Stage {
    /// `x` (`[batch, side², dim]`) through the blocks, then merged to `[batch, (side/2)², 2·dim]`:
    /// each 2×2 neighbourhood's rows side by side (transformers' order: (0,0), (1,0), (0,1),
    /// (1,1) as (row, column) offsets), layer norm, a linear map 4·dim → 2·dim without bias.
    fn forward(&self, dev: &Device, mut x: Array) -> Result<Array, ModelError> {
        for block in &self.blocks {
            block.forward(dev, &mut x)?;
        }
        let Some((norm, reduction)) = &self.merge else { return Ok(x) };
        let (batch, dim, s, half) = (x.shape()[0], x.cols(), self.side, self.side / 2);
        let mut rows = Vec::with_capacity(x.rows());
        for b in 0..batch {
            for (y, xx) in (0..half).flat_map(|y| (0..half).map(move |xx| (y, xx))) {
                for (dy, dx) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    rows.push(b * s * s + (2 * y + dy) * s + 2 * xx + dx);
                }
            }
        }
        let merged = dev.gather_rows(&x, &rows)?.reshape([batch, half * half, 4 * dim])?;
        Ok(dev.linear(&norm.forward(dev, &merged)?, reduction)?)
    }
}

/// A loaded Swin image tower.
#[derive(Debug)]
pub struct Swin {
    patch: PatchEmbedding,
    embed_norm: LayerNorm,
    positions: Option<Vector>,
    stages: Vec<Stage>,
    norm: LayerNorm,
    /// The final norm with its parameters divided by the token count: the sum of its rows is
    /// the average-pooled output.
    pool_norm: LayerNorm,
    config: SwinConfig,
}

impl Swin {
    /// Loads `{prefix}.embeddings.*`, `{prefix}.encoder.layers.*` and `{prefix}.layernorm.*`
    /// (`prefix` empty for a plain `SwinModel` checkpoint).
    pub fn load(w: &Weights, dev: &Device, prefix: &str, config: &SwinConfig) -> Result<Self, ModelError> {
        config.check()?;
        let p = |name: &str| if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
        let (c, grid) = (config.embed_dim, config.image_size / config.patch_size);
        let patch = PatchEmbedding::load(
            w,
            dev,
            &p("embeddings.patch_embeddings.projection"),
            c,
            (config.patch_size, config.image_size),
            true,
        )?;
        let positions = if config.absolute_positions {
            let t = w.tensor(&p("embeddings.position_embeddings"), &[1, grid * grid, c])?;
            Some(Vector::activation(dev, t.into_data())?)
        } else {
            None
        };
        let extra = p(&format!("encoder.layers.{}.blocks.0.layernorm_before.weight", config.depths.len()));
        if w.contains(&extra) {
            return Err(ModelError::Input(format!(
                "the checkpoint holds `{extra}`, more stages than the configuration's {}",
                config.depths.len()
            )));
        }
        let stages = (0..config.depths.len())
            .map(|i| Self::load_stage(w, dev, &p(&format!("encoder.layers.{i}")), config, i))
            .collect::<Result<Vec<_>, _>>()?;
        let out = config.out_dim();
        let norm = LayerNorm::load(w, dev, &p("layernorm"), out, config.eps)?;
        let tokens = (stages.last().map_or(1, |s| s.side)).pow(2) as f32;
        let scaled = |v: &Vector| Vector::f32(dev, v.values().iter().map(|x| x / tokens).collect());
        let pool_norm = LayerNorm { gamma: scaled(&norm.gamma)?, beta: scaled(&norm.beta)?, eps: config.eps };
        Ok(Swin {
            patch,
            embed_norm: LayerNorm::load(w, dev, &p("embeddings.norm"), c, 1e-5)?,
            positions,
            stages,
            norm,
            pool_norm,
            config: config.clone(),
        })
    }

    fn load_stage(w: &Weights, dev: &Device, p: &str, config: &SwinConfig, i: usize) -> Result<Stage, ModelError> {
        let (dim, side) = (config.embed_dim << i, (config.image_size / config.patch_size) >> i);
        let shape =
            BlockShape { dim, heads: config.num_heads[i], act: config.act, eps: config.eps, qkv_bias: config.qkv_bias };
        let blocks = (0..config.depths[i])
            .map(|j| {
                Block::load(
                    w,
                    dev,
                    &format!("{p}.blocks.{j}"),
                    shape,
                    Geometry::new(side, config.window_size, j % 2 == 1),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let merge = if i + 1 < config.depths.len() {
            let norm = LayerNorm::load(w, dev, &format!("{p}.downsample.norm"), 4 * dim, 1e-5)?;
            Some((norm, linear(w, dev, &format!("{p}.downsample.reduction"), 4 * dim, 2 * dim, false)?))
        } else {
            None
        };
        Ok(Stage { blocks, merge, side })
    }

    /// The configuration.
    pub fn config(&self) -> &SwinConfig {
        &self.config
    }

    /// The pooled output's width.
    pub fn width(&self) -> usize {
        self.config.out_dim()
    }

    /// The square input side.
    pub fn image_size(&self) -> usize {
        self.config.image_size
    }

    /// The last stage's states before the final norm, `[batch, tokens, width]`.
    fn encode(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        let x = self.patch.forward(dev, pixels, batch)?;
        let mut x = self.embed_norm.forward(dev, &x)?;
        if let Some(pos) = &self.positions {
            dev.add_periodic(&mut x, pos)?;
        }
        self.stages.iter().try_fold(x, |x, stage| stage.forward(dev, x))
    }

    /// `last_hidden_state` (after the final layer norm), `[batch, tokens, width]`, of
    /// `pixels` (`[batch, 3, image, image]`).
    pub fn hidden_states(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        let x = self.encode(dev, pixels, batch)?;
        self.norm.forward(dev, &x)
    }

    /// `pooler_output`: the final states averaged over the tokens, `[batch, width]`.
    pub fn forward(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        let x = self.pool_norm.forward(dev, &self.encode(dev, pixels, batch)?)?;
        let tokens = x.shape()[1];
        let mut sum = dev.gather_rows(&x, &(0..batch).map(|b| b * tokens).collect::<Vec<_>>())?;
        for t in 1..tokens {
            dev.add(&mut sum, &dev.gather_rows(&x, &(0..batch).map(|b| b * tokens + t).collect::<Vec<_>>())?)?;
        }
        Ok(sum)
    }
}
