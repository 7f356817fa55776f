//! Chat templates: the Jinja template a checkpoint ships (`tokenizer_config.json`'s
//! `chat_template`, `chat_template.jinja`/`.json`, or a GGUF's `tokenizer.chat_template`),
//! rendered with MiniJinja as transformers' `apply_chat_template` renders it with Jinja2
//! (`trim_blocks`, `lstrip_blocks`, loop controls, `raise_exception`, Python string methods).

use std::path::Path;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, ErrorKind, context};
use serde::Serialize;
use serde_json::Value;

use super::ModelError;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A user turn.
    pub fn user(content: impl Into<String>) -> Self {
        Message { role: "user".into(), content: content.into() }
    }
}

/// A compiled chat template with the special tokens it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("bos", &self.bos).field("eos", &self.eos).finish()
    }
}

impl ChatTemplate {
    /// Compiles `source`; `origin` names it in errors.
    pub fn new(source: String, bos: String, eos: String, origin: &Path) -> Result<Self, ModelError> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build();
        env.set_syntax(syntax.map_err(|e| ModelError::Input(format!("chat template syntax: {e}")))?);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_template_owned("chat", source).map_err(|e| ModelError::Format {
            path: origin.to_owned(),
            message: format!("chat template does not compile: {e}"),
        })?;
        Ok(ChatTemplate { env, bos, eos })
    }

    /// The template a Hugging Face folder ships, if any: `chat_template.jinja`,
    /// `chat_template.json`, or `tokenizer_config.json`'s `chat_template` (a string, or a list
    /// of named templates, of which `default` is used).
    pub fn from_dir(dir: &Path) -> Result<Option<Self>, ModelError> {
        let read_json = |name: &str| -> Result<Option<Value>, ModelError> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| ModelError::Format { path, message: format!("invalid JSON: {e}") }),
                Err(_) => Ok(None),
            }
        };
        let config = read_json("tokenizer_config.json")?.unwrap_or(Value::Null);
        let token = |key: &str| special(config.get(key)).unwrap_or_default();
        let jinja = dir.join("chat_template.jinja");
        let (source, origin) = if let Ok(text) = std::fs::read_to_string(&jinja) {
            (Some(text), jinja)
        } else if let Some(v) = read_json("chat_template.json")? {
            (v.get("chat_template").and_then(template_source), dir.join("chat_template.json"))
        } else {
            (config.get("chat_template").and_then(template_source), dir.join("tokenizer_config.json"))
        };
        source.map(|s| Self::new(s, token("bos_token"), token("eos_token"), &origin)).transpose()
    }

    /// The conversation rendered as the model's prompt.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, ModelError> {
        self.render_value(Serde(messages), add_generation_prompt)
    }

    /// A conversation given as JSON (content as a list of typed parts, as multimodal
    /// processors' templates take it: `[{"type": "image"}, {"type": "text", "text": ...}]`).
    pub fn render_json(&self, messages: &Value, add_generation_prompt: bool) -> Result<String, ModelError> {
        self.render_value(Serde(messages), add_generation_prompt)
    }

    fn render_value<T: Serialize>(
        &self,
        messages: Serde<T>,
        add_generation_prompt: bool,
    ) -> Result<String, ModelError> {
        let template = self.env.get_template("chat").map_err(|e| ModelError::Input(e.to_string()))?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos.as_str(),
                eos_token => self.eos.as_str(),
            })
            .map_err(|e| ModelError::Input(format!("chat template: {e}")))
    }
}

/// A template given as a string, or the `default` of a list of `{name, template}`.
fn template_source(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// A special token given as a string or as `{"content": ...}`.
fn special(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        other => other.get("content").and_then(Value::as_str).map(str::to_owned),
    }
}
