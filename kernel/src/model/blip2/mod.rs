//! BLIP-2 image-text retrieval (transformers' `Blip2ForImageTextRetrieval`,
//! <https://github.com/huggingface/transformers/blob/main/src/transformers/models/blip_2/modeling_blip_2.py>;
//! Salesforce/blip2-itm-vit-g), scored as its image-text contrastive head
//! (`use_image_text_matching_head=False`), as MedVLMBench's zero-shot BLIP2 does: an EVA ViT
//! ([`vision`]), learned query tokens read through the Q-Former ([`qformer`]) into
//! `vision_projection`, the text's `[CLS]` output through `text_projection`, and the logit of an
//! image and a text is the largest cosine over the queries (no temperature). Written once on the
//! compute layer, it runs on the CPU or the GPU.
//!
//! Image features ([`Blip2::image_features`]) are one row per image: the vision tower's class
//! token after `post_layernorm` (MedVLMBench's FT-LP feature for BLIP2, `vision_model(x)[0][:, 0]`)
//! followed by every query's projected output ([`FeatureLayout`]).

mod config;
mod qformer;
mod vision;

use crate::backend::{Device, Linear};
use crate::model::nn::{TextEmbeddings, linear};
use crate::model::tokenizer::TokenBatch;
use crate::model::{Config, ModelError, Weights};
use crate::tensor::Tensor;

pub use config::{ARCHITECTURE, is_blip2};
pub use qformer::QFormer;
pub use vision::Blip2Vision;

/// How a row of [`Blip2::image_features`] is laid out: `cls` values of the vision tower's class
/// token, then `queries` blocks of `dim` (the projected query outputs, unnormalised).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureLayout {
    /// The vision tower's width.
    pub cls: usize,
    /// Query tokens.
    pub queries: usize,
    /// The shared image-text space (`image_text_hidden_size`).
    pub dim: usize,
}

impl FeatureLayout {
    /// Values per row.
    pub fn width(&self) -> usize {
        self.cls + self.queries * self.dim
    }
}

/// A loaded `Blip2ForImageTextRetrieval`.
#[derive(Debug)]
pub struct Blip2 {
    /// The image tower.
    pub vision: Blip2Vision,
    qformer: QFormer,
    /// `query_tokens`, `[queries, width]`.
    query_tokens: Vec<f32>,
    /// `embeddings.word_embeddings` and `embeddings.position_embeddings`.
    embeddings: TextEmbeddings,
    vision_projection: Linear,
    text_projection: Linear,
    layout: FeatureLayout,
}

impl Blip2 {
    /// Loads every tensor but the image-text matching head onto `dev`, checking shapes against
    /// `config` (a [`ARCHITECTURE`] configuration).
    pub fn load(w: &Weights, dev: &Device, config: &Config) -> Result<Self, ModelError> {
        let s = config::read(config)?;
        if let Some(index) = config::image_token_index(config) {
            tracing::warn!(
                "{}: image_token_index {index} is set; mvb tokenizes prompts with the tokenizer alone and keeps \
                 every id, as MedVLMBench's zero-shot BLIP2 passes them",
                config.path.display()
            );
        }
        let vision = Blip2Vision::load(w, dev, &s.vision)?;
        let width = match w.shape("query_tokens") {
            Some(&[1, q, d]) if q == s.queries => d,
            Some(found) => {
                return Err(ModelError::Shape {
                    name: "query_tokens".into(),
                    file: w.origin().to_owned(),
                    found: found.to_vec(),
                    expected: vec![1, s.queries, found.last().copied().unwrap_or(0)],
                });
            }
            None => return Err(w.missing("query_tokens")),
        };
        let query_tokens = w.tensor("query_tokens", &[1, s.queries, width])?.into_data();
        let qformer = QFormer::load(w, dev, (width, vision.width()), &s.qformer)?;
        let embeddings = TextEmbeddings::from_names(
            w,
            dev,
            "embeddings.word_embeddings.weight",
            "embeddings.position_embeddings.weight",
        )?;
        if embeddings.width() != width {
            return Err(ModelError::Input(format!(
                "embeddings.word_embeddings is {} wide; the Q-Former is {width}",
                embeddings.width()
            )));
        }
        let dim = w.shape("vision_projection.weight").map_or(256, |s| s[0]);
        let vision_projection = linear(w, dev, "vision_projection", width, dim, true)?;
        let text_projection = linear(w, dev, "text_projection", width, dim, true)?;
        let layout = FeatureLayout { cls: vision.width(), queries: s.queries, dim };
        Ok(Blip2 { vision, qformer, query_tokens, embeddings, vision_projection, text_projection, layout })
    }

    /// The layout of an image feature row.
    pub fn layout(&self) -> FeatureLayout {
        self.layout
    }

    /// The longest text the position table allows.
    pub fn max_len(&self) -> usize {
        self.embeddings.max_len()
    }

    /// Image features of preprocessed pixels, `[batch, layout().width()]`: the class token of
    /// `vision_model`'s `last_hidden_state`, then `vision_projection` of the Q-Former's query
    /// outputs (unnormalised).
    pub fn image_features(&self, dev: &Device, pixels: &[f32], batch: usize) -> Result<Tensor, ModelError> {
        let image = self.vision.forward(dev, pixels, batch)?;
        let tokens = image.shape()[1];
        let cls = dev.gather_rows(&image, &(0..batch).map(|b| b * tokens).collect::<Vec<_>>())?.into_tensor(dev)?;
        let (q, width) = (self.layout.queries, self.qformer.width());
        let mut queries = Vec::with_capacity(batch * q * width);
        for _ in 0..batch {
            queries.extend_from_slice(&self.query_tokens);
        }
        let queries = dev.upload(Tensor::new([batch, q, width], queries))?;
        let out = self.qformer.queries(dev, &queries, &image)?;
        let projected = dev.linear(&out, &self.vision_projection)?.into_tensor(dev)?;
        let (c, per) = (self.layout.cls, q * self.layout.dim);
        let mut data = Vec::with_capacity(batch * self.layout.width());
        for b in 0..batch {
            data.extend_from_slice(&cls.data()[b * c..(b + 1) * c]);
            data.extend_from_slice(&projected.data()[b * per..(b + 1) * per]);
        }
        Ok(Tensor::new([batch, self.layout.width()], data))
    }

    /// Text features: `text_projection` of the Q-Former's output at `[CLS]` (position 0),
    /// unnormalised, `[batch, dim]`.
    pub fn text_features(&self, dev: &Device, tokens: &TokenBatch) -> Result<Tensor, ModelError> {
        let x = self.embeddings.forward(dev, tokens)?;
        let h = self.qformer.text(dev, &x, &tokens.mask)?;
        let cls = dev.gather_rows(&h, &(0..tokens.batch).map(|b| b * tokens.len).collect::<Vec<_>>())?;
        Ok(dev.linear(&cls, &self.text_projection)?.into_tensor(dev)?)
    }

    /// The vision tower's class tokens (MedVLMBench's FT-LP feature) of image features,
    /// `[n, cls]`.
    pub fn probe_features(&self, image_features: &Tensor) -> Tensor {
        let (n, c, w) = (image_features.rows(), self.layout.cls, image_features.cols());
        let data = (0..n).flat_map(|i| image_features.data()[i * w..i * w + c].iter().copied()).collect();
        Tensor::new([n, c], data)
    }

    /// `logits_per_image` of the contrastive head: for each image and text, the largest cosine
    /// between a query's projected output and the text feature, `[images, texts]`. Features of
    /// another layout give meaningless numbers, not a panic (as CLIP's dot products).
    pub fn logits(&self, image_features: &Tensor, text_features: &Tensor) -> Tensor {
        let FeatureLayout { cls, dim, .. } = self.layout;
        let (n, m) = (image_features.rows(), text_features.rows());
        let text = text_features.l2_normalized();
        let mut out = vec![f32::NEG_INFINITY; n * m];
        for i in 0..n {
            let row = image_features.row(i).get(cls..).unwrap_or_default();
            for query in row.chunks(dim.max(1)) {
                let norm = query.iter().map(|v| v * v).sum::<f32>().sqrt();
                let norm = if norm > 0.0 { norm } else { 1.0 };
                for j in 0..m {
                    let dot: f32 = query.iter().zip(text.row(j)).map(|(a, b)| a * b).sum();
                    out[i * m + j] = out[i * m + j].max(dot / norm);
                }
            }
        }
        Tensor::new([n, m], out)
    }
}
