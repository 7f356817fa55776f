//! A causal language model ready to chat: a Llama-family decoder, its tokenizer, its chat
//! template and end-of-sequence ids, loaded from a Hugging Face folder (`config.json`,
//! safetensors, `tokenizer.json`, `tokenizer_config.json`, `generation_config.json`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;
use tokenizers::Tokenizer;

use super::chat::{ChatTemplate, Message};
use super::constrain::{Constraint, Masker};
use super::generate::{self, Continue, GenerateOptions, Generated, Prompt, Steer};
use super::gguf::{GgufFile, LlamaParams};
use super::llama::{Checkpoint, DecoderConfig, Llama, Names, RopeScaling};
use super::{ModelError, Weights};
use crate::backend::{Device, Matrix};
use crate::tensor::Tensor;

/// A decoder with everything needed to turn text into text.
#[derive(Debug)]
pub struct CausalLm {
    /// The network.
    pub model: Llama,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The chat template, when the checkpoint has one.
    pub chat: Option<ChatTemplate>,
    /// End-of-sequence ids (`generation_config.json`, else `config.json`).
    pub eos: Vec<u32>,
    /// Where it was loaded from.
    pub path: PathBuf,
    device: Device,
    pieces: Pieces,
}

/// The text of each token on its own, computed on first use (constrained decoding).
#[derive(Default)]
struct Pieces(OnceLock<Vec<String>>);

impl std::fmt::Debug for Pieces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pieces")
    }
}

/// Reads a JSON file.
pub(crate) fn read_json(path: &Path) -> Result<Value, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io { path: path.to_owned(), source })?;
    serde_json::from_str(&text)
        .map_err(|e| ModelError::Format { path: path.to_owned(), message: format!("invalid JSON: {e}") })
}

/// `eos_token_id` as one id or a list.
pub(crate) fn eos_ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).map(|i| i as u32).collect(),
        Some(v) => v.as_u64().map(|i| vec![i as u32]).unwrap_or_default(),
        None => Vec::new(),
    }
}

/// The folder's tokenizer.
pub(crate) fn open_tokenizer(dir: &Path) -> Result<Tokenizer, ModelError> {
    let path = dir.join("tokenizer.json");
    Tokenizer::from_file(&path)
        .map_err(|e| ModelError::Format { path, message: format!("cannot load the tokenizer: {e}") })
}

/// End-of-sequence ids: `generation_config.json`'s, else the config's.
pub(crate) fn folder_eos(dir: &Path, config: &Value) -> Result<Vec<u32>, ModelError> {
    let gen_path = dir.join("generation_config.json");
    let from_gen = if gen_path.exists() { eos_ids(read_json(&gen_path)?.get("eos_token_id")) } else { Vec::new() };
    Ok(if from_gen.is_empty() { eos_ids(config.get("eos_token_id")) } else { from_gen })
}

impl CausalLm {
    /// Loads a `LlamaForCausalLM`/`Qwen2ForCausalLM`/`MistralForCausalLM` folder onto `dev`.
    pub fn load_dir(dir: &Path, dev: &Device) -> Result<Self, ModelError> {
        let config_path = dir.join("config.json");
        let config = read_json(&config_path)?;
        let cfg = DecoderConfig::from_json(&config, &config_path)?;
        let weights = Weights::open(dir)?;
        let model = Llama::load(&weights, dev, cfg, Names::CAUSAL_LM)?;
        Ok(CausalLm {
            model,
            tokenizer: open_tokenizer(dir)?,
            chat: ChatTemplate::from_dir(dir)?,
            eos: folder_eos(dir, &config)?,
            path: dir.to_owned(),
            device: dev.clone(),
            pieces: Pieces::default(),
        })
    }

    /// Assembles a model from loaded parts (a multimodal model's language half).
    pub(crate) fn from_parts(
        model: Llama,
        tokenizer: Tokenizer,
        chat: Option<ChatTemplate>,
        eos: Vec<u32>,
        dir: &Path,
        dev: &Device,
    ) -> Result<Self, ModelError> {
        Ok(CausalLm {
            model,
            tokenizer,
            chat,
            eos,
            path: dir.to_owned(),
            device: dev.clone(),
            pieces: Pieces::default(),
        })
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Token ids of `text` (special tokens in the text are recognised; no BOS is added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| ModelError::Input(format!("tokenizing: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids` (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.tokenizer.decode(ids, true).map_err(|e| ModelError::Input(format!("detokenizing: {e}")))
    }

    /// `text` as one user turn of the chat template (as is when there is none, or when `raw`).
    pub fn prompt(&self, text: &str, raw: bool) -> Result<String, ModelError> {
        match (&self.chat, raw) {
            (Some(t), false) => t.render(&[Message::user(text)], true),
            _ => Ok(text.to_owned()),
        }
    }

    /// Generates a reply to each prompt text (already templated), streaming each row's text
    /// through `on_text(row, delta)`; stop strings end a row and are cut from its text.
    pub fn generate(
        &self,
        prompts: &[String],
        opts: &GenerateOptions,
        on_text: impl FnMut(usize, &str),
    ) -> Result<Vec<(String, Generated)>, ModelError> {
        let ids = prompts.iter().map(|p| self.encode(p).map(Prompt::text)).collect::<Result<Vec<_>, _>>()?;
        self.generate_prompts(ids, opts, on_text)
    }

    /// Generates from prompts already tokenized (with image features spliced in, say),
    /// streaming each row's text as [`CausalLm::generate`] does.
    pub fn generate_prompts(
        &self,
        ids: Vec<Prompt>,
        opts: &GenerateOptions,
        on_text: impl FnMut(usize, &str),
    ) -> Result<Vec<(String, Generated)>, ModelError> {
        self.generate_constrained(ids, opts, None, on_text)
    }

    /// [`CausalLm::generate_prompts`] with every reply forced into `constraint`'s shape.
    pub fn generate_constrained(
        &self,
        ids: Vec<Prompt>,
        opts: &GenerateOptions,
        constraint: Option<&Constraint>,
        on_text: impl FnMut(usize, &str),
    ) -> Result<Vec<(String, Generated)>, ModelError> {
        let mut opts = opts.clone();
        if opts.eos.is_empty() {
            opts.eos.clone_from(&self.eos);
        }
        if let Some(c) = constraint {
            c.validate().map_err(ModelError::Input)?;
        }
        let masker = constraint.map(|c| Masker::new(c, self.pieces(), &opts.eos, ids.len()));
        let streams = ids.iter().map(|_| TextStream::default()).collect();
        let mut rows = Rows { lm: self, stop: &opts.stop, streams, masker, on_text, failure: None };
        let out = generate::generate_steered(&self.model, &self.device, &ids, &opts, &mut rows)?;
        if let Some(e) = rows.failure {
            return Err(e);
        }
        Ok(rows.streams.into_iter().map(|s| s.emitted).zip(out).collect())
    }

    /// A chat reply to `user` (after `system`, when given) through the chat template, greedy or
    /// sampled by `opts`, optionally constrained: the judges' `generation.generate`.
    pub fn reply(
        &self,
        system: Option<&str>,
        user: &str,
        opts: &GenerateOptions,
        constraint: Option<&Constraint>,
    ) -> Result<String, ModelError> {
        let text = match &self.chat {
            Some(t) => {
                let system = system.map(|s| Message { role: "system".into(), content: s.into() });
                let messages: Vec<Message> = system.into_iter().chain([Message::user(user)]).collect();
                t.render(&messages, true)?
            }
            None => system.map_or_else(|| user.to_owned(), |s| format!("{s}\n\n{user}")),
        };
        let prompt = Prompt::text(self.encode(&text)?);
        let mut out = self.generate_constrained(vec![prompt], opts, constraint, |_, _| {})?;
        Ok(out.pop().map(|(text, _)| text).unwrap_or_default())
    }

    /// Each token's text on its own (the vocabulary as the logits index it).
    fn pieces(&self) -> &[String] {
        self.pieces.0.get_or_init(|| {
            (0..self.model.config().vocab as u32)
                .map(|id| self.tokenizer.decode(&[id], false).unwrap_or_default())
                .collect()
        })
    }
}

/// The rows of one generation: text streams with stop strings, and an optional constraint.
struct Rows<'a, F> {
    lm: &'a CausalLm,
    stop: &'a [String],
    streams: Vec<TextStream>,
    masker: Option<Masker<'a>>,
    on_text: F,
    failure: Option<ModelError>,
}

impl<F: FnMut(usize, &str)> Steer for Rows<'_, F> {
    fn mask(&mut self, row: usize, logits: &mut [f32]) -> Result<(), ModelError> {
        self.masker.as_ref().map_or(Ok(()), |m| m.mask(row, logits))
    }

    fn on_token(&mut self, row: usize, id: u32) -> Continue {
        let must_end = self.masker.as_mut().is_some_and(|m| m.push(row, id));
        let s = &mut self.streams[row];
        s.ids.push(id);
        match self.lm.decode(&s.ids) {
            Ok(text) => {
                let (delta, stop) = s.advance(text, self.stop);
                if !delta.is_empty() {
                    (self.on_text)(row, &delta);
                }
                if stop || must_end { Continue::Stop } else { Continue::Yes }
            }
            Err(e) => {
                self.failure = Some(e);
                Continue::Stop
            }
        }
    }
}

/// The text of one row as it grows: what was emitted, and stop-string handling.
#[derive(Debug, Default)]
struct TextStream {
    ids: Vec<u32>,
    emitted: String,
}

impl TextStream {
    /// The new text since the last call (held back while it could be the start of a stop
    /// string or an incomplete UTF-8 character), and whether a stop string was reached.
    fn advance(&mut self, text: String, stop: &[String]) -> (String, bool) {
        if let Some(at) = stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            let delta = text.get(self.emitted.len()..at).unwrap_or_default().to_owned();
            self.emitted = text[..at].to_owned();
            return (delta, true);
        }
        let mut safe = text.trim_end_matches('\u{FFFD}').len();
        for s in stop {
            for k in (1..s.len()).rev() {
                if s.is_char_boundary(k) && text.ends_with(&s[..k]) {
                    safe = safe.min(text.len() - k);
                }
            }
        }
        if safe <= self.emitted.len() || !text.is_char_boundary(safe) || !text.starts_with(&self.emitted) {
            return (String::new(), false);
        }
        let delta = text[self.emitted.len()..safe].to_owned();
        self.emitted = text[..safe].to_owned();
        (delta, false)
    }
}

/// A GGUF file read as a [`Checkpoint`] under Hugging Face names: weights stay quantised on
/// the CPU unless `dequantize` (the f32 reference path).
struct GgufCheckpoint<'a> {
    file: &'a GgufFile,
    params: &'a LlamaParams,
    dequantize: bool,
}

impl Checkpoint for GgufCheckpoint<'_> {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let gguf = super::gguf::hf_to_gguf_name(name)?;
        self.file.tensor(&gguf).map(|t| t.shape.clone())
    }

    fn matrix(&self, dev: &Device, name: &str, rows: usize, cols: usize) -> Result<Matrix, ModelError> {
        if self.dequantize {
            return self.dense(dev, name, rows, cols);
        }
        let q = self.file.hf_matrix(name, self.params)?;
        check_shape(self.file, name, &[q.rows(), q.cols()], &[rows, cols])?;
        Ok(Matrix::quantized(dev, q)?)
    }

    fn table(&self, dev: &Device, name: &str, rows: usize, cols: usize) -> Result<Matrix, ModelError> {
        let (shape, values) = self.file.hf_tensor_f32(name, self.params)?;
        check_shape(self.file, name, &shape, &[rows, cols])?;
        Ok(Matrix::table(dev, Tensor::new([rows, cols], values))?)
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let (shape, values) = self.file.hf_tensor_f32(name, self.params)?;
        check_shape(self.file, name, &shape, &[len])?;
        Ok(values)
    }
}

impl GgufCheckpoint<'_> {
    /// A dequantised f32 weight for products (packed for bf16 where the device computes in it).
    fn dense(&self, dev: &Device, name: &str, rows: usize, cols: usize) -> Result<Matrix, ModelError> {
        let (shape, values) = self.file.hf_tensor_f32(name, self.params)?;
        check_shape(self.file, name, &shape, &[rows, cols])?;
        Ok(Matrix::new(dev, Tensor::new([rows, cols], values))?)
    }
}

fn check_shape(file: &GgufFile, name: &str, found: &[usize], expected: &[usize]) -> Result<(), ModelError> {
    if found == expected {
        return Ok(());
    }
    Err(ModelError::Shape {
        name: name.into(),
        file: file.path().to_owned(),
        found: found.to_vec(),
        expected: expected.to_vec(),
    })
}

/// The decoder settings a GGUF's metadata gives.
fn gguf_config(p: &LlamaParams, file: &GgufFile) -> Result<DecoderConfig, ModelError> {
    let scaling = match &p.rope_scaling {
        None => RopeScaling::None,
        Some(s) if s.kind == "none" => RopeScaling::None,
        Some(s) => {
            return Err(ModelError::Unsupported {
                path: file.path().to_owned(),
                message: format!("rope scaling `{}` in a GGUF is not implemented", s.kind),
            });
        }
    };
    Ok(DecoderConfig {
        model_type: if p.arch == "qwen2" { "qwen2".into() } else { "llama".into() },
        vocab: p.vocab_size,
        hidden: p.hidden_size,
        layers: p.num_layers,
        heads: p.num_heads,
        kv_heads: p.num_kv_heads,
        head_dim: p.head_dim,
        ffn: p.intermediate_size,
        rms_eps: p.rms_norm_eps,
        rope_theta: f64::from(p.rope_theta),
        rope_scaling: scaling,
        qkv_bias: p.qkv_bias,
        tie_embeddings: p.tied_embeddings,
        max_positions: p.context_length,
    })
}

impl CausalLm {
    /// Loads a GGUF file (llama or qwen2 architecture) onto `dev`: config, tokenizer and chat
    /// template from its metadata; quantised weights stay quantised on the CPU unless
    /// `dequantize`.
    pub fn load_gguf(path: &Path, dev: &Device, dequantize: bool) -> Result<Self, ModelError> {
        let file = GgufFile::open(path)?;
        let params = LlamaParams::from_gguf(&file)?;
        let cfg = gguf_config(&params, &file)?;
        let source = GgufCheckpoint { file: &file, params: &params, dequantize };
        let model = Llama::load(&source, dev, cfg, Names::CAUSAL_LM)?;
        let tokenizer = super::gguf::tokenizer::tokenizer_from_gguf(&file)?;
        let token = |id: Option<u32>| id.and_then(|i| tokenizer.id_to_token(i)).unwrap_or_default();
        let chat = match &params.chat_template {
            Some(t) => {
                Some(ChatTemplate::new(t.clone(), token(params.bos_token_id), token(params.eos_token_id), path)?)
            }
            None => None,
        };
        Ok(CausalLm {
            model,
            chat,
            eos: params.eos_token_id.into_iter().collect(),
            tokenizer,
            path: path.to_owned(),
            device: dev.clone(),
            pieces: Pieces::default(),
        })
    }

    /// Loads `spec`: a `.gguf` file, or a Hugging Face folder.
    pub fn load(spec: &Path, dev: &Device, dequantize: bool) -> Result<Self, ModelError> {
        if spec.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
            Self::load_gguf(spec, dev, dequantize)
        } else {
            Self::load_dir(&super::resolve(&spec.to_string_lossy())?, dev)
        }
    }
}
