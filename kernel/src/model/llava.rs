//! LLaVA-1.5 (transformers' `LlavaForConditionalGeneration`,
//! <https://github.com/huggingface/transformers/blob/main/src/transformers/models/llava/modeling_llava.py>,
//! and its `LlavaProcessor`): a CLIP vision tower read at `vision_feature_layer`, the class token
//! dropped (`vision_feature_select_strategy = "default"`), a two-layer projector, and a
//! Llama-family decoder whose `<image>` token is expanded to one position per image feature.
//! Covers llava-hf/llava-1.5-* and the converted LLaVA-Med v1.5; both the legacy key layout
//! (`language_model.model.*`) and transformers 5's (`model.language_model.*`) load.

use std::path::Path;

use serde_json::{Value, json};

use super::causal::{CausalLm, folder_eos, open_tokenizer, read_json};
use super::chat::ChatTemplate;
use super::clip::ClipVision;
use super::config::Config;
use super::generate::{GenerateOptions, Generated, Prompt};
use super::llama::{DecoderConfig, Llama, Names};
use super::nn::linear;
use super::preprocess::Preprocessor;
use super::{ModelError, Weights};
use crate::backend::cpu::Activation;
use crate::backend::{Array, Device, Linear};
use crate::data::Pixels;

/// LLaVA-1.5's conversation format, used when a folder ships no chat template.
const LLAVA_15_TEMPLATE: &str = "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' ' }}{% endfor %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

/// Where a checkpoint keeps each part.
struct Layout {
    vision: &'static str,
    projector: &'static str,
    decoder: Names<'static>,
}

const LEGACY: Layout = Layout {
    vision: "vision_tower.vision_model",
    projector: "multi_modal_projector",
    decoder: Names { body: "language_model.model", head: "language_model.lm_head" },
};

const CURRENT: Layout = Layout {
    vision: "model.vision_tower.vision_model",
    projector: "model.multi_modal_projector",
    decoder: Names { body: "model.language_model", head: "lm_head" },
};

/// A loaded LLaVA model.
#[derive(Debug)]
pub struct Llava {
    /// The language model with its tokenizer, chat template and end-of-sequence ids.
    pub lm: CausalLm,
    vision: ClipVision,
    /// Encoder layers run before the features are read (`hidden_states[depth]`).
    depth: usize,
    keep_class: bool,
    projector: (Linear, Activation, Linear),
    preprocessor: Preprocessor,
    /// The `<image>` token id.
    pub image_token: u32,
    /// Positions each image takes in the prompt.
    pub image_tokens: usize,
}

impl Llava {
    /// Loads a `LlavaForConditionalGeneration` folder onto `dev`.
    pub fn load_dir(dir: &Path, dev: &Device) -> Result<Self, ModelError> {
        let config = Config::open(dir)?;
        let path = dir.join("config.json");
        let json = &config.json;
        let bad = |message: String| ModelError::Format { path: path.clone(), message };
        let weights = Weights::open(dir)?;
        let layout = if weights.shape(&format!("{}.embed_tokens.weight", LEGACY.decoder.body)).is_some() {
            LEGACY
        } else {
            CURRENT
        };
        let vision_cfg = config.tower("vision_config")?;
        let vision = ClipVision::load(&weights, dev, layout.vision, &vision_cfg)?;
        let layers = vision.depth();
        let depth = match json.get("vision_feature_layer").unwrap_or(&json!(-2)) {
            Value::Number(n) => n.as_i64().map(|l| if l < 0 { layers as i64 + 1 + l } else { l }),
            other => return Err(bad(format!("vision_feature_layer {other}: only a single layer is implemented"))),
        }
        .filter(|&d| (0..=layers as i64).contains(&d))
        .map(|d| d as usize)
        .ok_or_else(|| bad(format!("vision_feature_layer does not name one of the tower's {layers} layers")))?;
        let keep_class = match json.get("vision_feature_select_strategy").and_then(Value::as_str).unwrap_or("default") {
            "default" => false,
            "full" => true,
            other => return Err(bad(format!("vision_feature_select_strategy `{other}` (default, full are)"))),
        };
        let text = text_config(json.get("text_config"));
        let cfg = DecoderConfig::from_json(&text, &path)?;
        let hidden = cfg.hidden;
        let act_name = json.get("projector_hidden_act").and_then(Value::as_str).unwrap_or("gelu");
        let act = Activation::from_hf(act_name).ok_or_else(|| bad(format!("projector_hidden_act `{act_name}`")))?;
        let bias = json.get("multimodal_projector_bias").and_then(Value::as_bool).unwrap_or(true);
        let p = layout.projector;
        let projector = (
            linear(&weights, dev, &format!("{p}.linear_1"), vision.width(), hidden, bias)?,
            act,
            linear(&weights, dev, &format!("{p}.linear_2"), hidden, hidden, bias)?,
        );
        let grid = vision_cfg.image_size / vision_cfg.patch_size.max(1);
        let image_tokens = grid * grid + usize::from(keep_class);
        if let Some(n) = json.get("image_seq_length").and_then(Value::as_u64).filter(|&n| n as usize != image_tokens) {
            return Err(bad(format!("image_seq_length {n}, but the vision tower gives {image_tokens} features")));
        }
        let image_token = json
            .get("image_token_index")
            .or_else(|| json.get("image_token_id"))
            .and_then(Value::as_u64)
            .unwrap_or(32000) as u32;
        if image_token as usize >= cfg.vocab {
            return Err(bad(format!("image_token_index {image_token} is outside the {}-token vocabulary", cfg.vocab)));
        }
        let model = Llama::load(&weights, dev, cfg, layout.decoder)?;
        let chat = match ChatTemplate::from_dir(dir)? {
            Some(t) => t,
            None => ChatTemplate::new(LLAVA_15_TEMPLATE.into(), String::new(), String::new(), dir)?,
        };
        let lm = CausalLm::from_parts(model, open_tokenizer(dir)?, Some(chat), folder_eos(dir, &text)?, dir, dev)?;
        let preprocessor = Preprocessor::open(dir)?;
        Ok(Llava { lm, vision, depth, keep_class, projector, preprocessor, image_token, image_tokens })
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        self.lm.device()
    }

    /// The processor's pixels of one image (`[3, side, side]`).
    pub fn preprocess(&self, image: &Pixels) -> Result<Vec<f32>, ModelError> {
        let pixels = self.preprocessor.apply(image)?;
        let side = self.vision.image_size();
        if pixels.len() != 3 * side * side {
            return Err(ModelError::Input(format!(
                "the preprocessor gives {} values per image; the vision tower takes 3×{side}×{side}",
                pixels.len()
            )));
        }
        Ok(pixels)
    }

    /// Projected image features, `[batch × image_tokens, hidden]` (`get_image_features`).
    pub fn image_features(&self, pixels: &[f32], batch: usize) -> Result<Array, ModelError> {
        let dev = self.device();
        let h = self.vision.hidden_states(dev, pixels, batch, self.depth)?;
        let tokens = h.shape()[1];
        let skip = usize::from(!self.keep_class);
        let rows: Vec<usize> = (0..batch).flat_map(|b| (skip..tokens).map(move |t| b * tokens + t)).collect();
        let picked = dev.gather_rows(&h, &rows)?;
        let (l1, act, l2) = &self.projector;
        let mut x = dev.linear(&picked, l1)?;
        dev.activate(&mut x, *act)?;
        Ok(dev.linear(&x, l2)?)
    }

    /// `question` as one user turn holding an image then the text, rendered by the chat template
    /// as transformers' `apply_chat_template` renders it (the text as is when `raw`).
    pub fn prompt(&self, question: &str, raw: bool) -> Result<String, ModelError> {
        if raw {
            return Ok(question.to_owned());
        }
        let messages =
            json!([{ "role": "user", "content": [{ "type": "image" }, { "type": "text", "text": question }] }]);
        self.lm.chat.as_ref().map_or(Ok(question.to_owned()), |t| t.render_json(&messages, true))
    }

    /// Token ids of `text` as the processor makes them: special tokens added as the tokenizer
    /// says, and each `<image>` expanded to `image_tokens` positions.
    pub fn input_ids(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self.lm.tokenizer.encode(text, true).map_err(|e| ModelError::Input(format!("tokenizing: {e}")))?;
        Ok(enc
            .get_ids()
            .iter()
            .flat_map(|&id| std::iter::repeat_n(id, if id == self.image_token { self.image_tokens } else { 1 }))
            .collect())
    }

    /// Prompts ready to generate from: `texts[i]` (templated) with `images[i]` spliced in at its
    /// `<image>` positions. Every text must hold exactly one `<image>`.
    pub fn prompts(&self, texts: &[String], images: &[Pixels]) -> Result<Vec<Prompt>, ModelError> {
        if texts.len() != images.len() {
            return Err(ModelError::Input(format!("{} prompts for {} images", texts.len(), images.len())));
        }
        let mut pixels = Vec::new();
        for image in images {
            pixels.extend(self.preprocess(image)?);
        }
        let features = self.image_features(&pixels, images.len())?;
        let dev = self.device();
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let ids = self.input_ids(text)?;
                let at: Vec<usize> = (0..ids.len()).filter(|&p| ids[p] == self.image_token).collect();
                if at.len() != self.image_tokens {
                    return Err(ModelError::Input(format!(
                        "prompt {i} must hold one `<image>` (id {}); it holds {} image positions",
                        self.image_token,
                        at.len()
                    )));
                }
                let rows: Vec<usize> = (i * self.image_tokens..(i + 1) * self.image_tokens).collect();
                Ok(Prompt { ids, splice: Some((at, dev.gather_rows(&features, &rows)?)) })
            })
            .collect()
    }

    /// Answers each `(templated text, image)` pair, streaming text as [`CausalLm::generate`].
    pub fn generate(
        &self,
        texts: &[String],
        images: &[Pixels],
        opts: &GenerateOptions,
        on_text: impl FnMut(usize, &str),
    ) -> Result<Vec<(String, Generated)>, ModelError> {
        let prompts = self.prompts(texts, images)?;
        self.lm.generate_prompts(prompts, opts, on_text)
    }
}

/// `text_config` with `LlamaConfig`'s defaults for what it leaves out (llava-1.5-hf's config
/// names only what differs from them).
fn text_config(section: Option<&Value>) -> Value {
    let mut text = json!({
        "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
        "num_attention_heads": 32, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6,
        "vocab_size": 32000, "tie_word_embeddings": false, "hidden_act": "silu", "rope_theta": 10000.0,
    });
    if let (Some(Value::Object(given)), Value::Object(out)) = (section, &mut text) {
        for (k, v) in given {
            if !v.is_null() {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    text
}

/// Whether `dir` holds a LLaVA checkpoint (`model_type = "llava"`).
pub fn is_llava(dir: &Path) -> bool {
    read_json(&dir.join("config.json"))
        .ok()
        .and_then(|c| c.get("model_type").and_then(Value::as_str).map(|t| t == "llava"))
        .unwrap_or(false)
}
